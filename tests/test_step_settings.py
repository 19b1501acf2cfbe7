"""A training step's typed Settings, the unknown-setting check fed from them, lr left to the step,
and an Update that changes the weights itself (backward=False)."""

import dataclasses
import json
import sys

import pytest
import torch

from zoo_core import RecipeSpec, TrainConfig, TrainStep, Update, ZooError
from zoo_core.trainer import Trainer, check_extra, train


@dataclasses.dataclass
class ShiftSettings:
    """What ShiftStep reads."""

    noise: float = 0.0
    repeats: int = 1
    mode: str = "mse"
    milestones: list[int] = dataclasses.field(default_factory=list)

    def __post_init__(self):
        if self.repeats < 1:
            raise ZooError(f"repeats must be at least 1, got {self.repeats}", where="--set repeats=...",
                           hint="e.g. --set repeats=2")
        if self.mode not in ("mse", "mae"):
            raise ValueError(f"mode must be mse or mae, got {self.mode!r}")


class ShiftStep(TrainStep):
    """toy-fit's regression, with its options as typed Settings."""

    Settings = ShiftSettings
    monitor = "mse"

    def training_step(self, model, batch):
        x, y = batch
        err = model(x) - y - self.settings.noise * torch.randn_like(y)
        return {"loss": (err ** 2).mean() if self.settings.mode == "mse" else err.abs().mean()}

    @torch.no_grad()
    def evaluate(self, model, loader):
        total, n = 0.0, 0
        for x, y in loader:
            total += float(((model(x) - y) ** 2).sum())
            n += len(y)
        return {"mse": total / n}


class InPlaceStep(ShiftStep):
    """Changes the weights itself: a plain SGD step on the output bias, made by hand, no backward."""

    Settings = None
    updates = (Update("move", optimizers=(), backward=False),)

    def configure_optimizers(self):
        return {}

    def move(self, model, batch):
        x, y = batch
        with torch.no_grad():
            residual = (model(x) - y).mean()
            model.fc2.bias -= 0.5 * residual
        return {"residual": float(residual), "seen": torch.tensor(float(len(y)))}


class PlainStep(ShiftStep):
    Settings = None


class PickyOptimizerStep(ShiftStep):
    def configure_optimizers(self):
        return {"sgd": torch.optim.SGD(self.model.parameters(), lr=self.config.lr)}


def _recipe(step, name="shift-fit", **defaults):
    return RecipeSpec(name=name, model="toy-mlp", dataset="toy-regression", step=f"{__name__}:{step}",
                      defaults={"batch_size": 32, "lr": 0.05, "epochs": 1, **defaults}, plugin="tests")


def _model(zoo_plugins):
    return zoo_plugins.get_model_spec("toy-mlp").load().from_config({})


# --- Settings: typed, defaulted, checked ------------------------------------------------------------


def test_settings_are_typed_with_defaults_from_the_dataclass(zoo_plugins):
    config = TrainConfig.from_dict({"repeats": 3, "milestones": [2, 5]})
    step = ShiftStep(_model(zoo_plugins), config)
    assert step.settings == ShiftSettings(noise=0.0, repeats=3, mode="mse", milestones=[2, 5])
    assert isinstance(step.settings.repeats, int)
    bare = ShiftStep(_model(zoo_plugins), TrainConfig())
    assert bare.settings == ShiftSettings()
    whole = ShiftStep(_model(zoo_plugins), TrainConfig.from_dict({"noise": 1}))  # `--set noise=1` reads as an int
    assert whole.settings.noise == 1.0 and isinstance(whole.settings.noise, float)


def test_a_step_without_settings_gets_none(zoo_plugins):
    class Plain(TrainStep):
        pass

    assert Plain(_model(zoo_plugins), TrainConfig.from_dict({"whatever": 1})).settings is None


