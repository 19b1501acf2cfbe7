"""The shape of the ``zoo`` command line: the shared verbs, one namespace per plugin, loaded when needed.

The core declares the verbs plugins share (:data:`VERBS`: ``zoo sample NAME``, ``zoo export
FORMAT``, ...). A plugin attaches its commands in its ``register_commands(commands)`` hook through
:class:`PluginCommands`: to a shared verb, or to its own namespace ``zoo PLUGIN ...`` (created by the
core the first time the plugin puts a command there). A name that is taken, by the core or by another
plugin, is refused here and only here: the first owner keeps it, the newcomer's command is skipped
and ``zoo plugins`` names both.

Plugin commands are attached only when a command line needs them (a plugin's command, ``--help``,
``zoo plugins``): ``zoo list`` imports no plugin's cli.py. Core commands named in ``lazy`` are
imported on first use too.
"""

from __future__ import annotations

import contextlib
import importlib
import sys

import click

from . import plugins
from .errors import did_you_mean

# verb -> (help, whether its first argument is the MODEL: `zoo similar MODEL WORD`)
VERBS: dict[str, tuple[str, bool]] = {
    "sample": ("Draw samples from a generative model.\n\nzoo sample RECIPE [--model MODEL]: one command per recipe.",
               False),
    "generate": ("Generate text with a language model.\n\nzoo generate ARCHITECTURE PROMPT: one command per "
                 "architecture.", False),
    "convert": ("Convert original weights into a model folder.\n\nzoo convert ARCHITECTURE SOURCE OUT: one command "
                "per architecture.", False),
    "score": ("Score predictions with a task's official scorer.\n\nzoo score TASK PREDICTIONS: one command per task.",
              False),
    "export": ("Write a model in another tool's format.\n\nzoo export FORMAT MODEL OUT: one command per format.",
               False),
    "similar": ("Nearest neighbours of a word in word vectors.\n\nzoo similar MODEL WORD", True),
    "answer": ("Answer a question from passages (reading comprehension).\n\nzoo answer MODEL QUESTION", True),
}

# `zoo --help` in sections, so that the core's and the plugins' commands read as one tool
SECTIONS = (
    ("Catalogue and weights", ("list", "info", "pull", "push", "cache")),
    ("Training", ("train", "eval", "runs", "release")),
    ("Using a model (plugins add one command per recipe or architecture)", (*VERBS, "serve")),
    ("Plugins", ("plugins", "new-plugin")),
)


class VerbGroup(click.Group):
    """A verb the core declares and plugins fill: ``zoo sample ganqp-mnist``, ``zoo export word2vec``.

    A verb whose first argument is the model (``zoo similar MODEL WORD``) runs its one installed
    command without naming it; when several plugins give one, ``zoo similar KIND MODEL WORD`` picks.
    """

    def __init__(self, name: str, text: str, model_first: bool = False):
        if model_first:
            text += f" runs the installed command; with several, name one: zoo {name} KIND MODEL ..."
        # model-first: options before MODEL (zoo similar -n 3 MODEL WORD) belong to the command, not the group
        super().__init__(name, help=text, context_settings={"ignore_unknown_options": model_first})
        self.model_first = model_first

    def get_command(self, ctx, name):
        load_plugin_commands(ctx.find_root().command)
        return super().get_command(ctx, name)

    def list_commands(self, ctx):
        load_plugin_commands(ctx.find_root().command)
        return super().list_commands(ctx)

    def resolve_command(self, ctx, args):
        load_plugin_commands(ctx.find_root().command)
        if args and args[0] not in self.commands:
            if not self.commands:
                ctx.fail(f"no installed plugin gives `zoo {self.name}` commands; "
                         "`zoo plugins` lists the installed ones")
            if self.model_first and len(self.commands) == 1:
                (name, command), = self.commands.items()
                return name, command, args
            if self.model_first:
                kinds = sorted(self.commands)
                ctx.fail(f"several plugins give `zoo {self.name}` ({', '.join(kinds)}): name the one for your model, "
                         f"e.g. zoo {self.name} {kinds[0]} {' '.join(args)}")
        return super().resolve_command(ctx, args)


