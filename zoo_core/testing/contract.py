"""Contract tests every plugin runs with one class.

In a plugin's ``tests/test_contract.py``::

    from zoo_core.testing.contract import ContractTests

    class TestContract(ContractTests):
        plugin = "myplugin"   # the name of the plugin's entry point in the `zoo` group

They check that the plugin imports, that its hooks register well-formed specs
whose targets import, that its registry entries validate and point at things it
registers, that every model builds from its tiny config and runs forward, and
that save -> publish to a loopback Hub -> pull -> load is bit-exact, and that its
``zoo serve`` demos (if any) build and answer on a tiny model.
"""

from __future__ import annotations

import dataclasses

import pytest


class ContractTests:
    """Subclass and set ``plugin``; pytest collects the ``test_*`` methods."""

    plugin: str = ""

    # -- helpers ---------------------------------------------------------------------------

    @pytest.fixture
    def zoo(self, monkeypatch):
        """The plugin manager with installed plugins loaded afresh."""
        from zoo_core import plugins

        monkeypatch.delenv("ZOO_LOAD_PLUGINS", raising=False)
        plugins.reset()
        plugins.load_plugins()
        yield plugins
        plugins.reset()

    def _own(self, table: dict) -> list:
        return [spec for spec in table.values() if spec.plugin == self.plugin]

    def _tiny(self, spec):
        from zoo_core.model import ZooModel

        cls = spec.load()
        assert issubclass(cls, ZooModel), f"{spec.target} is not a zoo_core.model.ZooModel"
        return cls.from_config(dict(spec.tiny_config))

    # -- the contract ----------------------------------------------------------------------

    def test_plugin_is_installed_and_loads(self, zoo):
        assert self.plugin, "set `plugin` to your entry point's name"
        errors = [f for f in zoo.failures if f.plugin == self.plugin]
        assert not errors, f"plugin {self.plugin} failed: {errors}"
        assert zoo.pm.has_plugin(self.plugin), f"no plugin {self.plugin!r} in the `zoo` entry-point group"

    def test_hooks_register_something_valid(self, zoo):
        from zoo_core.data import ZooDataset
        from zoo_core.trainer import TrainStep

        models, datasets = self._own(zoo.models()), self._own(zoo.datasets())
        recipes, converters = self._own(zoo.recipes()), self._own(zoo.converters())
        assert models or datasets or recipes or converters, f"{self.plugin} registers nothing"
        for spec in models:
            cls = spec.load()
            assert cls.architecture == spec.name, f"{spec.target}.architecture != {spec.name!r}"
            assert dataclasses.is_dataclass(cls.config_class), f"{spec.target}.config_class is not a dataclass"
            assert spec.task and spec.summary, f"model {spec.name} needs a task and a one-line summary"
        for spec in datasets:
            cls = spec.load()
            assert issubclass(cls, ZooDataset) and cls.name == spec.name, spec.target
        for spec in recipes:
            assert issubclass(spec.load_step(), TrainStep), spec.step
            assert spec.model in zoo.models(), f"recipe {spec.name} names unknown model {spec.model!r}"
            assert spec.dataset in zoo.datasets(), f"recipe {spec.name} names unknown dataset {spec.dataset!r}"
        for spec in converters:
            assert callable(spec.load()), spec.target
        assert not [f for f in zoo.failures if f.plugin == self.plugin]

    def test_registry_entries_validate_and_resolve(self, zoo):
        from zoo_core.registry import catalogue

        catalogue.cache_clear()
        for entry in catalogue().values():
            if entry.plugin != self.plugin:
                continue
            assert entry.architecture in zoo.models(), f"{entry.id}: unknown architecture {entry.architecture!r}"
            if entry.recipe:
                assert entry.recipe in zoo.recipes(), f"{entry.id}: unknown recipe {entry.recipe!r}"
            if entry.convert:
                assert entry.convert["converter"] in zoo.converters(), f"{entry.id}: unknown converter"

    def test_models_build_tiny_and_run_forward(self, zoo):
        import torch

        for spec in self._own(zoo.models()):
            torch.manual_seed(0)
            model = self._tiny(spec).eval()
            with torch.no_grad():
                out = model(*model.example_inputs(2))
            tensors = [out] if torch.is_tensor(out) else [t for t in _flatten(out) if torch.is_tensor(t)]
            assert tensors, f"{spec.name}.forward returned no tensor"
            assert all(torch.isfinite(t.float()).all() for t in tensors), f"{spec.name}: non-finite output"

    def test_save_publish_pull_load_is_bit_exact(self, zoo, local_hub, tmp_path):
        import torch

        from zoo_core import hub
        from zoo_core.model import load_folder

        for spec in self._own(zoo.models()):
            torch.manual_seed(0)
            model = self._tiny(spec).eval()
            model.save_pretrained(tmp_path / spec.name)
            commit = local_hub.publish(f"zoo-test/{spec.name}", tmp_path / spec.name)
            folder = hub.pull(local_hub.pin(f"zoo-test/{spec.name}", commit))
            loaded = load_folder(folder)
            ours, theirs = model.state_dict(), loaded.state_dict()
            assert ours.keys() == theirs.keys()
            for key in ours:
                assert torch.equal(ours[key], theirs[key]), f"{spec.name}: {key} differs after the round trip"
            inputs = model.example_inputs(2)
            with torch.no_grad():
                a, b = model(*inputs), loaded(*inputs)
            for x, y in zip(_flatten(a), _flatten(b)):
                if torch.is_tensor(x):
                    assert torch.equal(x, y), f"{spec.name}: outputs differ after the round trip"

    def test_demos_build_and_answer(self, zoo, tmp_path):
        """Each ``zoo serve`` tab the plugin registers builds on a tiny model; its endpoints answer or say why."""
        pytest.importorskip("gradio", reason="zoo serve's demos need the [serve] extra")
        from zoo_core.serve.check import check_demos

        check_demos(self.plugin, tmp_path)


def _flatten(out):
    if isinstance(out, (list, tuple)):
        for o in out:
            yield from _flatten(o)
    elif isinstance(out, dict):
        for o in out.values():
            yield from _flatten(o)
    else:
        yield out
