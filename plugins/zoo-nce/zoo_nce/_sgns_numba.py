"""The numba code of ``zoo_nce.kernel`` (imported only through ``kernel.load()``: it needs numba)."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

MAX_EXP = 6.0  # gensim's: a pair whose score is beyond ±6 is saturated and skipped
TABLE = 1000
# σ at TABLE points of [−6, 6), gensim's EXP_TABLE
SIGMOID = (1.0 / (1.0 + np.exp(-((np.arange(TABLE) / TABLE * 2 - 1) * MAX_EXP)))).astype(np.float32)
LOG_SIGMOID = np.log(SIGMOID).astype(np.float32)

_U64 = np.uint64


@njit(inline="always")
def _next(state):
    state ^= state << _U64(13)
    state ^= state >> _U64(7)
    state ^= state << _U64(17)
    return state


@njit(inline="always")
def _below(state, n):
    """A number in [0, n) from the top 32 bits of ``state`` (multiply-shift: no division)."""
    return np.int64(((state >> _U64(32)) * _U64(n)) >> _U64(32))


@njit(nogil=True, fastmath=True, cache=True)
def sgns_block(u, v, ids, sent, keep, prob, alias, window, negative, alpha, noise_step, seed, sigmoid, log_sigmoid,
               kept, kept_sent, e):
    """Train one block (ids/sent (L,), −1 pads) in place; returns (pairs, loss summed over every 16th pair).

    A noise word's output vector moves ``noise_step`` times gensim's step (1: gensim's loop exactly).
    """
    V = prob.shape[0]
    d = u.shape[1]
    alpha = np.float32(alpha)
    noise_step = np.float32(noise_step)
    scale = np.float32(TABLE / MAX_EXP / 2)
    state = _U64(seed) * _U64(0x9E3779B97F4A7C15) + _U64(0x632BE59BD9B4E019)
    if state == _U64(0):
        state = _U64(1)
    for _ in range(4):
        state = _next(state)
    n = 0
    for t in range(ids.shape[0]):  # subsampling, before any windowing (as gensim)
        w = ids[t]
        if w < 0:
            continue
        state = _next(state)
        if np.float32(state >> _U64(40)) * np.float32(1.0 / 16777216.0) < keep[w]:
            kept[n] = w
            kept_sent[n] = sent[t]
            n += 1
    pairs = 0
    loss = 0.0
    for j in range(n):
        centre = kept[j]
        state = _next(state)
        reach = window - _below(state, window)
        for i in range(max(0, j - reach), min(n, j + reach + 1)):
            if i == j or kept_sent[i] != kept_sent[j]:
                continue
            uc = u[kept[i]]  # u_context, a row view
            e[:] = 0.0
            report = (pairs & 15) == 0
            for s in range(negative + 1):
                if s == 0:
                    target = centre
                    label = np.float32(1.0)
                else:
                    state = _next(state)
                    slot = _below(state, V)
                    target = slot if np.float32(state & _U64(0xFFFFFF)) * np.float32(1.0 / 16777216.0) \
                        < prob[slot] else alias[slot]
                    if target == centre:
                        continue
                    label = np.float32(0.0)
                vt = v[target]
                f = np.float32(0.0)
                for k in range(d):
                    f += uc[k] * vt[k]
                if f <= -MAX_EXP or f >= MAX_EXP:
                    continue
                slot_f = int((f + MAX_EXP) * scale)
                if report:
                    loss -= log_sigmoid[slot_f] if s == 0 else log_sigmoid[TABLE - 1 - slot_f]
                g = (label - sigmoid[slot_f]) * alpha
                for k in range(d):
                    e[k] += g * vt[k]
                if s > 0:
                    g *= noise_step
                for k in range(d):
                    vt[k] += g * uc[k]
            for k in range(d):
                uc[k] += e[k]
            pairs += 1
    return pairs, loss


@njit(nogil=True, parallel=True, cache=True)
def sgns_blocks(u, v, ids, sent, keep, prob, alias, window, negative, alphas, noise_step, seeds, sigmoid,
                log_sigmoid):
    """Train the blocks of a step, ids/sent (B, L); blocks are spread over numba's threads (Hogwild)."""
    B, L = ids.shape
    pairs = np.zeros(B, dtype=np.int64)
    losses = np.zeros(B, dtype=np.float64)
    for b in prange(B):
        kept = np.empty(L, dtype=np.int64)
        kept_sent = np.empty(L, dtype=np.int64)
        e = np.empty(u.shape[1], dtype=np.float32)
        p, s = sgns_block(u, v, ids[b], sent[b], keep, prob, alias, window, negative, alphas[b], noise_step,
                          seeds[b], sigmoid, log_sigmoid, kept, kept_sent, e)
        pairs[b] = p
        losses[b] = s
    return pairs, losses


def run(u, v, ids, sent, keep, prob, alias, window, negative, alphas, noise_step, seeds):
    """``sgns_blocks`` with gensim's σ tables; arrays as numpy (u, v float32 (V, d) C-contiguous, updated in place).

    ids, sent (B, L) int64; keep (V,) float32; prob (V,) float32 and alias (V,) int64 (the alias table of
    count^0.75); alphas (B,) float64; seeds (B,) int64. Returns pairs (B,) and summed losses (B,).
    """
    return sgns_blocks(u, v, ids, sent, keep, prob, alias, window, negative, alphas, noise_step, seeds, SIGMOID,
                       LOG_SIGMOID)


def warm_up() -> None:
    """Compile (or read numba's cache) now, so no training step pays for it."""
    u = np.zeros((2, 4), dtype=np.float32)
    ids = np.array([[0, 1, -1]], dtype=np.int64)
    run(u, u.copy(), ids, np.zeros_like(ids), np.ones(2, np.float32), np.ones(2, np.float32), np.zeros(2, np.int64),
        2, 1, np.array([0.01]), 1.0, np.array([1], dtype=np.int64))
