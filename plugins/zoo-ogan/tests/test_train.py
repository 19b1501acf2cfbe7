"""Training through the core's Trainer: one update per step, the metrics, EMA, and the commands on the
installed model. Resume, torchrun and train -> load_model are the kit's recipe contract (test_contract.py)."""

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


def _ckpt(out, step):
    return Path(out) / "checkpoints" / f"step-{step:08d}"


def _weights(out, step, part="model"):
    return load_file(_ckpt(out, step) / part / "model.safetensors")


def _log(out):
    return [json.loads(line) for line in (Path(out) / "log.jsonl").read_text().splitlines()]


def test_one_rmsprop_update_per_step_and_the_validation_outputs(tiny_recipe, small_config, tmp_path):
    out = tmp_path / "run"
    Trainer(tiny_recipe, small_config(out, max_steps=4, checkpoint_every=4)).fit()
    state = load_file(_ckpt(out, 4) / "trainer_state.safetensors")
    assert int(state["optim.rmsprop.0.step"]) == 4
    assert "optim.rmsprop.0.square_avg" in state  # RMSprop's state, one optimizer for E and G
    train_lines = [line for line in _log(out) if "z_corr" in line and "split" not in line]
    assert [line["step"] for line in train_lines] == [1, 2, 3, 4]
    assert all({"loss", "t_loss", "z_corr", "qp"} <= set(line) for line in train_lines)
    validation = [line for line in _log(out) if line.get("split") == "validation"]
    assert len(validation) == 1
    v = validation[0]
    assert {"fid", "kid", "kid_std", "z_corr", "recon_mse", "recon_acc"} <= set(v)
    assert -1 <= v["z_corr"] <= 1 and v["recon_mse"] > 0 and 0 <= v["recon_acc"] <= 1
    assert Image.open(out / "samples" / "step-00000004.png").size == (4 * 32 + 5 * 2,) * 2  # 16 samples
    pairs = Image.open(out / "samples" / "step-00000004-recon.png")
    assert pairs.size == (4 * 32 + 5 * 2, 4 * 32 + 5 * 2)  # 8 pairs: 2 pairs (4 tiles) per row, 4 rows


def test_metrics_are_deterministic_functions_of_the_model(tiny_recipe, small_config, tmp_path):
    config = small_config(tmp_path / "run", max_steps=2)
    best = Trainer(tiny_recipe, config).fit()
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"]
    again = evaluate(tiny_recipe, load_model(best), split="validation", config=config)
    for name in ("fid", "z_corr", "z_dirs", "recon_mse", "recon_acc"):
        assert again[name] == pytest.approx(history[-1][name], rel=1e-6), name


def test_z_dirs_is_mean_squared_rho_times_the_code_size(tiny_recipe, small_config, tmp_path):
    from zoo_ogan.train import OGANStep, correlation

    config = small_config(tmp_path / "run", max_steps=1, corr_samples=300)  # two batches: 200 and 100
    model = load_model(Trainer(tiny_recipe, config).fit())
    step = OGANStep(model, config)
    scores = step.z_corr(model, torch.device("cpu"))
    gen = torch.Generator().manual_seed(step.settings.eval_seed + 1)
    z = torch.cat([model.noise(n, generator=gen) for n in (config.eval_batch_size, 300 - config.eval_batch_size)])
    with torch.no_grad():
        rho = correlation(z, model.encode(model(z)))
    assert scores["z_corr"] == pytest.approx(float(rho.mean()), rel=1e-5)
    assert scores["z_dirs"] == pytest.approx(float(rho.square().mean()) * model.config.z_dim, rel=1e-5)
    assert 0 <= scores["z_dirs"] <= model.config.z_dim


def test_short_run_raises_rho_and_lowers_reconstruction_error(tiny_recipe, small_config, tmp_path):
    from zoo_core.checkpoint import seed_everything

    config = small_config(tmp_path / "run", limit_train=4000, max_steps=300, batch_size=64, limit_eval=500,
                          recon_samples=500, corr_samples=500, eval_samples=500, threads=2)
    seed_everything(config.seed)
    untrained = Trainer(tiny_recipe, config).build_model()
    before = evaluate(tiny_recipe, untrained, split="validation", config=config)
    Trainer(tiny_recipe, config).fit()
    after = json.loads((tmp_path / "run" / "metrics.json").read_text())["history"][-1]
    # measured at step 300 (tiny nets, about 12 s): eval-mode z_corr 0.024 -> 0.225, recon_mse 0.94 -> 0.43
    # (the batch-norm running statistics, momentum 0.01, still lag the training-mode ones at this point)
    assert after["z_corr"] > before["z_corr"] + 0.1, (before, after)
    assert after["recon_mse"] < 0.8 * before["recon_mse"], (before, after)


