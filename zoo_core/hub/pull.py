"""Verified pulls: of a registry pin (:func:`pull`), of an unpinned repo (:func:`pull_repo`), and what is cached.

``pull`` downloads every file of a pin at its commit, then checks each one's size and sha256
against the pin; anything that does not match is removed from the cache (blob and snapshot
link) and :class:`~zoo_core.errors.IntegrityError` is raised, so the next pull downloads again.
A snapshot already verified is returned with no network request and no hashing: its marker
remembers each blob's size and mtime. Files a local change broke are noticed (size, mtime),
evicted and downloaded again.

``pull_repo`` has no pin: it resolves the revision, lists the repo tree at that commit, and
verifies each file against the hashes the Hub lists (sha256 for LFS files, git blob sha1 for
the others). The listing it chose is kept in the marker, so a later call, or an offline one,
needs no listing.

``snapshot_path`` and ``local_state`` only look (a stat per file, no network), for ``zoo list``.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Sequence
from pathlib import Path

from ..errors import UnsafeFileError, ZooError
from ..files import sha256_file
from ..pins import HubPin, check_repo_path, is_pickle, refuse_pickle
from .cache import Marker, RepoCache
from .checks import COMMIT_RE, check_pin, check_repo_id, check_revision, pin_paths_safe
from .download import download, translate
from .env import etag_timeout, hub_cache_dir, hub_endpoint, is_offline, sync_client
from .env import token as env_token
from .exceptions import HubConnectionError, OfflineCacheMissError
from .verify import Expect, hash_file, integrity_error, pin_error, verify, wants_git_sha1

logger = logging.getLogger(__package__)  # "zoo_core.hub", as before the split

#: What ``pull_repo`` downloads by default: weights, configs, cards, text files (e.g. vocabularies).
REPO_FILE_PATTERNS = ("*.safetensors", "*.json", "*.md", "*.txt", "*.yaml", "*.yml")


def _pull_files(repo: RepoCache, commit: str, expects: Sequence[Expect], *, endpoint: str | None, token,
                progress: bool, extra_marker: dict | None = None) -> Path:
    snap = repo.snapshot(commit)
    marker = repo.marker(commit)
    endpoint_s = hub_endpoint(endpoint)

    # 1. what is already in the cache (no network): verify, evict what a local change broke
    bad, missing, served = verify(expects, repo=repo, commit=commit, marker=marker, progress=progress)
    if served and extra_marker is None:  # good bytes, wrong pin: a download would not help, deleting would
        marker.stamp(repo, commit, extra_marker).save()  # hurt the other pins that vouch for the file
        raise pin_error(repo.repo_id, commit, endpoint_s, served)
    bad += served  # against the Hub's own listing (pull_repo) there is no wrong pin: the bytes are bad
    for e, why in bad:
        logger.warning("cached %s of %s@%s is corrupt (%s): removed, downloading it again",
                       e.path, repo.repo_id, commit[:12], why)
        repo.evict(commit, e.path)
        marker.forget(e.path)
    missing = list(missing) + [e for e, _ in bad]

    if missing:
        if is_offline():
            marker.stamp(repo, commit, extra_marker).save()
            raise OfflineCacheMissError(
                f"{repo.repo_id}@{commit[:12]} is not (completely) in the local cache and HF_HUB_OFFLINE is set"
                f" (missing: {', '.join(e.path for e in missing)})",
                where=str(snap),
                hint="pull the model once while online (unset HF_HUB_OFFLINE); after that it works offline",
            )
        known: dict = {}  # each file hashed in its download thread: while written, or as soon as it arrives

        def hash_on_arrival(e: Expect, hashed) -> None:
            st = repo.stat(commit, e.path)
            if st is None:
                return
            if hashed is not None and hashed.stat == st:  # the blob the digests are for, unchanged since
                known[st] = (hashed.sha256, hashed.git_sha1)
            else:
                known[st] = hash_file(st[0], git_sha1=wants_git_sha1(e, st))[:2]

        download(repo, commit, missing, endpoint=endpoint_s, token=env_token(token),
                 progress=progress, on_file=hash_on_arrival)
        # 2. verify what was downloaded
        bad, still_missing, served = verify(missing, repo=repo, commit=commit, marker=marker, progress=progress,
                                            known=known)
        if extra_marker is not None:
            bad, served = bad + served, []
        for e, _ in bad:
            repo.evict(commit, e.path)
            marker.forget(e.path)
        marker.stamp(repo, commit, extra_marker).save()
        if served:
            raise pin_error(repo.repo_id, commit, endpoint_s, served)
        if bad:
            raise integrity_error(repo.repo_id, commit, endpoint_s, bad,
                                  "the pin" if extra_marker is None else "the hashes the Hub lists")
        if still_missing:
            raise HubConnectionError(
                f"{', '.join(e.path for e in still_missing)} did not arrive in the cache", where=str(snap),
                hint="pull again")
        repo.clean_incompletes()
    else:
        marker.stamp(repo, commit, extra_marker).save()
    return snap


def pull(pin: HubPin, *, cache_dir: str | os.PathLike | None = None, endpoint: str | None = None,
         token: str | bool | None = None, progress: bool = True) -> Path:
    """Download every file of ``pin`` at its commit into the HF cache, verify it, and return the snapshot folder.

    Each file is fetched with ``huggingface_hub.hf_hub_download`` (progress bars unless ``progress=False``
    or ``HF_HUB_DISABLE_PROGRESS_BARS``), then its size and sha256 are checked against the pin. A mismatch
    removes the blob and its snapshot link from the cache and raises ``IntegrityError``; the next pull
    downloads again. A snapshot already verified is returned with no network access and no hashing
    (a marker under ``$ZOO_HOME/verified`` remembers each blob's size and mtime).

    Args:
        pin: repo, 40-hex commit and the expected sha256/size of every file.
        cache_dir: HF hub cache (default: ``HF_HUB_CACHE`` / ``HF_HOME/hub`` read now).
        endpoint: Hub URL (default: ``HF_ENDPOINT`` read now, else https://huggingface.co).
        token: Hub token (default: ``HF_TOKEN``, else the token saved by ``hf auth login``).
        progress: show download (and, for large files, verification) progress bars.

    Raises:
        UnsafeFileError: a pinned path escapes the repo, or names a pickle file (before any network access).
        IntegrityError: a downloaded file does not match the pin.
        OfflineCacheMissError: ``HF_HUB_OFFLINE`` is set and the files are not cached.
        HubNotFoundError: unknown repo / revision / file (or private without a token).
        HubConnectionError: the endpoint cannot be reached.
    """
    check_pin(pin)
    repo = RepoCache(hub_cache_dir(cache_dir), pin.repo_id, pin.repo_type)
    expects = [Expect(path=f.path, size=int(f.size), sha256=f.sha256) for f in pin.files]
    return _pull_files(repo, pin.revision, expects, endpoint=endpoint, token=token, progress=progress)


def pull_repo(repo_id: str, revision: str = "main", *, repo_type: str = "model",
              cache_dir: str | os.PathLike | None = None, endpoint: str | None = None,
              token: str | bool | None = None, progress: bool = True,
              include: Sequence[str] | None = None) -> Path:
    """Download a repo with no registry pin (``load_model("hf-hub:org/repo@rev")``) and return its snapshot.

    Resolves ``revision`` to a commit, lists the repo tree at that commit, and refuses the repo if a path
    escapes it or if its only weights are pickle files. Downloads the files matching ``include`` (default
    ``REPO_FILE_PATTERNS``: safetensors, json, md, txt, yaml; pickle files never) and verifies each against
    the tree listing: sha256 for LFS files, git blob sha1 for the others. The listing is remembered, so a
    later call (or an offline one, with ``HF_HUB_OFFLINE``) needs no download; with a branch name it
    still asks the Hub which commit the branch points to, unless offline.

    Raises the same errors as :func:`pull`; ``UnsafeFileError`` for pickle-only repos.
    """
    check_repo_id(repo_id)
    check_revision(revision, where=f"{repo_id}@{revision}")
    if repo_type not in ("model", "dataset"):
        raise ZooError(f"unsupported repo type {repo_type!r}", where=repo_id)
    repo = RepoCache(hub_cache_dir(cache_dir), repo_id, repo_type)
    endpoint_s = hub_endpoint(endpoint)
    where = f"{repo_id}@{revision}"
    patterns = tuple(include) if include is not None else REPO_FILE_PATTERNS

    # 1. which commit
    if COMMIT_RE.match(revision):
        commit = revision
    elif is_offline():
        commit = repo.read_ref(revision)
        if commit is None:
            raise OfflineCacheMissError(
                f"{where} is not in the local cache and HF_HUB_OFFLINE is set", where=str(repo.storage),
                hint="pull it once while online (unset HF_HUB_OFFLINE); after that it works offline")
    else:
        commit = resolve_revision(repo_id, revision, repo_type=repo_type, endpoint=endpoint_s, token=token)

    # 2. the file list: remembered from an earlier pull, else the tree API
    marker = repo.marker(commit)
    manifest = marker.get("manifest")
    if manifest is None or marker.get("patterns") != list(patterns):
        if is_offline():
            raise OfflineCacheMissError(
                f"{repo_id}@{commit[:12]} is not in the local cache and HF_HUB_OFFLINE is set",
                where=str(repo.storage),
                hint="pull it once while online (unset HF_HUB_OFFLINE); after that it works offline")
        if commit == revision:
            # one quick request first: the tree listing retries a refused connection for ~25 s, printing each try
            resolve_revision(repo_id, commit, repo_type=repo_type, endpoint=endpoint_s, token=token)
        manifest = select_files(list_tree(repo_id, commit, repo_type=repo_type, endpoint=endpoint_s, token=token),
                                repo_id=repo_id, commit=commit, patterns=patterns)
    expects = [Expect(path=m["path"], size=m["size"], sha256=m.get("sha256"), git_sha1=m.get("git_sha1"))
               for m in manifest]
    snap = _pull_files(repo, commit, expects, endpoint=endpoint, token=token, progress=progress,
                       extra_marker={"manifest": manifest, "patterns": list(patterns)})
    repo.write_ref(revision, commit)
    return snap


def resolve_revision(repo_id: str, revision: str, *, repo_type: str, endpoint: str, token) -> str:
    """The 40-hex commit a branch / tag ``revision`` names now (one ``repo_info`` request)."""
    from huggingface_hub import HfApi

    sync_client()
    try:
        info = HfApi(endpoint=endpoint, token=env_token(token)).repo_info(repo_id, revision=revision,
                                                                         repo_type=repo_type, timeout=etag_timeout())
    except Exception as exc:
        raise translate(exc, repo_id=repo_id, revision=revision, endpoint=endpoint) from exc
    if not info.sha or not COMMIT_RE.match(info.sha):
        raise ZooError(f"{endpoint} did not say which commit {revision} of {repo_id} is", where=endpoint,
                       hint="check HF_ENDPOINT points at a Hugging Face Hub (or compatible mirror)")
    return info.sha


def list_tree(repo_id: str, commit: str, *, repo_type: str, endpoint: str, token) -> list:
    """Every file (``RepoFile``) of the repo at ``commit``, from the tree API (all pages)."""
    from huggingface_hub import HfApi
    from huggingface_hub.hf_api import RepoFile

    sync_client()
    try:
        entries = list(HfApi(endpoint=endpoint, token=env_token(token)).list_repo_tree(
            repo_id, recursive=True, revision=commit, repo_type=repo_type))
    except Exception as exc:
        raise translate(exc, repo_id=repo_id, revision=commit, endpoint=endpoint) from exc
    return [e for e in entries if isinstance(e, RepoFile)]


def select_files(files: list, *, repo_id: str, commit: str, patterns: Sequence[str]) -> list[dict]:
    """The manifest of what ``pull_repo`` downloads: files matching ``patterns``, with the hashes to expect.

    Refuses the whole repo if any path could escape it, a chosen file is a pickle, or the only weights
    are pickles.
    """
    where = f"{repo_id}@{commit[:12]}"
    for f in files:  # refuse the whole repo if any path could escape it
        check_repo_path(f.path, where, length=False)
    chosen = [f for f in files if any(fnmatch.fnmatch(f.path, p) or fnmatch.fnmatch(f.path.rsplit("/", 1)[-1], p)
                                      for p in patterns)]
    for f in chosen:
        check_repo_path(f.path, where)  # and a path too long to store, before anything is downloaded
        refuse_pickle(f.path, where)
    if not any(f.path.endswith(".safetensors") for f in chosen):
        pickles = sorted(f.path for f in files if is_pickle(f.path))
        if pickles:
            raise UnsafeFileError(
                f"{repo_id} has pickle weights only ({', '.join(pickles[:5])}), no .safetensors",
                where=where,
                hint="pickle files can run arbitrary code when loaded; use a repo with safetensors weights, or "
                     "convert them yourself with a trusted tool and push the safetensors",
            )
        if tuple(patterns) == REPO_FILE_PATTERNS:
            raise ZooError(f"{repo_id} has no .safetensors weights", where=where,
                           hint="check the repo id and revision")
    manifest: dict[str, dict] = {}
    for f in sorted(chosen, key=lambda f: f.path):
        if f.lfs is not None:
            m = {"path": f.path, "size": int(f.lfs.size), "sha256": f.lfs.sha256, "lfs": True}
        else:
            m = {"path": f.path, "size": int(f.size), "git_sha1": f.blob_id, "lfs": False}
        if manifest.setdefault(f.path, m) != m:  # a mirror listing a file twice: once is enough, if it agrees
            raise ZooError(f"the listing of {repo_id}@{commit[:12]} names {f.path} twice, with different content",
                           where=where, hint="the Hub (or the mirror in HF_ENDPOINT) serves an inconsistent tree; "
                                             "try again later or use another endpoint")
    return list(manifest.values())


def snapshot_path(pin: HubPin, cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The snapshot folder of ``pin`` in the HF cache if every pinned file is there, else None (no hashing)."""
    if not pin_paths_safe(pin):
        return None
    repo = RepoCache(hub_cache_dir(cache_dir), pin.repo_id, pin.repo_type)
    snap = repo.snapshot(pin.revision)
    if not snap.is_dir() or any(repo.stat(pin.revision, f.path) is None for f in pin.files):
        return None
    return snap


def local_state(pin: HubPin, cache_dir: str | os.PathLike | None = None, *, deep: bool = False) -> str:
    """Where ``pin`` stands locally, without network: ``"absent"``, ``"pulled"``, ``"verified"`` or ``"corrupt"``.

    ``absent``: some pinned file is not in the cache. ``verified``: every file matches the pin and was
    hashed since it last changed on disk. ``corrupt``: a file's size differs from the pin (or, with
    ``deep=True``, its sha256). ``pulled``: everything is there but not (or no longer) known to be
    verified; ``deep=True`` hashes those files to decide between ``verified`` and ``corrupt``. Fast by
    default (a stat per file), for ``zoo list``.
    """
    if not pin_paths_safe(pin):
        return "absent"  # `pull` explains what is wrong with the pin
    repo = RepoCache(hub_cache_dir(cache_dir), pin.repo_id, pin.repo_type)
    marker: Marker = repo.marker(pin.revision)
    state = "verified"
    stats = []
    for f in pin.files:
        st = repo.stat(pin.revision, f.path)
        if st is None:
            return "absent"
        stats.append((f, st))
    for f, st in stats:
        if st[1] != int(f.size):
            return "corrupt"
        if not marker.recorded(f.path, st, sha256=f.sha256, size=int(f.size)):
            state = "pulled"
    if state == "pulled" and deep:
        for f, st in stats:
            if marker.recorded(f.path, st, sha256=f.sha256, size=int(f.size)):
                continue
            sha256 = sha256_file(st[0])
            if sha256 != f.sha256:
                return "corrupt"
            marker.record(f.path, st, sha256)
        marker.stamp(repo, pin.revision).save()
        state = "verified"
    return state


def recheck(pin: HubPin, cache_dir: str | os.PathLike | None = None) -> dict[str, str]:
    """Hash every cached file of ``pin`` again, whatever the marker says; remove the ones that do not match.

    ``zoo list`` trusts a file it verified once for as long as its size and
    mtime stay the same, which a bit flip with its mtime put back escapes; this
    reads every byte. Returns ``{path: "ok" | "absent" | "corrupt"}``; a corrupt
    file is evicted (blob and snapshot links), so the next ``pull`` downloads
    it again. No network access.
    """
    check_pin(pin)
    repo = RepoCache(hub_cache_dir(cache_dir), pin.repo_id, pin.repo_type)
    marker: Marker = repo.marker(pin.revision)
    out: dict[str, str] = {}
    for f in pin.files:
        st = repo.stat(pin.revision, f.path)
        if st is None:
            out[f.path] = "absent"
            continue
        if st[1] == int(f.size) and sha256_file(st[0]) == f.sha256:
            marker.record(f.path, st, f.sha256)
            out[f.path] = "ok"
        else:
            marker.forget(f.path)
            repo.evict(pin.revision, f.path)
            out[f.path] = "corrupt"
    marker.stamp(repo, pin.revision).save()
    return out
