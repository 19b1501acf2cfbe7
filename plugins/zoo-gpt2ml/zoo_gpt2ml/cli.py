"""The plugin's commands: ``zoo generate gpt2-ml`` and ``zoo convert gpt2-ml``.

Importing this module costs only click (hooks.py attaches the commands while
``zoo --help`` runs): torch, the model and the converter are imported inside
the command bodies. Errors are raised as ``zoo_core.ZooError``; the core's
command group prints them as "Error: ..." and exits 1.
"""

from __future__ import annotations

import click

DECODE_MODES = ("original", "clean")


def attach(commands) -> None:
    """``zoo generate gpt2-ml`` and ``zoo convert gpt2-ml`` (``commands``: the core's PluginCommands)."""
    commands.add(generate_command, to="generate", name="gpt2-ml")
    commands.add(convert_command, to="convert", name="gpt2-ml")


@click.command("gpt2-ml")
@click.argument("prompt")
@click.option("--model", "model_ref", default="gpt2-ml", show_default=True,
              help="Catalogue id (pulled or converted first) or a local model folder.")
@click.option("--max-new-tokens", default=128, show_default=True, type=click.IntRange(0, None))
@click.option("--top-p", default=0.95, show_default=True, type=click.FloatRange(0, 1, min_open=True),
              help="Nucleus size, as in the original demo.")
@click.option("--top-p-mode", type=click.Choice(["grover", "hf"]), default="grover", show_default=True,
              help="grover: drop the token that crosses p (original); hf: keep it (Hugging Face).")
@click.option("--temperature", default=1.0, show_default=True, type=click.FloatRange(0, None, min_open=True))
@click.option("--seed", type=int, default=None, help="Make the samples reproducible.")
@click.option("--num-samples", default=1, show_default=True, type=click.IntRange(1, None),
              help="Samples drawn one after another for the same prompt.")
@click.option("--min-new-tokens", default=0, show_default=True, type=click.IntRange(0, None),
              help="Do not stop at [SEP] before this many tokens.")
@click.option("--eos-token-id", type=int, default=None,
              help="Stop token (default: the model's eos_token_id, [SEP]=102).")
@click.option("--vocab", default=None,
              help='Vocabulary if the model folder has no vocab.txt: "clue", "bert" or a file.')
@click.option("--decode", "decode_mode", type=click.Choice(DECODE_MODES), default="original", show_default=True,
              help="original: tokens joined with no spaces (the demo); clean: spaces between non-CJK words.")
@click.option("--dtype", type=click.Choice(["fp32", "bf16", "fp16"]), default=None,
              help="Compute dtype (default: as stored; bf16 halves the memory).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--threads", type=click.IntRange(1, None), default=None,
              help="CPU threads (default: torch's). On a busy shared CPU, 1 is often fastest.")
def generate_command(prompt, model_ref, max_new_tokens, top_p, top_p_mode, temperature, seed, num_samples,
                     min_new_tokens, eos_token_id, vocab, decode_mode, dtype, device, threads):
    """Continue PROMPT with GPT2_ML, streaming the tokens as they are sampled."""
    import torch

    if threads:
        torch.set_num_threads(threads)

    from zoo_core import ZooError, load_model, resolve_folder

    from .tokenizer import GPT2MLTokenizer

    folder = resolve_folder(model_ref)
    tokenizer = GPT2MLTokenizer.from_vocab(vocab) if vocab else GPT2MLTokenizer.from_folder(folder)
    model = load_model(folder, device=device, dtype=dtype, architecture="gpt2-ml")
    if len(tokenizer) > model.config.vocab_size:
        raise ZooError(f"the vocabulary has {len(tokenizer)} tokens but the model only "
                       f"{model.config.vocab_size} embedding rows: they do not belong together",
                       where=str(vocab) if vocab else str(folder / "vocab.txt"),
                       hint="use the vocab the checkpoint was trained with: --vocab clue for model.ckpt-220000 "
                            "(8021 rows), --vocab bert for model.ckpt-100000 (21130 rows)")
    ids = tokenizer.encode(prompt)
    if not ids:
        raise ZooError("the prompt encodes to no tokens", where=f"prompt {prompt!r}",
                       hint="give some text to continue (Chinese characters, words or digits)")
    # Rows past the vocabulary (the legacy model has 21130 rows for 21128 tokens) have no text: never sample them.
    ignore = [model.config.pad_token_id, *range(len(tokenizer), model.config.vocab_size)]
    eos = model.config.eos_token_id if eos_token_id is None else eos_token_id
    generator = torch.Generator(device=model.wte.weight.device)
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(seed)

    for i in range(num_samples):
        if num_samples > 1:
            click.echo(f"--- sample {i + 1} of {num_samples} ---")
        click.echo(prompt, nl=False)
        printer = _StreamPrinter(tokenizer, decode_mode, ids[-1])
        model.generate(ids, max_new_tokens, top_p=top_p, top_p_mode=top_p_mode, temperature=temperature,
                       eos_token_id=eos, ignore_ids=ignore, min_new_tokens=min_new_tokens,
                       generator=generator, streamer=printer)
        click.echo()


