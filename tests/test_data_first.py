"""Data first: the Trainer builds the step's settings, then the dataset, then the model the data sizes
(``ZooDataset.model_config``), fills data-derived values on a fresh start (``init_model``), then the step."""

import dataclasses
import json
import sys

import pytest
import torch
from torch import nn

from zoo_core import (
    DatasetSpec,
    ModelSpec,
    RecipeSpec,
    TrainConfig,
    TrainStep,
    ZooDataset,
    ZooError,
    ZooModel,
    evaluate,
    hookimpl,
)
from zoo_core.trainer import Trainer, train

EVENTS: list = []  # what happened, in order: ("dataset", ...), ("model", vocab), ("init", ...), ("step", ...)
TOKENS = [3, 5, 5, 9, 2, 5, 3, 11, 9, 3]  # the "corpus": token ids, counted by the dataset


@dataclasses.dataclass
class VocabConfig:
    vocab: int = 0  # set by the data
    dim: int = 4
    words: list[int] = dataclasses.field(default_factory=list)


class VocabModel(ZooModel):
    config_class = VocabConfig
    architecture = "test-vocab"

    def __init__(self, config):
        super().__init__(config)
        EVENTS.append(("model", self.config.vocab))
        if self.config.vocab < 1:
            raise ValueError("a vocabulary of at least one word is needed")
        self.embed = nn.Embedding(self.config.vocab, self.config.dim)
        self.out = nn.Linear(self.config.dim, 1)

    def forward(self, ids):  # ids: (B,) -> (B,)
        return self.out(self.embed(ids)).squeeze(-1)

    def example_inputs(self, batch_size=2):
        return (torch.zeros(batch_size, dtype=torch.long),)


@dataclasses.dataclass
class VocabSettings:
    min_count: int = 2


class VocabData(ZooDataset):
    name = "test-vocab-data"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        EVENTS.append(("dataset",))

    def _words(self, settings):
        counts = {t: TOKENS.count(t) for t in TOKENS}
        return sorted(t for t, n in counts.items() if n >= settings.min_count)

    def model_config(self, settings):
        words = self._words(settings)
        return {"vocab": len(words), "words": words}

    def init_model(self, model, settings):
        EVENTS.append(("init", model.embed.weight.shape[0]))
        with torch.no_grad():
            model.embed.weight[0].fill_(7.0)  # a "pretrained vector"

    def split(self, name):
        self.check_split(name)
        g = torch.Generator().manual_seed({"train": 1, "validation": 2, "test": 3}[name])
        ids = torch.randint(0, 3, (64,), generator=g)
        return torch.utils.data.TensorDataset(ids, ids.float())


class VocabStep(TrainStep):
    Settings = VocabSettings
    monitor = "mse"

    def __init__(self, model, config):
        super().__init__(model, config)
        EVENTS.append(("step", float(model.embed.weight[0, 0].detach())))

    def training_step(self, model, batch):
        ids, y = batch
        return {"loss": ((model(ids) - y) ** 2).mean()}

    @torch.no_grad()
    def evaluate(self, model, loader):
        total, n = 0.0, 0
        for ids, y in loader:
            total += float(((model(ids) - y) ** 2).sum())
            n += len(y)
        return {"mse": total / n}


@hookimpl
def register_models(register):
    register(ModelSpec(name="test-vocab", target=f"{__name__}:VocabModel", task="regression",
                       summary="an embedding sized by its data", tiny_config={"vocab": 3}))


@hookimpl
def register_datasets(register):
    register(DatasetSpec(name="test-vocab-data", target=f"{__name__}:VocabData"))


@hookimpl
def register_recipes(register):
    register(RECIPE)


RECIPE = RecipeSpec(name="test-vocab-fit", model="test-vocab", dataset="test-vocab-data",
                    step=f"{__name__}:VocabStep", defaults={"batch_size": 16, "lr": 0.05, "epochs": 1},
                    model_config={"dim": 4}, plugin="tests")


@pytest.fixture
def vocab_plugin(zoo_plugins):
    zoo_plugins.pm.register(sys.modules[__name__], name="test-vocab")
    EVENTS.clear()
    yield zoo_plugins
    EVENTS.clear()


