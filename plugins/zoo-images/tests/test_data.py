"""The datasets: MNIST (both layouts), Fashion-MNIST's idx files, picture folders."""

from __future__ import annotations

import gzip

import numpy as np
import pytest
import torch

from zoo_core import IntegrityError, ZooError
from zoo_images import data as d

# --- MNIST ----------------------------------------------------------------------------------


# The MNIST source itself (pickle decoding, pins, cache rebuilds) is tested in test_mnist_source.py.


def test_mnist_flat_layout_is_the_nice_one(mnist):
    flat = d.MNIST()  # the default layout: what zoo-nice's recipe reads
    assert flat.layout == "flat"
    t = flat.tensors()
    for split, n in d.SPLIT_SIZES.items():
        assert t[f"{split}.images"].shape == (n, 784) and len(flat.split(split)) == n
    train = flat.split("train")
    x, y = train[3]
    assert x.shape == (784,) and x.dtype == torch.float32 and 0 <= x.min() and x.max() <= 1
    u = x * 256 - t["train.images"][3].float()
    assert u.min() >= 0 and u.max() < 1 and y == t["train.labels"][3]
    assert torch.equal(d.MNIST().split("train")[3][0], x)  # noise keyed by (seed, epoch, index)
    flat.set_epoch(1)
    assert not torch.equal(train[3][0], x)


def test_mnist_image_layout(mnist):
    t = mnist.tensors()
    for split, n in d.SPLIT_SIZES.items():
        data = mnist.split(split)
        assert len(data) == n
        x, y = data[n - 1]
        assert x.shape == (1, 28, 28) and x.dtype == torch.float32 and y.dtype == torch.int64
        expected = t[f"{split}.images"][n - 1].float().view(1, 28, 28) / 255 * 2 - 1
        assert torch.equal(x, expected) and y == t[f"{split}.labels"][n - 1]
    xs, ys = mnist.split("test").batch(range(0, 100))
    assert xs.shape == (100, 1, 28, 28) and xs.min() == -1 and xs.max() == 1
    assert torch.equal(xs[17], mnist.split("test")[17][0]) and torch.equal(ys, t["test.labels"][:100])


def test_mnist_padded_to_32_with_the_background(mnist):
    big = d.MNIST(layout="image", size=32).split("validation")
    small = mnist.split("validation")
    x, _ = big[5]
    assert x.shape == (1, 32, 32)
    assert torch.equal(x[:, 2:30, 2:30], small[5][0])
    border = torch.ones(32, 32, dtype=torch.bool)
    border[2:30, 2:30] = False
    assert (x[0][border] == -1).all()
    assert torch.equal(big.batch([5, 6])[0][0], x)


@pytest.mark.parametrize("options, message", [({"layout": "grid"}, "no layout"), ({"layout": "image", "size": 29},
                                                                                   "cannot hold"),
                                              ({"layout": "image", "size": 20}, "cannot hold")])
def test_mnist_bad_options(options, message):
    with pytest.raises(ZooError, match=message):
        d.MNIST(**options)


def test_mnist_cache_is_used(mnist, monkeypatch):
    assert mnist.cache_path().is_file()
    assert mnist.cache_path().parent.name == "mnist"

    def no_pickle(*a, **k):
        raise AssertionError("the pickle was read although the cache exists")

    monkeypatch.setattr(d, "decode_mnist_pickle", no_pickle)
    again = d.MNIST(layout="image").tensors()
    assert torch.equal(again["test.images"], mnist.tensors()["test.images"])


# --- Fashion-MNIST --------------------------------------------------------------------------


def test_fashion_splits_shapes_and_ranges(fashion):
    t = fashion.tensors()
    train_file = d.read_idx(d.FASHION_ROOT / "train-images-idx3-ubyte.gz", ndim=3, shape=(60_000, 28, 28))
    for split, n in d.SPLIT_SIZES.items():
        images, labels = t[f"{split}.images"], t[f"{split}.labels"]
        assert images.shape == (n, 784) and images.dtype == torch.uint8
        assert set(labels.unique().tolist()) == set(range(10))
        data = fashion.split(split)
        x, y = data[0]
        assert len(data) == n and x.shape == (1, 28, 28) and -1 <= x.min() and x.max() <= 1
        assert torch.equal(x, images[0].float().view(1, 28, 28) / 255 * 2 - 1) and y == labels[0]
    # train = the first 50,000 of the training file, validation = its last 10,000
    assert np.array_equal(t["train.images"].numpy(), train_file[:50_000].reshape(-1, 784))
    assert np.array_equal(t["validation.images"].numpy(), train_file[50_000:].reshape(-1, 784))
    assert d.FashionMNIST(layout="image", size=32).split("test")[0][0].shape == (1, 32, 32)
    flat = d.FashionMNIST(layout="flat").split("test")[0][0]
    assert flat.shape == (784,) and 0 <= flat.min() and flat.max() <= 1


