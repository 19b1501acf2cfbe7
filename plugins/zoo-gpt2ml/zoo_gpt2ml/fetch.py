"""``zoo pull gpt2-ml`` without ``--from``: download the official checkpoint files, verify them, hand them over.

The catalogue entry says where the release publishes each file (``weights.sources``):
a source with a ``url``, a ``sha256`` and a ``size`` is a file to download, saved
under its ``name``; the others (Baidu Pan) are the ways named when a download is
refused. No URL lives in this code. ``ZOO_GPT2ML_MIRROR=https://host/path`` fetches
every file as ``<mirror>/<name>`` instead, the way ``HF_ENDPOINT`` names a Hub mirror.

Downloads go through gdown, which knows Google Drive's large-file flow (the
virus-scan confirmation form, quota pages) and resumes a partial file with an
HTTP Range request; other URLs (the GitHub release, a mirror) are plain downloads
with the same resume. Files land in the work folder the core gives (``$ZOO_HOME/downloads/<id>``);
a killed pull leaves ``<name>XXXXXXXX.part`` there and the next pull continues it.
Each file is hashed as it arrives and checked against the catalogue's sha256; a file
that does not match is removed and nothing is converted. The whole fetch gives up at
the pull deadline (``ZOO_PULL_TIMEOUT``), keeping what arrived.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from zoo_core import IntegrityError, ZooError, sha256_file

MIRROR_ENV = "ZOO_GPT2ML_MIRROR"
# gdown's per-request limits: (connect, between two reads) in seconds. A read that times out is retried
# (up to RETRIES times, resuming with Range); a server that trickles forever meets the pull's deadline.
REQUEST_TIMEOUT = (20, 60)
RETRIES = 2
DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


@dataclass(frozen=True)
class SourceFile:
    """One file of the release: the name it is saved under, where it comes from, what it must hash to."""

    name: str
    url: str
    sha256: str
    size: int

    @property
    def host(self) -> str:
        """The host it is downloaded from, for messages."""
        return urlsplit(self.url).hostname or self.url


def release_files(entry) -> list[SourceFile]:
    """The files ``zoo pull`` downloads for a catalogue entry, small ones first, mirror applied."""
    mirror = (os.environ.get(MIRROR_ENV) or "").strip().rstrip("/")
    files = []
    for s in entry.weights.get("sources", []):
        if not (s.get("url") and s.get("sha256") and s.get("size") is not None):
            continue  # a place to get the files by hand, not a file to download
        name = s["name"]
        if Path(name).name != name or name in (".", ".."):
            raise ZooError(f"the catalogue names a download {name!r} that is not a plain file name",
                           where=entry.source, hint="a downloadable source's name is the file name it is saved as")
        files.append(SourceFile(name, f"{mirror}/{name}" if mirror else s["url"], s["sha256"], int(s["size"])))
    if not any(f.name.endswith(".index") for f in files):
        raise ZooError(f"the catalogue entry of {entry.id} lists no checkpoint .index to download",
                       where=entry.source, hint=f"download the checkpoint yourself: zoo pull {entry.id} --from PATH")
    return sorted(files, key=lambda f: f.size)


def checkpoint_prefix(files: list[SourceFile]) -> str:
    """``model.ckpt-220000`` for a release whose files are ``model.ckpt-220000.index`` and its ``.data``."""
    return next(f.name for f in files if f.name.endswith(".index")).removesuffix(".index")


def other_ways(entry, files: list[SourceFile]) -> str:
    """One line naming the other ways to get the weights: the catalogue's manual sources, ``--from``, a mirror."""
    manual = [f"{s['name']} {s['url']}" + (f" ({s['note']})" if s.get("note") else "")
              for s in entry.weights.get("sources", []) if s.get("url") and not s.get("sha256")]
    prefix = checkpoint_prefix(files)
    ways = f"download {prefix}.* from " + " or ".join(manual) + " and run" if manual else "download it and run"
    return (f"{ways} `zoo pull {entry.id} --from /path/to/{prefix}`, "
            f"or set {MIRROR_ENV} to a server holding the files")


# ---------------------------------------------------------------------------
# Before a byte is downloaded: room on disk.

def _partial(folder: Path, name: str) -> list[Path]:
    """gdown's partial files for ``name``: ``<name>`` + 8 random characters + ``.part``."""
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir()
            if p.name.startswith(name) and p.name.endswith(".part") and len(p.name) == len(name) + 8 + 5]