def _config(tmp_path, **values):
    return TrainConfig.from_dict({**RECIPE.defaults, "out": str(tmp_path / "run"), "progress": False,
                                  "install": False, **values})


def test_the_data_sizes_the_model_before_it_is_built(vocab_plugin, tmp_path):
    best = Trainer(RECIPE, _config(tmp_path, max_steps=2)).fit()
    # one dataset, one model, born with the data's vocabulary (3, 5, 9 occur at least twice)
    assert [e for e in EVENTS if e[0] in ("dataset", "model")] == [("dataset",), ("model", 3)]
    saved = json.loads((best / "config.json").read_text())
    assert (saved["vocab"], saved["words"], saved["dim"]) == (3, [3, 5, 9], 4)


def test_the_step_settings_reach_the_dataset(vocab_plugin, tmp_path):
    best = Trainer(RECIPE, _config(tmp_path, max_steps=1, min_count=1)).fit()
    assert json.loads((best / "config.json").read_text())["words"] == [2, 3, 5, 9, 11]
    assert ("model", 5) in EVENTS


def test_init_model_runs_on_a_fresh_start_before_the_step_and_never_on_resume(vocab_plugin, tmp_path):
    Trainer(RECIPE, _config(tmp_path, max_steps=2)).fit()
    assert [e[0] for e in EVENTS] == ["dataset", "model", "init", "step"]
    assert EVENTS[3] == ("step", 7.0)  # the step saw the data's values
    EVENTS.clear()
    Trainer(RECIPE, _config(tmp_path, max_steps=4)).fit()  # resume from step 2
    assert [e[0] for e in EVENTS] == ["dataset", "model", "step"]
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert max(line["step"] for line in log) == 4
    EVENTS.clear()
    Trainer(RECIPE, _config(tmp_path, max_steps=2, resume=False)).fit()  # --no-resume starts fresh: init again
    assert [e[0] for e in EVENTS] == ["dataset", "model", "init", "step"]


def test_a_model_set_the_data_contradicts_names_the_key(vocab_plugin, tmp_path):
    with pytest.raises(ZooError) as err:
        Trainer(RECIPE, _config(tmp_path, max_steps=1), model_set={"vocab": 10}).fit()
    assert err.value.where == "--model-set vocab=..."
    assert "--model-set vocab=10 contradicts the data, which makes it 3" in err.value.what
    assert not any(e[0] == "model" for e in EVENTS)  # refused before any model was built
    with pytest.raises(ZooError) as err:  # the same through train(), as `zoo train --model-set` calls it
        train(RECIPE, {"out": str(tmp_path / "run2"), "progress": False}, model_set={"words": [1]})
    assert err.value.where == "--model-set words=..."


def test_zoo_train_model_set_is_checked_against_the_data(vocab_plugin, tmp_path):
    from click.testing import CliRunner

    from zoo_core.cli import cli

    args = ["train", "test-vocab-fit", "--out", str(tmp_path / "run"), "--max-steps", "1", "--no-progress",
            "--no-install"]
    refused = CliRunner().invoke(cli, [*args, "--model-set", "vocab=4"])
    assert refused.exit_code == 1 and isinstance(refused.exception, SystemExit), refused.output
    assert "--model-set vocab=4 contradicts the data, which makes it 3" in refused.output
    assert "--model-set vocab=..." in refused.output
    done = CliRunner().invoke(cli, [*args, "--model-set", "dim=5"])
    assert done.exit_code == 0, done.output
    assert json.loads((tmp_path / "run" / "model" / "config.json").read_text())["dim"] == 5


def test_a_model_set_the_data_agrees_with_or_does_not_decide_reaches_the_model(vocab_plugin, tmp_path):
    best = Trainer(RECIPE, _config(tmp_path, max_steps=1), model_set={"vocab": 3, "dim": 6}).fit()
    saved = json.loads((best / "config.json").read_text())
    assert (saved["vocab"], saved["dim"]) == (3, 6)


def test_a_saved_model_is_evaluated_without_the_data_deciding_anything(vocab_plugin, tmp_path):
    from zoo_core import load_model

    best = Trainer(RECIPE, _config(tmp_path, max_steps=2)).fit()
    model = load_model(best)
    assert model.config.vocab == 3
    metrics = evaluate(RECIPE, model, split="test", config=_config(tmp_path))
    assert set(metrics) == {"mse"} and metrics["mse"] >= 0


