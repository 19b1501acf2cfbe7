"""Plugin discovery, and the tables of specs (models, datasets, recipes, converters) plugins registered.

Plugins are distributions with an entry point in the ``zoo`` group. Each one is
imported, and each of its hooks called, on its own: a plugin that fails is
recorded in :data:`failures` (shown by ``zoo plugins`` and as one warning line)
and the rest keep working. ``ZOO_LOAD_PLUGINS`` is a comma-separated list of
plugin names (entry-point or distribution names) to load; empty loads none.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from importlib import metadata

import pluggy

from . import hookspecs
from .errors import PluginError, did_you_mean
from .specs import ConverterSpec, DatasetSpec, ModelSpec, RecipeSpec

pm = pluggy.PluginManager("zoo")
pm.add_hookspecs(hookspecs)


@dataclass(frozen=True)
class PluginFailure:
    """A plugin that failed to import, or one of whose hooks raised."""

    plugin: str
    stage: str  # "import" or the hook's name
    error: str


failures: list[PluginFailure] = []
_loaded = False
_specs: dict[str, dict] = {}
_warned = False


def load_plugins() -> None:
    """Import every installed plugin once, isolating failures."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    wanted = os.environ.get("ZOO_LOAD_PLUGINS")
    allowed = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    for ep in metadata.entry_points(group="zoo"):
        dist = ep.dist.name if ep.dist else ep.name
        if allowed is not None and ep.name not in allowed and dist not in allowed:
            continue
        if pm.has_plugin(ep.name):
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not take the CLI down
            failures.append(PluginFailure(ep.name, "import", f"{type(exc).__name__}: {exc}"))


def plugin_distribution(name: str) -> tuple[str | None, str | None]:
    """(distribution name, version) of a loaded plugin, when it came from one."""
    plugin = pm.get_plugin(name)
    for p, dist in pm.list_plugin_distinfo():
        if p is plugin:
            return dist.metadata["Name"], dist.version
    for ep in metadata.entry_points(group="zoo"):
        if ep.name == name and ep.dist:
            return ep.dist.name, ep.dist.version
    return None, None


def call_each(hook_name: str, *, before=None, **kwargs) -> None:
    """Call one hook on every plugin separately; a raising hook becomes a failure.

    ``before(plugin_name)``, if given, runs ahead of each plugin's call.
    """
    load_plugins()
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
        if before is not None:
            before(impl.plugin_name)
        try:
            impl.function(**kwargs)
        except PluginError:
            raise
        except Exception as exc:  # noqa: BLE001 - one plugin's broken hook must not hide the others
            failures.append(PluginFailure(impl.plugin_name, hook_name, f"{type(exc).__name__}: {exc}"))


def _collect(hook_name: str, kind: type) -> dict:
    if hook_name in _specs:
        return _specs[hook_name]
    found: dict = {}
    current = {"plugin": ""}

    def register(spec):
        if not isinstance(spec, kind):
            raise PluginError(
                f"{hook_name} got {type(spec).__name__}, expected {kind.__name__}",
                where=f"plugin {current['plugin']}",
            )
        spec = _with_plugin(spec, current["plugin"])
        if spec.name in found:
            raise PluginError(
                f"two plugins register the {kind.__name__[:-4].lower()} {spec.name!r}: "
                f"{found[spec.name].plugin!r} and {spec.plugin!r}",
                hint="uninstall one of them, or set ZOO_LOAD_PLUGINS to the ones you want",
            )
        found[spec.name] = spec

    call_each(hook_name, before=lambda name: current.update(plugin=name), register=register)
    _specs[hook_name] = found
    return found


def _with_plugin(spec, plugin: str):
    from dataclasses import replace

    return spec if spec.plugin else replace(spec, plugin=plugin)


def models() -> dict[str, ModelSpec]:
    """Every registered model architecture, by name."""
    return _collect("register_models", ModelSpec)


def datasets() -> dict[str, DatasetSpec]:
    """Every registered dataset, by name."""
    return _collect("register_datasets", DatasetSpec)


def recipes() -> dict[str, RecipeSpec]:
    """Every registered training recipe, by name."""
    return _collect("register_recipes", RecipeSpec)


def converters() -> dict[str, ConverterSpec]:
    """Every registered weight converter, by name."""
    return _collect("register_converters", ConverterSpec)


def _lookup(table: dict, name: str, kind: str):
    if name in table:
        return table[name]
    raise did_you_mean(kind, name, table, otherwise=f"`zoo plugins` shows the {kind}s installed plugins register")


def get_model_spec(name: str) -> ModelSpec:
    """The architecture registered as ``name``; unknown names get a suggestion."""
    return _lookup(models(), name, "model architecture")


def get_dataset_spec(name: str) -> DatasetSpec:
    """The dataset registered as ``name``."""
    return _lookup(datasets(), name, "dataset")


def get_recipe_spec(name: str) -> RecipeSpec:
    """The training recipe registered as ``name``."""
    return _lookup(recipes(), name, "training recipe")


def get_converter_spec(name: str) -> ConverterSpec:
    """The converter registered as ``name``."""
    return _lookup(converters(), name, "converter")


def reset() -> None:
    """Forget loaded plugins and collected specs (for tests)."""
    global _loaded, _warned
    for name, _ in list(pm.list_name_plugin()):
        pm.unregister(name=name)
    failures.clear()
    _specs.clear()
    _loaded = False
    _warned = False


def warn_failures() -> None:
    """Print one warning line to stderr if any plugin failed (once per process)."""
    global _warned
    if failures and not _warned:
        _warned = True
        names = ", ".join(sorted({f.plugin for f in failures}))
        print(f"zoo: warning: plugin(s) failed and were skipped: {names} (see `zoo plugins`)", file=sys.stderr)
