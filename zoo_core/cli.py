"""The ``zoo`` command line.

Commands that only read the catalogue (``--help``, ``list``, ``info``,
``plugins``, ``cache``) never import torch; the ones that run models import it
inside their bodies.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from . import plugins
from .commands import CommandGroup, commands_by_plugin, load_plugin_commands
from .errors import ZooError
from .options import parse_key_values


class ZooGroup(CommandGroup):
    """Turns ZooErrors into a short message and exit code 1; plugin commands load when needed (commands.py)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ZooError as exc:
            click.echo(f"Error: {exc.render()}", err=True)
            ctx.exit(1)
        except ModuleNotFoundError as exc:  # an environment without a package some code needs: say which
            if not exc.name:
                raise
            missing = ZooError(f"the Python package {exc.name!r} is not installed, and this command needs it",
                               where=_importer(exc),
                               hint=f"pip install {exc.name.partition('.')[0]} (and tell the maintainers of "
                                    "the package that imported it: it should declare it)")
            click.echo(f"Error: {missing.render()}", err=True)
            ctx.exit(1)


def _importer(exc: BaseException) -> str | None:
    """The file of the innermost frame of a traceback that is not importlib's: who imported the missing module."""
    tb, where = exc.__traceback__, None
    while tb is not None:
        name = tb.tb_frame.f_code.co_filename
        if not name.startswith("<frozen"):
            where = f"{name}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


@click.group(cls=ZooGroup, lazy={"serve": "zoo_core.serve.command:serve_command",
                                 "release": "zoo_core.release:command"})
@click.version_option(package_name="zoo-core")
@click.option("--registry", "registry_files", multiple=True, type=click.Path(dir_okay=False),
              help="An extra registry file (also ZOO_REGISTRY, separated by ':').")
def cli(registry_files):
    """A zoo of the models of kexue.fm: NICE, GAN-QP, O-GAN, DGCNN, NCE and GPT2_ML."""
    from .registry import add_registry_file

    for path in registry_files:
        add_registry_file(path)


# -- catalogue ---------------------------------------------------------------------------


def _rows(pattern: str | None, task: str | None) -> list[dict]:
    from .registry import search
    from .weights import model_state

    archs = plugins.models()
    return [{"id": e.id, "task": e.task, "plugin": e.plugin, "installed": e.architecture in archs,
             "state": model_state(e), "summary": e.summary,
             "hub": f"{e.hub.repo_id}@{e.hub.revision[:7]}" if e.hub else None}
            for e in search(pattern, task=task)]