def _have(folder: Path, f: SourceFile) -> int:
    """Bytes of ``f`` already on disk (complete or partial)."""
    done = folder / f.name
    if done.is_file():
        return done.stat().st_size
    return max((p.stat().st_size for p in _partial(folder, f.name)), default=0)


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_free_space(entry, files: list[SourceFile], work_dir: Path, out_dir: Path, dtype: str = "float32") -> None:
    """Refuse before downloading when the disk cannot hold what is left to download plus the converted weights.

    The converted model is at most the size of the ``.data`` files (fp32; half in fp16/bf16: the
    optimizer slots in ``.data`` are dropped). Both folders are usually on one disk; if not, each
    is checked for its own part.
    """
    left = sum(max(f.size - _have(work_dir, f), 0) for f in files)
    data = sum(f.size for f in files if ".data-" in f.name)
    converted = data * DTYPE_BYTES.get(dtype, 4) // 4
    needs: dict[int, list] = {}  # device -> [bytes, folder]
    for folder, nbytes in ((work_dir, left), (out_dir.parent, converted)):
        anchor = _existing(folder)
        need = needs.setdefault(anchor.stat().st_dev, [0, anchor])
        need[0] += nbytes
    for need, anchor in needs.values():
        free = shutil.disk_usage(anchor).free
        if need > free:
            raise ZooError(
                f"not enough free disk space to pull {entry.id}: it needs {_gb(need)} ({_gb(left)} left to "
                f"download, {_gb(converted)} of converted weights) and {anchor} has {_gb(free)} free",
                where=str(anchor),
                hint="free some space, or point ZOO_HOME at a disk with room (downloads and the converted model go "
                     "there); nothing was downloaded")


def _gb(n: int) -> str:
    if n >= 10**8:
        return f"{n / 1e9:.2f} GB"
    return f"{n / 1e6:.1f} MB" if n >= 10**6 else f"{n / 1e3:.1f} kB"


# ---------------------------------------------------------------------------
# Downloading one file.

def _progress_bar(f: SourceFile, have: int):
    from tqdm.auto import tqdm

    tty = sys.stderr.isatty()
    return tqdm(total=f.size, initial=have, desc=f.name, unit="B", unit_scale=True, unit_divisor=1000,
                file=sys.stderr, mininterval=0.5 if tty else 30, leave=True)


def _drive_reason(exc: Exception) -> str:
    """The reason inside gdown's multi-line FileURLRetrievalError message, as one line."""
    text = str(exc)
    if "Failed to retrieve file url:" in text:
        text = text.split("Failed to retrieve file url:", 1)[1].split("You may still be able", 1)[0]
    text = " ".join(text.split())
    if text.startswith("Cannot retrieve the public link"):  # gdown's words for a page with no download in it
        return "it gave no download link (the file is gone, no longer public, or over its download quota)"
    return text


def _translate(exc: BaseException, entry, f: SourceFile, files, timeout: float | None) -> ZooError:
    """A gdown / requests failure as a ZooError naming the file, the host and the other ways."""
    import requests
    from gdown.exceptions import DownloadCancelled, DownloadError, FileURLRetrievalError

    ways = other_ways(entry, files)
    if isinstance(exc, DownloadCancelled):
        return ZooError(f"the pull of {entry.id} did not finish within {timeout:g} s (ZOO_PULL_TIMEOUT); "
                        f"{f.name} was still arriving from {f.host}", where=f.url,
                        hint="pull again (what arrived is kept and the download resumes where it stopped), or "
                             "raise ZOO_PULL_TIMEOUT (seconds, 0 for no deadline) for a slow connection")
    if isinstance(exc, FileURLRetrievalError):
        return ZooError(f"Google Drive refused {f.name}: {_drive_reason(exc)}", where=f.url, hint=ways)
    if isinstance(exc, requests.HTTPError):
        status = getattr(exc.response, "status_code", "?")
        return ZooError(f"{f.host} answered HTTP {status} for {f.name}", where=f.url, hint=ways)
    if isinstance(exc, (requests.ConnectionError, requests.Timeout)):
        return ZooError(f"could not download {f.name} from {f.host}: {type(exc).__name__}", where=f.url,
                        hint=f"check the network (and HTTPS_PROXY), then pull again: a partial file resumes; or {ways}")
    if isinstance(exc, DownloadError):
        return ZooError(f"the download of {f.name} broke off: {' '.join(str(exc).split())}", where=f.url,
                        hint=f"pull again (a partial file resumes); or {ways}")
    if isinstance(exc, OSError):
        return ZooError(f"could not write {f.name}: {exc.strerror or exc}", where=str(getattr(exc, "filename", "")),
                        hint="check the free space and permissions of ZOO_HOME, then pull again")
    return ZooError(f"downloading {f.name} from {f.host} failed: {exc}", where=f.url, hint=ways)


