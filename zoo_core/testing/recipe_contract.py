"""Recipe contract tests: what every training recipe promises, turned on by naming a recipe and a tiny run.

In a plugin's ``tests/test_contract.py`` (its ``tests/conftest.py`` opts in to
the kit, see :mod:`zoo_core.testing.pytest_plugin`)::

    from zoo_core.testing import RecipeContract

    class TestNiceRecipe(RecipeContract):
        recipe = "nice-mnist"
        plugins = "nice,images"     # ZOO_LOAD_PLUGINS for the runs (its MNIST is zoo-images'); None: all
        tiny = {"max_steps": 4, "batch_size": 8, "limit_train": 64, "limit_eval": 16}
        model_set = {"hidden": 16}  # the model config to change, as `zoo train --model-set`

Three tests run, each on CPU, from the recipe's defaults with ``tiny`` on top
(``max_steps`` is required; ``progress`` is off):

``test_resume_is_bit_identical``
    A run of ``max_steps`` N straight, and the same run killed in step
    ``resume_at`` + 1 (default N // 2; the core checkpoints at ``resume_at``)
    then started again: it must say it resumed, train on, and end with every
    tensor of its step-N checkpoint (weights, EMA, optimizer and RNG state,
    the best model) and of ``OUT/model`` equal bit for bit to the straight
    run's, with the same step state and validation history.
``test_torchrun_two_processes_match_one``
    The run under ``torchrun --nproc-per-node 1`` and ``2`` (gloo): the
    weights (and EMA) of both at step ``resume_at`` and N agree within
    ``torchrun_rtol``/``torchrun_atol`` (override :meth:`assert_torchrun_close`
    for a tensor that needs its own rule), and training moved them. A recipe
    that runs in one process only sets ``torchrun_refusal`` to a part of the
    error it gives, and the test checks that two processes are refused with it.
``test_train_installs_what_load_model_loads``
    ``zoo_core.train`` of the tiny run, then ``load_model`` of each catalogue
    id the recipe fills (or of ``OUT/model`` where it has none) gives the
    trained model: in eval mode, every tensor equal to ``OUT/model``'s, the
    same outputs on ``example_inputs``.

Knobs (class attributes): ``resume_at``; ``torchrun_settings`` and
``torchrun_model_set`` (over ``tiny`` and ``model_set`` for the torchrun runs,
e.g. dropout off); ``torchrun_setup``, Python source each torchrun process runs
before training (e.g. ``torch.set_default_dtype(torch.float64)``);
``torchrun_rtol``, ``torchrun_atol``; ``torchrun_refusal``. Data a test makes on
the fly (a corpus file) comes from the ``recipe_settings`` fixture, which a
plugin overrides in its class; it returns settings merged over ``tiny``
(e.g. ``{"dataset_options": {"corpus": str(path)}}``), and may skip the test
when the data is not installed.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import textwrap
from pathlib import Path

import pytest

from .contract import _flatten
from .fixtures_home import loaded_plugins
from .runs import torchrun

__all__ = ["RecipeContract"]

# what a rerun of the same steps may not reproduce: wall-clock time
_CLOCK = frozenset({"elapsed", "eval_seconds", "time", "train_seconds"})


class RecipeContract:
    """Subclass, set ``recipe`` and ``tiny`` (with ``max_steps``); pytest collects the ``test_*`` methods."""

    recipe: str = ""
    plugins: str | None = None
    tiny: dict = {}
    model_set: dict = {}
    resume_at: int | None = None
    torchrun_settings: dict = {}
    torchrun_model_set: dict = {}
    torchrun_setup: str = ""
    torchrun_rtol: float = 1e-5
    torchrun_atol: float = 1e-6
    torchrun_refusal: str | None = None

    # -- what a plugin may override --------------------------------------------------------

    @pytest.fixture
    def recipe_settings(self) -> dict:
        """Settings over ``tiny`` that need a fixture (a file written for the test); default none."""
        return {}

    def assert_torchrun_close(self, key: str, one, two) -> None:
        """Tensor ``key`` after 2 processes (``two``) against 1 (``one``)."""
        import torch

        torch.testing.assert_close(two, one, rtol=self.torchrun_rtol, atol=self.torchrun_atol,
                                   msg=lambda m: f"{key}: 2 processes differ from 1: {m}")

    # -- helpers ---------------------------------------------------------------------------

    @pytest.fixture
    def recipe_zoo(self, monkeypatch, zoo_home):
        """The plugin manager with ``plugins`` loaded (every installed plugin when None), in the session's home."""
        assert self.recipe, f"{type(self).__name__}: set `recipe` to the name of the recipe to test"
        yield from loaded_plugins(monkeypatch, self.plugins)

    def _steps(self) -> tuple[int, int]:
        n = self.tiny.get("max_steps")
        assert isinstance(n, int) and n >= 2, f"{type(self).__name__}.tiny must set max_steps (2 or more)"
        k = self.resume_at if self.resume_at is not None else n // 2
        assert 0 < k < n, f"{type(self).__name__}.resume_at must be between 1 and max_steps - 1, got {k}"
        return n, k

    def _values(self, recipe_zoo, out, settings: dict, **overrides) -> dict:
        recipe = recipe_zoo.get_recipe_spec(self.recipe)
        return {**recipe.defaults, "progress": False, "device": "cpu", **self.tiny, **settings, **overrides,
                "out": str(out)}

    def _config(self, recipe_zoo, out, settings: dict, **overrides):
        from zoo_core import TrainConfig

        return TrainConfig.from_dict(self._values(recipe_zoo, out, settings, **overrides))

    # -- the contract ----------------------------------------------------------------------

    def test_resume_is_bit_identical(self, recipe_zoo, recipe_settings, tmp_path, monkeypatch, capfd):
        from zoo_core import Trainer

        n, k = self._steps()
        recipe = recipe_zoo.get_recipe_spec(self.recipe)
        config = self._config(recipe_zoo, tmp_path / "cut", recipe_settings, checkpoint_every=k, keep_checkpoints=0)
        with monkeypatch.context() as m:
            _crash_in_step(m, recipe.load_step(), k + 1)
            with pytest.raises(KeyboardInterrupt, match="killed by the recipe contract"):
                Trainer(recipe, config, self.model_set).fit()
        assert _newest_checkpoint(tmp_path / "cut") == k, "the killed run did not leave its checkpoint of step k"
        capfd.readouterr()
        Trainer(recipe, config, self.model_set).fit()
        said = capfd.readouterr().err
        assert f"resuming from step {k}/" in said, f"the second run did not resume from step {k}:\n{said[-2000:]}"
        straight = tmp_path / "straight"
        Trainer(recipe, dataclasses.replace(config, out=str(straight)), self.model_set).fit()

        at_k, cut = _tensors(_checkpoint(tmp_path / "cut", k)), _tensors(_checkpoint(tmp_path / "cut", n))
        assert any(not _same(at_k[key], cut[key]) for key in at_k if key.startswith("model/")), \
            f"the weights did not change between step {k} and step {n}: the resumed run did not train"
        _assert_bit_identical(_tensors(_checkpoint(straight, n)), cut, f"checkpoint of step {n}")
        _assert_bit_identical(_tensors(straight / "model"), _tensors(tmp_path / "cut" / "model"), "OUT/model")
        ours, theirs = _trainer_state(_checkpoint(straight, n)), _trainer_state(_checkpoint(tmp_path / "cut", n))
        assert ours == theirs, "the trainer state (step state, validation history) differs after the resume"

    def test_torchrun_two_processes_match_one(self, recipe_zoo, recipe_settings, tmp_path):
        n, k = self._steps()
        model_set = {**self.model_set, **self.torchrun_model_set}
        settings = {**recipe_settings, **self.torchrun_settings}
        script = _TORCHRUN.format(setup=textwrap.dedent(self.torchrun_setup))
        if self.torchrun_refusal is not None:
            spec = {"recipe": self.recipe, "model_set": model_set,
                    "config": self._values(recipe_zoo, tmp_path / "two", settings)}
            (tmp_path / "spec.json").write_text(json.dumps(spec))
            r = torchrun(script, 2, cwd=tmp_path, plugins=self.plugins, check=False, args=["spec.json"])
            assert r.returncode != 0, "two processes were not refused"
            assert self.torchrun_refusal in r.stderr, f"refused without saying {self.torchrun_refusal!r}:\n" \
                                                      f"{r.stderr[-3000:]}"
            return
        for name, nproc in (("one", 1), ("two", 2)):
            spec = {"recipe": self.recipe, "model_set": model_set,
                    "config": self._values(recipe_zoo, tmp_path / name, settings, checkpoint_every=k,
                                           keep_checkpoints=0)}
            (tmp_path / f"{name}.json").write_text(json.dumps(spec))
            torchrun(script, nproc, cwd=tmp_path, plugins=self.plugins, args=[f"{name}.json"])
        for step in (k, n):
            one = _tensors(_checkpoint(tmp_path / "one", step), weights_only=True)
            two = _tensors(_checkpoint(tmp_path / "two", step), weights_only=True)
            assert one.keys() == two.keys(), f"step {step}: 2 processes saved other tensors than 1"
            for key in one:
                self.assert_torchrun_close(f"step {step}: {key}", one[key], two[key])
        at_k, at_n = (_tensors(_checkpoint(tmp_path / "one", s), weights_only=True) for s in (k, n))
        assert any(not _same(at_k[key], at_n[key]) for key in at_k), \
            f"the weights did not change between step {k} and step {n}: nothing was compared"

    def test_train_installs_what_load_model_loads(self, recipe_zoo, recipe_settings, tmp_path):
        import torch

        from zoo_core import load_model, local_model_dir, train
        from zoo_core.registry import entries_for_recipe

        ids = [entry.id for entry in entries_for_recipe(self.recipe)]
        for model_id in ids:  # an earlier test's model there would hide a train() that installs nothing
            shutil.rmtree(local_model_dir(model_id), ignore_errors=True)
        config = self._config(recipe_zoo, tmp_path / "run", recipe_settings, install=True)
        installed = train(self.recipe, config, model_set=self.model_set)
        best = tmp_path / "run" / "model"
        assert installed == (local_model_dir(ids[0]) if ids else best), installed
        reference = load_model(best)
        torch.manual_seed(0)
        inputs = reference.example_inputs(2)
        with torch.no_grad():
            expected = list(_flatten(reference(*inputs)))
        for ref in ids or [best]:
            model = load_model(ref)
            assert not model.training, f"load_model({ref!r}) returned a model in training mode"
            ours, theirs = reference.state_dict(), model.state_dict()
            assert ours.keys() == theirs.keys(), f"load_model({ref!r}) has other tensors than {best}"
            for key in ours:
                assert _same(ours[key], theirs[key]), f"load_model({ref!r}): {key} differs from {best}"
            with torch.no_grad():
                got = list(_flatten(model(*inputs)))
            assert len(got) == len(expected)
            for a, b in zip(expected, got):
                assert not torch.is_tensor(a) or _same(a, b), f"load_model({ref!r}) gives other outputs"


