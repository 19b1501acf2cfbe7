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
    """``words`` (most frequent first) and their corpus ``counts`` come from the corpus (the dataset's model_config)."""

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


@dataclass
class TagModelConfig:
    """``chars`` and ``tags`` (with their training counts, for the noise distribution) come from the data
    (the dataset's model_config)."""

    dim: int = 128
    chars: list[str] = field(default_factory=list)  # token ids 1..len(chars); 0 pads
    tags: list[str] = field(default_factory=list)
    tag_counts: list[int] = field(default_factory=list)
    learn_log_z: bool = False  # NCE's γ as a parameter (else fixed at 0: self-normalised scores)


class TagModel(ZooModel):
    """Question → tag scores G(q, t) = ⟨f(q), e_t⟩ + b_t, equation (1); f(q) = tanh(W · mean_c E_c + c).

    The three tables (E: characters, e: tags, b: tag biases) give sparse
    gradients: a step touches the rows of its batch and its noise tags only.
    """

    config_class = TagModelConfig
    architecture = "zhidao-tags"

    def __init__(self, config):
        super().__init__(config)
        c = self.config
        self.proj = nn.Linear(c.dim, c.dim)  # W, c
        self.log_z = nn.Parameter(torch.zeros(())) if c.learn_log_z else None  # γ
        device = self.proj.weight.device
        self.char_emb = nn.Embedding(len(c.chars) + 1, c.dim, padding_idx=0, sparse=True, device=device)  # E
        self.tag_emb = nn.Embedding(len(c.tags), c.dim, sparse=True, device=device)  # e_t, (T, d)
        self.tag_bias = nn.Embedding(len(c.tags), 1, sparse=True, device=device)  # b_t, (T, 1)
        if device.type != "meta":
            with torch.no_grad():
                self.char_emb.weight.normal_(0, 0.1).select(0, 0).zero_()
                self.tag_emb.weight.normal_(0, 0.01)
                # b_t = log p(t), the tag prior: where NCE's optimum G = log p(t|q) starts for a question
                # that says nothing; from b = 0, NCE spends its first epochs ranking rare tags first
                counts = torch.tensor(c.tag_counts, dtype=torch.float64) if c.tag_counts else None
                if counts is not None and len(counts) == len(c.tags) and counts.sum() > 0:
                    self.tag_bias.weight.copy_((counts.clamp(min=1) / counts.sum()).log().unsqueeze(1))
                else:
                    self.tag_bias.weight.zero_()

    def encode(self, tokens: torch.Tensor) -> torch.Tensor:
        """f(q): tokens (B, L), 0-padded → (B, d)."""
        mask = (tokens > 0).unsqueeze(-1).to(self.proj.weight.dtype)  # (B, L, 1)
        emb = self.char_emb(tokens)  # (B, L, d)
        mean = (emb * mask).sum(1) / mask.sum(1).clamp(min=1.0)  # (B, d)
        return torch.tanh(self.proj(mean))

    def score(self, f: torch.Tensor, tags: torch.Tensor) -> torch.Tensor:
        """G for given tags: f (B, d) with tags (B, m) → (B, m); with shared tags (k,) → (B, k)."""
        if tags.dim() == 1:
            return f @ self.tag_emb(tags).T + self.tag_bias(tags).squeeze(-1)  # (B, k)
        return (f.unsqueeze(1) * self.tag_emb(tags)).sum(-1) + self.tag_bias(tags).squeeze(-1)  # (B, m)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Exact scores of every tag, (B, T): for evaluation and prediction, not for training."""
        f = self.encode(tokens)
        return f @ self.tag_emb.weight.T + self.tag_bias.weight.squeeze(-1)

    def example_inputs(self, batch_size: int = 2) -> tuple:
        return (torch.randint(0, len(self.config.chars) + 1, (batch_size, 5)),)
