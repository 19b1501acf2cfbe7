"""What a recipe builds, in the order a run needs it: the step's settings, the dataset, then the model.

The data comes first because it decides part of the model: a vocabulary and
its size, a word list. :func:`model_config` merges the data's part
(``ZooDataset.model_config``) over the recipe's model config and the user's
``--model-set``, so the model is born the right size.
"""

from __future__ import annotations

import dataclasses

import torch

from .errors import ZooError
from .step import TrainConfig, build_settings, setting_names
from .typed import json_value, short

__all__ = ["build_dataset", "build_model", "check_extra", "model_config", "recipe_spec", "subset"]


def recipe_spec(recipe):
    """A RecipeSpec from a recipe name (or the spec itself)."""
    if isinstance(recipe, str):
        from .plugins import get_recipe_spec

        return get_recipe_spec(recipe)
    return recipe


def build_dataset(recipe, config: TrainConfig | None = None):
    """The dataset of ``recipe`` (a name or RecipeSpec), not yet split, as a run with ``config`` builds it.

    ``config`` gives the seed and ``dataset_options`` (``--root``, ``--set
    dataset_options=...``) over the recipe's own; default: the recipe's defaults.
    """
    from .plugins import get_dataset_spec

    recipe = recipe_spec(recipe)
    config = config or TrainConfig.from_dict(dict(recipe.defaults))
    options = dict(recipe.dataset_options)
    options.update(config.extra.get("dataset_options", {}))
    return get_dataset_spec(recipe.dataset).load()(seed=config.seed, **options)


def model_config(recipe, dataset=None, settings=None, model_set: dict | None = None) -> dict:
    """The model config of a run: the recipe's, then ``model_set`` (``--model-set``), then the data's part.

    ``dataset.model_config(settings)`` decides what depends on the data; a
    ``--model-set`` value it contradicts is a ZooError naming the key.
    """
    recipe = recipe_spec(recipe)
    model_set = dict(model_set or {})
    ask = getattr(dataset, "model_config", None)  # a dataset that is not a ZooDataset decides nothing
    data = {} if ask is None else ask(settings)
    if not isinstance(data, dict):
        raise ZooError(f"{type(dataset).__name__}.model_config() returned {short(data)}, not a dict",
                       where=f"dataset {recipe.dataset}", hint="return {config key: value} ({} for none)")
    for key, value in data.items():
        if key in model_set and json_value(model_set[key]) != json_value(value):
            raise ZooError(f"--model-set {key}={short(model_set[key])} contradicts the data, which makes it "
                           f"{short(value)}", where=f"--model-set {key}=...",
                           hint=f"leave --model-set {key} out: dataset {recipe.dataset} decides it")
    return {**recipe.model_config, **model_set, **data}


def build_model(recipe, config: dict | None = None):
    """A fresh model of the recipe's architecture from ``config`` (default: the recipe's model config)."""
    from .model import make_config
    from .plugins import get_model_spec

    recipe = recipe_spec(recipe)
    cls = get_model_spec(recipe.model).load()
    values = dict(recipe.model_config) if config is None else dict(config)
    return cls(make_config(cls, values, where=f"the model config of recipe {recipe.name} (recipe, --model-set, "
                                              f"dataset {recipe.dataset})"))


def check_extra(recipe, config: TrainConfig, step_class=None) -> None:
    """Raise a ZooError listing the valid settings if ``config.extra`` holds a key nothing declares.

    Declared are TrainConfig's fields, ``dataset_options`` and the fields of
    the step's ``Settings`` (:func:`zoo_core.step.setting_names`). Then the
    step's Settings are built once, so a wrong type is refused here too,
    before the run folder exists.
    """
    recipe = recipe_spec(recipe)
    step_class = step_class or recipe.load_step()
    valid = ({f.name for f in dataclasses.fields(TrainConfig)} - {"extra"}) | {"dataset_options"}
    valid |= setting_names(step_class)
    unknown = sorted(set(config.extra) - valid)
    if unknown:
        ours = [k for k in unknown
                if k in recipe.defaults and json_value(recipe.defaults[k]) == json_value(config.extra[k])]
        if ours:
            raise ZooError(f"recipe {recipe.name}'s defaults set {', '.join(ours)}, which {step_class.__name__} "
                           "does not declare", where=f"recipe {recipe.name} ({recipe.plugin or 'its plugin'})",
                           hint=f"declare it in {step_class.__name__}.Settings or drop it from the recipe")
        raise ZooError(f"unknown setting(s) for recipe {recipe.name}: {', '.join(unknown)}",
                       where=f"--set {unknown[0]}=...",
                       hint=f"valid settings: {', '.join(sorted(valid))}")
    build_settings(step_class, config.extra)


def subset(data, limit: int | None):
    """The first ``limit`` examples of a split (all of them when ``limit`` is None)."""
    if limit is not None and limit < len(data):
        return torch.utils.data.Subset(data, range(limit))
    return data