# Each torchrun process: the plugin's setup, then the run the JSON file names.
_TORCHRUN = """
import sys
{setup}
from zoo_core.testing.recipe_contract import fit_from_spec
fit_from_spec(sys.argv[1])
"""


def fit_from_spec(path: str | os.PathLike) -> None:
    """Run ``Trainer.fit`` for the JSON file at ``path``: ``{"recipe", "model_set", "config"}`` (what a
    contract test's torchrun processes do)."""
    from zoo_core import TrainConfig, Trainer
    from zoo_core.plugins import get_recipe_spec

    spec = json.loads(Path(path).read_text())
    Trainer(get_recipe_spec(spec["recipe"]), TrainConfig.from_dict(spec["config"]), spec["model_set"]).fit()


def _crash_in_step(monkeypatch, step_class, step: int) -> None:
    """Make the step's first update of training step ``step`` raise KeyboardInterrupt, as a kill would stop
    it: mid-step, nothing saved after the last checkpoint."""
    init = step_class.__init__

    def crashing_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        per_step, calls = len(self.updates), [0]
        for name in {u.loss for u in self.updates}:
            method = getattr(self, name)

            def counted(*a, _method=method, **kw):
                calls[0] += 1
                if calls[0] == (step - 1) * per_step + 1:
                    raise KeyboardInterrupt("killed by the recipe contract")
                return _method(*a, **kw)

            setattr(self, name, counted)

    monkeypatch.setattr(step_class, "__init__", crashing_init)


