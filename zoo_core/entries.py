"""Catalogue entries a plugin registers for the models it trains here (``register_registry_entries``).

Imported by plugins' hooks.py: nothing here imports more than the standard library.
"""

from __future__ import annotations


def trained_here(id: str, *, architecture: str, plugin: str, task: str, summary: str, about: dict,  # noqa: A002
                 instructions: str, recipe: str | None = None, no_redistribution: str | None = None) -> dict:
    """The catalogue entry of a model trained here and not (yet) published on the Hub.

    ``zoo train RECIPE`` (``recipe`` defaults to ``id``) installs its best model under ``id``, after
    which ``load_model(id)`` and ``zoo list`` find it; until then ``zoo info id`` shows
    ``instructions`` (how to train it, then how to use it). ``about`` is what the plugin says once
    about where its method comes from: ``{"license": "Apache-2.0", "links": {"paper": ..., "blog": ...,
    "source": ...}}``. ``no_redistribution`` says why ``zoo release`` must not publish the weights
    (the training data's terms).
    """
    weights = {"status": "not-published", "how": "train", "instructions": instructions}
    if no_redistribution:
        weights["no_redistribution"] = no_redistribution
    return {"id": id, "architecture": architecture, "plugin": plugin, "task": task, "summary": summary,
            "license": about["license"], "links": dict(about["links"]), "metrics": [], "hub": None,
            "recipe": recipe or id, "weights": weights}
