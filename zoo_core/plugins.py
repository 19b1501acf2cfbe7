"""Plugin discovery, and the tables of specs (models, datasets, recipes, converters) plugins registered.

Plugins are distributions with an entry point in the ``zoo`` group. Each one is
imported, and each of its hooks called, on its own: a plugin that fails is
recorded in :data:`failures` (shown by ``zoo plugins`` and as one warning line)
and the rest keep working. That covers ``SystemExit`` too (a plugin calling
``sys.exit`` must not end ``zoo --help`` silently), a spec of the wrong type, a
name another plugin already registered (zoo_core/commands.py does the same for
commands): the offending plugin's registrations in that hook are dropped, the
first owner keeps its name. ``KeyboardInterrupt`` is the user's
Ctrl-C and still stops the program.

``ZOO_LOAD_PLUGINS`` is a comma-separated list of plugin names (entry-point or
distribution names) to load; empty loads none, and a name that is not installed
gets a warning.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from dataclasses import dataclass

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
# What a plugin can raise that must not escape: ordinary errors and sys.exit(); not KeyboardInterrupt.
ISOLATED = (Exception, SystemExit)
_loaded = False
_specs: dict[str, dict] = {}
_warned = False
_generation = 0


class LoadInterrupted(KeyboardInterrupt):
    """Ctrl-C while a plugin was being imported (the CLI ends with status 130 and one line)."""


def load_plugins() -> None:
    """Import every installed plugin once, isolating failures."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    wanted = os.environ.get("ZOO_LOAD_PLUGINS")
    allowed = None if wanted is None else {n.strip() for n in wanted.split(",") if n.strip()}
    allowed_dists = {_normalize(n) for n in allowed or ()}
    seen: set[str] = set()
    for ep in entry_points("zoo"):
        seen.update((ep.name, ep.dist))
        if allowed is not None and ep.name not in allowed and ep.dist not in allowed_dists:
            continue
        if pm.has_plugin(ep.name):
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except ISOLATED as exc:  # a broken plugin must not take the CLI down
            failures.append(PluginFailure(ep.name, "import", _describe(exc)))
        except KeyboardInterrupt:
            raise LoadInterrupted(ep.name) from None
    for name in sorted(n for n in allowed or () if n not in seen and _normalize(n) not in seen):
        print(f"zoo: warning: ZOO_LOAD_PLUGINS names {name!r}, which is not installed (`zoo plugins` lists what is)",
              file=sys.stderr)


@dataclass(frozen=True)
class EntryPoint:
    """One entry point: ``name = module:attribute`` in ``[group]`` of a distribution's entry_points.txt."""

    name: str
    value: str
    dist: str  # the distribution's name, normalised (PEP 503: zoo_nice and zoo-nice are zoo-nice)

    def load(self):
        """Import the module and return the object the entry point names."""
        module, _, attribute = self.value.partition(":")
        found = importlib.import_module(module.strip())
        for part in filter(None, attribute.strip().split(".")):
            found = getattr(found, part)
        return found


def entry_points(group: str) -> list[EntryPoint]:
    """The entry points of ``group`` of the installed distributions, as importlib.metadata finds them.

    The ``*.dist-info`` and ``*.egg-info`` folders on ``sys.path`` are read directly, the first
    distribution of a name winning as in importlib.metadata: importing importlib.metadata (email,
    zipfile, csv, ...) took a third of ``zoo list``.
    """
    found: list[EntryPoint] = []
    dists: set[str] = set()
    for folder in sys.path:
        try:
            names = os.listdir(folder or ".")
        except OSError:  # a zip file, or a folder that is gone
            continue
        for name in names:
            if not name.endswith((".dist-info", ".egg-info")):
                continue
            dist = _normalize(name.rpartition(".")[0].partition("-")[0])
            if dist in dists:
                continue
            dists.add(dist)
            try:
                with open(os.path.join(folder or ".", name, "entry_points.txt"), encoding="utf-8") as f:
                    text = f.read()
            except OSError:  # no entry points (or an .egg-info file, not a folder)
                continue
            found += [EntryPoint(key, value, dist) for key, value in _section(text, group)]
    return found


