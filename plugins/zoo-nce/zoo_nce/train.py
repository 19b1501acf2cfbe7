"""Training steps: word2vec SGNS (manual sparse updates, gensim's hyper-parameters) and question → tag NCE.

word2vec follows gensim's meaning of every knob:

- ``min_count``: words rarer than this are dropped from the corpus before anything else (data.py);
- ``sample``: a word of corpus frequency f is kept with probability
  (√(f / (sample·N)) + 1) · (sample·N) / f, capped at 1 (N: in-vocabulary tokens), redrawn each epoch;
- ``window``: each centre word draws b uniform in [0, window) and uses the
  reduced window window − b on both sides, within its sentence, after subsampling;
- ``negative`` noise words per (context, centre) pair, from count^``ns_exponent``;
- the learning rate decays linearly from ``lr`` (alpha, 0.025) to ``min_lr``
  (min_alpha, 0.0001) over the run.

The pair (context i, centre j) trains input vector u_i against output vectors
v_j (label 1) and v_n (label 0), the SGNS loss of ``zoo_nce.losses``. Rather
than autograd, one step applies the SGD update gensim applies per pair,
for a whole batch at once (``sgns_update``): gradients of the loss w.r.t. the
few rows it touches, added with ``index_add_``. Two things differ from
gensim's one-pair-at-a-time loop, both to make a batch of thousands of pairs
one vectorised update:

- noise words are shared by the batch: ``shared_negatives`` = K words drawn
  once per step score against every pair, each with weight negative / K, so
  the expected gradient is gensim's (k noise words per pair);
- a row that receives more than ``damping`` contributions in one batch (a very
  frequent word, every shared noise word) gets ``damping`` / n of their sum:
  gensim applies those contributions one after another and each sees the
  previous one's effect, while a batch would add them all at the same stale
  point and diverge.

That batched update is the fallback. Where numba runs (CPU, float32 tables;
``kernel=auto`` or ``numba``), a step runs gensim's own per-pair loop over its
blocks instead, compiled (``zoo_nce.kernel``): k noise words per pair, no
damping, the blocks spread over ``--threads`` numba threads. ``noise_step``
(default 1.0, gensim's loop exactly) scales a noise word's output-vector step;
1.25 scored a higher Cilin AUC on People's Daily, but it was picked on that same
metric, so it is not the default (README). ``kernel=torch``
(or no numba) takes the batched update, one block of the step after the other.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from zoo_core import TrainStep, Update, ZooError

from .losses import negative_sampling_loss, nce_loss, sampled_softmax_loss
from .sampler import unigram_sampler

KERNELS = ("auto", "numba", "torch")
TAG_LOSSES = ("nce", "negative-sampling", "sampled-softmax", "softmax")


@dataclass
class SGNSSettings:
    """The SGNS step's settings (``--set KEY=VALUE``), gensim's defaults; the module docstring says what each does."""

    window: int = 5
    negative: int = 5
    ns_exponent: float = 0.75
    sample: float = 1e-3
    min_lr: float = 1e-4
    kernel: str = "auto"  # auto (numba where it runs), numba or torch
    noise_step: float = 1.0  # the compiled loop only
    shared_negatives: int = 32  # the torch update only
    damping: float = 16.0  # the torch update only (0: none)

    def __post_init__(self):
        if self.kernel not in KERNELS:
            raise ZooError(f"unknown kernel {self.kernel!r}", where=f"--set kernel={self.kernel}",
                           hint="kernel=auto (numba where it runs), numba or torch")
        if not self.noise_step > 0:
            raise ZooError(f"noise_step must be a positive number, not {self.noise_step!r}",
                           where=f"--set noise_step={self.noise_step}",
                           hint="the default 1.0 is gensim's update; 1.25 moves noise words' output vectors "
                                "1.25x further")
        for key in ("window", "negative", "shared_negatives"):
            if getattr(self, key) < 1:
                raise ZooError(f"{key} must be at least 1, not {getattr(self, key)}", where=f"--set {key}=...",
                               hint=f"the default is {getattr(SGNSSettings, key)}")


@dataclass
class TagSettings:
    """The question → tag step's settings (``--set KEY=VALUE``); TagStep's docstring says what each does."""

    noise: int = 20
    shared_noise: bool = True
    loss: str = "nce"  # nce, negative-sampling, sampled-softmax or softmax
    sparse_lr: float | None = None  # SparseAdam's lr on the tables (None: lr)
    eval_tag_chunk: int = 65536

    def __post_init__(self):
        if self.loss not in TAG_LOSSES:
            raise ZooError(f"unknown loss {self.loss!r}", where=f"--set loss={self.loss}",
                           hint=", ".join(TAG_LOSSES))


def keep_probabilities(counts: torch.Tensor, sample: float) -> torch.Tensor:
    """gensim's subsampling: P(keep w) = (√(c_w / t) + 1) · t / c_w with t = sample · Σ c, capped at 1 (V,)."""
    counts = counts.double()
    if sample <= 0:
        return torch.ones_like(counts, dtype=torch.float32)
    t = sample * counts.sum()
    return (((counts / t).sqrt() + 1) * t / counts).clamp(max=1.0).float()