@cli.command("list")
@click.argument("pattern", required=False)
@click.option("--task", help="Only models of this task.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_(pattern, task, as_json):
    """List the zoo: catalogue, installed plugins and local state in one table.

    State is one of: verified (every file's sha256 matched the pin, and its
    size and mtime have not changed since: `zoo cache verify` re-reads every
    byte), pulled, corrupt, absent (on the Hub, not pulled), local (produced
    here by convert or train), not published (no Hub weights yet; `zoo info
    NAME` says how to get them).
    """
    rows = _rows(pattern, task)
    plugins.warn_failures()
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no models match" if (pattern or task) else "the catalogue is empty")
        return
    headers = ["id", "task", "plugin", "installed", "state", "summary"]
    table = [[r["id"], r["task"], r["plugin"], "yes" if r["installed"] else "no", r["state"], r["summary"]]
             for r in rows]
    widths = [max(len(h), *(len(str(row[i])) for row in table)) for i, h in enumerate(headers[:-1])]
    fmt = "  ".join(f"{{:{w}}}" for w in widths) + "  {}"
    click.echo(fmt.format(*headers))
    for row in table:
        click.echo(fmt.format(*row))
    if any(r["state"] == "verified" for r in rows):
        click.echo("verified: sha256 matched the pin, size and mtime unchanged since; "
                   "`zoo cache verify` re-hashes every byte")


@cli.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def info(name, as_json):
    """Everything the catalogue knows about one model."""
    from .registry import get_entry
    from .weights import model_state

    entry = get_entry(name)
    data = entry.to_json()
    data["installed"] = entry.architecture in plugins.models()
    data["state"] = model_state(entry)
    if as_json:
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(f"{entry.id}: {entry.summary}")
    click.echo(f"  task: {entry.task}    architecture: {entry.architecture}    plugin: {entry.plugin}"
               f" ({'installed' if data['installed'] else 'not installed'})")
    click.echo(f"  licence: {entry.license}")
    for k, v in entry.links.items():
        click.echo(f"  {k}: {v}")
    for m in entry.metrics:
        click.echo(f"  metric {m['name']} = {m['value']}{(' ' + m['unit']) if m.get('unit') else ''}"
                   f" on {m['dataset']} ({m['protocol']}; {m['source']})")
    if entry.hub:
        size = sum(f.size for f in entry.hub.files)
        click.echo(f"  hub: {entry.hub.repo_id} @ {entry.hub.revision} ({len(entry.hub.files)} files,"
                   f" {size / 1e6:.1f} MB)    state: {data['state']}")
    elif entry.package:
        size = sum(f.size for f in entry.package.files)
        click.echo(f"  weights: ship with the package {entry.package.module} ({entry.package.path}, "
                   f"{len(entry.package.files)} files, {size / 1e6:.1f} MB)    state: {data['state']}")
    else:
        click.echo(f"  weights: not on the Hub ({entry.weights.get('how')})    state: {data['state']}")
        if entry.weights.get("instructions"):
            click.echo("  how to get them: " + entry.weights["instructions"])
        if entry.weights.get("no_redistribution"):
            click.echo("  not redistributable: " + entry.weights["no_redistribution"])
        for s in entry.weights.get("sources", []):
            extra = f" sha256 {s['sha256']}" if s.get("sha256") else ""
            click.echo(f"    - {s['name']}: {s.get('url', '')} {s.get('note', '')}{extra}".rstrip())
    click.echo(f"  defined at: {entry.source}")


@cli.command("plugins")
@click.option("--json", "as_json", is_flag=True)
def plugins_cmd(as_json):
    """Installed plugins, what they register, and any that failed."""
    load_plugin_commands(cli)  # the plugins, and their commands: a command that failed to attach shows below
    found = {name: {"name": name, "hooks": [], "models": [], "datasets": [], "recipes": [], "converters": [],
                    "status": "ok"} for name, _ in plugins.pm.list_name_plugin()}
    for name in found:
        plugin = plugins.pm.get_plugin(name)
        found[name]["hooks"] = sorted(h.name for h in plugins.pm.get_hookcallers(plugin) or [])
        dist, version = plugins.plugin_distribution(name)
        found[name]["distribution"], found[name]["version"] = dist, version
    for name, paths in commands_by_plugin(cli).items():
        found.setdefault(name, {"name": name, "hooks": []})["commands"] = paths
    for kind, table in (("models", plugins.models()), ("datasets", plugins.datasets()),
                        ("recipes", plugins.recipes()), ("converters", plugins.converters())):
        for spec in table.values():
            found.setdefault(spec.plugin, {"name": spec.plugin, kind: []})[kind].append(spec.name)
    from .errors import RegistryError
    from .registry import catalogue

    try:
        catalogue()  # plugins' catalogue entries: a plugin whose entry id is taken shows up as failed below
    except RegistryError:
        pass  # a broken user registry file is reported by the commands that read the catalogue
    for f in plugins.failures:
        row = found.setdefault(f.plugin, {"name": f.plugin, "hooks": []})
        row["status"] = "failed"
        row.setdefault("errors", []).append({"stage": f.stage, "error": f.error})
    rows = sorted(found.values(), key=lambda r: r["name"])
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no plugins installed (see CONTRIBUTING.md to write one)")
    for r in rows:
        version = f" {r['version']}" if r.get("version") else ""
        click.echo(f"{r['name']}{version}: {r['status']}")
        for kind in ("models", "datasets", "recipes", "converters", "commands"):
            if r.get(kind):
                click.echo(f"  {kind}: {', '.join(sorted(r[kind]))}")
        for e in r.get("errors", []):
            click.echo(f"  failed in {e['stage']}: {e['error']}")


# -- weights -----------------------------------------------------------------------------


@cli.command()
@click.argument("name")
@click.option("--from", "source", metavar="SOURCE",
              help="Produce the weights locally from SOURCE with the entry's converter (e.g. a TF checkpoint prefix).")
@click.option("--option", "options", multiple=True, metavar="KEY=VALUE", help="Extra converter option.")
def pull(name, source, options):
    """Download a model at its pinned commit and verify every file's sha256.

    For models whose weights are not on the Hub, --from converts the original
    weights you downloaded into the zoo's local store; without --from, a converter that
    knows where the originals are published downloads and checks them first. NAME may also be
    hf-hub:ORG/REPO@REVISION (a repo that is not in the catalogue).
    """
    from .registry import get_entry
    from .resolve import hub_repo
    from .weights import pull as pull_weights

    if hub_repo(name) is not None:  # a Hub repo at a revision, as load_model accepts
        if options:
            raise ZooError("--option only applies with --from", hint=f"zoo pull {name}")
        folder = pull_weights(name, source=source)
        click.echo(f"{name}: every file checked against the Hub's listing -> {folder}")
        return
    entry = get_entry(name)  # the one catalogue lookup of this pull: the entry itself goes on
    if source is None and options:
        raise ZooError("--option only applies with --from", hint=f"zoo pull {entry.id} --from SOURCE --option K=V")
    from .store import has_local_model

    fetched = source is None and entry.hub is None and not has_local_model(entry.id)  # a converter's own download
    folder = pull_weights(entry, source=source, options=parse_key_values(options, "--option"))
    if source is not None:
        click.echo(f"converted {source} -> {folder}")
    elif entry.package is not None:
        click.echo(f"{entry.id} ships with the installed package {entry.package.module}: already there, "
                   f"verified {len(entry.package.files)} files -> {folder}")
    elif entry.hub is None and fetched:
        click.echo(f"{entry.id}: downloaded, verified and converted -> {folder}")
    elif entry.hub is None:
        click.echo(f"{entry.id} is already in the local store: {folder}")
    else:
        click.echo(f"{entry.id}: verified {len(entry.hub.files)} files at {entry.hub.revision[:7]} -> {folder}")


@cli.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False))
@click.argument("repo_id")
@click.option("--private", is_flag=True)
@click.option("--message", "-m", help="Commit message.")
def push(folder, repo_id, private, message):
    """Publish a model folder to a Hub repo and print its registry entry."""
    from . import hub

    commit = hub.push(folder, repo_id, private=private, message=message)
    pin = hub.pin_for_folder(folder, repo_id, commit)
    click.echo(f"pushed {folder} to {repo_id} at {commit}")
    click.echo("registry entry `hub` block:")
    import yaml

    click.echo(yaml.safe_dump({"hub": {"repo_id": pin.repo_id, "revision": pin.revision,
                                       "files": [{"path": f.path, "sha256": f.sha256, "size": f.size}
                                                 for f in pin.files]}}, sort_keys=False))