def test_ema_weights_are_what_is_evaluated_sampled_and_saved(tiny_recipe, small_config, tmp_path):
    out = tmp_path / "run"
    best = Trainer(tiny_recipe, small_config(out, max_steps=5, checkpoint_every=5, ema_decay=0.9)).fit()
    live, ema = _weights(out, 5), _weights(out, 5, "ema")
    assert live.keys() == ema.keys()
    differ = [k for k in live if live[k].is_floating_point() and not torch.equal(live[k], ema[k])]
    assert any(k.startswith("E.") for k in differ) and any(k.startswith("G.") for k in differ)
    assert any("running_mean" in k for k in differ)  # the EMA covers the batch-norm statistics too
    saved = load_file(best / "model.safetensors")
    assert all(torch.equal(saved[k], ema[k]) for k in saved)  # the best model folder holds the EMA
    ema_model = load_model(best)
    live_model = load_model(_ckpt(out, 5) / "model")
    gen = lambda: torch.Generator().manual_seed(0)
    assert not torch.equal(ema_model.sample(4, generator=gen()), live_model.sample(4, generator=gen()))
    v = [line for line in _log(out) if line.get("split") == "validation"][-1]
    again = evaluate(tiny_recipe, ema_model, split="validation", config=small_config(out, ema_decay=0.9))
    assert again["fid"] == pytest.approx(v["fid"], rel=1e-6)  # the logged validation scored the EMA


def _cli():
    from zoo_core.cli import cli  # the loaded plugins' commands attach when a command line needs them

    return cli