def download_file(f: SourceFile, folder: Path, *, cancel: threading.Event) -> str:
    """Download ``f`` into ``folder`` (resuming a partial file) and return the sha256 of what is there."""
    import gdown
    from gdown.exceptions import DownloadError

    have = _have(folder, f)
    print(f"downloading {f.name} ({_gb(f.size)}) from {f.host}"
          + (f", resuming at {_gb(have)}" if have else ""), file=sys.stderr)
    for attempt in (1, 2):
        hasher = hashlib.sha256()
        bar = _progress_bar(f, have)
        try:
            gdown.download(url=f.url, output=str(folder / f.name), quiet=True, resume=True,
                           use_cookies=False,  # never read or write the user's gdown cookie file
                           progress=lambda done, total, bar=bar: bar.update(done - bar.n),
                           hasher=hasher, timeout=REQUEST_TIMEOUT, retries=RETRIES, cancel=cancel)
            return hasher.hexdigest()
        except DownloadError as exc:
            if attempt == 2 or "did not honor the requested byte range" not in str(exc):
                raise
            # A server without Range support cannot continue the partial file: start it again.
            print(f"{f.host} cannot resume {f.name}; downloading it from the start", file=sys.stderr)
            for p in _partial(folder, f.name):
                p.unlink(missing_ok=True)
            have = 0
        finally:
            bar.close()
    raise AssertionError("unreachable")


def _verify(f: SourceFile, path: Path, digest: str, entry, files) -> None:
    size = path.stat().st_size
    if digest == f.sha256 and size == f.size:
        return
    path.unlink(missing_ok=True)  # ours, and useless: a resumed pull must not continue a bad file
    raise IntegrityError(
        f"{f.name} from {f.host} does not match the catalogue: sha256 {digest} ({size} bytes), "
        f"expected {f.sha256} ({f.size} bytes); it was removed and nothing was installed",
        where=f.url, hint=f"pull again; if it fails again the host serves other bytes: {other_ways(entry, files)}")


# ---------------------------------------------------------------------------

def fetch(entry, work_dir: Path, *, out_dir: Path, timeout: float | None, options: dict) -> str:
    """Download and verify an entry's release files into ``work_dir``; return the checkpoint prefix to convert.

    The core calls this for a plain ``zoo pull ID`` (``ConverterSpec.fetch``). Files already
    there and matching their sha256 are not downloaded again; partial ones are continued.
    ``timeout`` is the deadline of the whole fetch in seconds (None: none).
    """
    from filelock import FileLock, Timeout

    from .convert import normalise_dtype

    work_dir = Path(work_dir)
    files = release_files(entry)
    check_free_space(entry, files, work_dir, Path(out_dir), normalise_dtype(options.get("dtype", "float32")))
    work_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(work_dir / ".pull.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise ZooError(f"another `zoo pull {entry.id}` is downloading into this folder", where=str(work_dir),
                       hint="wait for it to finish (or stop it), then pull again") from None
    cancel = threading.Event()
    timer = None if timeout is None else threading.Timer(timeout, cancel.set)
    try:
        if timer is not None:
            timer.daemon = True
            timer.start()
        for f in files:
            path = work_dir / f.name
            if path.is_file():  # complete from an earlier pull, killed before it converted
                if path.stat().st_size == f.size and sha256_file(path) == f.sha256:
                    print(f"{f.name}: already downloaded, sha256 ok", file=sys.stderr)
                    continue
                path.unlink()
            try:
                digest = download_file(f, work_dir, cancel=cancel)
            except Exception as exc:  # every failure becomes one clear ZooError
                raise _translate(exc, entry, f, files, timeout) from exc
            _verify(f, path, digest, entry, files)
            print(f"{f.name}: sha256 ok", file=sys.stderr)
    finally:
        if timer is not None:
            timer.cancel()
        lock.release()
    return str(work_dir / checkpoint_prefix(files))