@cli.group()
def cache():
    """The zoo's models in the Hugging Face cache and the local store."""


@cache.command("ls")
@click.option("--json", "as_json", is_flag=True)
def cache_ls(as_json):
    """Pulled or produced zoo models, with their size."""
    from .weights import cached

    rows = [{"id": c.id, "repo_id": c.repo_id, "revision": c.revision, "size": c.size, "verified": c.verified,
             "pinned": c.pinned, "path": str(c.path)} for c in cached()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("no zoo models cached")
        return
    table = [[r["id"], f"{r['size'] / 1e6:.1f} MB", (r["revision"] or "local")[:12],
              {True: "yes", False: "no", None: "-"}[r["pinned"]], str(r["path"])] for r in rows]
    headers = ["id", "size", "revision", "pinned", "path"]
    widths = [max(len(h), *(len(row[i]) for row in table)) for i, h in enumerate(headers[:-1])]
    for row in [headers, *table]:
        click.echo("  ".join(f"{cell:>{w}}" if i == 1 else f"{cell:<{w}}" for i, (cell, w) in
                             enumerate(zip(row, widths))) + "  " + row[-1])


@cache.command("verify")
@click.argument("name", required=False)
@click.option("--no-repair", is_flag=True, help="Only report; do not download again what no longer matches.")
@click.option("--json", "as_json", is_flag=True)
def cache_verify(name, no_repair, as_json):
    """Re-hash every cached file (of NAME, or of every cached model) against its pin; repair by re-download.

    Exits 1 when something is still corrupt or missing afterwards.
    """
    from .weights import verify

    results = verify(name, repair=not no_repair)
    if as_json:
        click.echo(json.dumps([{"id": r.id, "files": r.files, "outcome": r.outcome} for r in results], indent=2))
    elif not results:
        click.echo("no zoo models cached: nothing to verify")
    for r in results if not as_json else ():
        bad = sorted(path for path, state in r.files.items() if state != "ok")
        click.echo(f"{r.id}: {r.outcome}" + (f" ({', '.join(bad)})" if bad else ""))
    if any(r.outcome in ("corrupt", "absent") for r in results):
        raise SystemExit(1)


@cache.command("rm")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
def cache_rm(name, yes):
    """Remove a model's cached or locally produced files."""
    from .registry import get_entry
    from .weights import remove

    from .weights import cached

    entry = get_entry(name)
    if not any(c.id == entry.id for c in cached()):
        click.echo(f"nothing of {entry.id} is cached: nothing to remove")
        return
    if not yes:
        click.confirm(f"remove the cached files of {entry.id}?", abort=True)
    freed = remove(entry.id)
    click.echo(f"removed {entry.id}: {freed / 1e6:.1f} MB freed")


# -- run folders -------------------------------------------------------------------------


@cli.group("runs", invoke_without_command=True)
@click.option("--dir", "root", default="runs", show_default=True, type=click.Path(file_okay=False),
              help="Where to look for run folders.")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def runs(ctx, root, as_json):
    """Training run folders (zoo train --out; default runs/NAME) with their size on disk; `zoo runs rm` removes."""
    if ctx.invoked_subcommand is not None:
        return
    from .runs import describe_holder, find_runs, run_info

    infos = [run_info(folder) for folder in find_runs(root)]
    if as_json:
        click.echo(json.dumps([i.to_json() for i in infos], indent=2))
        return
    if not infos:
        click.echo(f"no run folders under {root}")
        return
    import time

    headers = ["size", "checkpoints", "step", "best", "modified", "path"]
    table = []
    for i in infos:
        best = f"{i.best['metric']}={i.best['value']:.5g}" if i.best and isinstance(i.best.get("value"), float) \
            else "-"
        ck = f"{i.checkpoints} ({i.checkpoint_size / 1e6:.1f} MB)" if i.checkpoints else "0"
        path = str(i.path) + (f"  [in use: {describe_holder(i.holder)}]" if i.holder else "")
        table.append([f"{i.size / 1e6:.1f} MB", ck, "-" if i.step is None else str(i.step), best,
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(i.modified)) if i.modified else "-", path])
    widths = [max(len(h), *(len(row[k]) for row in table)) for k, h in enumerate(headers[:-1])]
    for row in [headers, *table]:
        click.echo("  ".join(f"{cell:>{w}}" if k == 0 else f"{cell:<{w}}" for k, (cell, w) in
                             enumerate(zip(row, widths))) + "  " + row[-1])
    click.echo(f"{sum(i.size for i in infos) / 1e6:.1f} MB in {len(infos)} run folder(s); "
               "`zoo runs rm PATH` removes one (--checkpoints-only keeps its model, log and metrics)")


