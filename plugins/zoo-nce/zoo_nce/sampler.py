"""Noise samplers for NCE and negative sampling: q(x) ∝ count(x)^0.75 over millions of classes.

:class:`AliasSampler` draws from any fixed discrete distribution in O(1) per
draw with Walker's alias method: the n classes become n equal-mass slots; slot
i keeps its own class with probability ``prob[i]`` and otherwise gives its
class ``alias[i]``. A draw is one uniform slot, one uniform number and one
comparison, whatever n is; building the table is O(n) memory and a few
vectorised passes.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["AliasSampler", "unigram_sampler"]


def _alias_table(p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Walker/Vose alias table of the distribution ``p`` (float64, sums to 1), built in vectorised rounds.

    Each round lays the deficits (1 − prob) of the "small" slots end to end and
    the surpluses (prob − 1) of the "large" ones likewise; a small slot takes
    as alias the large whose surplus interval holds the start of its deficit.
    A large that gives more than its surplus drops below 1 and is a small slot
    of the next round (its mass stays ≥ 0, since each deficit is ≤ 1). The
    rounds end when no slot is out of balance; a handful suffice for Zipf laws.
    """
    n = p.shape[0]
    prob = p * n
    alias = np.arange(n, dtype=np.int64)
    small = np.flatnonzero(prob < 1.0)
    large = np.flatnonzero(prob >= 1.0)
    for _ in range(10 * n + 10):
        if small.size == 0 or large.size == 0:
            break
        deficit_end = np.cumsum(1.0 - prob[small])
        deficit_start = deficit_end - (1.0 - prob[small])
        surplus_end = np.cumsum(prob[large] - 1.0)
        # the large slot whose surplus interval [end_{j-1}, end_j) holds each small slot's start
        owner = np.searchsorted(surplus_end, deficit_start, side="right")
        served = owner < large.size  # rounding can leave the last deficits past the surplus total
        s, j = small[served], large[owner[served]]
        alias[s] = j
        np.subtract.at(prob, j, 1.0 - prob[s])
        touched = np.unique(j)
        rest = large[~np.isin(large, touched)]
        dropped = touched[prob[touched] < 1.0]
        kept = touched[prob[touched] >= 1.0]
        small = np.concatenate([small[~served], dropped])
        large = np.concatenate([rest, kept])
        if not served.any():
            break
    # what is left is rounding error: those slots keep their own class
    prob[small] = 1.0
    prob[large] = 1.0
    return np.clip(prob, 0.0, 1.0), alias


class AliasSampler:
    """Draws classes 0..n−1 with probabilities ∝ ``weights`` in O(1) per draw (Walker's alias method).

    ``log_q`` (n,) holds log q(x) for the NCE and sampled-softmax corrections.
    Draws use a ``torch.Generator`` when given, so a seeded run is reproducible.
    """

    def __init__(self, weights, device: str | torch.device = "cpu"):
        w = np.asarray(weights.cpu() if torch.is_tensor(weights) else weights, dtype=np.float64)
        if w.ndim != 1 or w.size == 0 or not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("weights must be a non-empty 1-d array of finite non-negative numbers, not all 0")
        p = w / w.sum()
        prob, alias = _alias_table(p)
        self.num_classes = int(w.size)
        self.prob = torch.from_numpy(prob).to(device=device, dtype=torch.float32)  # (n,)
        self.alias = torch.from_numpy(alias).to(device)  # (n,) int64
        with np.errstate(divide="ignore"):
            self.log_q = torch.from_numpy(np.log(p)).to(device=device, dtype=torch.float32)  # (n,)

    def to(self, device) -> AliasSampler:
        """Move the table to ``device`` (draws then happen there)."""
        for name in ("prob", "alias", "log_q"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def sample(self, *shape: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Classes of the given shape (int64): ``sample(B, k)`` per example, ``sample(k)`` shared by a batch."""
        device = self.prob.device
        slot = torch.randint(self.num_classes, shape, generator=generator, device=device)
        keep = torch.rand(shape, generator=generator, device=device) < self.prob[slot]
        return torch.where(keep, slot, self.alias[slot])

    def probabilities(self) -> torch.Tensor:
        """The distribution the table actually draws from (float64), for checking the table."""
        n = self.num_classes
        prob = self.prob.double().cpu()
        mass = prob.clone()
        mass.index_add_(0, self.alias.cpu(), 1.0 - prob)
        return mass / n


def unigram_sampler(counts, power: float = 0.75, device: str | torch.device = "cpu") -> AliasSampler:
    """word2vec's noise distribution: q(x) ∝ count(x)^power (``ns_exponent``, 0.75 in word2vec and gensim)."""
    c = np.asarray(counts.cpu() if torch.is_tensor(counts) else counts, dtype=np.float64)
    return AliasSampler(c ** power, device=device)
