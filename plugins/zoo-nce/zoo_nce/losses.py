"""Noise-contrastive losses over a huge label set, reusable by any model that scores classes.

Su Jianlin, "“噪声对比估计”杂谈:曲径通幽之妙" (kexue.fm/archives/5617). A model scores
a class x (a word, a tag) with an unnormalised log-density G(x), so that

    p(x) = exp G(x) / Z,        Z = Σ_x exp G(x)                                    (1)

and Z is what we cannot afford over millions of classes. Each function below
takes *scores*, so it works for any scorer: ``G(x) = <f(q), e_x> + b_x`` for a
question→tag model, ``<u_i, v_j>`` for word2vec.

Shapes: ``pos`` (B,) is the score of the true class of each of B examples;
``noise`` (B, k) the scores of k classes drawn from a noise distribution q,
or (k,) when the k noise classes are shared by the whole batch (then each
example is scored against the same k classes). ``*_log_q`` are log q(x) of
those classes, shaped like the scores (or broadcastable to them).

- :func:`nce_loss`: the NCE classifier. The probability that x came from the
  data rather than from the k noise draws is

      P(1 | x) = σ(Δ(x)),    Δ(x) = G(x) − γ − log(k q(x))                          (2)

  and the loss per example is

      ℓ = −log σ(Δ(x⁺)) − Σ_{j=1..k} log σ(−Δ(x_j)),    x_j ~ q.                    (3)

  At its optimum Δ equals log p̃(x)/(k q(x)), i.e. G(x) − γ = log p̃(x): the
  model is normalised by itself and γ plays log Z. γ is a learned scalar
  (pass a parameter) or fixed (``log_z=0.0``: "self-normalised" NCE, the
  scores themselves are pushed to be log-probabilities). Su's form with one
  noise sample per datum is k = 1.
- :func:`negative_sampling_loss`: word2vec's SGNS, (3) with the offset
  γ + log(k q(x)) dropped (Δ = G). Its optimum is G = log p̃(x)/(k q(x)), the
  shifted PMI for word pairs; it is not a density estimator, but it is cheap.
- :func:`sampled_softmax_loss`: a softmax over the true class and the k noise
  classes with each logit corrected by −log q(x) (Jean et al. 2015); an
  estimate of the full softmax cross-entropy, biased for small k.

Evaluation should use the exact full softmax over all classes (``log_softmax``
of the full score matrix); these losses are for training only.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = ["negative_sampling_loss", "nce_logits", "nce_loss", "sampled_softmax_loss"]


def _reduce(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    if reduction == "none":
        return loss
    raise ValueError(f"reduction must be 'mean', 'sum' or 'none', not {reduction!r}")


def _broadcast_noise(pos: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """(k,) shared noise scores become (B, k); (B, k) stays."""
    if noise.dim() == 1:
        return noise.unsqueeze(0).expand(pos.shape[0], -1)
    return noise


def nce_logits(scores: torch.Tensor, log_q: torch.Tensor | float, num_noise: int,
               log_z: torch.Tensor | float = 0.0) -> torch.Tensor:
    """Δ(x) = G(x) − γ − log(k q(x)), equation (2): the logit of "x came from the data"."""
    return scores - log_z - (math.log(num_noise) + log_q)


def nce_loss(pos: torch.Tensor, noise: torch.Tensor, pos_log_q: torch.Tensor | float,
             noise_log_q: torch.Tensor | float, *, log_z: torch.Tensor | float = 0.0,
             num_noise: int | None = None, reduction: str = "mean") -> torch.Tensor:
    """NCE, equation (3): −log σ(Δ(x⁺)) − Σ_j log σ(−Δ(x_j)) with Δ = G − γ − log(k q).

    ``pos`` (B,) and ``noise`` (B, k) or shared (k,) are the model's scores
    G; ``pos_log_q`` / ``noise_log_q`` are log q of those classes under the
    noise distribution they were drawn from. ``log_z`` is γ: a learned scalar
    parameter (it converges to log Z of the scores) or a fixed number (0:
    self-normalised). ``num_noise`` is k (default: the number of noise
    columns). Returns the mean over examples (``reduction``: mean, sum, none).
    """
    noise = _broadcast_noise(pos, noise)
    k = noise.shape[-1] if num_noise is None else int(num_noise)
    pos_logit = nce_logits(pos, pos_log_q, k, log_z)  # (B,)
    noise_logit = nce_logits(noise, noise_log_q, k, log_z)  # (B, k)
    loss = -F.logsigmoid(pos_logit) - F.logsigmoid(-noise_logit).sum(-1)  # (B,)
    return _reduce(loss, reduction)


def negative_sampling_loss(pos: torch.Tensor, noise: torch.Tensor, *, reduction: str = "mean") -> torch.Tensor:
    """Negative sampling (word2vec's SGNS): −log σ(G(x⁺)) − Σ_j log σ(−G(x_j)).

    NCE with γ = 0 and without the −log(k q) offset; the noise classes must
    still be drawn from q (unigram^0.75 in word2vec), q just does not appear
    in the loss. ``pos`` (B,), ``noise`` (B, k) or shared (k,).
    """
    noise = _broadcast_noise(pos, noise)
    loss = -F.logsigmoid(pos) - F.logsigmoid(-noise).sum(-1)  # (B,)
    return _reduce(loss, reduction)


def sampled_softmax_loss(pos: torch.Tensor, noise: torch.Tensor, pos_log_q: torch.Tensor | float,
                         noise_log_q: torch.Tensor | float, *, accidental_hits: torch.Tensor | None = None,
                         reduction: str = "mean") -> torch.Tensor:
    """Sampled softmax with the log-q correction: cross-entropy of the true class among [x⁺, x_1..x_k].

        ℓ = −log softmax([G(x⁺) − log q(x⁺), G(x_1) − log q(x_1), ...])_0

    ``accidental_hits`` (B, k) bool marks noise draws that equal the example's
    true class; they are removed from the softmax (logit −inf). ``pos`` (B,),
    ``noise`` (B, k) or shared (k,).
    """
    noise = _broadcast_noise(pos, noise)
    pos_logit = (pos - pos_log_q).unsqueeze(-1)  # (B, 1)
    noise_logit = noise - noise_log_q  # (B, k)
    if accidental_hits is not None:
        noise_logit = noise_logit.masked_fill(accidental_hits, float("-inf"))
    logits = torch.cat([pos_logit, noise_logit], dim=-1)  # (B, 1 + k)
    loss = torch.logsumexp(logits, dim=-1) - logits[:, 0]  # (B,)
    return _reduce(loss, reduction)