@runs.command("rm")
@click.argument("folders", nargs=-1, required=True, type=click.Path(file_okay=False))
@click.option("--checkpoints-only", is_flag=True, help="Remove only checkpoints/ (the run cannot be resumed).")
@click.option("--yes", "-y", is_flag=True, help="Do not ask.")
def runs_rm(folders, checkpoints_only, yes):
    """Remove run folders (or only their checkpoints); a run in progress is refused."""
    from .runs import remove_run

    for folder in folders:
        what = f"the checkpoints of {folder}" if checkpoints_only else f"the run folder {folder}"
        if not yes:
            click.confirm(f"remove {what}?", abort=True)
        freed = remove_run(folder, checkpoints_only=checkpoints_only)
        click.echo(f"removed {what}: {freed / 1e6:.1f} MB freed")


# -- training ----------------------------------------------------------------------------


def _train_options(f):
    for opt in reversed([
        click.option("--out", help="Output folder (default runs/NAME)."),
        click.option("--epochs", type=int), click.option("--max-steps", type=int),
        click.option("--batch-size", type=int, help="Global batch size (split across torchrun processes)."),
        click.option("--lr", type=float), click.option("--seed", type=int),
        click.option("--device", help="cpu, cuda, cuda:1 or auto."),
        click.option("--root", type=click.Path(file_okay=False),
                     help="The folder holding the dataset's files, for recipes whose data you supply "
                          "(sets dataset_options.root)."),
        click.option("--limit-train", type=int, help="Use only the first N training examples."),
        click.option("--limit-eval", type=int, help="Use only the first N evaluation examples."),
        click.option("--checkpoint-every", type=int),
        click.option("--keep-checkpoints", type=int,
                     help="How many of the newest checkpoints to keep (default 1: all a resume needs; 0: all)."),
        click.option("--log-every", type=int),
        click.option("--threads", type=int, help="torch threads per process (1 is fastest on a busy machine)."),
        click.option("--no-resume", is_flag=True, help="Start over even if OUT has checkpoints."),
        click.option("--accept-changes", is_flag=True,
                     help="Resume even though settings differ from the checkpoint's (the new ones apply from here)."),
        click.option("--no-progress", is_flag=True),
        click.option("--set", "sets", multiple=True, metavar="KEY=VALUE", help="Any other recipe setting."),
    ]):
        f = opt(f)
    return f


