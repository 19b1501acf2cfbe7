"""Which models ``zoo serve`` shows: the demos plugins register, and the catalogue models available here.

Nothing here imports gradio or torch. A model is available when its weights are
on this machine (pulled, converted, trained or shipped in a package); every
other catalogue model with a demo gets the line that says how to get it, the
hint ``zoo pull`` gives.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import PluginError, ZooError
from ..specs import import_target

AVAILABLE = ("verified", "pulled", "local")  # model_state values whose weights are here


@dataclass(frozen=True)
class DemoSpec:
    """A plugin's tab for the models of one architecture: ``target`` names ``build(tab)``."""

    architecture: str
    target: str
    plugin: str = ""

    def load(self):
        """Import and return the build function."""
        return import_target(self.target)


@dataclass(frozen=True)
class Served:
    """One model of the page: a catalogue id or a folder, its demo, and (when absent) how to get it."""

    name: str  # catalogue id, or the folder given on the command line
    architecture: str
    summary: str = ""
    demo: DemoSpec | None = None
    ref: str = ""  # what load_model gets ("" when not available)
    how: str = ""  # why it is not here and what to run, when it is not available

    @property
    def available(self) -> bool:
        """Whether the weights are here and a plugin can show them."""
        return bool(self.ref) and self.demo is not None


def demos() -> dict[str, DemoSpec]:
    """Every registered demo by architecture; a plugin that registers a taken one is reported and skipped."""
    from .. import plugins

    found: dict[str, DemoSpec] = {}
    current = {"plugin": "", "staged": {}}

    def register(architecture: str, target: str) -> None:
        plugin = current["plugin"]
        if not isinstance(architecture, str) or not isinstance(target, str) or ":" not in target:
            raise PluginError(f"register_demos got ({architecture!r}, {target!r})", where=f"plugin {plugin}",
                              hint='call register("architecture", "package.module:build")')
        owner = found.get(architecture) or current["staged"].get(architecture)
        if owner is not None:
            raise PluginError(f"two plugins register a demo for {architecture!r}: {owner.plugin!r} and {plugin!r}; "
                              f"{plugin!r} was skipped", hint="uninstall one of them, or set ZOO_LOAD_PLUGINS")
        current["staged"][architecture] = DemoSpec(architecture, target, plugin)

    def before(plugin):
        current.update(plugin=plugin, staged={})

    def after(plugin, ok):
        if ok:
            found.update(current["staged"])

    plugins.call_each("register_demos", before=before, after=after, register=register)
    return found


def how_to_get(entry) -> str:
    """What to run to get a catalogue model's weights here: the advice of ``zoo pull ID``, found without downloading."""
    from ..weights import model_state

    if entry.hub is not None:
        if model_state(entry) == "corrupt":
            return f"its cached files do not match the pin: run `zoo cache verify {entry.id}` to download them again"
        return f"run `zoo pull {entry.id}` to download it (pinned, sha256-checked)"
    if entry.convert and _converter_fetches(entry):
        return (f"run `zoo pull {entry.id}` to download the original weights and convert them here, "
                f"or `zoo pull {entry.id} --from SOURCE` with files you already have")
    try:  # nothing to download: the error `zoo pull ID` raises says what to do
        from ..resolve import resolve_folder

        resolve_folder(entry.id)
    except ZooError as exc:
        return exc.hint or exc.what
    return ""


def _converter_fetches(entry) -> bool:
    """Whether the entry's converter can download its own sources (``zoo pull ID`` alone then works)."""
    from .. import plugins

    spec = plugins.converters().get(entry.convert.get("converter", ""))
    return bool(getattr(spec, "fetch", None))


def _folder_model(folder: Path, table: dict[str, DemoSpec]) -> Served:
    try:
        architecture = json.loads((folder / "config.json").read_text(encoding="utf-8"))["architecture"]
    except (OSError, ValueError, KeyError, TypeError):
        raise ZooError("not a zoo model folder (no config.json naming an architecture)", where=str(folder),
                       hint="give a catalogue id, or a folder written by `zoo train` or `zoo convert`") from None
    demo = table.get(architecture)
    how = "" if demo else f"no installed plugin has a demo for the architecture {architecture!r}"
    return Served(str(folder), architecture, f"model folder ({architecture})", demo, str(folder), how)


def served_models(names=()) -> list[Served]:
    """The models of the page: every catalogue model with a demo (or the ``names`` asked for), in catalogue order.

    A name is a catalogue id or a model folder. Unknown ids are an error with a suggestion;
    models that are not here come back with ``how`` set and no ``ref``.
    """
    from ..registry import catalogue, get_entry
    from ..weights import model_state

    table = demos()
    out = []
    if names:
        entries = []
        for name in names:
            folder = Path(name).expanduser()
            if folder.is_dir():
                out.append(_folder_model(folder, table))
            else:
                entries.append(get_entry(name))
    else:
        entries = [e for e in catalogue().values() if e.architecture in table]
    for entry in entries:
        demo = table.get(entry.architecture)
        if demo is None:
            out.append(Served(entry.id, entry.architecture, entry.summary,
                              how=f"no installed plugin has a demo for the architecture {entry.architecture!r}"))
        elif model_state(entry) in AVAILABLE:
            out.append(Served(entry.id, entry.architecture, entry.summary, demo, entry.id))
        else:
            out.append(Served(entry.id, entry.architecture, entry.summary, demo, how=how_to_get(entry)))
    return out
