"""What the local hub received and sent: the request log, and body bytes sent per file.

Tests read the log to assert what a client did (``hub.requests``: no request at all on a
cached pull), and wait on the byte counters to act while a client is mid-download.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from .faults import Key


@dataclass
class RequestRecord:
    """One request the hub received (``hub.request_log``)."""

    method: str
    path: str  # URL path, percent-decoded, without the query string
    query: dict[str, str]
    headers: dict[str, str]
    status: int | None = None


class Traffic:
    """The request log and the sent-bytes counters; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sent_cond = threading.Condition(self._lock)
        self._log: list[RequestRecord] = []
        self._sent: dict[Key, int] = {}

    def record(self, request: RequestRecord) -> None:
        """Append a request to the log (its ``status`` is filled in when the answer is sent)."""
        with self._lock:
            self._log.append(request)

    def requests(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request so far."""
        with self._lock:
            return [(r.method, r.path) for r in self._log]

    def records(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._log)

    def clear(self) -> None:
        with self._lock:
            self._log.clear()

    def count_sent(self, key: Key, n: int) -> None:
        """Count ``n`` more body bytes sent for ``key`` (and wake ``wait_until_sent``)."""
        with self._sent_cond:
            self._sent[key] = self._sent.get(key, 0) + n
            self._sent_cond.notify_all()

    def sent(self, key: Key) -> int:
        with self._lock:
            return self._sent.get(key, 0)

    def wait_until_sent(self, key: Key, n: int, timeout: float = 10.0) -> bool:
        """Block until at least ``n`` body bytes of ``key`` have been sent; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._sent_cond:
            while self._sent.get(key, 0) < n:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._sent_cond.wait(left)
            return True
