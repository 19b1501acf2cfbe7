"""Nucleus sampling for GPT2_ML with a preallocated KV cache, as the original demo decodes.

The demo (``scripts/demo.py`` → ``train/modeling.py::sample``) samples with
top-p 0.95, no temperature, no top-k, never samples [PAD] (id 0), and stops at
[SEP] (id 102). Its top-p differs from Hugging Face's in one token:

* ``top_p_mode="grover"``: sort the probabilities descending and keep the
  tokens whose *inclusive* cumulative probability is < p, plus the top token
  always. The token whose probability carries the sum across p is dropped.
* ``top_p_mode="hf"``: keep that crossing token too (Hugging Face's
  ``TopPLogitsWarper``: keep while the cumulative probability *before* the
  token is < p).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from zoo_core import ZooError

TOP_P_MODES = ("grover", "hf")


def top_p_filter(logits: torch.Tensor, top_p: float, mode: str = "grover") -> torch.Tensor:
    """Return ``logits`` [B, V] with the tokens outside the nucleus set to -inf."""
    if mode not in TOP_P_MODES:
        raise ZooError(f"unknown top_p_mode {mode!r}", hint=f"use one of: {', '.join(TOP_P_MODES)}")
    if top_p >= 1.0:
        return logits
    probs = torch.softmax(logits.float(), dim=-1)
    sorted_probs, order = probs.sort(dim=-1, descending=True)  # [B, V]
    cum = sorted_probs.cumsum(dim=-1)  # inclusive cumulative probability
    if mode == "hf":
        cum = cum - sorted_probs  # probability mass *before* each token
    keep_sorted = cum < top_p
    keep_sorted[:, 0] = True  # the most likely token always survives
    keep = torch.empty_like(keep_sorted).scatter_(-1, order, keep_sorted)
    return logits.masked_fill(~keep, float("-inf"))


def top_k_filter(logits: torch.Tensor, top_k: int) -> torch.Tensor:
    """Return ``logits`` [B, V] with all but each row's ``top_k`` largest set to -inf (``top_k`` <= 0: all kept)."""
    if top_k <= 0 or top_k >= logits.shape[-1]:
        return logits
    kth = logits.topk(top_k, dim=-1).values[:, -1:]  # [B, 1]
    return logits.masked_fill(logits < kth, float("-inf"))


def _as_batch(input_ids, device) -> torch.Tensor:
    if isinstance(input_ids, torch.Tensor):
        ids = input_ids.to(device=device, dtype=torch.long)
    else:
        ids = torch.tensor(list(input_ids), dtype=torch.long, device=device)
    if ids.dim() == 1:
        ids = ids[None]
    if ids.dim() != 2 or ids.shape[1] == 0:
        raise ZooError(f"input_ids must be a non-empty sequence of token ids, got shape {tuple(ids.shape)}",
                       hint="encode the prompt first; GPT2_ML needs at least one context token")
    return ids