@pytest.mark.parametrize("key, value, expected", [
    ("repeats", "two", "must be an integer, got str 'two'"),
    ("repeats", 2.5, "must be an integer, got float 2.5"),
    ("noise", "loud", "must be a number, got str 'loud'"),
    ("milestones", [1, "x"], "must be a list (an integer each), got list [1, 'x']"),
])
def test_a_setting_of_the_wrong_type_names_the_option(zoo_plugins, key, value, expected):
    with pytest.raises(ZooError) as err:
        ShiftStep(_model(zoo_plugins), TrainConfig.from_dict({key: value}))
    assert err.value.where == f"--set {key}=..."
    assert f"setting {key} of ShiftStep {expected}" in err.value.what
    assert err.value.hint.startswith(f"e.g. --set {key}=")  # its default, written as the option takes it


def test_a_setting_without_a_default_must_be_given(zoo_plugins):
    @dataclasses.dataclass
    class Needs:
        corpus: str

    class NeedsStep(ShiftStep):
        Settings = Needs

    with pytest.raises(ZooError) as err:
        NeedsStep(_model(zoo_plugins), TrainConfig())
    assert err.value.where == "--set corpus=..." and "NeedsStep needs setting corpus" in err.value.what
    assert NeedsStep(_model(zoo_plugins), TrainConfig.from_dict({"corpus": "a.txt"})).settings.corpus == "a.txt"


def test_range_checks_in_post_init_reach_the_user(zoo_plugins):
    with pytest.raises(ZooError) as err:
        ShiftStep(_model(zoo_plugins), TrainConfig.from_dict({"repeats": 0}))
    assert err.value.where == "--set repeats=..." and "at least 1" in err.value.what
    with pytest.raises(ZooError) as err:  # a plain ValueError from __post_init__ becomes a ZooError too
        ShiftStep(_model(zoo_plugins), TrainConfig.from_dict({"mode": "huber"}))
    assert "mode must be mse or mae, got 'huber'" in err.value.what and err.value.where == "--set"


def test_settings_reach_the_step_in_a_run_and_a_recipe_default_is_overridden(zoo_plugins, tmp_path):
    seen = []
    original = ShiftStep.training_step

    def spy(self, model, batch):
        seen.append(self.settings)
        return original(self, model, batch)

    recipe = _recipe("ShiftStep", mode="mae", noise=0.1)
    ShiftStep.training_step = spy
    try:
        train(recipe, {"out": str(tmp_path / "run"), "progress": False, "max_steps": 2, "install": False},
              noise=0.0, repeats=2)
    finally:
        ShiftStep.training_step = original
    assert seen and seen[0] == ShiftSettings(noise=0.0, repeats=2, mode="mae")


# --- which settings exist ------------------------------------------------------------------------------


def test_an_unknown_setting_lists_the_declared_ones(zoo_plugins, tmp_path):
    recipe = _recipe("ShiftStep")
    with pytest.raises(ZooError) as err:
        check_extra(recipe, TrainConfig.from_dict({"repeat": 2}))
    assert err.value.where == "--set repeat=..."
    assert "unknown setting(s) for recipe shift-fit: repeat" in err.value.what
    for name in ("repeats", "noise", "mode", "milestones", "batch_size", "dataset_options"):
        assert name in err.value.hint
    # train() refuses it before the run folder is made
    with pytest.raises(ZooError):
        train(recipe, {"out": str(tmp_path / "run"), "progress": False}, repeat=2)
    assert not (tmp_path / "run").exists()


def test_a_wrong_type_is_refused_before_the_run_folder_is_made(zoo_plugins, tmp_path):
    with pytest.raises(ZooError) as err:
        train(_recipe("ShiftStep"), {"out": str(tmp_path / "run"), "progress": False}, repeats="many")
    assert err.value.where == "--set repeats=..."
    assert not (tmp_path / "run").exists()


def test_a_recipe_default_no_setting_declares_is_the_plugins_error(zoo_plugins):
    recipe = _recipe("ShiftStep", nosie=0.1)
    with pytest.raises(ZooError) as err:
        check_extra(recipe, TrainConfig.from_dict(dict(recipe.defaults)))
    assert "recipe shift-fit's defaults set nosie, which ShiftStep does not declare" in err.value.what
    assert "ShiftStep.Settings" in err.value.hint


