"""Fetching one blob with the client's ``http_get`` while hashing the bytes on their way to disk.

``hf_hub_download`` writes into a temporary file of its own, so its bytes can only be hashed by
reading the file back once it is complete: for the last (or only) large file of a pull, that
hashing is pure waiting. :func:`fetch_blob` instead hands ``http_get`` (the client's own
downloader, with its retries and Range resume) a :class:`HashingWriter`, which feeds every chunk
to sha256 (and the git blob sha1) as it writes it. The hash vouches for the file only if the
client wrote it strictly in order: a write anywhere but at the end of what was hashed (after a
seek), a truncation that keeps some bytes, or any other use of the file makes the digest
invalid, and the file is then hashed from disk as before. A truncation to zero (the client
restarting a download whose Range request was answered with the whole file) starts the hash
again, since the file is empty again.

The blob is moved into the cache under the client's lock for it, then ``hf_hub_download`` only
links it into the snapshot. What the hash vouches for is the blob as it was when moved into
place (path, size, mtime): a later change on disk is a different file and is hashed again.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

from ..files import current_umask
from .cache import FileStat, RepoCache
from .env import etag_timeout


@dataclass(frozen=True)
class Hashed:
    """The digests of a blob computed while it was written, and the blob they are for."""

    stat: FileStat
    sha256: str
    git_sha1: str | None


class HashingWriter:
    """A writable binary file that hashes what is written to it, in order (see the module docstring).

    ``have`` bytes already in the file (a partial download being resumed) are read and hashed
    first; ``git_size``, if given, also computes the git blob sha1 of a file of that size. The
    hashing runs in a thread of its own (hashlib releases the GIL), a few chunks behind the writes,
    so that a single download is not slowed by it when a core is free; :meth:`close` stops it.
    """

    #: chunks handed to the hashing thread and not yet hashed, at most (1 MiB ones: env.DOWNLOAD_CHUNK_SIZE)
    BACKLOG = 8

    def __init__(self, f, *, have: int = 0, git_size: int | None = None):
        self._f = f
        self._git_size = git_size
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="zoo-hash")
        self._pending: deque = deque()
        self._reset()
        if have:
            f.seek(0)
            left = have
            while left > 0:
                chunk = f.read(min(left, 1 << 20))
                if not chunk:
                    self._valid = False
                    break
                self._update(chunk)
                left -= len(chunk)
        self._pos = f.seek(0, os.SEEK_END)

    def _reset(self) -> None:
        self._hashes = [hashlib.sha256()]
        if self._git_size is not None:
            self._hashes.append(hashlib.sha1(b"blob %d\0" % self._git_size))
        self._hashed = 0
        self._valid = True

    def _update(self, data) -> None:
        # the pending updates of a reset go to the hash objects they were queued with, which are dropped
        self._pending.append(self._pool.submit(_feed, self._hashes, bytes(data)))
        self._hashed += len(data)
        while len(self._pending) > self.BACKLOG:
            self._pending.popleft().result()

    def close(self) -> None:
        """Stop the hashing thread once it has hashed what it was given (the file is the caller's to close)."""
        self._pool.shutdown(wait=True)

    def write(self, data) -> int:
        if self._pos != self._hashed:  # not appending to what was hashed: the digest no longer describes the file
            self._valid = False
        n = self._f.write(data)
        if self._valid and n == len(data):
            self._update(data)
        else:
            self._valid = False
        self._pos += n
        return n

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        self._pos = self._f.seek(offset, whence)
        return self._pos

    def truncate(self, size: int | None = None) -> int:
        new = self._f.truncate(self._pos if size is None else size)
        if new == 0:
            self._reset()  # an empty file again: hashing starts again with it
        elif new != self._hashed:
            self._valid = False
        return new

    def flush(self) -> None:
        self._f.flush()

    def __getattr__(self, name):
        # anything else the client might do to the file is not tracked: stop vouching, then let it happen
        self._valid = False
        return getattr(self._f, name)

    def digests(self, size: int) -> tuple[str, str | None] | None:
        """(sha256, git blob sha1 or None) of the file if it holds exactly the ``size`` bytes hashed, else None."""
        if not self._valid or self._hashed != size or self._pos != size:
            return None
        while self._pending:
            self._pending.popleft().result()
        sha256, *git = (h.hexdigest() for h in self._hashes)
        return sha256, git[0] if git else None


def _feed(hashes: list, data: bytes) -> None:
    for h in hashes:
        h.update(data)


def fetch_blob(repo: RepoCache, url: str, *, endpoint: str, token, tqdm_class, displayed_filename: str,
               git_sha1: bool = False) -> Hashed | None:
    """Download the blob behind ``url`` (a resolve URL) into the cache, hashing it as it arrives.

    Resumes the largest partial file an earlier, killed pull left for that blob (HTTP Range; the
    client never reuses another process's part), and leaves its own part behind if it fails, for
    the next pull to resume. Returns the digests, or None when it did not fetch the blob (already
    in the cache, a Xet-only file, no size or ETag: ``hf_hub_download`` does the work then) or
    could not vouch for the bytes (the caller hashes the file from disk). ``git_sha1``: also compute
    the git blob sha1 (always done for a 40-hex ETag). Errors are the client's.
    """
    from huggingface_hub import constants, get_hf_file_metadata
    from huggingface_hub.file_download import http_get
    from huggingface_hub.utils import build_hf_headers

    meta = get_hf_file_metadata(url, token=token, timeout=etag_timeout(), endpoint=endpoint)
    etag, size = meta.etag, meta.size
    if not etag or size is None or (meta.xet_file_data is not None and _xet_available(constants)):
        return None  # the client's Xet transfer is faster than plain HTTP: let hf_hub_download use it
    blobs = repo.blobs
    blob = blobs / etag
    if blob.exists():
        return None
    headers = build_hf_headers(token=token)
    # as the client does: a Xet file fetched over plain HTTP goes through the resolve URL, others straight
    # to where the metadata request was redirected
    location = url if meta.xet_file_data is not None else (meta.location or url)
    if urlsplit(location).netloc != urlsplit(url).netloc:  # a CDN's signed URL: the token stays with the Hub
        headers.pop("authorization", None)
    blobs.mkdir(parents=True, exist_ok=True)
    with repo.lock(etag):
        if blob.exists():
            return None
        parts = sorted(blobs.glob(f"{etag}.*incomplete"), key=lambda p: p.stat().st_size, reverse=True)
        mine = blobs / f"{etag}.{uuid.uuid4().hex[:8]}.incomplete"
        have = 0
        if parts and 0 < parts[0].stat().st_size < size:
            have = parts[0].stat().st_size
            os.replace(parts[0], mine)
            parts = parts[1:]
        for p in parts:  # nobody writes them: we hold the blob's lock
            p.unlink(missing_ok=True)
        with open(mine, "r+b" if have else "wb") as f:
            # a 40-hex ETag is a git blob sha1 (a non-LFS file): its digest tells bad bytes from a wrong pin
            writer = HashingWriter(f, have=have, git_size=size if git_sha1 or len(etag) == 40 else None)
            try:
                http_get(location, writer, resume_size=have, expected_size=size, headers=headers,
                         displayed_filename=displayed_filename, tqdm_class=tqdm_class)
                digests = writer.digests(size)
            finally:
                writer.close()
        os.chmod(mine, 0o666 & ~current_umask())
        os.replace(mine, blob)
        st = os.stat(blob)
    if digests is None:
        return None
    return Hashed((os.path.realpath(blob), st.st_size, st.st_mtime_ns), *digests)


def _xet_available(constants) -> bool:
    """Whether the client would download a Xet file with ``hf_xet`` (as its own ``is_xet_available`` decides)."""
    import importlib.util

    return not constants.HF_HUB_DISABLE_XET and importlib.util.find_spec("hf_xet") is not None