@click.command("gpt2-ml")
@click.argument("source", metavar="CHECKPOINT")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--dtype", type=click.Choice(["float32", "float16", "bfloat16", "fp32", "fp16", "bf16"]),
              default="float32", show_default=True, help="Dtype of the written weights.")
@click.option("--vocab", default="clue", show_default=True, metavar="clue|bert|PATH",
              help="Vocabulary to ship: clue (8021 tokens, model.ckpt-220000), bert (21128 tokens, "
                   "model.ckpt-100000) or a vocab.txt path.")
@click.option("--heads", type=click.IntRange(min=1), default=None,
              help="Attention heads (default: hidden size / 64, as in every released config).")
@click.option("--sha256/--no-sha256", default=True, show_default=True,
              help="Hash the .data file(s) while converting (same pass; recorded in the model card).")
@click.option("--max-shard-size", default="2GB", show_default=True, help="Largest safetensors shard.")
@click.option("--force", is_flag=True, help="Replace OUT_DIR if it exists (atomically, only once done).")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def convert_command(source, out_dir, dtype, vocab, heads, sha256, max_shard_size, force, quiet):
    """Convert a GPT2_ML TensorFlow checkpoint into a zoo model folder, without TensorFlow.

    CHECKPOINT is the checkpoint prefix (e.g. /data/model.ckpt-220000), its
    .index file, or the folder holding it. OUT_DIR receives sharded
    safetensors, config.json, vocab.txt and a README.md model card; it appears
    only when the conversion has succeeded. Adafactor slots and global_step are
    skipped, every tensor's crc32c is checked.
    """
    import signal

    from .convert import convert_checkpoint

    def on_term(signum, frame):  # let the converter's cleanup run, as for Ctrl-C
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:  # a ZooError goes up to the core's group, which prints it and exits 1
        summary = convert_checkpoint(source, out_dir, dtype=dtype, vocab=vocab, num_heads=heads, sha256=sha256,
                                     max_shard_size=max_shard_size, progress=not quiet, overwrite=force)
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo("\n".join(summary.lines()))


class _StreamPrinter:
    """Writes each sampled token's text at once; in clean mode puts a space between two non-CJK words."""

    def __init__(self, tokenizer, mode: str, last_prompt_id: int):
        self.tokenizer, self.mode = tokenizer, mode
        self.prev = tokenizer.decode_token(last_prompt_id)

    def __call__(self, tokens) -> None:
        token_id = int(tokens[0])
        if token_id < 0:
            return
        raw = self.tokenizer.tokens[token_id]
        piece = self.tokenizer.decode_token(token_id)
        if not piece:
            return
        if self.mode == "clean" and not raw.startswith("##") and _wordish(self.prev[-1:]) and _wordish(piece[:1]):
            piece = " " + piece
        click.echo(piece, nl=False)  # click.echo flushes, so each token shows as soon as it is sampled
        self.prev = piece


def _wordish(ch: str) -> bool:
    return bool(ch) and ch.isascii() and ch.isalnum()
