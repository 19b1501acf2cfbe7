"""The models of zoo-nce: word2vec's skip-gram (SGNS) and a question → tag scorer, both trained with NCE-type losses.

Word2Vec (Mikolov et al. 2013; Su, kexue.fm/archives/5617): every word w has
an input vector u_w (gensim's ``wv``, ``syn0``) and an output vector v_w
(``syn1neg``). Skip-gram with negative sampling scores a (context, centre)
pair by ⟨u_context, v_centre⟩ and minimises

    −log σ(⟨u_i, v_j⟩) − Σ_{n=1..k} log σ(−⟨u_i, v_n⟩),   v_n ~ count^0.75,

so ⟨u_i, v_j⟩ fits the shifted PMI log p̃(j|i)/p̃(j) − log k. The word
vectors are the u's.

TagModel: a question q is encoded by f(q) (mean of its token embeddings
through a linear layer and tanh), and tag t is scored

    G(q, t) = ⟨f(q), e_t⟩ + b_t                                                (1)

Training never computes the softmax over all tags: it uses NCE against a
unigram^0.75 noise over tags (``zoo_nce.losses``). Evaluation uses the exact
softmax over every tag.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from zoo_core import ZooError, ZooModel


@dataclass
class Word2VecConfig:
    """``words`` (most frequent first) and their corpus ``counts`` are set from the corpus when training starts."""

    dim: int = 100
    words: list[str] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    seed: int = 1  # gensim's default seed; the initial vectors depend on it


class Word2Vec(ZooModel):
    """Skip-gram word vectors: ``input`` (V, dim) are the word vectors, ``output`` (V, dim) the SGNS weights."""

    config_class = Word2VecConfig
    architecture = "word2vec"

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        if len(c.counts) not in (0, len(c.words)):
            raise ZooError(f"word2vec config has {len(c.words)} words but {len(c.counts)} counts")
        self.input = nn.Parameter(torch.empty(len(c.words), c.dim))  # u_w, (V, d)
        self.output = nn.Parameter(torch.empty(len(c.words), c.dim))  # v_w, (V, d)
        self.reset_parameters()
        self._index = None

    def reset_parameters(self) -> None:
        """gensim's initialisation: u uniform in ±0.5/dim, v zero."""
        if self.input.device.type == "meta":
            return
        gen = torch.Generator().manual_seed(self.config.seed)
        with torch.no_grad():
            self.input.copy_((torch.rand(self.input.shape, generator=gen) - 0.5) / self.config.dim)
            self.output.zero_()

    def set_vocabulary(self, words: list[str], counts: list[int]) -> None:
        """Size the model for a vocabulary (before training; the parameters are re-initialised)."""
        self.config.words, self.config.counts = list(words), [int(c) for c in counts]
        device = self.input.device
        self.input = nn.Parameter(torch.empty(len(words), self.config.dim, device=device))
        self.output = nn.Parameter(torch.empty(len(words), self.config.dim, device=device))
        self.reset_parameters()
        self._index = None

    @property
    def index(self) -> dict[str, int]:
        """word → row."""
        if self._index is None:
            self._index = {w: i for i, w in enumerate(self.config.words)}
        return self._index

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Word vectors u of ``ids`` (any shape) → (*ids.shape, dim)."""
        return F.embedding(ids, self.input)

    def example_inputs(self, batch_size: int = 2) -> tuple:
        return (torch.arange(batch_size) % max(1, len(self.config.words)),)

    @torch.no_grad()
    def most_similar(self, word: str, topn: int = 10) -> list[tuple[str, float]]:
        """The ``topn`` words of highest cosine similarity to ``word`` (gensim's ``most_similar``)."""
        from zoo_core import did_you_mean

        if word not in self.index:
            raise did_you_mean("word", word, self.config.words,
                               otherwise=f"the vocabulary holds {len(self.index)} words; try a more frequent one")
        unit = F.normalize(self.input.float(), dim=1)  # (V, d)
        i = self.index[word]
        sims = unit @ unit[i]  # (V,)
        sims[i] = -2.0
        top = torch.topk(sims, min(topn, len(sims) - 1))
        return [(self.config.words[j], float(s)) for s, j in zip(top.values.tolist(), top.indices.tolist())]
