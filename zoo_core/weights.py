"""Getting, listing and removing the weights of catalogue models: what ``zoo pull`` and ``zoo cache`` do, for Python.

A model's weights live in one of three places: the Hugging Face cache (entries
with a ``hub`` pin, pulled and sha256-verified), an installed Python package
(entries with a ``package`` pin: shipped with a plugin, verified in place;
zoo_core/packaged.py) or the zoo's local store (``zoo_home()/models/<id>``:
converted with ``pull(id, source=...)`` or trained with ``zoo train``).
Nothing here imports torch.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ZooError
from .files import owner_tag, remove_stale
from .pins import HubPin
from .registry import Entry, catalogue, get_entry
from .resolve import entry_folder, hub_repo, resolve_folder
from .store import has_local_model, local_model_dir


def model_state(entry: Entry | str) -> str:
    """Where a model's weights stand here: verified, pulled, corrupt, absent, local or not published."""
    entry = get_entry(entry) if isinstance(entry, str) else entry
    if entry.hub is not None:
        from . import hub

        return hub.local_state(entry.hub)
    if entry.package is not None:
        from . import packaged

        return packaged.state(entry.package)
    return "local" if has_local_model(entry.id) else "not published"


def pull(name: str | Entry, *, source: str | os.PathLike | None = None, options: dict | None = None) -> Path:
    """Make a catalogue model's weights available here and return its model folder.

    Without ``source``: download the entry's Hub files at the pinned commit and
    verify every sha256 (a no-op when already verified); an entry whose weights
    ship in an installed package returns that folder once its files match the
    pin; any other entry returns its local-store folder, or raises saying how
    to get them; when its converter can fetch its own sources (``ConverterSpec.fetch``),
    they are downloaded, verified, converted into the local store and removed.
    With ``source``: run the entry's converter on ``source`` (for example a
    TensorFlow checkpoint prefix you downloaded) into the local store;
    ``options`` are passed to the converter on top of the entry's own.
    ``name`` is a catalogue id (or its Entry), or ``"hf-hub:org/repo@revision"``,
    as for ``load_model``; a folder or a recipe's run folder is not pulled.
    """
    if isinstance(name, str) and hub_repo(name) is not None:
        if source is not None:
            raise ZooError(f"{name} is a Hub repo, so there is nothing to convert from {source}", where=name,
                           hint="drop --from, or give a catalogue id whose entry has a converter")
        return resolve_folder(name)  # pulled at that revision, every file checked against the tree listing
    entry = get_entry(name) if isinstance(name, str) else name
    if source is not None:
        if not entry.convert:
            raise ZooError(f"{entry.id!r} has no converter, so its weights cannot be made from a source",
                           where=entry.source, hint=f"`zoo info {entry.id}` says how to get its weights")
        return _convert(entry, source, options)
    if (entry.hub is None and entry.package is None and entry.convert and not has_local_model(entry.id)
            and _converter_spec(entry).fetch):
        return _fetch_and_convert(entry, options)
    # the pinned pull, the package's folder, the local store, or the clear "not published" error;
    # a recipe's run folder is not the catalogue's model, so `zoo pull` does not count it
    return entry_folder(entry, run_folder=False)


def _converter_spec(entry: Entry):
    from .plugins import get_converter_spec

    return get_converter_spec(entry.convert["converter"])


def _convert(entry: Entry, source, options: dict | None) -> Path:
    converter = _converter_spec(entry).load()
    opts = {**entry.convert.get("options", {}), **(options or {})}
    remove_stale(local_model_dir(entry.id).parent)  # what a conversion killed mid-write left
    return Path(converter(str(source), local_model_dir(entry.id), **opts))


def _fetch_and_convert(entry: Entry, options: dict | None) -> Path:
    """Download an entry's original weights with its converter's ``fetch``, convert them, drop the download."""
    from .hub.env import pull_timeout
    from .specs import import_target
    from .store import zoo_home

    fetch = import_target(_converter_spec(entry).fetch)
    work = zoo_home() / "downloads" / entry.id  # ours alone: a killed pull resumes from what is here
    source = fetch(entry, work, out_dir=local_model_dir(entry.id), timeout=pull_timeout(),
                   options={**entry.convert.get("options", {}), **(options or {})})
    folder = _convert(entry, source, options)
    shutil.rmtree(work, ignore_errors=True)  # converted and installed: the original files are not needed
    return folder


@dataclass(frozen=True)
class Verification:
    """What ``verify`` found for one catalogue model: each pinned file's state before repair, and the outcome."""

    id: str
    files: dict  # path -> "ok" | "absent" | "corrupt" (as found, before any repair)
    outcome: str  # "verified", "repaired", "corrupt" (removed, not repaired), "absent", "local (no pin)";
    # shipped in a package: "verified" or "corrupt" (left in place: reinstalling the package repairs it)


