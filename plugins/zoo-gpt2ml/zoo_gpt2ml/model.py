"""GPT2_ML: the 1.5B ("mega", 1.37B parameters) Chinese GPT-2 of imcaspar/gpt2-ml, in one file.

GPT2_ML is Grover (Zellers et al. 2019) trained on Chinese text. It looks like
GPT-2 from afar, but its block is *post*-LN, which is why loading its weights
into a stock GPT-2 class produces garbage:

    embedding      h_0   = LN_embed(word_embed[ids] + pos_embed[positions])
    block i        a     = Attn(h)                       no LayerNorm on the attention input
                   x     = h + a
                   f     = W_out · gelu(W_in · LN0(x))    exact erf GELU
                   h'    = LN1(x + f)                     the residual is the *un-normalised* x
    head           logits = h_L · word_embedᵀ             tied, no bias, no final LayerNorm

Attention is ordinary causal multi-head attention, scaled by 1/√head_dim, with
separate query/key/value projections in the TF checkpoint; here they are
stacked into one ``qkv`` Linear (q, k, v on the output axis). Every LayerNorm
has epsilon 1e-5. Names follow the contract with the converter:
``wte``/``wpe`` (word_embed/pos_embed), ``ln_embed``, and per block
``attn.qkv``, ``attn.proj``, ``ln_0``, ``mlp.fc``, ``mlp.proj``, ``ln_1``.

Shapes: B batch, T new positions, P cached positions, S = P + T, H hidden,
nh heads, hd = H / nh, I intermediate, V vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from zoo_core import ZooError, ZooModel


@dataclass
class GPT2MLConfig:
    """Hyper-parameters; the defaults are the released "mega" model (``configs/mega.json``, CLUE vocab)."""

    vocab_size: int = 8021
    max_position_embeddings: int = 1024
    hidden_size: int = 1536
    num_hidden_layers: int = 48
    num_attention_heads: int = 24
    intermediate_size: int = 6144
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.014142135623731
    pad_token_id: int = 0
    eos_token_id: int = 102

    def __post_init__(self):
        if self.hidden_size % self.num_attention_heads:
            raise ZooError(
                f"hidden_size {self.hidden_size} is not divisible by num_attention_heads {self.num_attention_heads}",
                where="GPT2MLConfig", hint="pick a head count that divides the hidden size (mega: 1536 / 24)")


class KVCache:
    """Preallocated keys and values of every layer, filled in place as decoding advances.

    Writing into fixed buffers avoids a ``torch.cat`` (and a full copy of the
    cache) per layer per step. ``length`` is the number of positions already
    stored, which is also the position id of the next token.
    """

    def __init__(self, config: GPT2MLConfig, batch_size: int, max_length: int, *,
                 device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32):
        if max_length > config.max_position_embeddings:
            raise ZooError(
                f"a cache of {max_length} positions exceeds max_position_embeddings={config.max_position_embeddings}",
                where="KVCache", hint="shorten the prompt or ask for fewer new tokens")
        hd = config.hidden_size // config.num_attention_heads
        shape = (batch_size, config.num_attention_heads, max_length, hd)
        # per layer: key and value [B, nh, max_length, hd]
        self.keys = [torch.empty(shape, device=device, dtype=dtype) for _ in range(config.num_hidden_layers)]
        self.values = [torch.empty(shape, device=device, dtype=dtype) for _ in range(config.num_hidden_layers)]
        self.max_length = max_length
        self.length = 0


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with fused q/k/v projection and an optional KV cache."""

    def __init__(self, config: GPT2MLConfig):
        super().__init__()
        self.n_head = config.num_attention_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)  # [3H, H]: q, k, v stacked
        self.proj = nn.Linear(config.hidden_size, config.hidden_size)  # context_projection_layer

    def forward(self, h: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        B, T, H = h.shape
        q, k, v = self.qkv(h).split(H, dim=2)  # 3 × [B, T, H]
        q = q.view(B, T, self.n_head, H // self.n_head).transpose(1, 2)  # [B, nh, T, hd]
        k = k.view(B, T, self.n_head, H // self.n_head).transpose(1, 2)
        v = v.view(B, T, self.n_head, H // self.n_head).transpose(1, 2)
        P = 0
        if cache is not None:
            P = cache.length
            cache.keys[layer][:, :, P:P + T] = k
            cache.values[layer][:, :, P:P + T] = v
            k = cache.keys[layer][:, :, :P + T]  # [B, nh, S, hd]
            v = cache.values[layer][:, :, :P + T]
        if P == 0:
            # softmax(q kᵀ / √hd + causal mask) v
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        elif T == 1:
            y = F.scaled_dot_product_attention(q, k, v)  # one new query sees every cached key
        else:
            # SDPA's is_causal aligns the mask top-left; with a prefix the query t sees keys ≤ P + t.
            mask = torch.ones(T, P + T, dtype=torch.bool, device=h.device).tril(diagonal=P)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = y.transpose(1, 2).reshape(B, T, H)  # [B, T, H]
        return self.proj(y)


class MLP(nn.Module):
    """f = W_out · gelu(W_in · x + b_in) + b_out, with the exact (erf) GELU."""

    def __init__(self, config: GPT2MLConfig):
        super().__init__()
        self.fc = nn.Linear(config.hidden_size, config.intermediate_size)  # [I, H]  ("intermediate")
        self.proj = nn.Linear(config.intermediate_size, config.hidden_size)  # [H, I]  ("output")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x), approximate="none"))


class Block(nn.Module):
    """One Grover layer: x = h + Attn(h); h' = LN1(x + MLP(LN0(x)))."""

    def __init__(self, config: GPT2MLConfig):
        super().__init__()
        self.attn = CausalSelfAttention(config)
        self.ln_0 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # LayerNorm_mlp_ln0
        self.mlp = MLP(config)
        self.ln_1 = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)  # LayerNorm_mlp_ln1

    def forward(self, h: torch.Tensor, cache: KVCache | None = None, layer: int = 0) -> torch.Tensor:
        x = h + self.attn(h, cache, layer)  # [B, T, H]; no LayerNorm before attention
        return self.ln_1(x + self.mlp(self.ln_0(x)))  # post-LN on the un-normalised residual


class GPT2ML(ZooModel):
    """The GPT2_ML / Grover language model with its output head tied to the word embedding."""

    config_class = GPT2MLConfig
    architecture = "gpt2-ml"

    def __init__(self, config: GPT2MLConfig | dict):
        super().__init__(config)
        c = self.config
        # Passing the (uninitialised) weight skips nn.Embedding's own normal_ init, which on the meta
        # device goes through torch._refs and imports torch._dynamo: seconds of a load spent on nothing.
        self.wte = nn.Embedding(c.vocab_size, c.hidden_size, _weight=torch.empty(c.vocab_size, c.hidden_size))
        self.wpe = nn.Embedding(c.max_position_embeddings, c.hidden_size,
                                _weight=torch.empty(c.max_position_embeddings, c.hidden_size))
        # wte: word_embed [V, H]; wpe: pos_embed [max_pos, H]
        self.ln_embed = nn.LayerNorm(c.hidden_size, eps=c.layer_norm_eps)  # LayerNorm_embed_norm
        self.h = nn.ModuleList(Block(c) for _ in range(c.num_hidden_layers))
        # The core builds on the meta device and then assigns real tensors: initialising there is wasted work.
        if self.wte.weight.device.type != "meta":
            self.reset_parameters()
        self.register_state_dict_post_hook(_contiguous_state_dict)

    def reset_parameters(self) -> None:
        """Grover's init: truncated normal (±2σ, σ = initializer_range) weights, zero biases, LN γ=1 β=0."""
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.trunc_normal_(module.weight, mean=0.0, std=std, a=-2 * std, b=2 * std)
                if getattr(module, "bias", None) is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def tie_weights(self) -> None:
        """The head reads ``wte.weight`` directly in :meth:`forward`, so there is nothing to re-tie.

        Kept explicit so that a loader calling it after assigning tensors finds
        the tie intact: there is no separate head parameter that could drift.
        """

    def forward(self, input_ids: torch.Tensor, cache: KVCache | None = None,
                last_only: bool = False) -> torch.Tensor:
        """Logits [B, T, V] for token ids [B, T] (or [B, 1, V] with ``last_only``).

        With a ``cache``, ``input_ids`` are the T tokens following the
        ``cache.length`` positions already stored, and the cache is advanced.
        """
        B, T = input_ids.shape
        P = cache.length if cache is not None else 0
        limit = self.config.max_position_embeddings
        if P + T > limit:
            raise ZooError(
                f"sequence of {P + T} tokens ({P} cached + {T} new) exceeds max_position_embeddings={limit}",
                where="GPT2ML.forward", hint=f"keep prompt plus generated tokens within {limit}")
        if cache is not None and P + T > cache.max_length:
            raise ZooError(f"KV cache holds {cache.max_length} positions, {P + T} needed", where="GPT2ML.forward",
                           hint="allocate the cache for prompt length + max_new_tokens")
        pos = torch.arange(P, P + T, device=input_ids.device)  # [T]; offset by the cache length
        h = self.ln_embed(self.wte(input_ids) + self.wpe(pos))  # [B, T, H]
        for i, block in enumerate(self.h):
            h = block(h, cache, i)
        if cache is not None:
            cache.length = P + T
        if last_only:
            h = h[:, -1:]  # [B, 1, H]
        return F.linear(h, self.wte.weight)  # [B, T, V] = h · word_embedᵀ, no bias, no final LN

    def example_inputs(self, batch_size: int = 2) -> tuple:
        """Token ids [batch_size, min(8, max_pos)] for one forward call (contract tests)."""
        T = min(8, self.config.max_position_embeddings)
        g = torch.Generator().manual_seed(0)
        ids = torch.randint(1, self.config.vocab_size, (batch_size, T), generator=g)
        return (ids.to(self.wte.weight.device),)

    def set_decode_layout(self) -> None:
        """Lay the weight matrices out in memory for the fastest one-token (GEMV) products on CPU.

        Decoding reads every weight once per token, so it runs at memory speed,
        and on CPU the speed depends on the layout: for fp32, MKL's product
        x·Wᵀ is about 1.5x faster when W [out, in] is stored column-major (its
        transpose contiguous, as in TF's [in, out] kernels); for bf16, oneDNN
        is faster on the ordinary row-major layout. Shapes, values and names
        are unchanged; each matrix is re-laid out one at a time (peak extra
        memory: one matrix), and only when its layout is not the right one.
        ``state_dict()`` always returns contiguous tensors.
        """
        w = self.wte.weight
        column_major = w.device.type == "cpu" and w.dtype == torch.float32
        matrices = [self.wte.weight] + [m.weight for m in self.modules() if isinstance(m, nn.Linear)]
        with torch.no_grad():  # (wpe is only indexed by rows, never multiplied: left as it is)
            for p in matrices:
                _relayout_(p, column_major)

    def new_cache(self, batch_size: int, max_length: int) -> KVCache:
        """An empty KV cache on this model's device and dtype."""
        w = self.wte.weight
        return KVCache(self.config, batch_size, max_length, device=w.device, dtype=w.dtype)

    def generate(self, input_ids, max_new_tokens: int = 64, **options) -> torch.Tensor:
        """Sample a continuation with nucleus sampling; see :func:`zoo_gpt2ml.generate.generate`."""
        from .generate import generate

        return generate(self, input_ids, max_new_tokens, **options)


def _relayout_(p: nn.Parameter, column_major: bool) -> None:
    """Store the 2-D parameter ``p`` column- or row-major, keeping its shape and values.

    When ``p`` owns its whole storage the new layout is written back into that
    storage through a one-matrix temporary: a weight memory-mapped from a
    safetensors file (private, copy-on-write) then turns into private pages
    one for one instead of leaving a second, file-backed copy resident.
    """
    rows, cols = p.shape
    if (not p.is_contiguous()) == column_major:
        return
    data = p.data
    owns_storage = data.storage_offset() == 0 and data.untyped_storage().nbytes() == data.numel() * data.element_size()
    if column_major:
        new_order = data.t().contiguous()  # [cols, rows] row-major = [rows, cols] column-major
    else:
        new_order = data.contiguous()
    if not owns_storage:
        p.data = new_order.t() if column_major else new_order
        return
    flat = torch.empty(0, dtype=data.dtype, device=data.device).set_(data.untyped_storage(), 0, (data.numel(),))
    flat.copy_(new_order.reshape(-1))
    p.data = flat.view(cols, rows).t() if column_major else flat.view(rows, cols)


def _contiguous_state_dict(module, state_dict, prefix, local_metadata) -> None:
    """safetensors stores contiguous tensors only: undo :meth:`GPT2ML.set_decode_layout` in what is saved."""
    for key, value in state_dict.items():
        if not value.is_contiguous():
            state_dict[key] = value.contiguous()


def num_parameters(config: GPT2MLConfig) -> int:
    """Parameter count from the config alone (tied head counted once)."""
    H, I, V, L = config.hidden_size, config.intermediate_size, config.vocab_size, config.num_hidden_layers
    per_block = (3 * H * H + 3 * H) + (H * H + H) + 2 * H + (I * H + I) + (H * I + H) + 2 * H
    return V * H + config.max_position_embeddings * H + 2 * H + L * per_block


__all__ = ["GPT2MLConfig", "GPT2ML", "KVCache", "num_parameters"]