def generate(model, input_ids, max_new_tokens: int = 64, *, top_p: float = 0.95, temperature: float = 1.0,
             seed: int | None = None, top_p_mode: str = "grover", eos_token_id: int | None = 102,
             ignore_ids: Sequence[int] = (0,), num_samples: int = 1, min_new_tokens: int = 0,
             streamer: Callable[[torch.Tensor], None] | None = None,
             generator: torch.Generator | None = None, top_k: int = 0) -> torch.Tensor:
    """Sample up to ``max_new_tokens`` tokens after ``input_ids`` ([T], [B, T] or a list of ids).

    ``num_samples`` repeats each prompt row that many times (batch sampling).
    ``seed`` seeds a private :class:`torch.Generator` (reproducible, and the
    global RNG is untouched); ``generator`` passes one in instead. Tokens in
    ``ignore_ids`` ([PAD] by default) are never sampled. A row stops after it
    samples ``eos_token_id`` (kept in the output), once it has at least
    ``min_new_tokens`` new tokens; before that, EOS is masked. ``streamer`` is
    called after every step with the new tokens [B] (rows already finished get
    ``-1``). ``top_k`` > 0 keeps only the k likeliest tokens before the nucleus
    (the original demo has no top-k: 0). Returns the prompts followed by their continuations, [B, T + n];
    a row that finished early is padded with ``model.config.pad_token_id``.
    """
    if max_new_tokens < 0 or min_new_tokens < 0:
        raise ZooError("max_new_tokens and min_new_tokens must be ≥ 0")
    if temperature <= 0:
        raise ZooError(f"temperature must be > 0, got {temperature}", hint="use 1.0 for the demo's behaviour")
    if not 0 < top_p <= 1:
        raise ZooError(f"top_p must be in (0, 1], got {top_p}", hint="the demo uses 0.95")
    if top_p_mode not in TOP_P_MODES:
        raise ZooError(f"unknown top_p_mode {top_p_mode!r}", hint=f"use one of: {', '.join(TOP_P_MODES)}")
    device = model.wte.weight.device
    if hasattr(model, "set_decode_layout"):
        # Outside inference mode, so that the re-laid-out weights stay usable for training afterwards.
        model.set_decode_layout()  # a no-op once done
    with torch.inference_mode():
        return _sample(model, _as_batch(input_ids, device), max_new_tokens, top_p=top_p, temperature=temperature,
                       seed=seed, top_p_mode=top_p_mode, eos_token_id=eos_token_id, ignore_ids=ignore_ids,
                       num_samples=num_samples, min_new_tokens=min_new_tokens, streamer=streamer,
                       generator=generator, top_k=top_k)


def _sample(model, ids, max_new_tokens, *, top_p, temperature, seed, top_p_mode, eos_token_id, ignore_ids,
            num_samples, min_new_tokens, streamer, generator, top_k=0) -> torch.Tensor:
    """The decoding loop of :func:`generate` (runs under inference mode): prefill, then one token per step."""
    device = ids.device
    if num_samples > 1:
        ids = ids.repeat_interleave(num_samples, dim=0)
    B, T = ids.shape
    limit = model.config.max_position_embeddings
    if T + max_new_tokens > limit:
        raise ZooError(f"prompt ({T} tokens) + max_new_tokens ({max_new_tokens}) exceeds the model's "
                       f"{limit} positions", hint=f"ask for at most {max(limit - T, 0)} new tokens")
    V = model.config.vocab_size
    if generator is None:
        generator = torch.Generator(device=device)
        if seed is None:
            generator.seed()
        else:
            generator.manual_seed(seed)

    # Additive bias on the logits: -inf on tokens never to sample.
    banned = torch.zeros(V, device=device)
    if ignore_ids:
        banned[torch.tensor(list(ignore_ids), device=device)] = float("-inf")
    banned_early = banned.clone()
    if eos_token_id is not None:
        banned_early[eos_token_id] = float("-inf")

    out = torch.full((B, T + max_new_tokens), model.config.pad_token_id, dtype=torch.long, device=device)
    out[:, :T] = ids
    finished = torch.zeros(B, dtype=torch.bool, device=device)
    cache = model.new_cache(B, T + max_new_tokens)
    step_input = ids
    n = 0
    for n in range(1, max_new_tokens + 1):
        logits = model(step_input, cache=cache, last_only=True)[:, -1].float()  # [B, V]
        logits = logits / temperature + (banned_early if n <= min_new_tokens else banned)
        logits = top_p_filter(top_k_filter(logits, top_k), top_p, top_p_mode)
        probs = torch.softmax(logits, dim=-1)
        token = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # [B]
        token = token.masked_fill(finished, model.config.pad_token_id)
        out[:, T + n - 1] = token
        if streamer is not None:
            streamer(token.masked_fill(finished, -1))
        if eos_token_id is not None:
            finished |= token == eos_token_id
            if bool(finished.all()):
                break
        step_input = token[:, None]
    return out[:, :T + n]
