"""DGCNN for reading-comprehension QA (Su Jianlin, kexue.fm/archives/5409 and /6906), one file.

The 2019 release (``bojone/dgcnn_for_reading_comprehension`` @ e474b41, ``dgcnn/dgcnn.py``)::

    x_q = Dropout(Embedding(c_q) + W_w v_q)             c: character ids, v: the word vector of the
    x_p = Dropout(Embedding(c_p) + W_w v_p)                char's jieba word (zero when OOV)
    q   = DGCNN_{1,2,1}(x_q)                            dilation rates of the gated blocks
    q_v = AttentionPooling(q)                           (B, 128)
    p   = Dense([x_p; q_v])                             (B, Lp, 128)
    p   = [DGCNN_{1,2,4,8,16,1}(p); q_v]                (B, Lp, 256)
    p_v = AttentionPooling(p)                           (B, 256)
    g   = sigmoid(w_g . p_v + b_g)                      is the answer in this passage at all?
    P_start = sigmoid(w_s . p_i + b_s) * g,  P_end = sigmoid(w_e . p_i + b_e) * g

A gated (dilated) block, with mask m and the convolution's two halves h and s::

    Y = (X * (1 - sigma) + h * sigma) * m,   [h; s] = Conv1D_{k=3, rate r}(X * m),   sigma = sigmoid(dropout(s))

(a 1x1 convolution maps X to the block's width when the widths differ). Every sequence operation
masks its padding, so padding never changes a result (tests/test_model.py checks it).

The 2018 competition model differs (``variant="2018"`` sets these): one question block (rate 1),
a 128-d sinusoidal position code and 8 hand-made question-passage features concatenated to the
passage input, a window-1 block, then rates 1, 2, 4 (window 3). The features are computed by
:func:`zoo_dgcnn.text.manual_features`.

Loss: binary focal loss (alpha 0.25, gamma 2, probabilities clipped to [1e-8, 1 - 1e-8]) of start and
end, summed over the unmasked passage positions of the batch, divided by their number, times 100.
Decoding and the vote across passages: :mod:`zoo_dgcnn.answering` (behind :meth:`DGCNN.answer`);
characters and words: :mod:`zoo_dgcnn.text`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from zoo_core import ZooError, ZooModel

from . import answering
from .text import PAD


@dataclass
class DGCNNConfig:
    """The 2019 release's sizes; ``vocab`` and ``words`` are filled from the training data."""

    vocab: list[str] = field(default_factory=list)  # characters; id = index + 2
    words: list[str] = field(default_factory=list)  # the word-vector vocabulary; id = index + 1, 0 = OOV
    word_dim: int = 0  # dimension of the word vectors (0: characters only)
    dim: int = 128
    kernel: int = 3
    question_rates: list[int] = field(default_factory=lambda: [1, 2, 1])
    passage_rates: list[int] = field(default_factory=lambda: [1, 2, 4, 8, 16, 1])
    dropout: float = 0.1
    position_dim: int = 0  # 2018: 128-d sinusoidal positions concatenated to the passage input
    features: int = 0  # 2018: 8 hand-made question-passage features per passage character
    first_window: int = 0  # 2018: a window-1 block before the dilated ones (0: none)
    max_answer_len: int = 12
    threshold: float = 0.1
    hmm: bool = False  # jieba's HMM for unknown words (the release turns it off)

    @classmethod
    def variant(cls, name: str, **values) -> DGCNNConfig:
        """The "2019" release (default) or the "2018" competition model's differences."""
        if name == "2018":
            values = {"question_rates": [1], "passage_rates": [1, 2, 4], "position_dim": 128, "features": 8,
                      "first_window": 1, **values}
        elif name != "2019":
            raise ZooError(f"unknown DGCNN variant {name!r}", hint="2018 or 2019")
        return cls(**values)


