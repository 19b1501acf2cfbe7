"""Safety checks on repo ids and pins, done before any network access (and without it)."""

from __future__ import annotations

import re

from ..errors import ZooError
from ..pins import HubPin, check_repo_path, is_dot_part, refuse_pickle

COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
_REPO_ID_RE = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[A-Za-z0-9][\w.\-]*)?$")


#: Longest org or repo name the Hub accepts (``huggingface_hub``'s ``validate_repo_id``)
MAX_REPO_NAME = 96


def check_repo_id(repo_id: str) -> None:
    """Raise ZooError unless ``repo_id`` looks like ``org/name`` (and cannot climb out of the cache folder).

    The Hub's own rules too, so that the client never refuses it later with a raw message: at most
    ``MAX_REPO_NAME`` characters per part, no ``--`` or ``..``, no part ending in ``-`` or ``.``.
    """
    ok = isinstance(repo_id, str) and _REPO_ID_RE.match(repo_id) and ".." not in repo_id and "--" not in repo_id
    if ok and any(len(part) > MAX_REPO_NAME or part.endswith(("-", ".")) for part in repo_id.split("/")):
        ok = False
    if not ok:
        shown = repr(repo_id) if not isinstance(repo_id, str) or len(repo_id) <= 120 else \
            f"{repo_id[:60]!r} … ({len(repo_id)} characters)"
        raise ZooError(f"invalid Hub repo id {shown}", where=str(repo_id)[:200],
                       hint=f"a repo id looks like 'org/name': letters, digits, '-', '_', '.', at most "
                            f"{MAX_REPO_NAME} characters each, no '--' or '..', not ending in '-' or '.'")


# git's ref-name rules (git check-ref-format), which the Hub applies to branch and tag names
_REF_BAD_CHARS = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]")


def check_revision(revision: str, where: str = "") -> None:
    """Raise ZooError unless ``revision`` is a commit sha or a valid branch/tag name.

    The name becomes a file under the cache's ``refs/``, so a name that climbs
    out (``../../x``), is absolute, or breaks git's ref-name rules is refused
    before anything is asked of the server or written to disk.
    """
    ok = isinstance(revision, str) and 0 < len(revision) <= 255 and not (
        _REF_BAD_CHARS.search(revision) or ".." in revision or "@{" in revision or revision == "@"
        or revision.startswith(("/", "-")) or revision.endswith(("/", ".", ".lock")) or "//" in revision
        or any(part.startswith(".") or part.endswith(".lock") for part in revision.split("/")))
    ok = ok and not any(is_dot_part(part) for part in revision.split("/"))
    if not ok:
        shown = repr(revision) if not isinstance(revision, str) or len(revision) <= 120 else \
            f"{revision[:60]!r} … ({len(revision)} characters, at most 255)"
        raise ZooError(f"invalid revision {shown}: not a commit sha, branch or tag name",
                       where=(where or str(revision))[:300],
                       hint="a revision is a 40-hex commit or a git branch/tag name such as 'main' or 'v1.0' "
                            "(no '..', no leading '/' or '-', no spaces or ~^:?*[\\)")


def check_pin(pin: HubPin) -> None:
    """Validate a pin before any network access: repo id, 40-hex commit, safe non-pickle paths, hashes.

    Raises ``UnsafeFileError`` for paths escaping the repo or pickle files, ``ZooError`` otherwise.
    """
    check_repo_id(pin.repo_id)
    where = f"{pin.repo_id}@{pin.revision}"
    if not isinstance(pin.revision, str) or not COMMIT_RE.match(pin.revision):
        raise ZooError(f"the pin of {pin.repo_id} names revision {pin.revision!r}, not a 40-hex commit",
                       where=pin.repo_id, hint="pin a commit sha (a branch can move under you)")
    if pin.repo_type not in ("model", "dataset"):
        raise ZooError(f"unsupported repo type {pin.repo_type!r}", where=where)
    if not pin.files:
        raise ZooError(f"the pin of {pin.repo_id} lists no files", where=where,
                       hint="list every file the model needs with its sha256 and size")
    seen = set()
    for f in pin.files:
        check_repo_path(f.path, where)
        refuse_pickle(f.path, where)
        if not re.fullmatch(r"[0-9a-f]{64}", str(f.sha256)) or int(f.size) < 0:
            raise ZooError(f"bad sha256/size for {f.path} in the pin", where=where,
                           hint="sha256 is 64 lowercase hex digits, size a byte count")
        if f.path in seen:
            raise ZooError(f"{f.path} is listed twice in the pin", where=where)
        seen.add(f.path)


def pin_paths_safe(pin: HubPin) -> bool:
    """Whether the pin's repo id, commit and paths are safe to look up in the cache (no errors raised).

    The read-only queries (``snapshot_path``, ``local_state``) use this; ``pull`` explains what is wrong.
    """
    try:
        check_repo_id(pin.repo_id)
        if not COMMIT_RE.match(str(pin.revision)):
            return False
        for f in pin.files:
            check_repo_path(f.path, pin.repo_id)
    except ZooError:
        return False
    return True