def _section(text: str, group: str) -> list[tuple[str, str]]:
    """The ``key = value`` lines of ``[group]`` in an entry_points.txt."""
    pairs, inside = [], False
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            inside = line[1:-1].strip() == group
        elif inside and "=" in line:
            key, _, value = line.partition("=")
            pairs.append((key.strip(), value.strip()))
    return pairs


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, SystemExit):
        return f"SystemExit({exc.code!r}): the plugin called sys.exit()"
    return f"{type(exc).__name__}: {exc}"


def plugin_distribution(name: str) -> tuple[str | None, str | None]:
    """(distribution name, version) of a loaded plugin, when it came from one."""
    plugin = pm.get_plugin(name)
    for p, dist in pm.list_plugin_distinfo():
        if p is plugin:
            return dist.metadata["Name"], dist.version
    from importlib import metadata  # only here: `zoo plugins` shows versions

    for ep in metadata.entry_points(group="zoo"):
        if ep.name == name and ep.dist:
            return ep.dist.name, ep.dist.version
    return None, None


@dataclass(frozen=True)
class PerPlugin:
    """A hook argument made for each plugin: ``make(plugin_name)`` gives the value that plugin gets."""

    make: object


def call_each(hook_name: str, *, before=None, after=None, **kwargs) -> None:
    """Call one hook on every plugin separately; a raising hook becomes a failure.

    ``before(plugin_name)``, if given, runs ahead of each plugin's call, and
    ``after(plugin_name, ok)`` after it (``ok`` is False when the hook raised).
    Each implementation gets only the arguments it names (pluggy's rule), a
    :class:`PerPlugin` one made for its plugin.
    """
    load_plugins()
    for impl in reversed(getattr(pm.hook, hook_name).get_hookimpls()):
        if before is not None:
            before(impl.plugin_name)
        try:
            impl.function(**{name: value.make(impl.plugin_name) if isinstance(value, PerPlugin) else value
                             for name, value in kwargs.items() if name in impl.argnames})
            ok = True
        except ISOLATED as exc:  # one plugin's broken hook must not hide the others
            failures.append(PluginFailure(impl.plugin_name, hook_name, _describe(exc)))
            ok = False
        if after is not None:
            after(impl.plugin_name, ok)


def _collect(hook_name: str, kind: type) -> dict:
    """One hook's specs by name. A plugin whose call fails (a wrong type, a taken name) adds none of them."""
    if hook_name in _specs:
        return _specs[hook_name]
    found: dict = {}
    current = {"plugin": "", "staged": {}}

    def register(spec):
        plugin = current["plugin"]
        if not isinstance(spec, kind):
            raise PluginError(f"{hook_name} got {type(spec).__name__}, expected {kind.__name__}",
                              where=f"plugin {plugin}")
        spec = _with_plugin(spec, plugin)
        owner = found.get(spec.name) or current["staged"].get(spec.name)
        if owner is not None:
            raise PluginError(
                f"two plugins register the {kind.__name__[:-4].lower()} {spec.name!r}: "
                f"{owner.plugin!r} and {spec.plugin!r}; {spec.plugin!r} was skipped",
                hint="uninstall one of them, or set ZOO_LOAD_PLUGINS to the ones you want")
        current["staged"][spec.name] = spec

    def before(plugin):
        current.update(plugin=plugin, staged={})

    def after(plugin, ok):
        if ok:
            found.update(current["staged"])

    call_each(hook_name, before=before, after=after, register=register)
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


def generation() -> int:
    """How many times the plugins were reset: what was built from the loaded plugins is stale when it changed."""
    return _generation


def reset() -> None:
    """Forget loaded plugins and collected specs (for tests)."""
    global _loaded, _warned, _generation
    for name, _ in list(pm.list_name_plugin()):
        pm.unregister(name=name)
    failures.clear()
    _specs.clear()
    _loaded = False
    _warned = False
    _generation += 1


def warn_failures() -> None:
    """Print one warning line to stderr if any plugin failed (once per process)."""
    global _warned
    if failures and not _warned:
        _warned = True
        names = ", ".join(sorted({f.plugin for f in failures}))
        print(f"zoo: warning: plugin(s) failed and were skipped: {names} (see `zoo plugins`)", file=sys.stderr)