class CommandGroup(click.Group):
    """The top-level ``zoo`` group: the core's commands, the shared verbs and the plugins' namespaces.

    ``lazy`` maps core command names to ``"module:attribute"``, imported on first use.
    """

    def __init__(self, *args, lazy: dict[str, str] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})
        for verb, (text, model_first) in VERBS.items():
            self.add_command(VerbGroup(verb, text, model_first))

    def make_context(self, *args, **kwargs):
        with _stop_on_ctrl_c():  # `zoo --help` lists plugin commands while parsing
            return super().make_context(*args, **kwargs)

    def invoke(self, ctx):
        with _stop_on_ctrl_c():
            return super().invoke(ctx)

    def _import_lazy(self, name: str) -> None:
        module, _, attribute = self.lazy.pop(name).partition(":")
        self.add_command(getattr(importlib.import_module(module), attribute), name)

    def get_command(self, ctx, name):
        if name not in self.commands:
            if name in self.lazy:
                self._import_lazy(name)
            else:
                load_plugin_commands(self)
        return self.commands.get(name)

    def list_commands(self, ctx):
        load_plugin_commands(self)
        return sorted(name for name, command in self.commands.items()
                      if not (isinstance(command, VerbGroup) and not command.commands))

    def format_commands(self, ctx, formatter):
        listed = {name: self.get_command(ctx, name) for name in self.list_commands(ctx)}
        listed = {name: command for name, command in listed.items() if command is not None and not command.hidden}
        width = formatter.width - 6 - max(map(len, listed), default=0)
        namespaces = tuple(sorted(name for name in listed if not any(name in names for _, names in SECTIONS)))
        for title, names in (*SECTIONS[:3], ("Plugins' own commands", namespaces), SECTIONS[3]):
            rows = [(name, listed[name].get_short_help_str(width)) for name in names if name in listed]
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)


class PluginCommands:
    """What a plugin's ``register_commands(commands)`` hook gets: where its commands go.

    ``commands.add(cmd, to="sample", name="my-flow")`` makes ``zoo sample my-flow``;
    ``commands.add(cmd)`` makes ``zoo PLUGIN CMD`` in the plugin's own namespace, whose help line
    ``commands.describe(text)`` sets. A taken name is skipped and reported (``zoo plugins``).
    """

    def __init__(self, root: click.Group, plugin: str, owners: dict):
        self.root, self.plugin, self._owners = root, plugin, owners
        self._help = f"Commands of the {plugin} plugin."

    def recipes(self) -> list[str]:
        """The names of the training recipes this plugin registers (``zoo sample RECIPE`` per recipe)."""
        return sorted(name for name, spec in plugins.recipes().items() if spec.plugin == self.plugin)

    def describe(self, text: str) -> None:
        """The help line of ``zoo PLUGIN`` (the plugin's namespace)."""
        self._help = text
        group = self.root.commands.get(self.plugin)
        if self._owners.get((self.plugin,)) == self.plugin and group is not None:
            group.help = text

    def add(self, command: click.Command, to: str | None = None, *, name: str | None = None) -> None:
        """Attach ``command`` as ``zoo TO NAME`` (TO one of the shared verbs) or ``zoo PLUGIN NAME``.

        NAME defaults to the command's own name.
        """
        name = name or command.name
        if to is not None and to not in VERBS:
            raise did_you_mean("shared command verb", to, VERBS,
                               otherwise="leave `to` out to put the command in the plugin's own namespace")
        group = self.root.commands[to] if to is not None else self._namespace()
        if group is None:
            return
        path = (group.name, name)
        owner = self._owners.get(path)
        if owner is not None:
            _refuse(self.plugin, path, owner, "add it")
            return
        group.add_command(command, name)
        self._owners[path] = self.plugin

    def _namespace(self) -> click.Group | None:
        owner = self._owners.get((self.plugin,))
        if owner == self.plugin:
            return self.root.commands[self.plugin]
        if owner is not None:
            _refuse(self.plugin, (self.plugin,), owner, "use it as its namespace")
            return None
        group = click.Group(self.plugin, help=self._help)
        self.root.add_command(group)
        self._owners[(self.plugin,)] = self.plugin
        return group