def _train_config(recipe, kwargs):
    from .trainer import TrainConfig

    values = dict(recipe.defaults)
    values.setdefault("out", f"runs/{recipe.name}")
    for key in ("out", "epochs", "max_steps", "batch_size", "lr", "seed", "device", "limit_train", "limit_eval",
                "checkpoint_every", "keep_checkpoints", "log_every", "threads"):
        if kwargs.get(key) is not None:
            values[key] = kwargs[key]
    if kwargs.get("no_resume"):
        values["resume"] = False
    if kwargs.get("accept_changes"):
        values["accept_changes"] = True
    if kwargs.get("no_progress"):
        values["progress"] = False
    values.update(parse_key_values(kwargs.get("sets", ())))
    if kwargs.get("root") is not None:
        values["dataset_options"] = {**dict(values.get("dataset_options") or {}), "root": kwargs["root"]}
    return TrainConfig.from_dict(values)


@cli.command()
@click.argument("name")
@_train_options
@click.option("--no-install", is_flag=True, help="Leave the best model in OUT/model only (not in the local store).")
@click.option("--model-set", "model_sets", multiple=True, metavar="KEY=VALUE",
              help="Change a field of the recipe's model config, e.g. --model-set z_dim=32.")
def train(name, no_install, model_sets, **kwargs):
    """Train a registered recipe; the best model goes to the zoo's local store (runs unchanged under torchrun)."""
    from .trainer import train as run_recipe

    recipe = plugins.get_recipe_spec(name)
    config = _train_config(recipe, kwargs)
    if no_install:
        config.install = False
    # --model-set goes to the Trainer as such: a value the data decides otherwise is refused, naming it
    folder = run_recipe(recipe, config, model_set=parse_key_values(model_sets, "--model-set"))
    for line in _run_summary(Path(config.out), folder, installed=folder != Path(config.out) / "model"):
        click.echo(line)


