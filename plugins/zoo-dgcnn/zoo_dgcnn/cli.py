"""zoo-dgcnn's commands: ``zoo score sogou`` and ``zoo answer``.

Importing this module costs only click: torch and the model are imported inside the command bodies.
"""

from __future__ import annotations

import json

import click

from zoo_core import ZooError


def attach(commands) -> None:
    """``zoo score sogou`` and ``zoo answer`` (``commands``: the core's PluginCommands).

    ``zoo answer NAME QUESTION`` runs this command while it is the only ``answer`` installed;
    ``zoo answer dgcnn NAME QUESTION`` names it.
    """
    commands.add(score_sogou, to="score", name="sogou")
    commands.add(answer, to="answer", name="dgcnn")


@click.command("sogou")
@click.argument("predictions", type=click.Path(dir_okay=False))
@click.option("--gold", required=True, type=click.Path(dir_okay=False),
              help="qid_answer_expand file: qid<TAB>answer<TAB>alt1|alt2|...")
@click.option("--out", "rows_out", type=click.Path(dir_okay=False), help="Write the per-question rows here.")
@click.option("--json", "as_json", is_flag=True, help="Print {accuracy, f1, score, questions} as JSON.")
def score_sogou(predictions, gold, rows_out, as_json):
    """Score qid<TAB>answer lines exactly as SogouQA's evaluation script does ((accuracy + F1) / 2)."""
    from zoo_core import write_text

    from .sogou import format_rows, read_gold, read_predictions, score

    gold_answers = read_gold(gold)
    result = score(read_predictions(predictions, gold_answers), gold_answers)
    if rows_out:
        write_text(rows_out, format_rows(result["rows"]))
    summary = {k: result[k] for k in ("accuracy", "f1", "score", "questions")}
    if as_json:
        click.echo(json.dumps(summary))
    else:
        click.echo(f"questions: {summary['questions']}\naccuracy: {summary['accuracy']:.6f}\n"
                   f"f1: {summary['f1']:.6f}\nscore: {summary['score']:.6f}")


MAX_PASSAGES_BYTES = 64 << 20  # a passages file for one question


def _read_passages(path: str) -> list[str]:
    """The non-blank lines of a UTF-8 file (a byte-order mark is skipped), read with a size limit."""
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_PASSAGES_BYTES + 1)
    except FileNotFoundError:
        raise ZooError("passages file not found", where=path) from None
    except OSError as exc:
        raise ZooError(f"cannot read the passages file: {exc.strerror}", where=path) from None
    if len(raw) > MAX_PASSAGES_BYTES:
        raise ZooError(f"the passages file is larger than {MAX_PASSAGES_BYTES >> 20} MiB", where=path,
                       hint="give the passages of one question, one a line")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ZooError("the passages file is not UTF-8 text", where=path,
                       hint="one passage per line, UTF-8 (GBK: iconv -f GB18030 -t UTF-8)") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


@click.command("answer")
@click.argument("name")
@click.argument("question")
@click.option("--passage", "passages", multiple=True, help="A passage (repeat for several).")
@click.option("--passages", "passages_file", type=click.Path(dir_okay=False), help="A file of passages, one a line.")
@click.option("--model", "model_ref", help="Model folder or catalogue id (default: NAME).")
@click.option("--device", default="cpu", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the answer, its score and the top candidates as JSON.")
def answer(name, question, passages, passages_file, model_ref, device, as_json):
    """Answer QUESTION from passages with the DGCNN reader NAME.

    NAME is a catalogue id, a model folder, hf-hub:org/repo@rev, or a recipe (the model `zoo train NAME`
    installed, else its run folder runs/NAME/model).
    """
    from zoo_core import load_model

    texts = list(passages) + (_read_passages(passages_file) if passages_file else [])
    if not texts:
        raise ZooError("no passages to read", hint="give --passage TEXT (repeatable) or --passages FILE")
    if not question.strip():
        raise ZooError("the question is empty")
    model = load_model(model_ref or name, device=device, architecture="dgcnn")
    out = model.answer(question, texts, details=True)
    if as_json:
        top = sorted(out["candidates"].items(), key=lambda kv: -kv[1])[:5]
        click.echo(json.dumps({"question": question, "answer": out["answer"], "score": out["score"],
                               "candidates": [{"answer": a, "score": s} for a, s in top]}, ensure_ascii=False))
    elif out["answer"]:
        click.echo(out["answer"])
    else:
        click.echo("(no answer: no span passed the threshold)", err=True)