def test_a_dataset_that_decides_nothing_keeps_the_recipes_config(zoo_plugins, tmp_path):
    data = ZooDataset.__new__(ZooDataset)
    assert data.model_config(None) == {} and data.init_model(None, None) is None
    best = Trainer(zoo_plugins.get_recipe_spec("toy-fit"), TrainConfig(out=str(tmp_path / "run"), max_steps=1,
                                                                       progress=False),
                   model_set={"hidden": 5}).fit()
    assert json.loads((best / "config.json").read_text())["hidden"] == 5


def test_model_config_must_be_a_dict(vocab_plugin, tmp_path, monkeypatch):
    monkeypatch.setattr(VocabData, "model_config", lambda self, settings: [("vocab", 3)])
    with pytest.raises(ZooError, match="VocabData.model_config\\(\\) returned .* not a dict"):
        Trainer(RECIPE, _config(tmp_path, max_steps=1)).fit()


# --- a run begun before the step had typed Settings resumes after it has them -----------------------


def test_a_checkpoint_from_before_typed_settings_resumes(vocab_plugin, tmp_path, monkeypatch):
    import zoo_core.trainer
    from zoo_core.resume import json_value

    # Before typed Settings a checkpoint kept TrainConfig as it was: extra held only what the recipe and --set
    # gave (here the recipe's min_count of 2, since moved into the Settings default).
    old_format = lambda config, settings: json_value(dataclasses.asdict(config))
    monkeypatch.setattr(zoo_core.trainer, "saved_settings", old_format)
    old_recipe = dataclasses.replace(RECIPE, defaults={**RECIPE.defaults, "min_count": 2})
    Trainer(old_recipe, _config(tmp_path, max_steps=2, min_count=2)).fit()
    monkeypatch.undo()
    # now the recipe leaves min_count to the Settings default (2): nothing changed, the run resumes
    EVENTS.clear()
    Trainer(RECIPE, _config(tmp_path, max_steps=3)).fit()
    assert "init" not in [e[0] for e in EVENTS]
    # a different min_count is a change of settings (and of the model the data makes)
    with pytest.raises(ZooError) as err:
        Trainer(RECIPE, _config(tmp_path, max_steps=4, min_count=1)).fit()
    assert "written by another model" in err.value.what and "model vocab: 3 in the checkpoint, 5 now" in err.value.what


def test_settings_left_out_count_as_their_defaults_when_settings_are_compared():
    from zoo_core.resume import settings_differences

    config = TrainConfig.from_dict({"min_count": 2})
    assert settings_differences({**dataclasses.asdict(TrainConfig()), "extra": {}}, config,
                                settings=VocabSettings(min_count=2)) == []
    changed = settings_differences({**dataclasses.asdict(TrainConfig()), "extra": {}}, config,
                                   settings=VocabSettings(min_count=3))
    assert changed == ["min_count: 2 in the checkpoint, 3 now"]
    # a setting the checkpoint has that nothing declares any more (a key a plugin dropped) cannot change the run
    assert settings_differences({**dataclasses.asdict(TrainConfig()), "extra": {"min_count": 2, "dropped": 1}},
                                config, settings=VocabSettings(min_count=2)) == []


def test_a_model_field_added_since_the_checkpoint_counts_as_its_default():
    # GAN-QP's channels_last became a model field after runs were written without it: they still resume
    from zoo_core.resume import settings_differences

    config = TrainConfig()
    saved = {**dataclasses.asdict(config), "extra": {}}
    now = {"dim": 4, "channels_last": True}
    assert settings_differences(saved, config, {"dim": 4}, now, model_defaults={"channels_last": True}) == []
    changed = settings_differences(saved, config, {"dim": 4}, {"dim": 4, "channels_last": False},
                                   model_defaults={"channels_last": True})
    assert changed == ["model channels_last: True in the checkpoint, False now"]
    # without the defaults (a model config that is no dataclass) a missing field is a change, as before
    assert settings_differences(saved, config, {"dim": 4}, now) == [
        "model channels_last: None in the checkpoint, True now"]
