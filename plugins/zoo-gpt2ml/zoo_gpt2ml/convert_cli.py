"""``zoo convert gpt2-ml``: the command line of the checkpoint converter.

Torch-free at import time (hooks.py attaches this command while ``zoo --help``
runs); the converter is imported when the command runs.
"""

from __future__ import annotations

import click


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

    from zoo_core.errors import ZooError

    from .convert import convert_checkpoint

    def on_term(signum, frame):  # let the converter's cleanup run, as for Ctrl-C
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, on_term)
    try:
        summary = convert_checkpoint(source, out_dir, dtype=dtype, vocab=vocab, num_heads=heads, sha256=sha256,
                                     max_shard_size=max_shard_size, progress=not quiet, overwrite=force)
    except ZooError as exc:
        raise click.ClickException(exc.render()) from None
    finally:
        signal.signal(signal.SIGTERM, previous)
    click.echo("\n".join(summary.lines()))
