"""What is in the HF cache, and removing it (``zoo cache ls`` / ``zoo rm``), via ``huggingface_hub``'s cache scanner.

Listing says, per cached commit, whether the zoo verified every file of the snapshot and
nothing changed since (its marker). Removal uses the client's own deletion strategy, so blobs
still used by other revisions stay; the markers of what was removed go too.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..errors import ZooError
from .cache import RepoCache, stat_file
from .env import check_endpoint, hub_cache_dir

logger = logging.getLogger(__package__)  # "zoo_core.hub", as before the split


@dataclass(frozen=True)
class CachedRevision:
    """One cached commit of a repo (``zoo cache ls``)."""

    commit: str
    refs: tuple[str, ...]
    size_on_disk: int
    nb_files: int
    snapshot_path: Path
    last_modified: float
    verified: bool  # every file of the snapshot was verified by zoo and has not changed since


@dataclass(frozen=True)
class CachedModel:
    """One cached repo (``zoo cache ls``)."""

    repo_id: str
    repo_type: str
    repo_path: Path
    size_on_disk: int
    nb_files: int
    revisions: tuple[CachedRevision, ...]
    last_accessed: float
    last_modified: float


def cached_models(cache_dir: str | os.PathLike | None = None) -> list[CachedModel]:
    """Every repo in the HF cache (via ``huggingface_hub.scan_cache_dir``), sorted by repo id; [] if no cache."""
    check_endpoint(os.environ.get("HF_ENDPOINT"), "HF_ENDPOINT")  # the client's import reads it
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    cache = hub_cache_dir(cache_dir)
    try:
        info = scan_cache_dir(cache)
    except CacheNotFound:
        return []
    for warning in info.warnings:
        logger.warning("skipping a damaged cache entry: %s", warning)
    out = []
    for repo in info.repos:
        repo_cache = RepoCache(cache, repo.repo_id, repo.repo_type)
        revisions = []
        for rev in sorted(repo.revisions, key=lambda r: r.last_modified, reverse=True):
            marker = repo_cache.marker(rev.commit_hash)
            files = [p.relative_to(rev.snapshot_path).as_posix() for p in rev.snapshot_path.rglob("*")
                     if not p.is_dir()]
            verified = bool(files) and all(marker.recorded(f, stat_file(rev.snapshot_path, f)) for f in files)
            revisions.append(CachedRevision(
                commit=rev.commit_hash, refs=tuple(sorted(rev.refs)), size_on_disk=rev.size_on_disk,
                nb_files=rev.nb_files, snapshot_path=rev.snapshot_path, last_modified=rev.last_modified,
                verified=verified))
        out.append(CachedModel(repo_id=repo.repo_id, repo_type=repo.repo_type, repo_path=repo.repo_path,
                               size_on_disk=repo.size_on_disk, nb_files=repo.nb_files, revisions=tuple(revisions),
                               last_accessed=repo.last_accessed, last_modified=repo.last_modified))
    return sorted(out, key=lambda m: (m.repo_type, m.repo_id))


def remove(repo_id: str, revision: str | None = None, cache_dir: str | os.PathLike | None = None, *,
           repo_type: str = "model") -> int:
    """Delete a cached repo (all revisions) or one revision (commit sha, unique sha prefix, or ref name).

    Uses ``scan_cache_dir().delete_revisions(...)``; blobs still used by other revisions stay. Returns the
    bytes freed (0 if nothing matched). A repo folder the scanner reports as damaged is removed whole.
    """
    check_endpoint(os.environ.get("HF_ENDPOINT"), "HF_ENDPOINT")  # the client's import reads it
    from huggingface_hub import scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    cache = hub_cache_dir(cache_dir)
    try:
        info = scan_cache_dir(cache)
    except CacheNotFound:
        return 0
    repo = next((r for r in info.repos if r.repo_id == repo_id and r.repo_type == repo_type), None)
    repo_cache = RepoCache(cache, repo_id, repo_type)
    folder = repo_cache.storage
    if repo is None:
        if revision is None and folder.is_dir():  # damaged beyond what scan_cache_dir accepts
            freed = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
            shutil.rmtree(folder, ignore_errors=True)
            repo_cache.forget_markers()
            return freed
        return 0
    if revision is None:
        commits = [r.commit_hash for r in repo.revisions]
    else:
        commits = [r.commit_hash for r in repo.revisions
                   if r.commit_hash == revision or revision in r.refs
                   or (len(revision) >= 7 and r.commit_hash.startswith(revision))]
        if len(commits) > 1:
            raise ZooError(f"{revision!r} matches several cached revisions of {repo_id}", where=str(folder),
                           hint="give more characters of the commit sha")
    if not commits:
        return 0
    strategy = info.delete_revisions(*commits)
    freed = strategy.expected_freed_size
    strategy.execute()
    for c in commits:
        repo_cache.forget_markers(c)
    return freed