def _figures(record: dict | None) -> str:
    skip = {"epoch", "step", "time", "train_seconds", "split"}
    return " ".join(f"{k}={v:.6g}" if isinstance(v, float) else f"{k}={v}" for k, v in (record or {}).items()
                    if k not in skip)


def _run_summary(out: Path, model: Path, installed: bool) -> list[str]:
    """What `zoo train` says at the end: the best and last validation, the time, and where everything is."""
    from .progress import _clock_text
    from .runs import run_info

    try:
        metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        metrics = {}
    lines = []
    if metrics.get("elapsed") is not None:
        spent = f"{_clock_text(metrics['elapsed'])} of wall time"
        if metrics.get("eval_seconds"):
            spent += f" ({_clock_text(metrics['eval_seconds'])} of it validating)"
        lines.append(f"trained {metrics.get('steps', '?')} steps in {spent}, summed over resumed runs")
    best, last = metrics.get("best"), metrics.get("last")
    if best:
        lines.append(f"best validation (step {best['step']}, by {best['metric']}): {_figures(best['metrics'])}")
    if last and (not best or last.get("step") != best.get("step")):
        lines.append(f"last validation (step {last.get('step')}): {_figures(last)}")
    info = run_info(out)
    kept = f"{info.checkpoints} checkpoint(s) for resuming, {info.checkpoint_size / 1e6:.1f} MB" \
        if info.checkpoints else "no checkpoints"
    lines.append(f"run folder: {out} ({info.size / 1e6:.1f} MB: log.jsonl, metrics.json, model/, {kept}; "
                 f"`zoo runs rm {out}` removes it)")
    lines.append(f"best model: {model}" + (" (installed in the zoo's store)" if installed else ""))
    return lines


@cli.command("eval")
@click.argument("name")
@click.option("--model", "model_ref",
              help="Catalogue id, model folder or hf-hub:org/repo@rev (default: the model `zoo train NAME` installed, "
                   "else its run folder runs/NAME/model).")
@click.option("--split", default="test", show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--limit-eval", type=int)
@click.option("--root", type=click.Path(file_okay=False), help="The folder holding the dataset's files.")
@click.option("--set", "sets", multiple=True, metavar="KEY=VALUE")
@click.option("--json", "as_json", is_flag=True)
def eval_(name, model_ref, split, device, limit_eval, root, sets, as_json):
    """Evaluate a model with a recipe's metrics on one split."""
    from .loading import load_model
    from .resolve import recipe_folder
    from .trainer import check_extra, evaluate

    recipe = plugins.get_recipe_spec(name)
    config = _train_config(recipe, {"device": device, "limit_eval": limit_eval, "sets": sets, "root": root})
    check_extra(recipe, config)
    # The recipe's architecture only: another model's folder is refused before its weights are read.
    model = load_model(model_ref or recipe_folder(name), device=device, architecture=recipe.model)
    metrics = evaluate(recipe, model, split=split, config=config)
    if as_json:
        click.echo(json.dumps({"recipe": name, "split": split, **metrics}, indent=2))
    else:
        for k, v in metrics.items():
            click.echo(f"{k}: {v:.6g}")


# -- plugin authors ----------------------------------------------------------------------


@cli.command("new-plugin")
@click.argument("name")
@click.option("--dir", "directory", default=".", type=click.Path(file_okay=False), show_default=True,
              help="Where to create zoo-NAME/.")
def new_plugin(name, directory):
    """Scaffold a plugin package whose tests pass as generated."""
    from .scaffold import create_plugin

    folder = create_plugin(name, directory)
    click.echo(f"created {folder}")
    click.echo(f"next: pip install -e {folder} && pytest {folder}/tests")


def main():  # pragma: no cover - console entry
    """Console entry point."""
    cli(prog_name="zoo")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
