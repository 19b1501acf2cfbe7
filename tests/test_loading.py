import json

import pytest
import torch

from zoo_core.errors import UnsafeFileError, ZooError


def _saved(zoo_plugins, tmp_path, **cfg):
    from zoo_core import build_model

    torch.manual_seed(0)
    model = build_model("toy-mlp", **cfg)
    folder = model.save_pretrained(tmp_path / "m")
    return model, folder


def test_save_writes_the_hub_layout_and_load_is_exact(zoo_plugins, tmp_path):
    from zoo_core import load_model

    model, folder = _saved(zoo_plugins, tmp_path)
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "model.safetensors"]
    assert json.loads((folder / "config.json").read_text()) == {"architecture": "toy-mlp", "dim": 8, "hidden": 16}
    assert (folder / "README.md").read_text().startswith("---\n")
    loaded = load_model(folder)
    assert not loaded.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])


def test_load_casts_dtype_and_builds_on_meta(zoo_plugins, tmp_path, monkeypatch):
    from zoo_core import load_model
    from zoo_core.model import ZooModel

    _, folder = _saved(zoo_plugins, tmp_path)
    calls = []
    original = torch.nn.Linear.reset_parameters

    def spy(self):
        calls.append(self.weight.device.type)
        return original(self)

    monkeypatch.setattr(torch.nn.Linear, "reset_parameters", spy)
    loaded = load_model(folder, dtype="bf16")
    assert calls and set(calls) == {"meta"}  # initialisation never touched real memory
    assert all(p.dtype == torch.bfloat16 for p in loaded.parameters())
    assert isinstance(loaded, ZooModel)


def test_load_refuses_another_architecture_before_reading_the_weights(zoo_plugins, tmp_path, monkeypatch):
    import zoo_core.model
    from zoo_core import load_model

    _, folder = _saved(zoo_plugins, tmp_path)
    assert load_model(folder, architecture="toy-mlp").architecture == "toy-mlp"

    def no_weights(*args, **kwargs):
        raise AssertionError("the weights were read")

    monkeypatch.setattr(zoo_core.model, "read_headers", no_weights)
    with pytest.raises(ZooError) as err:
        load_model(folder, architecture="toy-gan")
    assert err.value.what == f"{folder} is a toy-mlp model, not toy-gan"
    assert '"architecture": "toy-gan"' in err.value.hint


def test_sharded_save_and_load(zoo_plugins, tmp_path):
    from zoo_core import build_model
    from zoo_core.model import load_folder

    model = build_model("toy-mlp", dim=64, hidden=64)
    folder = model.save_pretrained(tmp_path / "sharded", max_shard_size=10_000)
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert len(set(index["weight_map"].values())) > 1
    loaded = load_folder(folder)
    for k, v in model.state_dict().items():
        assert torch.equal(v, loaded.state_dict()[k])


@pytest.mark.parametrize("name", ["pytorch_model.bin", "weights.pt", "extra/state.pkl"])
def test_pickle_files_are_refused(zoo_plugins, tmp_path, name):
    from zoo_core import load_model

    _, folder = _saved(zoo_plugins, tmp_path)
    (folder / name).parent.mkdir(exist_ok=True)
    (folder / name).write_bytes(b"\x80\x04not even opened")
    with pytest.raises(UnsafeFileError, match="pickle"):
        load_model(folder)


def test_mismatched_weights_are_a_clear_error(zoo_plugins, tmp_path):
    from safetensors.torch import save_file

    from zoo_core import load_model

    _, folder = _saved(zoo_plugins, tmp_path)
    save_file({"fc1.weight": torch.zeros(16, 8)}, folder / "model.safetensors")
    with pytest.raises(ZooError, match="missing from the weights"):
        load_model(folder)
    save_file({"other.weight": torch.zeros(1)}, folder / "model.safetensors")
    with pytest.raises(ZooError, match="unexpected tensor 'other.weight'"):
        load_model(folder)


def test_unknown_config_key_names_the_valid_ones(zoo_plugins):
    from zoo_core import build_model

    with pytest.raises(ZooError, match="(?s)unknown config key.*depth.*valid keys: dim, hidden"):
        build_model("toy-mlp", depth=3)


def test_unpublished_model_says_how_to_get_it(zoo_plugins, tmp_path, monkeypatch):
    from zoo_core import load_model

    monkeypatch.setenv("ZOO_HOME", str(tmp_path))
    with pytest.raises(ZooError, match="zoo train nice-mnist"):
        load_model("nice-mnist")


def test_save_replaces_an_existing_folder_atomically(zoo_plugins, tmp_path):
    from zoo_core import build_model
    from zoo_core.model import load_folder

    folder = build_model("toy-mlp").save_pretrained(tmp_path / "m")
    (folder / "stale.txt").write_text("old")
    build_model("toy-mlp", hidden=4).save_pretrained(folder)
    assert not (folder / "stale.txt").exists()
    assert load_folder(folder).config.hidden == 4
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no temp folders left behind
