"""``zoo release``: publish the models the recipes trained here, and write their catalogue entries.

For every catalogue entry whose weights come from a recipe (``weights.how: train``) and whose
model ``zoo train`` installed in the local store, a release:

1. skips it, saying why, when its licence is not one known to allow redistribution or its entry
   says the data's terms forbid it (``weights.no_redistribution``), or when the registry already
   pins these very weights (same repo, same sha256 of every file but the card);
2. checks it: evaluates it on its dataset's test split with the recipe's own ``evaluate`` (a model
   whose evaluation raises or gives a non-finite figure is not published) and writes those figures
   into the model card;
3. pushes each checked model to ``ORG/ID`` and reads it back at the new commit, verifying every
   file's sha256;
4. writes the published entries (repo, commit, every file's sha256 and size, the test metrics, the
   licence) into the registry file in one atomic write, replacing an entry of the same id in place and
   leaving the rest of the file, comments included, as it was. If a push fails, nothing is written.

A published entry in a registry file takes the place of the plugin's not-published one of the same
id (zoo_core/registry.py), so once the file ships, ``zoo pull ID`` and ``load_model(ID)`` work for
everyone. Nothing here imports torch until a model is evaluated.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import ZooError
from .pins import HubPin

#: Licences (SPDX ids, compared without case) that allow publishing the weights. Anything else is
#: skipped: a release never guesses that a licence it does not know permits redistribution.
REDISTRIBUTABLE = frozenset({
    "apache-2.0", "mit", "bsd-2-clause", "bsd-3-clause", "isc", "zlib", "unlicense", "cc0-1.0",
    "cc-by-3.0", "cc-by-4.0", "cc-by-sa-3.0", "cc-by-sa-4.0", "cc-by-nc-4.0", "cc-by-nc-sa-4.0",
    "mpl-2.0", "lgpl-2.1", "lgpl-3.0", "gpl-2.0", "gpl-3.0", "agpl-3.0", "openrail", "bigscience-openrail-m",
})
CARD = "README.md"
CARD_BEGIN, CARD_END = "<!-- zoo release: begin -->", "<!-- zoo release: end -->"
METRIC_SOURCE = "measured by `zoo release`"  # marks the metrics a release wrote, so the next one replaces them


@dataclass
class Item:
    """One catalogue entry in a release: what is (or would be) done with it, and why."""

    id: str
    action: str  # "publish", "up to date", "skip", "failed" (its check failed), "published"
    reason: str = ""
    recipe: str | None = None
    repo_id: str | None = None
    folder: Path | None = None  # the trained model in the local store
    split: str | None = None
    protocol: str = ""
    metrics: dict = field(default_factory=dict)
    pin: HubPin | None = None


def plan(names: list[str] | None = None, *, org: str, registry: str | os.PathLike | None = None) -> list[Item]:
    """What a release would do with each entry: publish it, leave it (up to date), or skip it and why.

    ``names`` are catalogue ids (default: every entry whose weights a recipe trains). Nothing is
    evaluated or pushed.
    """
    from .hub.checks import check_repo_id
    from .registry import catalogue, get_entry

    target = _target(registry)
    published = {e.id: e for e in _load(target)}
    files = {e.id: path for path in _registry_files() for e in _load(path)}  # ids a registry file defines
    if names:
        entries = [get_entry(n) for n in dict.fromkeys(names)]
    else:
        entries = sorted((e for e in catalogue().values() if _trained_by_recipe(e)), key=lambda e: e.id)
    items = []
    for entry in entries:
        repo_id = f"{org}/{entry.id}"
        check_repo_id(repo_id)
        item = _plan_one(entry, repo_id, published.get(entry.id))
        where = files.get(entry.id)
        if item.action == "publish" and where is not None and not _same_file(where, target):
            _skip(item, f"its entry is defined in {where}: release it with --registry-file {where}")
        items.append(item)
    return items


def _trained_by_recipe(entry) -> bool:
    if getattr(entry, "package", None) is not None:
        return False  # its weights ship inside a package
    return bool(entry.recipe) and (entry.hub is not None or entry.weights.get("how") == "train")


def _plan_one(entry, repo_id: str, published) -> Item:
    from .store import has_local_model, local_model_dir

    item = Item(entry.id, "publish", recipe=entry.recipe, repo_id=repo_id, folder=local_model_dir(entry.id))
    if not _trained_by_recipe(entry):
        return _skip(item, "its weights are not trained by a recipe (`zoo info " + entry.id + "` says how to get them)")
    refused = entry.weights.get("no_redistribution")
    if refused:
        return _skip(item, f"not redistributable: {refused}")
    if entry.license.lower() not in REDISTRIBUTABLE:
        return _skip(item, f"licence {entry.license!r} is not one known to allow redistribution "
                           f"(zoo_core/release.py REDISTRIBUTABLE)")
    from . import plugins

    recipe = plugins.recipes().get(entry.recipe)
    if recipe is None:
        return _skip(item, f"its recipe {entry.recipe!r} is not registered: install the plugin {entry.plugin!r}")
    if not has_local_model(entry.id):
        return _skip(item, f"not trained here: run `zoo train {entry.recipe}` first")
    dataset = plugins.datasets().get(recipe.dataset)
    splits = dataset.splits if dataset is not None else ("test",)
    item.split = "test" if "test" in splits else splits[-1]  # a corpus with no test split: its held-out one
    pin = published.hub if published is not None else None
    if pin is not None and pin.repo_id == repo_id and _same_weights(item.folder, pin):
        item.action, item.pin = "up to date", pin
        item.reason = f"already published at {pin.repo_id}@{pin.revision[:12]} with these sha256"
    return item


def _skip(item: Item, reason: str) -> Item:
    item.action, item.reason = "skip", reason
    return item


def _same_weights(folder: Path, pin: HubPin) -> bool:
    """Whether ``folder`` holds exactly the pinned files, byte for byte (the card aside: a release writes it)."""
    from .files import sha256_file
    from .hub.push import folder_files

    local = {p.relative_to(folder).as_posix(): p for p in folder_files(folder)}
    local.pop(CARD, None)
    pinned = {f.path: f for f in pin.files if f.path != CARD}
    if set(local) != set(pinned):
        return False
    return all(os.path.getsize(p) == pinned[rel].size and sha256_file(p) == pinned[rel].sha256
               for rel, p in local.items())


def release(names: list[str] | None = None, *, org: str, registry: str | os.PathLike | None = None,
            dry_run: bool = False, device: str = "cpu", limit_eval: int | None = None, root: str | None = None,
            sets: dict | None = None, private: bool = False,
            report: Callable[[Item], None] | None = None) -> list[Item]:
    """Check, push and catalogue the trained models (see the module doc); return every entry's outcome.

    ``report`` is called with each item as its outcome becomes known. Items whose check failed have
    ``action == "failed"`` and the reason; the others are published and written to ``registry``
    (default: the main registry.yaml). A failed push raises a ZooError and writes nothing.
    """
    report = report or (lambda item: None)
    target = _target(registry)
    items = plan(names, org=org, registry=target)
    if dry_run:
        for item in items:
            report(item)
        return items
    from .store import zoo_home

    zoo_home().mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".release-", dir=zoo_home()))
    try:
        staged = {}
        for item in items:
            if item.action == "publish":
                try:
                    staged[item.id] = _check(item, staging, device=device, limit_eval=limit_eval, root=root,
                                             sets=sets or {})
                except ZooError as exc:
                    item.action, item.reason = "failed", f"not published: {exc.what}"
                except Exception as exc:  # noqa: BLE001 - a plugin's evaluate may raise anything; say which
                    item.action, item.reason = "failed", f"not published: evaluation raised {type(exc).__name__}: {exc}"
            if item.action != "publish":
                report(item)
        _push_all([i for i in items if i.id in staged], staged, private=private, report=report)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    done = [i for i in items if i.action == "published"]
    if done:
        write_entries(target, [_entry_dict(i) for i in done])
    return items


def _check(item: Item, staging: Path, *, device, limit_eval, root, sets) -> Path:
    """Evaluate the trained model on its test split and stage a copy whose card holds those figures."""
    from .files import copy_dir
    from .loading import load_model
    from .plugins import get_recipe_spec
    from .trainer import TrainConfig, check_extra, evaluate

    recipe = get_recipe_spec(item.recipe)
    values = {**recipe.defaults, **sets, "device": device}
    if limit_eval is not None:
        values["limit_eval"] = limit_eval
    if root is not None:
        values["dataset_options"] = {**dict(values.get("dataset_options") or {}), "root": root}
    config = TrainConfig.from_dict(values)
    check_extra(recipe, config)
    model = load_model(item.folder, device=device, architecture=recipe.model)
    metrics = evaluate(recipe, model, split=item.split, config=config)
    if not metrics:
        raise ZooError(f"the evaluation of {item.id} on the {item.split} split gave no metrics",
                       where=f"recipe {recipe.name}", hint="its TrainStep.evaluate must return figures")
    bad = {k: v for k, v in metrics.items() if not math.isfinite(v)}
    if bad:
        raise ZooError(f"the evaluation of {item.id} on the {item.split} split gave "
                       + ", ".join(f"{k} = {v}" for k, v in bad.items()), where=str(item.folder),
                       hint=f"the trained weights are broken (diverged?): train again with `zoo train {recipe.name}`")
    item.metrics = metrics
    item.protocol = _protocol(recipe.name, item.split, limit_eval, sets)
    staged = copy_dir(item.folder, staging / item.id)
    card = staged / CARD
    old = card.read_text(encoding="utf-8") if card.is_file() else _default_card(staged)
    card.unlink(missing_ok=True)  # a hard link to the store's file: replace it, never write through it
    card.write_text(with_release_section(old, _card_section(item, recipe)), encoding="utf-8")
    return staged


def _default_card(folder: Path) -> str:
    import json

    from .card import model_card

    return model_card(json.loads((folder / "config.json").read_text(encoding="utf-8")))


def _protocol(recipe_name: str, split: str, limit_eval, sets) -> str:
    text = f"`zoo eval {recipe_name} --split {split}`: the recipe's evaluate"
    if limit_eval is not None:
        text += f", first {limit_eval} examples"
    if sets:
        text += ", with " + ", ".join(f"{k}={v}" for k, v in sorted(sets.items()))
    return text


def _card_section(item: Item, recipe) -> str:
    rows = "\n".join(f"| {k} | {v:.6g} |" for k, v in item.metrics.items())
    return (f"{CARD_BEGIN}\n## Release check\n\n"
            f"Measured by `zoo release` on the {item.split} split of `{recipe.dataset}` "
            f"({item.protocol}):\n\n"
            f"| metric | value |\n|---|---|\n{rows}\n\n"
            f"Reproduce: `zoo eval {recipe.name} --model {item.id} --split {item.split}`\n{CARD_END}\n")


def with_release_section(card: str, section: str) -> str:
    """``card`` with its release section replaced by ``section`` (appended when it has none)."""
    start, end = card.find(CARD_BEGIN), card.find(CARD_END)
    if start != -1 and end > start:
        return card[:start] + section + card[end + len(CARD_END):].lstrip("\n")
    return card.rstrip("\n") + "\n\n" + section


def _push_all(items: list[Item], staged: dict, *, private: bool, report) -> None:
    from . import hub

    pushed: list[Item] = []
    for item in items:
        try:
            commit = hub.push(staged[item.id], item.repo_id, private=private, message=f"zoo release {item.id}")
            pin = hub.pin_for_folder(staged[item.id], item.repo_id, commit)
            hub.pull(pin, progress=False)  # read back at that commit: the Hub serves exactly these bytes
        except ZooError as exc:
            done = "; ".join(f"{i.repo_id}@{i.pin.revision[:12]}" for i in pushed)
            raise ZooError(f"pushing {item.id} to {item.repo_id} failed: {exc.what}", where=exc.where,
                           hint=(f"{exc.hint + '; ' if exc.hint else ''}the registry was not changed"
                                 f"{f' (already pushed, not catalogued: {done})' if done else ''}; "
                                 "run `zoo release` again once the Hub is reachable")) from exc
        item.action, item.pin = "published", pin
        item.reason = f"{pin.repo_id}@{pin.revision[:12]}, {len(pin.files)} files"
        pushed.append(item)
        report(item)


# -- the registry file ---------------------------------------------------------------------


def _target(registry) -> Path:
    """The registry file a release writes: the main one unless told otherwise; it must be one the catalogue reads."""
    from .registry import MAIN_REGISTRY, USER_REGISTRY_ENV

    path = Path(registry) if registry is not None else MAIN_REGISTRY
    if not any(_same_file(path, r) for r in _registry_files()):
        raise ZooError(f"{path} is not a registry file the catalogue reads, so what a release writes there "
                       "would not be seen", where=str(path),
                       hint=f"add it to {USER_REGISTRY_ENV} (or `zoo --registry {path} release ...`), "
                            "or leave --registry-file out to write the main registry.yaml")
    return path


def _registry_files() -> list[Path]:
    """The registry files the catalogue reads: the main one, then the user's (ZOO_REGISTRY, --registry)."""
    from .registry import MAIN_REGISTRY, USER_REGISTRY_ENV, _extra_files

    user = [p for p in os.environ.get(USER_REGISTRY_ENV, "").split(os.pathsep) if p] + list(_extra_files)
    return [MAIN_REGISTRY, *(Path(p) for p in user)]


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def _load(path: Path):
    from .registry import load_registry_file

    return load_registry_file(path)


