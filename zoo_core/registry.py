"""The weights catalogue: registry.yaml, plugin entries and user registries, validated on load.

Errors name the file, the line and the field. Nothing here imports torch.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from .errors import RegistryError, did_you_mean
from .packaged import PackagePin
from .pins import HubPin, check_repo_path, refuse_pickle

MAIN_REGISTRY = Path(__file__).with_name("registry.yaml")
USER_REGISTRY_ENV = "ZOO_REGISTRY"  # extra registry files, separated by os.pathsep


@dataclass(frozen=True)
class Entry:
    """One model of the catalogue."""

    id: str
    architecture: str
    plugin: str
    task: str
    summary: str
    links: dict
    license: str
    metrics: tuple
    hub: HubPin | None
    weights: dict = field(default_factory=dict)
    convert: dict | None = None
    recipe: str | None = None
    source: str = ""  # the file (and line) that defined it
    package: PackagePin | None = None  # weights shipped inside an installed package (zoo_core/packaged.py)

    def to_json(self) -> dict:
        """A JSON-able view, as in the registry file."""
        hub = None
        if self.hub:
            hub = {"repo_id": self.hub.repo_id, "revision": self.hub.revision,
                   "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.hub.files]}
        return {"id": self.id, "architecture": self.architecture, "plugin": self.plugin, "task": self.task,
                "summary": self.summary, "links": self.links, "license": self.license,
                "metrics": list(self.metrics), "hub": hub, "weights": self.weights or None,
                "convert": self.convert, "recipe": self.recipe, "source": self.source,
                "package": self.package.to_json() if self.package else None}


@lru_cache(maxsize=1)
def _validator():
    from jsonschema import Draft202012Validator

    schema = json.loads(Path(__file__).with_name("registry_schema.json").read_text())
    return Draft202012Validator(schema)


def _line_of(node, path) -> int | None:
    """Line (1-based) of the YAML node at a jsonschema error path."""
    import yaml

    line = node.start_mark.line + 1 if node is not None else None
    for part in path:
        if isinstance(node, yaml.MappingNode):
            nxt = next((v for k, v in node.value if k.value == part), None)
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            nxt = node.value[part]
        else:
            nxt = None
        if nxt is None:
            break
        node, line = nxt, nxt.start_mark.line + 1
    return line


def _field_name(path) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


MAX_NODES = 1_000_000  # values in a registry once its aliases are expanded; a real one has a few thousand


def _check_nodes(node, source: str) -> None:
    """Refuse duplicate keys (YAML would keep the last one silently) and alias bombs (aliases of aliases
    that expand to billions of values), before anything is built from the node tree."""
    import yaml

    sizes: dict[int, int] = {}
    stack = [(node, False)]
    while stack:  # post-order without recursion: a deeply nested file must not hit the recursion limit
        current, done = stack.pop()
        key = id(current)
        if key in sizes and not done:
            continue
        children = []
        if isinstance(current, yaml.MappingNode):
            children = [n for pair in current.value for n in pair]
        elif isinstance(current, yaml.SequenceNode):
            children = list(current.value)
        if not done:
            sizes[key] = 0  # visiting: an alias back to an ancestor is refused by the YAML parser itself
            stack.append((current, True))
            stack.extend((c, False) for c in children if id(c) not in sizes)
            if isinstance(current, yaml.MappingNode):
                seen: dict = {}
                for k, _ in current.value:
                    if isinstance(k, yaml.ScalarNode):
                        if k.value in seen:
                            raise RegistryError(f"key {k.value!r} appears twice in one mapping (lines "
                                                f"{seen[k.value]} and {k.start_mark.line + 1})",
                                                where=f"{source}:{k.start_mark.line + 1}",
                                                hint="remove one of them: YAML would silently keep the last")
                        seen[k.value] = k.start_mark.line + 1
            continue
        sizes[key] = 1 + sum(sizes.get(id(c), 0) for c in children)
        if sizes[key] > MAX_NODES:
            raise RegistryError(f"the registry expands to more than {MAX_NODES} values (YAML aliases nested in "
                                "aliases)", where=f"{source}:{current.start_mark.line + 1}",
                                hint="write the entries out instead of through nested aliases")


def _compose(text: str, source: str):
    """YAML node tree (for line numbers) and the plain data, from one parse (libyaml when present)."""
    import yaml

    loader_cls = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader = loader_cls(text)
    try:
        node = loader.get_single_node()
        if node is not None:
            _check_nodes(node, source)
        return node, (loader.construct_document(node) if node is not None else None)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark else source
        raise RegistryError(f"registry is not valid YAML: {getattr(exc, 'problem', exc)}", where=where,
                            hint="fix the YAML syntax at that line") from None
    finally:
        loader.dispose()


def _parsed_before(text: str) -> tuple[dict | None, Path]:
    """What this exact registry text parsed to when it passed this exact schema (kept under ZOO_HOME), or None.

    Importing jsonschema costs more than the rest of ``zoo list`` together, and importing and
    running the YAML parser a third of it: text that validated once is read back from JSON, without
    either; any edit parses and validates afresh.
    """
    import hashlib

    from .store import zoo_home

    schema = Path(__file__).with_name("registry_schema.json").read_bytes()
    digest = hashlib.sha256(schema + b"\0" + text.encode()).hexdigest()
    marker = zoo_home() / "validated" / digest
    try:
        kept = json.loads(marker.read_text(encoding="utf-8"))
        if isinstance(kept, dict) and isinstance(kept.get("models"), list) and \
                len(kept.get("lines", ())) == len(kept["models"]):
            return kept, marker
    except (OSError, ValueError):
        pass  # not seen, or a marker of an older zoo (empty): parse again
    return None, marker


def _keep_parse(marker: Path, models: list, lines: list) -> None:
    """Record a validated parse for :func:`_parsed_before`, if JSON holds it exactly."""
    try:
        text = json.dumps({"models": models, "lines": lines}, ensure_ascii=False)
        if json.loads(text)["models"] != models:  # e.g. YAML dates or integer keys: not kept
            return
        marker.parent.mkdir(parents=True, exist_ok=True)
        tmp = marker.with_name(f".{marker.name}.{os.getpid()}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, marker)  # whole or not at all: a reader never sees half a file
    except (OSError, TypeError, ValueError):
        pass  # a read-only home only costs the next run a parse


def parse_registry(text: str, source: str) -> list[Entry]:
    """Parse and validate registry YAML text; ``source`` names it in errors."""
    kept, marker = _parsed_before(text)
    if kept is not None:
        models, lines = kept["models"], kept["lines"]
        line_of = None
    else:
        node, data = _compose(text, source)
        errors = list(_validator().iter_errors(data))
        if errors:
            from jsonschema.exceptions import best_match

            err = best_match(errors)
            path = list(err.absolute_path)
            line = _line_of(node, path)
            raise RegistryError(f"invalid registry field {_field_name(path)}: {err.message}",
                                where=f"{source}:{line}" if line else source,
                                hint="see the schema in zoo_core/registry_schema.json and CONTRIBUTING.md")
        models = data["models"]
        lines = [_line_of(node, ["models", i]) for i in range(len(models))]

        def line_of(path):
            return _line_of(node, path)
    entries = []
    for i, raw in enumerate(models):
        where = f"{source}:{lines[i]}"

        def at(*path, i=i, where=where):  # the line of a field, where the node tree is at hand
            return f"{source}:{line_of(['models', i, *path])}" if line_of else where

        hub = None
        if raw["hub"] is not None:
            for j, f in enumerate(raw["hub"]["files"]):
                check_repo_path(f["path"], at("hub", "files", j, "path"))
                refuse_pickle(f["path"], at("hub", "files", j, "path"))
            hub = HubPin.from_dict(raw["hub"])
        package = None
        if raw.get("package") is not None:
            check_repo_path(raw["package"]["path"], at("package", "path"))
            for j, f in enumerate(raw["package"]["files"]):
                check_repo_path(f["path"], at("package", "files", j, "path"))
                refuse_pickle(f["path"], at("package", "files", j, "path"))
            package = PackagePin.from_dict(raw["package"])
        entries.append(Entry(
            id=raw["id"], architecture=raw["architecture"], plugin=raw["plugin"], task=raw["task"],
            summary=raw["summary"], links=raw["links"], license=raw["license"], metrics=tuple(raw["metrics"]),
            hub=hub, weights=raw.get("weights") or {}, convert=raw.get("convert"), recipe=raw.get("recipe"),
            source=where, package=package))
    if kept is None:
        _keep_parse(marker, models, lines)
    return entries


#: The largest registry file read (the main one is a few KB): ZOO_REGISTRY=/dev/zero must not fill memory.
MAX_REGISTRY_BYTES = 16 * 1024 * 1024


def load_registry_file(path: str | os.PathLike) -> list[Entry]:
    """Read and validate one registry file (a regular file of at most ``MAX_REGISTRY_BYTES``)."""
    path = Path(path)
    try:
        if not path.is_dir() and path.exists() and not path.is_file():  # a FIFO would block, a device never end
            raise RegistryError("registry file is not a regular file (a device, FIFO or socket)", where=str(path),
                                hint=f"point {USER_REGISTRY_ENV} (or --registry) at a YAML file")
        with open(path, "rb") as f:
            data = f.read(MAX_REGISTRY_BYTES + 1)
        if len(data) > MAX_REGISTRY_BYTES:
            raise RegistryError(f"registry file is larger than {MAX_REGISTRY_BYTES // (1024 * 1024)} MB",
                                where=str(path), hint=f"check the path (set by {USER_REGISTRY_ENV} or --registry); "
                                                      "a registry lists models in a few KB")
        text = data.decode("utf-8")
    except OSError as exc:
        raise RegistryError(f"cannot read registry file: {exc.strerror}", where=str(path),
                            hint=f"check the path (set by {USER_REGISTRY_ENV} or --registry)") from None
    except UnicodeDecodeError as exc:
        raise RegistryError(f"registry file is not UTF-8 text (bad byte at offset {exc.start})", where=str(path),
                            hint="save it as UTF-8") from None
    return parse_registry(text, str(path))


def _plugin_entries(taken: dict[str, str], published: frozenset = frozenset()) -> list[Entry]:
    """Every plugin's catalogue entries. A plugin registering an id that is ``taken`` (by the main
    registry or an earlier plugin: id -> where) is reported in ``zoo plugins`` and adds none of its
    entries; the rest of the catalogue works. A not-published entry whose id is in ``published``
    (a registry file pins its Hub weights: what ``zoo release`` writes) gives way to that one."""
    from . import plugins
    from .errors import PluginError

    found: list[Entry] = []
    staged: list[Entry] = []

    def register(item):
        if isinstance(item, (str, os.PathLike)):
            new = load_registry_file(item)
        elif isinstance(item, dict):
            # JSON is YAML: the entry on line 2, as a registry file would have it, and no YAML writer to import
            text = '{"version": 1, "models": [\n' + json.dumps(item, ensure_ascii=False) + "\n]}\n"
            new = parse_registry(text, f"plugin entry {item.get('id', '?')}")
        else:
            raise RegistryError(f"register_registry_entries got {type(item).__name__}",
                                hint="register a YAML file path or one entry dict")
        for e in new:
            if e.hub is None and e.id in published:
                continue
            where = taken.get(e.id) or next((s.source for s in staged if s.id == e.id), None)
            if where is not None:
                raise PluginError(f"catalogue id {e.id!r} is taken (defined at {where}); this plugin's entries "
                                  "were skipped", where=e.source, hint="rename the plugin's entry")
            staged.append(e)

    def after(plugin, ok):
        if ok:
            found.extend(staged)
            taken.update((e.id, e.source) for e in staged)
        staged.clear()

    plugins.call_each("register_registry_entries", register=register, after=after)
    return found


_extra_files: list[str] = []


def add_registry_file(path: str | os.PathLike) -> None:
    """Add a user registry file for this process (the CLI's ``--registry``)."""
    _extra_files.append(str(path))
    catalogue.cache_clear()


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Entry]:
    """Every entry by id: the main registry, then plugins' entries, then user files.

    An id defined twice in the registry or the user's files is an error naming both places; a
    plugin's entry whose id is taken is skipped, and the plugin reported (``zoo plugins``).
    """
    entries = list(load_registry_file(MAIN_REGISTRY)) if MAIN_REGISTRY.exists() else []
    user = [p for p in os.environ.get(USER_REGISTRY_ENV, "").split(os.pathsep) if p] + _extra_files
    user_entries = [e for path in user for e in load_registry_file(path)]
    published = frozenset(e.id for e in entries + user_entries if e.hub is not None)
    entries += _plugin_entries({e.id: e.source for e in entries}, published)
    entries += user_entries
    table: dict[str, Entry] = {}
    for e in entries:
        if e.id in table:
            raise RegistryError(f"model id {e.id!r} is defined twice: at {table[e.id].source} and at {e.source}",
                                hint="rename one of them or remove the duplicate registry file")
        table[e.id] = e
    _check_installed(table.values())
    return table