def test_the_commands_use_the_installed_model(tiny_recipe, small_config, tmp_path):
    folder = train(tiny_recipe, small_config(tmp_path / "run", max_steps=2))
    assert folder.name == "ogan-mnist"
    model = load_model("ogan-mnist")
    assert model.architecture == "ogan" and not model.training
    cli, run = _cli(), CliRunner()
    grid = tmp_path / "grid.png"
    r = run.invoke(cli, ["sample", "ogan-mnist", "-n", "10", "-o", str(grid), "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert Image.open(grid).size == (4 * 32 + 5 * 2, 3 * 32 + 4 * 2)
    # encode: codes of dataset images, with their labels, as safetensors
    codes = tmp_path / "codes.safetensors"
    r = run.invoke(cli, ["ogan", "encode", "--dataset", "mnist", "--split", "test", "-n", "50", "-o", str(codes)])
    assert r.exit_code == 0, r.output
    saved = load_file(codes)
    assert saved["z"].shape == (50, 16) and saved["labels"].shape == (50,)
    from zoo_images.data import MNIST

    x, labels = MNIST(layout="image", size=32).split("test").batch(range(50))
    torch.testing.assert_close(saved["z"], model.encode(x))
    assert torch.equal(saved["labels"], labels)
    # reconstruct: real / reconstruction pairs
    pairs = tmp_path / "pairs.png"
    r = run.invoke(cli, ["ogan", "reconstruct", "--dataset", "mnist", "-n", "8", "-o", str(pairs)])
    assert r.exit_code == 0 and "MSE" in r.output, r.output
    assert Image.open(pairs).size == (4 * 32 + 5 * 2, 4 * 32 + 5 * 2)  # 2 pairs per row, 4 rows
    # interpolate between picture files (two pairs: two strips)
    files = []
    for i in range(4):
        path = tmp_path / f"digit{i}.png"
        Image.fromarray(((x[i, 0].numpy() + 1) * 127.5).round().astype("uint8")).save(path)
        files.append(str(path))
    strips = tmp_path / "strips.png"
    r = run.invoke(cli, ["ogan", "interpolate", *files, "--steps", "6", "-o", str(strips)])
    assert r.exit_code == 0, r.output
    assert Image.open(strips).size == (6 * 32 + 7 * 2, 2 * 32 + 3 * 2)
    r = run.invoke(cli, ["ogan", "encode", *files[:2], "-o", str(tmp_path / "two.safetensors")])
    assert r.exit_code == 0 and load_file(tmp_path / "two.safetensors")["z"].shape == (2, 16)
    # clear errors, nothing written
    r = run.invoke(cli, ["ogan", "interpolate", *files[:3], "-o", str(tmp_path / "odd.png")])
    assert r.exit_code == 1 and "pairs" in r.output and not (tmp_path / "odd.png").exists()
    r = run.invoke(cli, ["ogan", "encode", "-o", str(tmp_path / "none.safetensors")])
    assert r.exit_code == 1 and "no images" in r.output and not (tmp_path / "none.safetensors").exists()
    r = run.invoke(cli, ["ogan", "encode", "--dataset", "mnist", "--start", "20000", "-o", str(tmp_path / "s.st")])
    assert r.exit_code == 1 and "--start" in r.output
    # zoo eval scores the installed model with the recipe's metrics, on the test split
    r = run.invoke(cli, ["eval", "ogan-mnist", "--json", "--set", "eval_samples=200", "--set", "fid_limit=2000",
                         "--set", "kid_subsets=2", "--set", "recon_samples=300", "--set", "corr_samples=200"])
    assert r.exit_code == 0, r.output
    scores = json.loads(r.output)
    assert {"fid", "kid", "z_corr", "recon_mse", "recon_acc"} <= set(scores)


def test_a_model_of_another_kind_is_refused(zoo, tmp_path):
    from zoo_images.model import LeNet

    LeNet.from_config({}).save_pretrained(tmp_path / "lenet")
    r = CliRunner().invoke(_cli(), ["ogan", "reconstruct", "--model", str(tmp_path / "lenet"), "--dataset", "mnist",
                                    "-o", str(tmp_path / "r.png")])
    assert r.exit_code == 1 and "not ogan" in r.output and not (tmp_path / "r.png").exists()


def test_recipes_follow_the_scripts(zoo):
    mnist = zoo.get_recipe_spec("ogan-mnist")
    # the code fits the data: about 13 directions of z make a 32 px digit, so rho is capped near
    # sqrt(13 / z_dim); the 128 px recipes keep the release's 128
    assert mnist.model_config == {"img_size": 32, "channels": 1, "z_dim": 16}
    assert zoo.get_recipe_spec("ogan-fashion").model_config["z_dim"] == 16
    d = mnist.defaults
    assert (d["batch_size"], d["lr"]) == (64, 1e-4)
    from zoo_core import TrainConfig
    from zoo_ogan.train import OGANStep

    settings = OGANStep(zoo.get_model_spec("ogan").load().from_config(mnist.model_config),
                        TrainConfig.from_dict(dict(d))).settings  # the recipe's, the rest the step's defaults
    assert (settings.rho_weight, settings.qp_weight, settings.rmsprop_alpha, settings.rmsprop_eps) == \
        (0.5, 0.25, 0.99, 1e-7)
    assert (settings.eval_samples, settings.corr_samples, settings.fid_dataset) == (10_000, 2000, "mnist")
    assert zoo.get_recipe_spec("ogan-fashion").dataset == "fashion-mnist"
    celeba = zoo.get_recipe_spec("ogan-celebahq128")
    assert celeba.dataset == "image-folder" and celeba.model_config == {"img_size": 128, "channels": 3}
    sm = zoo.get_recipe_spec("ogan-celebahq256-sm-ema")
    assert sm.model_config["self_modulated"] and sm.model_config["kernel"] == 4 and sm.model_config["z_dim"] == 256
    d = sm.defaults
    assert (d["batch_size"], d["rho_weight"], d["ema_decay"]) == (48, 1.0, [0.999, 0.9999])
    from zoo_core.registry import catalogue

    entries = {e.id: e for e in catalogue().values() if e.plugin == "ogan"}
    assert set(entries) == {"ogan-mnist", "ogan-fashion"}
    assert all(e.hub is None and e.recipe == e.id and e.weights["how"] == "train" for e in entries.values())
    assert "1903.01931" in json.dumps(dataclasses.asdict(entries["ogan-mnist"]))


def test_recon_acc_only_where_the_lenet_classes_are_the_labels(small_config, tmp_path):
    """The MNIST LeNet's digit classes say nothing about Fashion-MNIST's labels: no recon_acc there."""
    from zoo_ogan.model import OGAN
    from zoo_ogan.train import OGANStep

    model = OGAN.from_config({"img_size": 32, "channels": 1, "z_dim": 16, "max_channels": 64}).eval()
    loader = [(torch.rand(8, 1, 32, 32) * 2 - 1, torch.arange(8))]
    step = OGANStep(model, small_config(tmp_path, fid_dataset="fashion-mnist"))
    out = step.reconstruction(model, loader, "cpu")
    assert set(out) == {"recon_mse"} and out["recon_mse"] > 0


def test_fashion_recipe_trains_and_scores_against_fashion_mnist(zoo, small_config, tmp_path):
    from zoo_core import ZooError
    from zoo_images.data import FashionMNIST

    try:
        FashionMNIST(layout="image", size=32).tensors()
    except ZooError as exc:
        pytest.skip(f"Fashion-MNIST is not installed: {exc.what}")
    recipe = dataclasses.replace(zoo.get_recipe_spec("ogan-fashion"),
                                 model_config={"img_size": 32, "channels": 1, "z_dim": 16, "max_channels": 64})
    assert recipe.defaults["fid_dataset"] == "fashion-mnist"
    Trainer(recipe, small_config(tmp_path / "run", max_steps=1, fid_dataset="fashion-mnist")).fit()
    v = [line for line in _log(tmp_path / "run") if line.get("split") == "validation"][-1]
    assert v["fid"] > 0 and v["recon_mse"] > 0 and "recon_acc" not in v