def _entry_dict(item: Item) -> dict:
    """The published catalogue entry: the entry as it was, with its Hub pin and test metrics, no ``weights``."""
    from .registry import get_entry

    entry = get_entry(item.id)
    import datetime

    today = datetime.date.today().isoformat()
    recipe_metrics = [dict(m) for m in entry.metrics if not str(m.get("source", "")).startswith(METRIC_SOURCE)]
    from .plugins import get_recipe_spec

    dataset = get_recipe_spec(item.recipe).dataset
    measured = [{"name": k, "value": _round(v), "dataset": dataset, "split": item.split,
                 "protocol": item.protocol,
                 "source": f"{METRIC_SOURCE} on {today}"} for k, v in item.metrics.items()]
    out = {"id": entry.id, "architecture": entry.architecture, "plugin": entry.plugin, "task": entry.task,
           "summary": entry.summary, "links": dict(entry.links), "license": entry.license,
           "metrics": recipe_metrics + measured,
           "hub": {"repo_id": item.pin.repo_id, "revision": item.pin.revision,
                   "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in item.pin.files]},
           "recipe": item.recipe}
    if entry.convert:
        out["convert"] = entry.convert
    return out


def _round(value: float) -> float | int:
    return float(f"{value:.6g}")


def write_entries(path: str | os.PathLike, entries: list[dict]) -> None:
    """Put ``entries`` into the registry file ``path`` in one atomic write: each replaces the entry of the
    same id where it stands, or is appended. The rest of the file (comments, order, formatting) is kept
    byte for byte, and the result is validated before it replaces the file."""
    from .files import write_text
    from .registry import parse_registry

    path = Path(path)
    text = path.read_text(encoding="utf-8")
    for entry in entries:
        text = _put_entry(text, entry, str(path))
    parse_registry(text, str(path))  # never write a file the catalogue would refuse
    write_text(path, text)


def _put_entry(text: str, entry: dict, source: str) -> str:
    import yaml

    node = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    models = next((v for k, v in node.value if k.value == "models"), None) if node is not None else None
    if not isinstance(models, yaml.SequenceNode):
        raise ZooError("the registry file has no `models:` list to write into", where=source,
                       hint="start it with `version: 1` and `models: []`")
    lines = text.splitlines(keepends=True)
    block = _dump_entry(entry)
    items = models.value
    for i, item in enumerate(items):
        found = next((v.value for k, v in item.value if k.value == "id"), None)
        if found != entry["id"]:
            continue
        start = item.start_mark.line  # the line of its "- "
        end = items[i + 1].start_mark.line if i + 1 < len(items) else _end_line(models, lines)
        while end > start + 1 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
            end -= 1  # blank lines and comments before the next entry belong to it
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        return "".join(lines[:start]) + _indented(block, indent) + "".join(lines[end:])
    if models.flow_style or not items:  # `models: []`: rewrite the list in block style
        head = "".join(lines[: models.start_mark.line]) + lines[models.start_mark.line][: models.start_mark.column]
        tail = text[models.end_mark.index:]
        kept = "".join(_indented(_dump_entry(_plain(i)), "  ") for i in items)
        return head.rstrip(" ") + "\n" + kept + _indented(block, "  ") + tail.lstrip("\n")
    end = _end_line(models, lines)
    first = lines[items[0].start_mark.line]
    indent = first[: len(first) - len(first.lstrip())]
    prefix = "".join(lines[:end])
    if prefix and not prefix.endswith("\n"):
        prefix += "\n"
    return prefix + _indented(block, indent) + "".join(lines[end:])


def _plain(node) -> dict:
    import yaml

    return yaml.safe_load(yaml.serialize(node))


def _end_line(seq, lines: list[str]) -> int:
    """The line after the last line of a block sequence's content (trailing blanks and comments excluded)."""
    end = seq.end_mark.line + (1 if seq.end_mark.column > 0 else 0)
    end = min(end, len(lines))
    while end > 0 and (not lines[end - 1].strip() or lines[end - 1].lstrip().startswith("#")):
        end -= 1
    return end


class _Flow(dict):
    """A mapping written on one line (`{path: ..., sha256: ..., size: ...}`), as registry.yaml writes pins."""


def _dump_entry(entry: dict) -> str:
    import yaml

    class Dumper(yaml.SafeDumper):
        def increase_indent(self, flow=False, indentless=False):  # lists indented under their key
            return super().increase_indent(flow, False)

    Dumper.add_representer(_Flow, lambda d, data: d.represent_mapping("tag:yaml.org,2002:map", data.items(),
                                                                       flow_style=True))
    entry = dict(entry)
    if entry.get("hub"):
        entry["hub"] = {**entry["hub"], "files": [_Flow(f) for f in entry["hub"]["files"]]}
    return yaml.dump([entry], Dumper=Dumper, sort_keys=False, allow_unicode=True, width=110,
                     default_flow_style=False)


def _indented(block: str, indent: str) -> str:
    return "".join(indent + line if line.strip() else line for line in block.splitlines(keepends=True))


# -- the command ---------------------------------------------------------------------------

import click  # noqa: E402 - cheap, and kept next to the command it serves


@click.command("release")
@click.argument("names", nargs=-1)
@click.option("--org", required=True, help="The Hub user or organisation: each model goes to ORG/ID.")
@click.option("--dry-run", is_flag=True, help="Print what would be evaluated, pushed or skipped, and why; do nothing.")
@click.option("--registry-file", type=click.Path(dir_okay=False),
              help="The registry file to write (default: the main registry.yaml); the catalogue must read it.")
@click.option("--device", default="cpu", show_default=True, help="Where the test-split evaluations run.")
@click.option("--limit-eval", type=int, help="Evaluate on the first N examples only (recorded with the metrics).")
@click.option("--root", type=click.Path(file_okay=False), help="The folder holding a dataset you supply.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="An evaluation setting (recorded too).")
@click.option("--private", is_flag=True, help="Create the Hub repos private.")
def command(names, org, dry_run, registry_file, device, limit_eval, root, sets, private):
    """Publish the models `zoo train` installed: evaluate each on its test split, push it to ORG/ID at a
    new commit, and write its catalogue entry (repo, commit, sha256 of every file, metrics, licence).

    NAMES are catalogue ids (default: every entry whose weights a recipe trains). Entries whose licence
    or data terms forbid redistribution, and entries already published with the same weights, are
    skipped with the reason. Needs a token with write access (HF_TOKEN or `hf auth login`).
    """
    from .options import parse_key_values

    def show(item: Item) -> None:
        where = f" -> {item.repo_id} (after checking it on its {item.split} split)" if item.action == "publish" else ""
        figures = ", ".join(f"{k} {v:.6g}" for k, v in item.metrics.items())
        click.echo(f"{item.action:>10}  {item.id}{where}" + (f": {item.reason}" if item.reason else "")
                   + (f" ({item.split}: {figures})" if figures else ""))

    from .hub.checks import check_repo_id

    target = _target(registry_file)
    try:
        check_repo_id(f"{org}/name")  # a bad --org fails here, before anything is printed
    except ZooError:
        raise ZooError(f"--org {org!r} is not a Hub user or organisation name", where="--org",
                       hint="letters, digits, '-', '_' and '.', no '/': e.g. --org my-org") from None
    if dry_run:
        click.echo(f"plan (dry run: nothing is evaluated, pushed or written); repos under {org}/")
    items = release(list(names) or None, org=org, registry=registry_file, dry_run=dry_run, device=device,
                    limit_eval=limit_eval, root=root, sets=parse_key_values(sets), private=private, report=show)
    published = [i.id for i in items if i.action == "published"]
    if dry_run:
        todo = sum(i.action == "publish" for i in items)
        click.echo(f"{todo} to evaluate and publish, then written to {target}" if todo else
                   f"nothing to publish; {target} would stay as it is")
    elif published:
        click.echo(f"wrote {len(published)} entr{'y' if len(published) == 1 else 'ies'} to {target}: "
                   f"{', '.join(published)}")
    else:
        click.echo(f"nothing published; {target} unchanged")
    failed = [i.id for i in items if i.action == "failed"]
    if failed:
        raise ZooError(f"{len(failed)} model(s) failed their check and were not published: {', '.join(failed)}",
                       where=str(target), hint="the reasons are above; fix them and run `zoo release` again")
