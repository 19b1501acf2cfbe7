"""zoo-nce's commands: ``zoo export word2vec MODEL OUT``, ``zoo similar MODEL WORD`` and ``zoo nce ...``."""

from __future__ import annotations

import click

from zoo_core import ZooError


def _load_word2vec(model_ref: str):
    from zoo_core import load_model

    model = load_model(model_ref)
    if getattr(model, "architecture", None) != "word2vec":
        raise ZooError(f"{model_ref} is a {model.architecture} model, not word2vec",
                       hint="pass a folder written by `zoo train sgns-peoples-daily` (OUT/model)")
    return model


def attach(commands) -> None:
    """``zoo export word2vec``, ``zoo similar`` and ``zoo nce synthetic-zhidao|scan-zhidao``.

    ``commands`` is the core's PluginCommands (from hooks.register_commands). ``zoo similar MODEL WORD``
    runs this plugin's command while it is the only ``similar`` installed (``zoo similar word2vec ...`` names it).
    """
    commands.add(export_word2vec, to="export", name="word2vec")
    commands.add(similar, to="similar", name="word2vec")
    commands.describe("zoo-nce's data tools: synthetic and real Baidu Zhidao files.")
    commands.add(synthetic_zhidao)
    commands.add(scan_zhidao)


@click.command("word2vec")
@click.argument("model_ref", metavar="MODEL")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("--binary", is_flag=True, help="The binary word2vec format (default: text).")
def export_word2vec(model_ref, out, binary):
    """Write MODEL's word vectors in the word2vec format (gensim's load_word2vec_format reads it)."""
    import zoo_text

    model = _load_word2vec(model_ref)
    zoo_text.write_word2vec(out, model.config.words, model.input.detach().float(), binary=binary)
    # on stderr: with OUT "-" (or /dev/stdout) the vectors themselves are on stdout
    click.echo(f"wrote {len(model.config.words)} vectors of dim {model.config.dim} to {out}", err=True)


@click.command("similar")
@click.argument("model_ref", metavar="MODEL")
@click.argument("word")
@click.option("-n", "--topn", default=10, show_default=True)
def similar(model_ref, word, topn):
    """Print the nearest neighbours of WORD by cosine similarity."""
    if topn < 1:
        raise ZooError(f"-n/--topn must be at least 1, not {topn}", where="-n/--topn",
                       hint="give how many neighbours to print, e.g. -n 10")
    model = _load_word2vec(model_ref)
    for other, sim in model.most_similar(word, topn):
        click.echo(f"{sim:.4f}\t{other}")


@click.command("synthetic-zhidao")
@click.argument("out", type=click.Path(dir_okay=False))
@click.option("-n", "--records", default=100_000, show_default=True)
@click.option("--tags", default=10_000, show_default=True, help="Tag vocabulary size (up to millions).")
@click.option("--zipf", default=1.1, show_default=True, help="Exponent of the tags' Zipf law.")
@click.option("--seed", default=0, show_default=True)
def synthetic_zhidao(out, records, tags, zipf, seed):
    """Write synthetic Zhidao data: a JSON list (.json), JSON Lines (.jsonl), either gzipped (.gz)."""
    from .zhidao import write_synthetic

    write_synthetic(out, records, tags, seed=seed, zipf=zipf)
    click.echo(f"wrote {records} records over {tags} tags to {out}", err=True)  # OUT may be stdout


@click.command("scan-zhidao")
@click.argument("path", type=click.Path(dir_okay=False))
def scan_zhidao(path):
    """Stream a Zhidao file once: records, splits, vocabulary sizes and malformed records."""
    from .zhidao import scan

    s = scan(path)
    click.echo(f"{s.records} records ({', '.join(f'{k} {v}' for k, v in sorted(s.splits.items()))}); "
               f"{len(s.tags)} tags and {len(s.chars)} characters in the training split")
    if s.malformed.count:
        click.echo(s.malformed.report())