@contextlib.contextmanager
def _stop_on_ctrl_c():
    """A Ctrl-C while plugins load ends the program with status 130 and one line (not click's "Aborted!")."""
    try:
        yield
    except plugins.LoadInterrupted:
        print("zoo: interrupted while loading plugins", file=sys.stderr)
        raise SystemExit(130) from None


def _refuse(plugin: str, path: tuple, owner: str, what: str) -> None:
    plugins.failures.append(plugins.PluginFailure(
        plugin, "register_commands",
        f"command `zoo {' '.join(path)}` belongs to {owner!r}; plugin {plugin!r} tried to {what} and was skipped"))


def load_plugin_commands(root: click.Group) -> None:
    """Attach every loaded plugin's commands to ``root``, once per set of loaded plugins.

    Commands attached for an earlier set (tests reset the plugins) are taken off first. A plugin
    that replaces a command through the raw ``cli`` group gets the original put back and a failure
    naming both owners.
    """
    generation = plugins.generation()
    if getattr(root, "_plugin_generation", None) == generation:
        return
    root._plugin_generation = generation
    for group, name, command in getattr(root, "_plugin_added", ()):
        if group.commands.get(name) is command:
            del group.commands[name]
    if isinstance(root, CommandGroup):
        for name in list(root.lazy):  # a plugin must not take a core command's name before it is imported
            root._import_lazy(name)
    core = _command_paths(root)
    owners = {path: "zoo-core" for path in core}
    before_call: dict = {}

    def before(plugin):
        before_call.clear()
        before_call.update(_command_paths(root))

    def after(plugin, ok):
        now = _command_paths(root)
        restored: list[tuple] = []
        for path, command in before_call.items():  # a group comes before its sub-commands
            if any(path[:len(r)] == r for r in restored):
                continue  # put back with its group
            if now.get(path) is not command:
                _put_back(root, path, command)
                restored.append(path)
                _refuse(plugin, path, owners[path], "replace it")
        for path in _command_paths(root):
            owners.setdefault(path, plugin)

    try:
        plugins.call_each("register_commands", before=before, after=after, cli=root,
                          commands=plugins.PerPlugin(lambda plugin: PluginCommands(root, plugin, owners)))
    except KeyboardInterrupt as exc:
        raise plugins.LoadInterrupted(str(exc)) from None
    root._plugin_added = [(_group(root, path), path[-1], command)
                          for path, command in _command_paths(root).items() if path not in core]
    root._plugin_owners = owners


def commands_by_plugin(root: click.Group) -> dict[str, list[str]]:
    """The commands each plugin attached, as typed: ``{"nice": ["zoo sample nice-mnist"], ...}``."""
    load_plugin_commands(root)
    found: dict[str, list[tuple]] = {}
    for path, owner in root._plugin_owners.items():
        if owner != "zoo-core":
            found.setdefault(owner, []).append(path)
    # a namespace group is listed by its commands
    return {plugin: [f"zoo {' '.join(path)}" for path in sorted(paths)
                     if not any(other[:len(path)] == path and other != path for other in paths)]
            for plugin, paths in found.items()}


def _command_paths(group, prefix: tuple = ()) -> dict[tuple, object]:
    """Every command under a click group by its path of names, sub-groups included."""
    paths = {}
    for name, command in getattr(group, "commands", {}).items():
        paths[prefix + (name,)] = command
        paths.update(_command_paths(command, prefix + (name,)))
    return paths


def _group(root, path: tuple):
    group = root
    for name in path[:-1]:
        group = group.commands[name]
    return group


def _put_back(root, path: tuple, command) -> None:
    _group(root, path).commands[path[-1]] = command
