"""zoo-gpt2ml's tab in ``zoo serve``: a prompt continued with the tokens streamed as they are sampled.

Sampling runs in a worker thread that hands each token to the page through a queue; closing the page (or
a new request cancelling this one) stops the worker at its next token.
"""

from __future__ import annotations

import queue
import threading
from functools import partial

import gradio as gr

_DONE = object()


class _Stopped(Exception):
    """Raised inside the sampler's streamer when nobody reads the tokens any more."""


def build(tab) -> None:
    """Prompt and sampling settings in; the text, growing token by token, out (endpoint ``<model>_generate``)."""
    prompt = gr.Textbox("今天天气", label="prompt", lines=3, placeholder="中文 text to continue")
    with gr.Row():
        max_new = gr.Slider(1, 1024, value=64, step=1, label="new tokens (at most)")
        seed = gr.Number(0, label="seed (-1: random)", precision=0, minimum=-1, maximum=2**31 - 1)
    with gr.Row():
        top_k = gr.Slider(0, 200, value=0, step=1, label="top-k (0: off, as the original demo)")
        top_p = gr.Slider(0.01, 1.0, value=0.95, step=0.01, label="top-p")
        temperature = gr.Slider(0.05, 2.0, value=1.0, step=0.05, label="temperature")
    go = gr.Button("Generate", variant="primary")
    text = gr.Textbox(label="text", lines=10, interactive=False, elem_classes=["zoo-generated"])
    tab.on([go.click, prompt.submit], partial(generate, tab), [prompt, max_new, top_k, top_p, temperature, seed],
           text, name="generate", description="(prompt, new tokens, top-k, top-p, temperature, seed) -> text, "
                                              "streamed token by token")


def _tokenizer(tab):
    from .tokenizer import GPT2MLTokenizer

    return tab.cached("tokenizer", lambda: GPT2MLTokenizer.from_folder(tab.folder()))


def _check(model, tokenizer, prompt: str, max_new: int) -> list[int]:
    """The prompt's token ids, or a ZooError when it is empty or does not leave room for ``max_new`` tokens."""
    from zoo_core import ZooError

    if not prompt or not prompt.strip():
        raise ZooError("the prompt is empty", hint="type some Chinese text for the model to continue")
    ids = tokenizer.encode(prompt)
    if not ids:
        raise ZooError("the prompt encodes to no tokens", hint="type some text (Chinese characters, words or digits)")
    limit = model.config.max_position_embeddings
    if len(ids) >= limit:
        raise ZooError(f"the prompt is {len(ids)} tokens long; the model reads at most {limit} (its context)",
                       hint=f"shorten the prompt to fewer than {limit} tokens")
    if len(ids) + max_new > limit:
        raise ZooError(f"the prompt ({len(ids)} tokens) and {max_new} new tokens pass the model's context of "
                       f"{limit} tokens", hint=f"ask for at most {limit - len(ids)} new tokens, or shorten the prompt")
    return ids


def generate(tab, prompt, max_new, top_k, top_p, temperature, seed):
    """Yield the prompt followed by the continuation so far, once per sampled token."""
    import torch

    from zoo_core import ZooError

    for name, value in (("new tokens", max_new), ("top-k", top_k), ("top-p", top_p), ("temperature", temperature)):
        if value is None:
            raise ZooError(f"{name} needs a value")
    max_new, top_k = int(max_new), int(top_k)
    if max_new < 1 or top_k < 0 or not 0 < float(top_p) <= 1 or float(temperature) <= 0:
        raise ZooError("new tokens must be >= 1, top-k >= 0, top-p in (0, 1] and temperature > 0")
    model = tab.model()
    tokenizer = _tokenizer(tab)
    ids = _check(model, tokenizer, prompt, max_new)
    generator = torch.Generator(device=model.wte.weight.device)
    if seed is None or int(seed) < 0:
        generator.seed()
    else:
        generator.manual_seed(int(seed))
    # Rows past the vocabulary (the legacy model has 21130 rows for 21128 tokens) have no text: never sample them.
    ignore = [model.config.pad_token_id, *range(len(tokenizer), model.config.vocab_size)]
    tokens: queue.Queue = queue.Queue()
    stop = threading.Event()

    def streamer(new):
        if stop.is_set():
            raise _Stopped
        tokens.put(int(new[0]))

    def work():
        try:
            model.generate(ids, max_new, top_p=float(top_p), top_k=top_k, temperature=float(temperature),
                           eos_token_id=model.config.eos_token_id, ignore_ids=ignore, generator=generator,
                           streamer=streamer)
            tokens.put(_DONE)
        except _Stopped:
            pass
        except Exception as exc:  # noqa: BLE001 - handed to the page by the reading side
            tokens.put(exc)

    worker = threading.Thread(target=work, name=f"zoo-serve-{tab.slug}", daemon=True)
    worker.start()
    text = prompt
    try:
        yield text
        while (item := tokens.get()) is not _DONE:
            if isinstance(item, Exception):
                raise item
            if item >= 0:
                text += tokenizer.decode_token(item)
                yield text
    finally:
        stop.set()
        worker.join()  # one generation at a time per model: the next request starts after this one ends
