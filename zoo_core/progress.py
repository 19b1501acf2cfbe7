"""A progress display that suits where stderr goes.

In a terminal it is a tqdm bar redrawn in place. Anywhere else (a CI log, a
file, a pipe) carriage-return redraws would land as hundreds of lines, so it
prints one plain line now and then instead: when another ``every_fraction`` of
the run is done or ``every_seconds`` have passed since the last line,
whichever comes first, plus one at the end.

The figures after the count are the current ones: ``update(postfix=...)``
takes a function that gives them, called only when they are shown (each
plain line; the bar at most every ``postfix_seconds``), so a caller whose
figures cost something to read (a loss on the GPU) pays only then.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO


def _clock_text(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """``update(n)`` after each unit of work, ``set_postfix(dict)`` for figures, ``close()`` at the end.

    ``stream`` defaults to stderr; ``tty`` (default: ``stream.isatty()``) picks
    the redrawn bar or the plain lines.
    """

    def __init__(self, total: int, *, initial: int = 0, desc: str = "", unit: str = "step",
                 stream: TextIO | None = None, tty: bool | None = None, every_fraction: float = 0.1,
                 every_seconds: float = 30.0, postfix_seconds: float = 0.5,
                 clock: Callable[[], float] = time.monotonic):
        self.stream = stream if stream is not None else sys.stderr
        if tty is None:
            isatty = getattr(self.stream, "isatty", None)
            tty = bool(isatty and isatty())
        self.total, self.n, self.desc, self.unit = int(total), int(initial), desc, unit
        self.postfix: dict = {}
        self._clock = clock
        self._source: Callable[[], dict] | None = None  # the latest update's figures, not yet read
        self._postfix_seconds, self._postfix_t = float(postfix_seconds), float("-inf")
        self._bar = None
        self._closed = False
        if tty:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=self.total, initial=self.n, desc=desc, unit=unit, dynamic_ncols=True,
                             file=self.stream)
            return
        self._every_n = max(1, int(self.total * every_fraction)) if self.total else 1
        self._every_s = float(every_seconds)
        self._start_n, self._start_t = self.n, clock()
        self._last_n, self._last_t = self.n, self._start_t

    def update(self, n: int = 1, postfix: Callable[[], dict] | None = None) -> None:
        """Record ``n`` more units done; ``postfix`` gives the figures as of now, read when they are shown."""
        self.n += n
        if postfix is not None:
            self._source = postfix
        now = self._clock()
        if self._bar is not None:
            if self._source is not None and now - self._postfix_t >= self._postfix_seconds:
                self._read_postfix(now)
            self._bar.update(n)
            return
        if self.n - self._last_n >= self._every_n or now - self._last_t >= self._every_s:
            self._read_postfix(now)
            self._line(now)

    def _read_postfix(self, now: float) -> None:
        if self._source is not None:
            self.set_postfix(self._source())
            self._source, self._postfix_t = None, now

    def set_postfix(self, values: dict) -> None:
        """Figures shown after the count (the latest logged losses, say)."""
        self.postfix = {k: (f"{v:.4g}" if isinstance(v, float) else str(v)) for k, v in values.items()}
        if self._bar is not None:
            self._bar.set_postfix(self.postfix, refresh=False)

    def write(self, message: str) -> None:
        """Print a message without breaking the bar."""
        if self._bar is not None:
            self._bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        """Finish: close the bar, or print the final line if the last one is stale."""
        if self._closed:
            return
        self._closed = True
        self._read_postfix(self._clock())
        if self._bar is not None:
            self._bar.close()
        elif self.n != self._last_n:
            self._line(self._clock())

    def _line(self, now: float) -> None:
        done = self.n - self._start_n
        elapsed = now - self._start_t
        rate = done / elapsed if elapsed > 0 else 0.0
        parts = [f"{self.desc}: " if self.desc else "", f"{self.n}/{self.total} {self.unit}s"]
        if self.total:
            parts.append(f" ({100 * self.n / self.total:.0f}%)")
        parts.append(f", {_clock_text(elapsed)} elapsed")
        if rate > 0:
            parts.append(f", {rate:.3g} {self.unit}/s")
            if self.total > self.n:
                parts.append(f", {_clock_text((self.total - self.n) / rate)} left")
        if self.postfix:
            parts.append(", " + " ".join(f"{k}={v}" for k, v in self.postfix.items()))
        print("".join(parts), file=self.stream, flush=True)
        self._last_n, self._last_t = self.n, now