def test_a_step_without_settings_has_none_of_its_own(zoo_plugins):
    recipe = _recipe("PlainStep", noise=0.1)  # what a step reading config.extra by hand once relied on
    with pytest.raises(ZooError) as err:
        check_extra(recipe, TrainConfig.from_dict(dict(recipe.defaults)))
    assert "recipe shift-fit's defaults set noise, which PlainStep does not declare" in err.value.what
    with pytest.raises(ZooError) as err:
        check_extra(_recipe("PlainStep"), TrainConfig.from_dict({"noise": 0.1}))
    assert err.value.where == "--set noise=..."


def test_settings_may_not_shadow_the_cores_settings(zoo_plugins):
    @dataclasses.dataclass
    class Clash:
        batch_size: int = 3

    class ClashStep(ShiftStep):
        Settings = Clash

    with pytest.raises(ZooError) as err:
        ClashStep(_model(zoo_plugins), TrainConfig())
    assert "declares batch_size, which is a setting of the core" in err.value.what


def test_settings_must_be_a_dataclass(zoo_plugins):
    class NotData(ShiftStep):
        Settings = dict

    with pytest.raises(ZooError, match="Settings must be a dataclass"):
        NotData(_model(zoo_plugins), TrainConfig())


# --- lr: None means the step chooses; the check stays for everyone else ------------------------------


def test_lr_none_is_a_choice_and_other_values_are_still_checked():
    assert TrainConfig(lr=None).lr is None
    for bad in ("fast", 0, -1.0, float("nan"), True):
        with pytest.raises(ZooError) as err:
            TrainConfig(lr=bad)
        assert err.value.where == "--lr"


def test_a_step_that_needs_lr_says_so_when_none_is_set(zoo_plugins, tmp_path):
    with pytest.raises(ZooError) as err:  # the default Adam
        ShiftStep(_model(zoo_plugins), TrainConfig(lr=None)).configure_optimizers()
    assert err.value.where == "--lr"
    with pytest.raises(ZooError) as err:  # a step's own optimizer at config.lr
        Trainer(_recipe("PickyOptimizerStep", lr=None),
                TrainConfig(out=str(tmp_path / "run"), lr=None, progress=False)).fit()
    assert err.value.where == "--lr" and "PickyOptimizerStep" in err.value.what


# --- backward=False -----------------------------------------------------------------------------------


def test_an_update_without_backward_changes_the_weights_itself_and_is_logged(zoo_plugins, tmp_path):
    recipe = _recipe("InPlaceStep")
    trainer = Trainer(recipe, TrainConfig(out=str(tmp_path / "run"), max_steps=6, batch_size=32, log_every=1,
                                          progress=False, grad_clip=1.0))
    run = trainer._prepare()
    assert run.step.total_steps == 6  # the run's length, known once the data is
    before = {k: v.clone() for k, v in run.model.state_dict().items()}
    while not run.finished:
        trainer._train_epoch(run)
    run.log.close()
    after = run.model.state_dict()
    assert not torch.equal(before["fc2.bias"], after["fc2.bias"])  # the step moved it
    assert torch.equal(before["fc1.weight"], after["fc1.weight"])  # nothing else did
    assert all(p.grad is None for p in run.model.parameters())  # no backward ran
    lines = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    steps = [line for line in lines if "residual" in line]
    assert [line["step"] for line in steps] == list(range(1, 7))
    assert all("loss" not in line and line["seen"] == 32.0 for line in steps)
    assert abs(steps[-1]["residual"]) < abs(steps[0]["residual"])  # and the updates did their job


def test_a_normal_update_still_needs_a_loss(zoo_plugins, tmp_path):
    class NoLoss(ShiftStep):
        def training_step(self, model, batch):
            return {"residual": 1.0}

    sys.modules[__name__].NoLoss = NoLoss
    try:
        with pytest.raises(ZooError, match="must return a dict with a 'loss' tensor"):
            Trainer(_recipe("NoLoss"), TrainConfig(out=str(tmp_path / "run"), max_steps=1, progress=False)).fit()
    finally:
        del sys.modules[__name__].NoLoss