def verify(name: str | None = None, *, repair: bool = True) -> list[Verification]:
    """Re-hash every cached file of one catalogue model (or of every cached one) against its pin.

    What ``zoo cache verify`` does. ``zoo list`` calls a file verified once its
    sha256 matched and as long as its size and mtime have not changed; this
    reads every byte again. A file that no longer matches is removed from the
    cache and, with ``repair``, downloaded again at the pinned commit and
    checked (``outcome="repaired"``). Weights shipped in an installed package
    are re-hashed in place and never removed. Models in the local store have no
    pin to check against (``"local (no pin)"``).
    """
    from . import hub, packaged

    if name is not None:
        entries = [get_entry(name)]
    else:
        entries = [e for e in catalogue().values()
                   if (e.hub is not None and hub.local_state(e.hub) != "absent") or has_local_model(e.id)
                   or (e.package is not None and packaged.package_folder(e.package) is not None)]
    out = []
    for entry in entries:
        if entry.hub is None and entry.package is not None:
            files = packaged.check(entry.package, recheck=True)
            states = set(files.values())
            if states == {"ok"}:
                outcome = "verified"
            else:  # a file missing from an installed package is damage too; no package at all is "absent"
                outcome = "corrupt" if packaged.package_folder(entry.package) is not None else "absent"
            out.append(Verification(entry.id, files, outcome))
            continue
        if entry.hub is None:
            outcome = "local (no pin)" if has_local_model(entry.id) else "absent"
            out.append(Verification(entry.id, {}, outcome))
            continue
        files = hub.recheck(entry.hub)
        states = set(files.values())
        if states == {"ok"}:
            outcome = "verified"
        elif "corrupt" in states and repair:
            hub.pull(entry.hub)
            outcome = "repaired"
        else:
            outcome = "corrupt" if "corrupt" in states else "absent"
        out.append(Verification(entry.id, files, outcome))
    return out


def pull_pinned(pin: HubPin, *, progress: bool = True) -> Path:
    """Download and verify the files of a pin (a plugin's dataset, say) and return the snapshot folder."""
    from . import hub

    return Path(hub.pull(pin, progress=progress))


@dataclass(frozen=True)
class CachedCopy:
    """One copy of a zoo model on this machine: a Hub snapshot or the local-store folder."""

    id: str
    path: Path
    size: int  # bytes on disk
    repo_id: str | None = None  # None for the local store
    revision: str | None = None
    verified: bool | None = None
    pinned: bool | None = None  # whether this snapshot is the revision the catalogue pins


def _folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def cached() -> list[CachedCopy]:
    """Every copy of a catalogue model on this machine (``zoo cache ls``)."""
    from . import hub

    entries = catalogue()
    by_repo: dict[str, list[Entry]] = {}
    for e in sorted(entries.values(), key=lambda e: e.id):
        if e.hub:
            by_repo.setdefault(e.hub.repo_id, []).append(e)
    out = []
    for item in hub.cached_models():
        sharing = by_repo.get(item.repo_id)
        if not sharing:
            continue  # someone else's model in the shared Hugging Face cache
        for rev in item.revisions:
            # Several entries may pin one repo (at one commit or at several): a snapshot belongs to the
            # entries that pin its commit; one no entry pins is shown under all of them, unpinned.
            pinned = [e for e in sharing if e.hub.revision == rev.commit]
            for ids, is_pinned in ([(e.id, True) for e in pinned] or [(", ".join(e.id for e in sharing), False)]):
                out.append(CachedCopy(ids, Path(rev.snapshot_path), rev.size_on_disk, item.repo_id, rev.commit,
                                      rev.verified, is_pinned))
    for entry in entries.values():
        if has_local_model(entry.id):
            folder = local_model_dir(entry.id)
            out.append(CachedCopy(entry.id, folder, _folder_size(folder)))
    return out


def remove(name: str) -> int:
    """Delete every copy of a catalogue model's weights on this machine; return the bytes freed."""
    from . import hub

    entry = get_entry(name)
    freed = 0
    if entry.hub:
        freed += hub.remove(entry.hub.repo_id)
    folder = local_model_dir(entry.id)
    if folder.exists():
        freed += _folder_size(folder)
        # Rename first: a half-deleted folder must never look like a model to has_local_model.
        doomed = Path(tempfile.mkdtemp(prefix=f".{folder.name}.{owner_tag()}", suffix=".removing", dir=folder.parent))
        os.replace(folder, doomed / folder.name)
        shutil.rmtree(doomed)
    return freed
