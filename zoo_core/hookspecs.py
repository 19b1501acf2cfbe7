"""The hooks a zoo plugin can implement.

Every hook takes a ``register`` callback rather than returning values, so one
plugin can register any number of things and the core can record which plugin
registered what. A plugin that registers a name another plugin owns, a spec
of the wrong type, or a command that would replace an existing one is reported
(``zoo plugins``) and its registrations in that hook are skipped.

Plugin modules that implement these hooks must not import torch at module
level: ``zoo --help`` and ``zoo list`` call them, and they must stay fast.
Point at heavy code with ``"package.module:Name"`` strings instead.
"""

from pluggy import HookimplMarker, HookspecMarker

hookspec = HookspecMarker("zoo")
hookimpl = HookimplMarker("zoo")


@hookspec
def register_models(register):
    """Register model architectures.

    Call ``register(ModelSpec(...))`` once per architecture. ``ModelSpec.target``
    is a ``"module:Class"`` string naming a :class:`zoo_core.model.ZooModel`
    subclass; it is imported only when the model is built.
    """


@hookspec
def register_datasets(register):
    """Register datasets.

    Call ``register(DatasetSpec(...))`` once per dataset. ``DatasetSpec.target``
    names a :class:`zoo_core.data.ZooDataset` subclass.
    """


@hookspec
def register_recipes(register):
    """Register training recipes.

    Call ``register(RecipeSpec(...))``: a recipe names a model architecture,
    a dataset, the plugin's :class:`zoo_core.trainer.TrainStep` and default
    hyper-parameters. ``zoo train NAME`` and ``zoo eval NAME`` run it.
    """


@hookspec
def register_registry_entries(register):
    """Add entries to the weights catalogue.

    Call ``register(path)`` with a YAML file in the registry.yaml format, or
    ``register(entry_dict)`` with one entry. Entries are validated like the
    main registry; an id that is already taken is an error naming both sources.
    """


@hookspec
def register_converters(register):
    """Register weight converters.

    Call ``register(ConverterSpec(...))``. A registry entry whose weights are
    not on the Hub names its converter, and ``zoo pull NAME --from SOURCE``
    runs it into the zoo's local store.
    """


@hookspec
def register_commands(commands, cli):
    """Add click commands to ``zoo`` (loaded only when a command line needs them).

    ``commands`` is this plugin's :class:`zoo_core.commands.PluginCommands`:
    ``commands.add(cmd, to="sample", name="my-flow")`` attaches ``zoo sample
    my-flow`` to one of the verbs the core declares (``sample``, ``generate``,
    ``convert``, ``score``, ``export``, ``similar``, ``answer``: see
    ``zoo_core.commands.VERBS``), and ``commands.add(cmd)`` puts ``zoo PLUGIN
    CMD`` in the plugin's own namespace (``commands.describe(text)`` is its help
    line). A name that is taken is skipped and reported by ``zoo plugins``.

    ``cli``, the top-level click group, is still passed to hooks that name it,
    for plugins written before ``commands``; a command it would replace is put
    back and reported.
    """


@hookspec
def register_demos(register):
    """Add a tab to ``zoo serve`` for the models of an architecture.

    Call ``register("architecture", "package.module:build")``. ``build(tab)``
    is imported only by ``zoo serve`` (it may import gradio at module level)
    and is called inside the model's tab of a ``gradio.Blocks``: it lays out
    gradio components and wires each action with ``tab.on(...)``, which makes
    it an HTTP endpoint, loads the model on first use and turns a ZooError into
    a message in the page. See ``zoo_core.serve.tab.Tab``.
    """