class GatedConv1d(nn.Module):
    """Y = (X (1 - sigma) + h sigma) * m with [h; s] = Conv1D(X * m), sigma = sigmoid(dropout(s))."""

    def __init__(self, d_in: int, d_out: int, kernel: int = 3, rate: int = 1, dropout: float = 0.1):
        super().__init__()
        self.conv = nn.Conv1d(d_in, 2 * d_out, kernel, dilation=rate, padding=rate * (kernel - 1) // 2)
        self.skip = nn.Conv1d(d_in, d_out, 1) if d_in != d_out else None  # the 1x1 conv when widths differ
        self.dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x: (B, L, d_in), mask: (B, L, 1) float
        x = x * mask  # padding must be zeros, exactly as beyond the sequence's ends
        h, s = self.conv(x.transpose(1, 2)).transpose(1, 2).chunk(2, dim=-1)  # (B, L, d_out) each
        sigma = torch.sigmoid(F.dropout(s, self.dropout, self.training))
        if self.skip is not None:
            x = self.skip(x.transpose(1, 2)).transpose(1, 2)
        return (x * (1 - sigma) + h * sigma) * mask


class AttentionPooling(nn.Module):
    """lambda = softmax_i(w . tanh(W x_i)) over unmasked i (masked scores -1e12); returns sum_i lambda_i x_i."""

    def __init__(self, d: int):
        super().__init__()
        self.key = nn.Linear(d, d, bias=False)
        self.score = nn.Linear(d, 1, bias=False)  # a bias would cancel in the softmax

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # x: (B, L, d), mask: (B, L, 1) -> (B, d)
        a = self.score(torch.tanh(self.key(x)))  # (B, L, 1)
        a = a - (1 - mask) * 1e12
        return (torch.softmax(a, dim=1) * x).sum(1)


def sinusoid(length: int, dim: int, device=None) -> torch.Tensor:
    """The (length, dim) sinusoidal position code (sin on even, cos on odd dimensions)."""
    pos = torch.arange(length, dtype=torch.float32, device=device)[:, None]
    div = torch.exp(torch.arange(0, dim, 2, dtype=torch.float32, device=device) * (-math.log(10000.0) / dim))
    out = torch.zeros(length, dim, device=device)
    out[:, 0::2] = torch.sin(pos * div)
    out[:, 1::2] = torch.cos(pos * div)[:, : dim // 2]
    return out


def focal_loss(p: torch.Tensor, y: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0) -> torch.Tensor:
    """Elementwise binary focal loss of probabilities ``p`` against 0/1 labels ``y`` (clip 1e-8).

    In float32, 1 - 1e-8 rounds to 1, where log(1 - p) is -inf (and the release's loss NaN once both
    sigmoids saturate); the upper clip is therefore the largest float below 1 when that is lower.
    """
    p = p.clamp(1e-8, 1 - max(1e-8, torch.finfo(p.dtype).eps / 2))
    return (-alpha * y * (1 - p).pow(gamma) * torch.log(p)
            - (1 - alpha) * (1 - y) * p.pow(gamma) * torch.log(1 - p))


class DGCNN(ZooModel):
    """The DGCNN reader: ``forward(...) -> (P_start, P_end)``; :meth:`answer` reads text as released.

    The config carries the vocabularies, so a model is born the right size; the frozen word-vector
    table is a buffer (zeros until the dataset's ``init_model`` fills it) saved with the weights.
    """

    config_class = DGCNNConfig
    architecture = "dgcnn"

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        d = c.dim
        self.embedding = nn.Embedding(len(c.vocab) + 2, d, padding_idx=PAD)  # shared by question and passage
        # the frozen word vectors, saved with the model so that a model folder answers on its own
        self.register_buffer("word_vectors", torch.zeros(len(c.words) + 1, c.word_dim))
        self.question = nn.ModuleList(GatedConv1d(d, d, c.kernel, r, c.dropout) for r in c.question_rates)
        self.q_pool = AttentionPooling(d)
        self.p_in = nn.Linear(d + d + c.position_dim + c.features, d, bias=False)  # no bias, as released
        self.p_first = GatedConv1d(d, d, c.first_window, 1, c.dropout) if c.first_window else None
        self.passage = nn.ModuleList(GatedConv1d(d, d, c.kernel, r, c.dropout) for r in c.passage_rates)
        self.p_pool = AttentionPooling(2 * d)
        self.start = nn.Linear(2 * d, 1)
        self.end = nn.Linear(2 * d, 1)
        self.gate = nn.Linear(2 * d, 1)
        # registered last: checkpoints list the optimizer's state in parameter order, and runs made
        # before the model was born with its vocabulary added this projection after the others
        self.word_proj = nn.Linear(c.word_dim, d, bias=False) if c.word_dim else None

    def embed(self, chars: torch.Tensor, words: torch.Tensor | None) -> torch.Tensor:
        """Character embedding plus the projected word vector: (B, L) ids -> (B, L, d)."""
        x = self.embedding(chars)
        if self.word_proj is not None and words is not None:
            x = x + self.word_proj(self.word_vectors[words])  # (B, L, word_dim) -> (B, L, d)
        return F.dropout(x, self.config.dropout, self.training)

    def forward(self, q_chars: torch.Tensor, p_chars: torch.Tensor, q_words: torch.Tensor | None = None,
                p_words: torch.Tensor | None = None, features: torch.Tensor | None = None):
        """P_start, P_end (B, Lp) of a batch of (question, passage) pairs; ids 0 are padding.

        q_chars (B, Lq), p_chars (B, Lp): character ids; q_words, p_words: word ids of the same shapes
        (index into ``word_vectors``); features (B, Lp, 8) for the 2018 variant.
        """
        q_mask = (q_chars > PAD).unsqueeze(-1).float()  # (B, Lq, 1)
        p_mask = (p_chars > PAD).unsqueeze(-1).float()  # (B, Lp, 1)
        q = self.embed(q_chars, q_words)  # (B, Lq, d)
        for block in self.question:
            q = block(q, q_mask)
        q_v = self.q_pool(q, q_mask)  # (B, d)
        p = self.embed(p_chars, p_words)  # (B, Lp, d)
        B, Lp, _ = p.shape
        parts = [p, q_v[:, None].expand(B, Lp, -1)]
        if self.config.position_dim:
            parts.append(sinusoid(Lp, self.config.position_dim, p.device).expand(B, -1, -1))
        if self.config.features:
            parts.append(features)
        p = self.p_in(torch.cat(parts, -1))  # (B, Lp, d)
        if self.p_first is not None:
            p = self.p_first(p, p_mask)
        for block in self.passage:
            p = block(p, p_mask)
        p = torch.cat([p, q_v[:, None].expand(B, Lp, -1)], -1) * p_mask  # (B, Lp, 2d)
        g = torch.sigmoid(self.gate(self.p_pool(p, p_mask)))  # (B, 1)
        p_start = torch.sigmoid(self.start(p)).squeeze(-1) * g  # (B, Lp)
        p_end = torch.sigmoid(self.end(p)).squeeze(-1) * g
        return p_start, p_end

    @staticmethod
    def loss(p_start, p_end, y_start, y_end, p_mask) -> torch.Tensor:
        """The release's loss: focal(start) + focal(end), masked mean over the batch's positions, x 100."""
        m = p_mask.float()
        total = (focal_loss(p_start, y_start) + focal_loss(p_end, y_end)) * m
        return total.sum() / m.sum() * 100

    def example_inputs(self, batch_size: int = 2) -> tuple:
        g = torch.Generator().manual_seed(0)
        v = len(self.config.vocab) + 2
        q = torch.randint(2, v, (batch_size, 6), generator=g)
        p = torch.randint(2, v, (batch_size, 20), generator=g)
        words = (torch.zeros_like(q), torch.zeros_like(p)) if self.config.word_dim else (None, None)
        feats = torch.rand(batch_size, 20, self.config.features, generator=g) if self.config.features else None
        return q, p, *words, feats

    @torch.no_grad()
    def answer(self, question: str | list[str], passages: list[str] | list[list[str]], *, batch_size: int = 64,
               details: bool = False):
        """The answer to ``question`` from its ``passages`` ("" when no span passes the threshold).

        A list of questions with a list of passage lists returns a list of answers; ``details=True``
        gives ``{"answer", "score", "candidates"}``. The pipeline is :func:`zoo_dgcnn.answering.answer`.
        """
        return answering.answer(self, question, passages, batch_size=batch_size, details=details)
