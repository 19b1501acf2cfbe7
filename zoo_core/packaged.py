"""Weights that ship inside an installed Python package: a catalogue entry's ``package`` block.

An entry with ``hub: null`` and ``package: {module: M, path: P, files: [...]}`` names the folder
``P`` inside the installed package ``M`` (a plugin's wheel, say); every file listed is pinned by
sha256 and size, like a Hub pin. Such weights are installed with the package, so ``zoo pull`` only
verifies them, and ``load_model(id)`` loads them from where they are. Finding the folder does not
import ``M``. A file is hashed once and vouched for while its size and mtime stay the same (the rule
``zoo list`` states for Hub files); ``recheck`` re-reads every byte (``zoo cache verify``). Nothing
here imports torch.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from .errors import IntegrityError, ZooError
from .pins import FilePin


@dataclass(frozen=True)
class PackagePin:
    """A model folder inside an installed package, with the expected content of every file we use."""

    module: str  # an importable package name: "zoo_images"
    path: str  # the folder, relative to the package: "weights/lenet-mnist"
    files: tuple[FilePin, ...] = field(default_factory=tuple)

    @classmethod
    def from_dict(cls, d: dict) -> PackagePin:
        """Build from a registry entry's ``package`` mapping (already schema-validated)."""
        files = tuple(FilePin(path=f["path"], sha256=f["sha256"], size=int(f["size"])) for f in d["files"])
        return cls(module=d["module"], path=d["path"], files=files)

    def to_json(self) -> dict:
        """The registry form of the pin."""
        return {"module": self.module, "path": self.path,
                "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files]}


def package_folder(pin: PackagePin) -> Path | None:
    """The pinned folder inside the installed package, or None when the package is not installed."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(pin.module)  # a top-level package is located, not imported
    except (ImportError, ValueError):
        return None
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        return None
    for location in locations:  # a namespace package may span several folders
        if (Path(location) / pin.path).is_dir():
            return Path(location) / pin.path
    return Path(locations[0]) / pin.path


def _marker(path: Path, st: os.stat_result, sha256: str) -> Path:
    from .store import zoo_home

    key = f"{path.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\0{st.st_ino}\0{sha256}"
    return zoo_home() / "verified-packages" / hashlib.sha256(key.encode()).hexdigest()


def check(pin: PackagePin, *, recheck: bool = False) -> dict[str, str]:
    """Each pinned file's state: ``"ok"``, ``"absent"`` or ``"corrupt"`` (wrong size or sha256).

    Without ``recheck``, a file that matched before and whose size and mtime have not changed is not
    hashed again. Every state is ``"absent"`` when the package is not installed.
    """
    from .files import sha256_file

    folder = package_folder(pin)
    out = {}
    for f in pin.files:
        path = folder / f.path if folder is not None else None
        try:
            st = path.stat() if path is not None else None
        except OSError:
            st = None
        if st is None or not path.is_file():
            out[f.path] = "absent"
            continue
        if st.st_size != f.size:
            out[f.path] = "corrupt"
            continue
        marker = _marker(path, st, f.sha256)
        if not recheck and marker.exists():
            out[f.path] = "ok"
            continue
        out[f.path] = "ok" if sha256_file(path) == f.sha256 else "corrupt"
        if out[f.path] == "ok":
            try:
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.touch()
            except OSError:
                pass  # a read-only home only costs the next call a hash
    return out


def state(pin: PackagePin, *, recheck: bool = False) -> str:
    """``"verified"``, ``"corrupt"`` (a file missing or changed) or ``"absent"`` (package not installed)."""
    if package_folder(pin) is None:
        return "absent"
    return "verified" if set(check(pin, recheck=recheck).values()) <= {"ok"} else "corrupt"


def resolve(pin: PackagePin, where: str) -> Path:
    """The verified folder of the pin; a ZooError when the package is missing, an IntegrityError when damaged."""
    folder = package_folder(pin)
    if folder is None:
        raise ZooError(f"the weights ship inside the Python package {pin.module!r}, which is not installed",
                       where=where, hint=f"install the plugin that provides {pin.module}")
    bad = {path: s for path, s in check(pin).items() if s != "ok"}
    if bad:
        listed = ", ".join(f"{path} ({s})" for path, s in sorted(bad.items()))
        raise IntegrityError(f"the weights shipped in {pin.module} do not match their pin: {listed}",
                             where=str(folder),
                             hint=f"reinstall the package that provides {pin.module} "
                                  "(pip install --force-reinstall), or report the broken release")
    return folder