def _check_installed(entries) -> None:
    """An entry whose plugin is installed must name an architecture that plugin registers (and the
    plugin that registers its architecture): anything else is a typo that would only show at load time."""
    from . import plugins

    archs = plugins.models()
    installed = {name for name, _ in plugins.pm.list_name_plugin()}
    broken = {f.plugin for f in plugins.failures}  # their specs may be missing through no fault of the entry
    for e in entries:
        spec = archs.get(e.architecture)
        if spec is not None and spec.plugin and spec.plugin != e.plugin and spec.plugin not in broken:
            raise RegistryError(f"entry {e.id!r} says plugin {e.plugin!r}, but its architecture "
                                f"{e.architecture!r} comes from plugin {spec.plugin!r}", where=e.source,
                                hint=f"write plugin: {spec.plugin}")
        if spec is None and e.plugin in installed and e.plugin not in broken:
            own = sorted(name for name, s in archs.items() if s.plugin == e.plugin)
            raise RegistryError(f"entry {e.id!r} names architecture {e.architecture!r}, which its plugin "
                                f"{e.plugin!r} (installed) does not register", where=e.source,
                                hint=f"{e.plugin} registers: {', '.join(own) or 'no architectures'}; "
                                     "`zoo plugins` lists them all")


def get_entry(name: str) -> Entry:
    """The catalogue entry ``name``; an unknown name gets a close-match suggestion."""
    table = catalogue()
    if name in table:
        return table[name]
    raise did_you_mean("model", name, table, otherwise="`zoo list` shows the models in the catalogue")


def entries_for_recipe(recipe: str) -> list[Entry]:
    """The catalogue entries whose weights the training recipe ``recipe`` produces."""
    return [e for e in catalogue().values() if e.recipe == recipe]


def search(pattern: str | None = None, *, task: str | None = None) -> list[Entry]:
    """Catalogue entries whose id matches ``pattern`` and whose task is ``task``.

    ``pattern`` is a glob (``gpt2-*``) when it holds a glob character, else a
    substring; None matches everything.
    """
    import fnmatch

    if pattern and not any(c in pattern for c in "*?["):
        pattern = f"*{pattern}*"
    return [e for e in catalogue().values()
            if (not pattern or fnmatch.fnmatch(e.id, pattern)) and (not task or e.task == task)]