def _checkpoint(out: Path, step: int) -> Path:
    from zoo_core.checkpoint import CHECKPOINT_DIR

    folder = Path(out) / CHECKPOINT_DIR / f"step-{step:08d}"
    assert folder.is_dir(), f"no checkpoint of step {step} in {out}"
    return folder


def _newest_checkpoint(out: Path) -> int | None:
    from zoo_core.checkpoint import latest_checkpoint

    found = latest_checkpoint(out)
    return None if found is None else int(found.name.split("-")[1])


def _tensors(folder: Path, weights_only: bool = False) -> dict:
    """Every tensor of every safetensors file under ``folder``, keyed ``relative/path.safetensors:name``;
    ``weights_only``: the model's and the EMA's (not the optimizers', RNG's or best model's)."""
    from safetensors.torch import load_file

    found = {}
    for path in sorted(Path(folder).rglob("*.safetensors")):
        rel = path.relative_to(folder).as_posix()
        if weights_only and not rel.startswith(("model/", "ema")):
            continue
        for key, value in load_file(path).items():
            found[f"{rel}:{key}"] = value
    assert found, f"no tensors under {folder}"
    return found


def _same(a, b) -> bool:
    import torch

    return a.dtype == b.dtype and a.shape == b.shape and torch.equal(a, b)


def _assert_bit_identical(straight: dict, resumed: dict, what: str) -> None:
    assert straight.keys() == resumed.keys(), \
        f"{what}: the resumed run saved other tensors: {sorted(straight.keys() ^ resumed.keys())[:5]}"
    differ = [key for key in straight if not _same(straight[key], resumed[key])]
    assert not differ, f"{what}: {len(differ)} tensor(s) differ after the resume, e.g. {differ[:5]}"


def _trainer_state(folder: Path) -> dict:
    """The checkpoint's JSON state without the wall-clock fields."""
    saved = json.loads((folder / "trainer_state.json").read_text())
    return _without_clock({k: saved.get(k) for k in ("state", "train_step", "schedulers", "ema")})


def _without_clock(obj):
    if isinstance(obj, dict):
        return {k: _without_clock(v) for k, v in obj.items() if k not in _CLOCK}
    if isinstance(obj, list):
        return [_without_clock(v) for v in obj]
    return obj
