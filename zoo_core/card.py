"""Model cards: the README.md of a model folder, built with huggingface_hub's ModelCard."""

from __future__ import annotations

import json


def model_card(config: dict, *, title: str | None = None, summary: str = "", license: str | None = None,  # noqa: A002
               metrics: dict | None = None, source: str | None = None, notes: str = "") -> str:
    """Render a model card with YAML front matter the Hub understands.

    ``metrics`` maps a metric name to a value or to a dict with ``value``,
    ``dataset`` and ``protocol``; they are recorded both in the front matter
    and in a table.
    """
    from huggingface_hub import ModelCard, ModelCardData

    data = ModelCardData(library_name="zoo", license=license, tags=["zoo", config.get("architecture", "")])
    lines = [f"# {title or config.get('architecture', 'model')}", ""]
    if summary:
        lines += [summary, ""]
    if source:
        lines += [f"Source: {source}", ""]
    if metrics:
        lines += ["## Metrics", "", "| metric | value | dataset | protocol |", "|---|---|---|---|"]
        for name, m in metrics.items():
            m = m if isinstance(m, dict) else {"value": m}
            lines.append(f"| {name} | {m.get('value')} | {m.get('dataset', '')} | {m.get('protocol', '')} |")
        lines.append("")
    if notes:
        lines += [notes, ""]
    lines += ["## Config", "", "```json", json.dumps(config, indent=2), "```", "",
              "## Use", "", "```python", "from zoo_core import load_model",
              "model = load_model(\"path/to/this/folder\")", "```", ""]
    card = ModelCard.from_template(data, template_str="---\n{{ card_data }}\n---\n\n{{ body }}", body="\n".join(lines))
    return str(card)
