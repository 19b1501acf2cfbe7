"""Fault injection for the local hub: what a flaky Hub, mirror or network does to a download.

Faults are keyed by ``(repo_type, repo_id, path)`` and apply to any revision:

- ``corrupt``: serve other bytes of the same length (every byte flipped) under unchanged headers,
  so only a client that hashes what it got can tell;
- ``drop_connection``: send the headers and the first bytes of the body, then close the socket;
- ``stall``: send the first bytes, then hang until released (to catch a client mid-download);
- ``fail``: answer with a bare HTTP status (no ``X-Error-Code``), like a proxy or a 5xx;
- ``ignore_range``: answer a Range request with the whole file (200), as some CDNs and proxies do.

``take_failure`` / ``take_stream_faults`` are what the request handler calls: they consume one use
of each fault, under the lock, so two concurrent requests never both take a fault meant for one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

#: ``(repo_type, repo_id, path)``
Key = tuple[str, str, str]

_CORRUPT_TABLE = bytes(b ^ 0xFF for b in range(256))  # every byte changes, the length does not


def corrupt_bytes(data: bytes) -> bytes:
    """``data`` with every byte changed and the length kept."""
    return data.translate(_CORRUPT_TABLE)


@dataclass
class Stall:
    """A response that hangs after ``after_bytes`` until ``event`` is set."""

    after_bytes: int
    times: int | None
    event: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True)
class StreamFaults:
    """What to do to one response body: corrupt it, cut it after ``drop_after`` bytes, stall it."""

    corrupt: bool = False
    drop_after: int | None = None
    stall: Stall | None = None


class Faults:
    """The faults injected so far; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._corrupt: dict[Key, int | None] = {}
        self._drops: dict[Key, list[int]] = {}  # key -> [after_bytes, times_left]
        self._stalls: dict[Key, Stall] = {}
        self._all_stalls: list[Stall] = []
        self._failures: dict[Key, list] = {}  # key -> [status, times_left, methods]
        self._ignore_range: dict[Key, int] = {}  # key -> times left

    # ------------------------------------------------------------------ injecting (tests)

    def corrupt(self, key: Key, times: int | None = None) -> None:
        """Corrupt the next ``times`` bodies of ``key`` (all of them when None), until ``heal``."""
        with self._lock:
            self._corrupt[key] = times

    def heal(self, key: Key) -> None:
        with self._lock:
            self._corrupt.pop(key, None)

    def drop_connection(self, key: Key, after_bytes: int, times: int = 1) -> None:
        with self._lock:
            self._drops[key] = [after_bytes, times]

    def stall(self, key: Key, after_bytes: int, times: int | None = 1) -> threading.Event:
        """Stall the next ``times`` bodies of ``key`` after ``after_bytes``; set the returned event to go on."""
        st = Stall(after_bytes=after_bytes, times=times)
        with self._lock:
            self._stalls[key] = st
            self._all_stalls.append(st)
        return st.event

    def release_stalls(self) -> None:
        """Let every stalled response go on (and forget the stalls not yet taken)."""
        with self._lock:
            stalls, self._all_stalls = self._all_stalls, []
            self._stalls.clear()
        for st in stalls:
            st.event.set()

    def fail(self, key: Key, status: int = 500, times: int = 1,
             methods: Iterable[str] = ("HEAD", "GET")) -> None:
        with self._lock:
            self._failures[key] = [status, times, tuple(methods)]

    def ignore_range(self, key: Key, times: int = 1) -> None:
        with self._lock:
            self._ignore_range[key] = times

    def clear(self) -> None:
        """Remove every fault (and release stalls)."""
        with self._lock:
            self._ignore_range.clear()
            self._corrupt.clear()
            self._drops.clear()
            self._failures.clear()
        self.release_stalls()

    # ------------------------------------------------------------------ consuming (the request handler)

    def take_failure(self, key: Key, method: str) -> int | None:
        """The status to answer this request with instead of the file, if a failure is injected for it."""
        with self._lock:
            f = self._failures.get(key)
            if f is None or method not in f[2]:
                return None
            f[1] -= 1
            if f[1] <= 0:
                del self._failures[key]
            return f[0]

    def take_ignore_range(self, key: Key) -> bool:
        """Whether to answer this Range request with the whole file."""
        with self._lock:
            if key not in self._ignore_range:
                return False
            self._ignore_range[key] -= 1
            if self._ignore_range[key] <= 0:
                del self._ignore_range[key]
            return True

    def take_stream_faults(self, key: Key) -> StreamFaults:
        """The faults for the body about to be sent for ``key``, each use counted."""
        with self._lock:
            corrupt = key in self._corrupt
            if corrupt and self._corrupt[key] is not None:
                self._corrupt[key] -= 1
                if self._corrupt[key] <= 0:
                    del self._corrupt[key]
            drop = None
            if key in self._drops:
                drop = self._drops[key][0]
                self._drops[key][1] -= 1
                if self._drops[key][1] <= 0:
                    del self._drops[key]
            stall = self._stalls.get(key)
            if stall is not None and stall.times is not None:
                stall.times -= 1
                if stall.times <= 0:
                    del self._stalls[key]
            return StreamFaults(corrupt=corrupt, drop_after=drop, stall=stall)
