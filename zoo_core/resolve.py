"""What a model reference means, and where its folder is: the one place that reads a model's name.

A reference is, in this order:

- ``hf-hub:org/repo@revision`` (``hf_hub:`` is accepted too): a Hub repo outside the catalogue,
  pulled at that revision, every file checked against the Hub's listing;
- a folder that exists (a model folder, as ``save_pretrained``, ``zoo train`` and converters write);
- a catalogue id: its pinned Hub weights (pulled and sha256-verified), the weights shipped in an
  installed package (verified where they lie), or its folder in the local store (converted or
  trained here); when it has none of these and names the recipe that trains it, the recipe's model;
- a training recipe's name: the model ``zoo train NAME`` installed in the local store, else the
  run folder it wrote (``runs/NAME/model``).

A string that looks like a path (it holds ``/`` or starts with ``.`` or ``~``) is only ever a
folder: one that does not exist is an error, never a catalogue lookup. ``parse`` says what a
reference is without downloading anything; ``resolve_folder`` returns its folder, pulling when
needed. Nothing here imports torch.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from .errors import ZooError
from .registry import Entry, catalogue, entries_for_recipe
from .store import has_local_model, local_model_dir

HF_PREFIXES = ("hf-hub:", "hf_hub:")  # a Hub repo at a revision, outside the catalogue


@dataclass(frozen=True)
class Reference:
    """What a model reference names, found without downloading anything."""

    text: str  # the reference as given
    kind: str  # "hub-repo", "folder", "catalogue" or "recipe"
    path: Path | None = None  # "folder": the folder
    entry: Entry | None = None  # "catalogue": the entry
    recipe: str | None = None  # "recipe": the recipe's name
    repo_id: str | None = None  # "hub-repo": the repo and the revision asked for
    revision: str | None = None


def hub_repo(text: str) -> tuple[str, str] | None:
    """``(repo_id, revision)`` of an ``hf-hub:org/repo@revision`` reference (revision ``main`` when
    none is given); None for any other reference."""
    for prefix in HF_PREFIXES:
        if text.startswith(prefix):
            repo, _, revision = text[len(prefix):].partition("@")
            return repo, revision or "main"
    return None


def looks_like_path(text: str) -> bool:
    """Whether ``text`` can only be a path (catalogue ids and recipe names never hold ``/``)."""
    return "/" in text or os.sep in text or text.startswith((".", "~"))


def parse(ref: str | os.PathLike) -> Reference:
    """Say what ``ref`` names (see the module's docstring for the order); a ZooError when it names nothing.

    The error for a path that does not exist says so (with the recipe to train when the path is a
    recipe's run folder); for an unknown name, it suggests the closest catalogue id or recipe.
    """
    text = os.fspath(ref)
    found = hub_repo(text)
    if found is not None:
        return Reference(text, "hub-repo", repo_id=found[0], revision=found[1])
    try:
        path = Path(text).expanduser()
    except RuntimeError:  # ~user of a user this machine does not know: the path as written, which is not there
        path = Path(text)
    if path.is_dir():
        return Reference(text, "folder", path=path)
    if looks_like_path(text):
        _refuse_file(path, text)
        raise ZooError("no such model folder", where=text, hint=_missing_folder_hint(path))
    entry = catalogue().get(text)
    if entry is not None:
        return Reference(text, "catalogue", entry=entry)
    from . import plugins

    recipes = plugins.recipes()
    if text in recipes:
        return Reference(text, "recipe", recipe=text)
    _refuse_file(path, text)
    from .errors import did_you_mean

    raise did_you_mean("model", text, [*catalogue(), *recipes],
                       otherwise="`zoo list` shows the catalogue's models; a model folder or "
                                 "hf-hub:ORG/REPO@REVISION works too")


def _refuse_file(path: Path, text: str) -> None:
    if path.exists():
        raise ZooError(f"{text} is a file, not a model folder", where=text,
                       hint="give the folder that holds config.json and model.safetensors")


def _missing_folder_hint(path: Path) -> str:
    """What to do about a model folder that does not exist: train the recipe whose run folder it is."""
    from . import plugins

    for name in plugins.recipes():
        if path == run_model_folder(name):
            return f"train it with `zoo train {name}`, or give another model folder or a catalogue id"
    return "check the path, or give a catalogue id"


def resolve_folder(ref: str | os.PathLike) -> Path:
    """The model folder ``ref`` names, pulled (and verified) when needed.

    ``ref`` is ``hf-hub:org/repo@revision``, a folder, a catalogue id, or a
    training recipe's name (the model ``zoo train NAME`` installed, else its
    run folder ``runs/NAME/model``). Raises a ZooError saying what to do when
    the name is unknown or its weights are not here and cannot be downloaded.
    """
    found = parse(ref)
    if found.kind == "hub-repo":
        from . import hub

        return hub.pull_repo(found.repo_id, revision=found.revision)
    if found.kind == "folder":
        return found.path
    if found.kind == "catalogue":
        return entry_folder(found.entry)
    return recipe_folder(found.recipe)


def entry_folder(entry: Entry, *, run_folder: bool = True) -> Path:
    """The folder of a catalogue entry's weights: pulled at its Hub pin, shipped in a package, or in the
    local store; else (with ``run_folder``) the run folder of the recipe that trains it.

    Raises a ZooError saying how to get the weights when there are none here.
    """
    if entry.hub is not None:
        from . import hub

        return hub.pull(entry.hub)
    if entry.package is not None:  # shipped inside an installed package: verified where it lies
        from .packaged import resolve

        return resolve(entry.package, entry.source)
    if has_local_model(entry.id):
        return local_model_dir(entry.id)
    if run_folder and entry.recipe:
        trained = _trained_folder(entry.recipe)
        if trained is not None:
            return trained
    how = entry.weights.get("instructions") or ""
    command = f"zoo train {entry.recipe or entry.id}"
    if entry.convert:
        hint = f"run `zoo pull {entry.id} --from SOURCE` to convert the official weights. {how}".strip()
    else:  # the entry's instructions alone when they already give the command: not the same thing twice
        hint = how if command in how else f"train it with `{command}`. {how}".strip()
    raise ZooError(f"the weights of {entry.id!r} are not published on the Hub and none were produced here",
                   where=entry.source, hint=hint)


def run_model_folder(recipe: str) -> Path:
    """Where ``zoo train RECIPE`` writes its best model when no ``--out`` is given: ``runs/RECIPE/model``
    (relative to the working folder, as the run folder is)."""
    from . import plugins

    spec = plugins.recipes().get(recipe)
    out = (spec.defaults.get("out") if spec is not None else None) or f"runs/{recipe}"
    return Path(out) / "model"


def _trained_folder(recipe: str) -> Path | None:
    """The model ``zoo train RECIPE`` produced here: installed in the local store, else in its run folder."""
    for entry in entries_for_recipe(recipe):
        if has_local_model(entry.id):
            return local_model_dir(entry.id)
    folder = run_model_folder(recipe)
    return folder if folder.is_dir() else None


def recipe_folder(recipe: str) -> Path:
    """The model the training recipe ``recipe`` produced here (what ``zoo eval RECIPE`` scores by default):
    the one ``zoo train RECIPE`` installed in the local store, else its run folder ``runs/RECIPE/model``.

    Unlike ``resolve_folder``, a catalogue id of the same name with published weights does not count:
    this is the model trained here. A ZooError naming ``zoo train RECIPE`` when there is none.
    """
    trained = _trained_folder(recipe)
    if trained is not None:
        return trained
    where = run_model_folder(recipe)
    raise ZooError(f"recipe {recipe!r} has no trained model here: none installed in the local store, no run "
                   "folder", where=str(where),
                   hint=f"train it with `zoo train {recipe}`, or name another model: a catalogue id, a model "
                        "folder or hf-hub:ORG/REPO@REVISION")

