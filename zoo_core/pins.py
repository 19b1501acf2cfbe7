"""What the registry pins for a model on the Hub: repo, commit, and every file's sha256 and size."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FilePin:
    """One file of a pinned repo."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class HubPin:
    """A Hub repo at one commit, with the expected content of every file we use."""

    repo_id: str
    revision: str  # a 40-hex commit
    files: tuple[FilePin, ...] = field(default_factory=tuple)
    repo_type: str = "model"

    @classmethod
    def from_dict(cls, d: dict) -> "HubPin":
        """Build from a registry entry's ``hub`` mapping (already schema-validated)."""
        files = tuple(FilePin(path=f["path"], sha256=f["sha256"], size=int(f["size"])) for f in d.get("files", []))
        return cls(repo_id=d["repo_id"], revision=d["revision"], files=files, repo_type=d.get("repo_type", "model"))
