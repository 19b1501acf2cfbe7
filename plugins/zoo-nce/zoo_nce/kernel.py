"""word2vec SGNS as gensim's per-pair loop, compiled by numba; ``None`` where numba cannot run.

gensim's ``fast_sentence_sg_neg`` applies one SGD update per (context, centre)
pair, one pair after the other: the rows stay in cache and every update sees
the previous one, so no batching tricks (shared noise, damping) are needed.
This module is that loop over the blocks of one Trainer step:

- subsampling (keep word w with probability ``keep[w]``), then for each kept
  centre j a reduced window window − b, b uniform in [0, window), within its sentence;
- per pair, ``negative`` noise words drawn from count^0.75 (Walker's alias
  table of ``zoo_nce.sampler``), a draw equal to the centre skipped as gensim does;
- g = (label − σ(⟨u_i, v_t⟩)) · alpha;  e += g v_t;  v_t += g u_i;  then u_i += e.

Randomness comes from a xorshift generator seeded per block by the caller
(from the run's seed, the step number and the block's place in the batch), so
one thread gives the same numbers on every run and a resumed run continues
exactly. With several threads the blocks of a step are spread over them and
update the shared tables without locks ("Hogwild", as gensim's workers do):
which thread's write to a shared row lands first varies, so results are not
bit-identical from run to run then.

numba compiles with LLVM shipped in its wheel (no compiler is needed) and
caches the machine code next to this file or in numba's cache folder. When
numba is missing or fails, ``load()`` returns None and the step uses its
vectorised torch update instead.
"""

from __future__ import annotations

import os
import threading

_lock = threading.Lock()
_run_lock = threading.Lock()
_kernel = None
_failed: str | None = None


def _build():
    import numba

    if "NUMBA_THREADING_LAYER" not in os.environ:
        # numba would take OpenMP where it finds it; on a 2-core box its threads gave 2 threads no speed-up
        # over 1 (16-block steps, measured), where the workqueue layer scales. Set before the first launch.
        numba.config.THREADING_LAYER = "workqueue"
    from . import _sgns_numba

    _sgns_numba.warm_up()

    def run(*args):
        with _run_lock:  # the workqueue layer does not take parallel launches from two threads at once
            return _sgns_numba.run(*args)

    return numba, run


def load():
    """The compiled step function ``sgns_blocks``, or None (with ``reason()``) where numba cannot run.

    ``ZOO_NCE_KERNEL=torch`` turns it off (the vectorised torch update is used instead).
    """
    global _kernel, _failed
    with _lock:
        if _kernel is None and _failed is None:
            if os.environ.get("ZOO_NCE_KERNEL", "").lower() == "torch":
                _failed = "ZOO_NCE_KERNEL=torch"
            else:
                try:
                    _kernel = _build()
                except Exception as exc:  # noqa: BLE001 (ImportError, or numba unable to compile here: both fall back)
                    _failed = f"{type(exc).__name__}: {exc}".splitlines()[0][:200]
        return _kernel


def reason() -> str | None:
    """Why ``load()`` returned None (None when the kernel is loaded or was never tried)."""
    return _failed


def set_threads(n: int) -> None:
    """Use ``n`` numba threads (capped at what numba started with)."""
    numba, _ = _kernel
    numba.set_num_threads(max(1, min(int(n), numba.config.NUMBA_NUM_THREADS)))