def test_fashion_cache_is_used(fashion, monkeypatch):
    assert fashion.cache_path().is_file()

    def no_decode(*a, **k):
        raise AssertionError("the idx files were decoded although the cache exists")

    monkeypatch.setattr(d, "decode_fashion", no_decode)
    assert torch.equal(d.FashionMNIST().tensors()["test.labels"], fashion.tensors()["test.labels"])


def _idx(path, array, *, magic=None, gz=True):
    arr = np.asarray(array, dtype=np.uint8)
    header = (magic if magic is not None else bytes([0, 0, 8, arr.ndim]))
    header += b"".join(int(n).to_bytes(4, "big") for n in arr.shape)
    raw = header + arr.tobytes()
    if gz:
        with gzip.open(path, "wb") as f:
            f.write(raw)
    else:
        path.write_bytes(raw)
    return path


@pytest.fixture
def tiny_fashion(tmp_path, monkeypatch):
    """A Fashion-MNIST folder of 8 training and 3 test images (2 of them validation)."""
    monkeypatch.setattr(d, "FASHION_FILE_SIZES", {"train": 8, "test": 3})
    monkeypatch.setattr(d, "FASHION_VALIDATION", 2)
    rng = np.random.default_rng(0)
    root = tmp_path / "fashion"
    root.mkdir()
    for part, n in (("train", 8), ("t10k", 3)):
        _idx(root / f"{part}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28)))
        _idx(root / f"{part}-labels-idx1-ubyte.gz", rng.integers(0, 10, n))
    return root


def test_tiny_fashion_folder_via_root(tiny_fashion):
    data = d.FashionMNIST(root=tiny_fashion, cache=False)
    assert [len(data.split(s)) for s in d.SPLITS] == [6, 2, 3]
    raw = d.read_idx(tiny_fashion / "train-images-idx3-ubyte.gz", ndim=3)
    assert torch.equal(data.split("validation")[1][0][0], torch.from_numpy(raw[7].copy()).float() / 255 * 2 - 1)


@pytest.mark.parametrize("damage, message", [
    ("truncate-gz", "cannot read the idx file"),
    ("not-gzip", "cannot read the idx file"),
    ("magic", "bad idx magic"),
    ("dims", "dimension 1 is 27"),
    ("short-data", "idx data is"),
])
def test_damaged_idx_files_name_the_file(tiny_fashion, damage, message):
    target = tiny_fashion / "train-images-idx3-ubyte.gz"
    images = np.zeros((8, 28, 28), np.uint8)
    if damage == "truncate-gz":
        target.write_bytes(target.read_bytes()[:200])
    elif damage == "not-gzip":
        target.write_bytes(b"this is not gzip data at all")
    elif damage == "magic":
        _idx(target, images, magic=b"\x00\x00\x0d\x03")  # float32 idx
    elif damage == "dims":
        _idx(target, np.zeros((8, 27, 28), np.uint8))
    elif damage == "short-data":
        raw = b"\x00\x00\x08\x03" + b"".join(n.to_bytes(4, "big") for n in (8, 28, 28)) + bytes(100)
        with gzip.open(target, "wb") as f:
            f.write(raw)
    with pytest.raises(IntegrityError, match=message) as err:
        d.FashionMNIST(root=tiny_fashion, cache=False).tensors()
    assert err.value.where == str(target) and err.value.hint


def test_missing_fashion_file_or_folder(tiny_fashion, tmp_path):
    (tiny_fashion / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(ZooError, match="no t10k-labels-idx1-ubyte") as err:
        d.FashionMNIST(root=tiny_fashion, cache=False).tensors()
    assert "dataset-fashion-mnist" in err.value.hint
    with pytest.raises(ZooError, match="does not exist"):
        d.FashionMNIST(root=tmp_path / "nowhere").tensors()


def test_uncompressed_idx_and_label_range(tmp_path):
    path = _idx(tmp_path / "labels", np.arange(5), gz=False)
    assert d.read_idx(path, ndim=1).tolist() == [0, 1, 2, 3, 4]


# --- picture folders ------------------------------------------------------------------------


def _picture(path, array, mode=None, **save):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path, **save)
    return path


def _unit(pixels):
    return torch.from_numpy(np.asarray(pixels, dtype=np.uint8).copy()).float().permute(2, 0, 1) / 255 * 2 - 1


def test_centre_crop_is_exact_with_the_lsun_offset(tmp_path):
    # 7 rows x 4 columns: c = 4, top = (7 - 4 + 1) // 2 = 2 (o_gan_lsun.py); size 4: no resize
    pixels = np.arange(7 * 4 * 3, dtype=np.uint8).reshape(7, 4, 3)
    _picture(tmp_path / "a.png", pixels)
    data = d.ImageFolder(root=tmp_path, size=4, validation_fraction=0)
    (x,) = data.split("all")[0]
    assert x.shape == (3, 4, 4) and x.dtype == torch.float32
    assert torch.equal(x, _unit(pixels[2:6]))
    assert d.center_crop_box(7, 4) == (0, 2, 4, 6) and d.center_crop_box(5, 8, 4) == (2, 1, 6, 5)


def test_crop_then_pil_resize(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, (40, 60, 3), dtype=np.uint8)
    _picture(tmp_path / "p.png", pixels)
    for crop, box in (("center", (10, 0, 50, 40)), ("none", (0, 0, 60, 40))):
        for resample, flag in (("bilinear", Image.Resampling.BILINEAR), ("bicubic", Image.Resampling.BICUBIC)):
            (x,) = d.ImageFolder(root=tmp_path, size=16, crop=crop, resample=resample).split("all")[0]
            want = np.asarray(Image.fromarray(pixels).crop(box).resize((16, 16), resample=flag))
            assert torch.equal(x, _unit(want)), (crop, resample)
    # crop_size caps the square (o_gan_lsun.py: min(256, h, w)): a 20x20 centre square
    (x,) = d.ImageFolder(root=tmp_path, size=20, crop_size=20).split("all")[0]
    assert torch.equal(x, _unit(pixels[10:30, 20:40]))


def test_folder_listing_sorted_recursive_and_filtered(tmp_path):
    grey = np.full((8, 8), 200, np.uint8)
    _picture(tmp_path / "b" / "2.png", grey)
    _picture(tmp_path / "b" / "10.JPG", np.zeros((8, 8, 3)), quality=95)
    _picture(tmp_path / "a.jpeg", np.full((8, 8, 3), 255), quality=95)
    (tmp_path / "notes.txt").write_text("not a picture")
    (tmp_path / "c.gif").write_bytes(b"GIF89a")
    _picture(tmp_path / ".hidden.png", grey)
    _picture(tmp_path / ".cache" / "x.png", grey)
    data = d.ImageFolder(root=tmp_path, size=8)
    assert data.files() == ["a.jpeg", "b/10.JPG", "b/2.png"]
    (x,) = data.split("all")[2]  # a grey PNG becomes 3 equal channels
    assert x.shape == (3, 8, 8) and torch.equal(x[0], x[2]) and torch.allclose(x, torch.tensor(200 / 255 * 2 - 1))
    (white,) = data.split("all")[0]
    assert white.min() > 0.95  # JPEG of white is (nearly) 255


def test_splits_partition_the_files_deterministically(tmp_path):
    for i in range(40):
        _picture(tmp_path / f"{i:03d}.png", np.full((4, 4, 3), i))
    data = d.ImageFolder(root=tmp_path, size=4, validation_fraction=0.25)
    train, val, every = (data.split(s).files for s in ("train", "validation", "all"))
    assert sorted(train + val) == every and not set(train) & set(val)
    assert 2 <= len(val) <= 20
    assert val == [f for f in every if d.in_validation(f, 0.25)]
    # adding files never moves an existing file between splits
    _picture(tmp_path / "zzz.png", np.zeros((4, 4, 3)))
    again = d.ImageFolder(root=tmp_path, size=4, validation_fraction=0.25)
    assert [f for f in again.split("validation").files if f != "zzz.png"] == val


def test_folder_errors(tmp_path):
    with pytest.raises(ZooError, match="needs the folder of your pictures") as err:
        d.ImageFolder()
    assert "--root DIR" in err.value.hint
    with pytest.raises(ZooError, match="does not exist"):
        d.ImageFolder(root=tmp_path / "missing")
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(ZooError, match="no .png, .jpg or .jpeg") as err:
        d.ImageFolder(root=tmp_path).split("train")
    assert err.value.where == str(tmp_path)
    with pytest.raises(ZooError, match="unknown crop"):
        d.ImageFolder(root=tmp_path, crop="random")
    with pytest.raises(ZooError, match="no split"):
        _picture(tmp_path / "ok.png", np.zeros((4, 4, 3)))
        d.ImageFolder(root=tmp_path).split("test")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    data = d.ImageFolder(root=tmp_path, size=4, validation_fraction=0)
    with pytest.raises(ZooError, match="not a picture Pillow can read") as err:
        data.split("all")[data.files().index("broken.png")]
    assert err.value.where.endswith("broken.png")


def test_open_dataset_by_name(tmp_path):
    assert isinstance(d.open_dataset("mnist", layout="image"), d.MNIST)
    with pytest.raises(ZooError, match="no dataset 'cifar'"):
        d.open_dataset("cifar")