def skipgram_pairs(ids: torch.Tensor, sentence: torch.Tensor, window: int,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """All (context, centre) pairs of a token sequence with gensim's reduced window.

    ``ids`` (N,) and ``sentence`` (N,) give the (already subsampled) tokens in
    order; centre j draws b_j uniform in [0, window) and pairs with every token
    of its sentence at distance ≤ window − b_j. Returns ``context`` (P,) and
    ``centre`` (P,) word ids.
    """
    n = ids.numel()
    reach = window - torch.randint(0, window, (n,), generator=generator, device=ids.device)  # (N,) in [1, window]
    offsets = torch.cat([torch.arange(-window, 0), torch.arange(1, window + 1)]).to(ids.device)  # (2W,)
    other = torch.arange(n, device=ids.device).unsqueeze(1) + offsets  # (N, 2W): the candidate context positions
    inside = (other >= 0) & (other < n)
    other = other.clamp(0, max(n - 1, 0))
    valid = inside & (sentence[other] == sentence.unsqueeze(1)) & (offsets.abs() <= reach.unsqueeze(1))
    return ids[other][valid], ids.unsqueeze(1).expand_as(other)[valid]


@torch.no_grad()
def sgns_update(u: torch.Tensor, v: torch.Tensor, context: torch.Tensor, centre: torch.Tensor,
                noise: torch.Tensor, *, alpha: float, negative: int, damping: float | None) -> torch.Tensor:
    """One SGD step of SGNS on P pairs with K shared noise words, in place; returns the loss before it.

    (The returned loss is the mean over every 16th pair: it is only reported.)

    ``u`` (V, d) input vectors, ``v`` (V, d) output vectors, ``context`` and
    ``centre`` (P,), ``noise`` (K,). Each noise word weighs negative / K, so
    the step's expected gradient is that of ``negative`` noise words per pair.
    Gradients (g = label − σ(f), times alpha, as gensim):
    u_i += g⁺ v_j + Σ_n g_n v_n;  v_j += g⁺ u_i;  v_n += Σ_pairs g_n u_i.
    """
    P, K = context.numel(), noise.numel()
    l1 = u.index_select(0, context)  # u_i, (P, d)
    v_pos = v.index_select(0, centre)  # v_j, (P, d)
    v_neg = v.index_select(0, noise)  # v_n, (K, d)
    f_pos = (l1 * v_pos).sum(1)  # (P,)
    f_neg = l1 @ v_neg.T  # (P, K)
    weight = negative / K
    hits = noise.unsqueeze(0) == centre.unsqueeze(1)  # gensim skips a noise draw equal to the centre word
    # the loss is only reported: estimate it on every 16th pair
    loss = -F.logsigmoid(f_pos[::16]) - weight * F.logsigmoid(-f_neg[::16]).masked_fill(hits[::16], 0.0).sum(1)
    g_pos = (1.0 - torch.sigmoid(f_pos)) * alpha  # (P,)
    g_neg = torch.sigmoid(f_neg).mul_(-alpha * weight).masked_fill_(hits, 0.0)  # (P, K)
    if damping:
        V = u.shape[0]
        n_out = torch.bincount(centre, minlength=V).to(u.dtype)  # contributions each output row gets
        n_out.index_add_(0, noise, torch.full((K,), P * weight, dtype=u.dtype, device=u.device))
        n_in = torch.bincount(context, minlength=V).to(u.dtype)
        s_out = (damping / n_out.clamp(min=1.0)).clamp(max=1.0)  # (V,)
        s_in = (damping / n_in.clamp(min=1.0)).clamp(max=1.0)[context]  # (P,)
        grad_u = torch.addmm((g_pos * s_in).unsqueeze(1) * v_pos, g_neg * s_in.unsqueeze(1), v_neg)  # (P, d)
        v.index_add_(0, centre, (g_pos * s_out[centre]).unsqueeze(1) * l1)
        v.index_add_(0, noise, (g_neg.T @ l1).mul_(s_out[noise].unsqueeze(1)))
    else:
        grad_u = torch.addmm(g_pos.unsqueeze(1) * v_pos, g_neg, v_neg)
        v.index_add_(0, centre, g_pos.unsqueeze(1) * l1)
        v.index_add_(0, noise, g_neg.T @ l1)
    u.index_add_(0, context, grad_u)
    return loss.mean() if P else loss.new_zeros(())


class SGNSStep(TrainStep):
    """word2vec skip-gram with negative sampling, gensim's hyper-parameters (module docstring).

    Settings (``--set KEY=VALUE``): window, negative, ns_exponent, sample,
    min_lr, kernel (auto, numba or torch); for the compiled loop noise_step,
    for the torch update shared_negatives and damping; ``lr`` is gensim's alpha. The corpus
    and min_count are the dataset's options (``--set
    dataset_options='{"corpus": "text.txt", "min_count": 5}'``). No optimizer:
    the step updates the two embedding tables itself.
    """

    Settings = SGNSSettings
    updates = (Update("training_step", optimizers=(), backward=False),)  # the step moves the tables itself
    monitor, monitor_mode = "loss", "min"

    def __init__(self, model, config):
        super().__init__(model, config)
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ZooError("sgns-peoples-daily runs in one process: its updates are applied in place, pair by "
                           "pair (gensim's loop), with no gradient for DDP to average across processes",
                           hint="run `zoo train sgns-peoples-daily --threads N` without torchrun: the threads "
                                "share the tables as gensim's workers do")
        counts = torch.tensor(model.config.counts, dtype=torch.int64)  # (V,): the corpus's, via the model config
        device = model.input.device
        self.sampler = unigram_sampler(counts, self.settings.ns_exponent, device=device)
        self.keep = keep_probabilities(counts, self.settings.sample).to(device)
        self.steps_done = 0
        self.pairs_done = 0
        self.kernel = self._choose_kernel(model)

    def _choose_kernel(self, model):
        """The compiled per-pair loop where it can run, else None (the batched torch update)."""
        from . import kernel

        choice = self.settings.kernel
        if choice == "torch":
            return None
        why = None
        if model.input.device.type != "cpu" or model.input.dtype != torch.float32:
            why = f"the tables are {model.input.dtype} on {model.input.device} (the kernel needs float32 on the CPU)"
        elif kernel.load() is None:
            why = f"numba is not usable here ({kernel.reason()})"
        if why is not None:
            if choice == "numba":
                raise ZooError(f"kernel=numba cannot run: {why}", hint="use kernel=auto or kernel=torch")
            print(f"zoo-nce: word2vec uses the batched torch update: {why}", file=sys.stderr)
            return None
        kernel.set_threads(torch.get_num_threads())
        self._noise = (self.sampler.prob.numpy(), self.sampler.alias.numpy())
        self._keep = self.keep.numpy()
        return kernel.load()[1]

    def configure_optimizers(self):
        return {}

    def _alpha_at(self, fraction: float) -> float:
        lr, low = float(self.config.lr), self.settings.min_lr
        return lr - (lr - low) * min(1.0, fraction)

    def alpha(self) -> float:
        """gensim's linear decay from lr to min_lr over the run."""
        return self._alpha_at(self.steps_done / max(1, self.total_steps))

    def training_step(self, model, batch):
        ids, sentence = batch  # (B, L) each, −1 pads
        if self.kernel is not None:
            loss, pairs = self._kernel_step(model, ids, sentence)
        else:  # the batched update, one block after the other (each block was one step before the kernel)
            B = ids.shape[0]
            results = [self._torch_block(model, ids[b:b + 1], sentence[b:b + 1],
                                         self._alpha_at((self.steps_done * B + b) / max(1, self.total_steps * B)))
                       for b in range(B)]
            pairs = sum(p for _, p in results)
            loss = sum(l_ * p for l_, p in results) / max(1, pairs)
        alpha = self.alpha()
        self.steps_done += 1
        self.pairs_done += pairs
        return {"loss": float(loss), "alpha": alpha, "pairs": float(pairs)}

    def _kernel_step(self, model, ids, sentence) -> tuple[float, int]:
        """gensim's per-pair loop over the step's blocks (zoo_nce.kernel); the random streams are keyed by
        (seed, step, block), so a resumed run draws what the uninterrupted one drew."""
        B = ids.shape[0]
        total = max(1, self.total_steps * B)
        alphas = np.array([self._alpha_at((self.steps_done * B + b) / total) for b in range(B)])
        base = (int(self.config.seed) * 1_000_003 + self.steps_done) * 65_537
        seeds = np.array([(base + b) % (1 << 63) for b in range(B)], dtype=np.int64)
        s = self.settings
        pairs, losses = self.kernel(model.input.detach().numpy(), model.output.detach().numpy(),
                                    ids.numpy(), sentence.numpy(), self._keep, *self._noise,
                                    s.window, s.negative, alphas, s.noise_step, seeds)
        reported = int(((pairs + 15) // 16).sum())  # the kernel sums the loss of every 16th pair
        return float(losses.sum()) / max(1, reported), int(pairs.sum())

    def _torch_block(self, model, ids, sentence, alpha) -> tuple[float, int]:
        """The batched torch update (module docstring) on the blocks ``ids`` (b, L); (mean loss, pairs)."""
        s = self.settings
        B, L = ids.shape
        sentence = sentence + L * torch.arange(B, device=ids.device).unsqueeze(1)  # never pair across blocks
        ids, sentence = ids.flatten(), sentence.flatten()
        real = ids >= 0
        keep = real & (torch.rand(ids.shape, device=ids.device) < self.keep[ids.clamp(min=0)])
        context, centre = skipgram_pairs(ids[keep], sentence[keep], s.window)
        noise = self.sampler.sample(s.shared_negatives)
        loss = sgns_update(model.input, model.output, context, centre, noise, alpha=alpha,
                           negative=s.negative, damping=s.damping or None)
        return float(loss), context.numel()

    @torch.no_grad()
    def evaluate(self, model, loader):
        """Mean SGNS loss over the validation blocks (no subsampling, full window, fixed noise)."""
        gen = torch.Generator().manual_seed(0)
        s = self.settings
        total, n = 0.0, 0
        for ids, sentence in loader:
            B, L = ids.shape
            sentence = (sentence + L * torch.arange(B, device=ids.device).unsqueeze(1)).flatten()
            ids = ids.flatten()
            keep = ids >= 0
            context, centre = skipgram_pairs(ids[keep].cpu(), sentence[keep].cpu(), s.window, gen)
            if context.numel() == 0:
                continue
            noise = self.sampler.sample(context.numel(), s.negative, generator=gen)
            context, centre, noise = context.to(ids.device), centre.to(ids.device), noise.to(ids.device)
            u, v = model.input[context], model.output
            f_pos = (u * v[centre]).sum(1)
            f_neg = torch.einsum("pd,pkd->pk", u, v[noise])
            loss = -F.logsigmoid(f_pos) - F.logsigmoid(-f_neg).sum(1)
            total += float(loss.sum())
            n += context.numel()
        return {"loss": total / max(1, n)}

    def state_dict(self):
        return {"steps_done": self.steps_done, "pairs_done": self.pairs_done}

    def load_state_dict(self, state):
        self.steps_done = int(state.get("steps_done", 0))
        self.pairs_done = int(state.get("pairs_done", 0))


# --- question → tags -----------------------------------------------------------------------------

class TagStep(TrainStep):
    """NCE training of the question → tag model (model.TagModel); exact full-softmax evaluation.

    Each (question, tag) pair is a positive; ``noise`` tags drawn from
    count^0.75 (shared by the batch when ``shared_noise``) are the negatives,
    with the logit offset −log(k q(t)) of ``losses.nce_loss``; γ is learned when
    the model's ``learn_log_z`` is set. ``loss``: "nce" (default),
    "negative-sampling" or "sampled-softmax" (the other losses of
    ``zoo_nce.losses``, same noise), or "softmax" (the exact full softmax, the
    baseline: every tag scored at every step). The loss is summed over a
    question's tags and averaged over questions, so torchrun's gradient average
    equals one process's.
    """

    Settings = TagSettings
    monitor, monitor_mode = "precision@1", "max"
    distributed_backend = "gloo"  # the sparse tag and character tables: NCCL cannot reduce sparse gradients

    def __init__(self, model, config):
        super().__init__(model, config)
        self.sampler = unigram_sampler(model.config.tag_counts, 0.75, device=model.tag_emb.weight.device)

    def configure_optimizers(self):
        m = self.model
        sparse = [m.char_emb.weight]
        if self.settings.loss != "softmax":  # the full softmax gives every tag row a gradient: dense
            sparse += [m.tag_emb.weight, m.tag_bias.weight]
        dense = [p for p in m.parameters() if not any(p is s for s in sparse)]
        lr = float(self.config.lr)
        sparse_lr = float(self.settings.sparse_lr or lr)
        return {"sparse": torch.optim.SparseAdam(sparse, lr=sparse_lr), "dense": torch.optim.Adam(dense, lr=lr)}

    def training_step(self, model, batch):
        tokens, tags = batch  # (B, L), (B, m) with −1 pads
        B = tokens.shape[0]
        f = model.encode(tokens)  # (B, d)
        real = tags >= 0  # (B, m)
        rows = real.nonzero()[:, 0]  # question of each positive, (P,)
        pos_tags = tags[real]  # (P,)
        kind = self.settings.loss
        if kind == "softmax":
            logits = f @ model.tag_emb.weight.T + model.tag_bias.weight.squeeze(-1)  # (B, T)
            loss = -(logits.log_softmax(-1)[rows, pos_tags]).sum() / B
            return {"loss": loss}
        k = self.settings.noise
        noise = self.sampler.sample(k) if self.settings.shared_noise else self.sampler.sample(B, k)
        pos = model.score(f[rows], pos_tags.unsqueeze(1)).squeeze(1)  # (P,)
        noise_scores = model.score(f, noise)  # (B, k)
        noise_scores = noise_scores[rows]  # (P, k)
        log_q = self.sampler.log_q
        noise_q = log_q[noise] if noise.dim() == 1 else log_q[noise][rows]
        if kind == "nce":
            log_z = model.log_z if model.log_z is not None else 0.0
            per = nce_loss(pos, noise_scores, log_q[pos_tags], noise_q, log_z=log_z, reduction="none")
        elif kind == "negative-sampling":
            per = negative_sampling_loss(pos, noise_scores, reduction="none")
        else:
            noise_ids = noise.expand(len(rows), -1) if noise.dim() == 1 else noise[rows]
            per = sampled_softmax_loss(pos, noise_scores, log_q[pos_tags], noise_q,
                                       accidental_hits=noise_ids == pos_tags.unsqueeze(1), reduction="none")
        return {"loss": per.sum() / B}

    @torch.no_grad()
    def evaluate(self, model, loader):
        """precision@1, recall@5 and the mean NLL of the true tags under the exact softmax over all tags."""
        chunk = self.settings.eval_tag_chunk
        hits1 = recall5 = nll = 0.0
        questions = positives = 0
        E, b = model.tag_emb.weight, model.tag_bias.weight.squeeze(-1)
        T = E.shape[0]
        for tokens, tags in loader:
            f = model.encode(tokens)  # (B, d)
            B = f.shape[0]
            top_v = torch.full((B, 0), float("-inf"), device=f.device)
            top_i = torch.zeros((B, 0), dtype=torch.int64, device=f.device)
            lse = torch.full((B,), float("-inf"), device=f.device)
            for s in range(0, T, chunk):  # never the whole (B, T) matrix at once: T may be millions
                logits = f @ E[s:s + chunk].T + b[s:s + chunk]  # (B, chunk)
                lse = torch.logaddexp(lse, torch.logsumexp(logits, -1))
                v, i = torch.topk(logits, min(5, logits.shape[1]), dim=1)
                top_v, order = torch.topk(torch.cat([top_v, v], 1), min(5, top_v.shape[1] + v.shape[1]), dim=1)
                top_i = torch.gather(torch.cat([top_i, i + s], 1), 1, order)
            real = tags >= 0
            has = real.any(1)
            hit = (top_i.unsqueeze(2) == tags.unsqueeze(1)) & real.unsqueeze(1)  # (B, 5, m)
            hits1 += float((hit[:, 0].any(-1) & has).sum())
            recall5 += float((hit.any(1).sum(1).float() / real.sum(1).clamp(min=1))[has].sum())
            rows, cols = real.nonzero(as_tuple=True)
            true_logit = (f[rows] * E[tags[rows, cols]]).sum(-1) + b[tags[rows, cols]]
            nll += float((lse[rows] - true_logit).sum())
            questions += int(has.sum())
            positives += len(rows)
        return {"precision@1": hits1 / max(1, questions), "recall@5": recall5 / max(1, questions),
                "nll": nll / max(1, positives)}
