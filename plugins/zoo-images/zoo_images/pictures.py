"""Pictures of image batches: sample grids, interpolation strips, real-vs-reconstruction pairs (Pillow only).

Images are (N, C, H, W) tensors or arrays with C = 1 (grey) or 3 (RGB), values in ``value_range``
(default [-1, 1]). Each value becomes the byte floor(255 * (x - lo) / (hi - lo) + 0.5), clipped to
[0, 255] (round half up, as torchvision's ``save_image``). Tiles are laid out row by row like
torchvision's ``make_grid``: ``nrow`` tiles per row, ``padding`` pixels of ``pad_value`` (in the
units of ``value_range``; 1.0 is white for [-1, 1]) around and between them, so a grid of r x c
tiles of H x W is (r (H + p) + p) x (c (W + p) + p) pixels.

The format follows the file name's suffix: ``.png``, ``.jpg`` / ``.jpeg`` and ``.webp`` (when
Pillow was built with WebP). Any other suffix is refused before any work, with a ZooError naming
the path and the accepted suffixes. Files are written through ``zoo_core.atomic_file``: a failed
write leaves nothing behind and never a partial picture.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from zoo_core import ZooError, atomic_file

FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}


def _supported() -> dict[str, str]:
    from PIL import features

    return {s: f for s, f in FORMATS.items() if f != "WEBP" or features.check("webp")}


def picture_format(path: str | os.PathLike) -> str:
    """The Pillow format for ``path``'s suffix, or a ZooError naming the path and the suffixes accepted."""
    suffix = Path(path).suffix.lower()
    formats = _supported()
    if suffix not in formats:
        raise ZooError(f"cannot write a picture with the suffix {suffix or '(none)'!r}", where=str(path),
                       hint=f"name the file with one of: {', '.join(formats)}")
    return formats[suffix]


def _as_array(images, name: str = "images") -> np.ndarray:
    """(N, C, H, W) float64 numpy array from a tensor or array; (N, H, W) is taken as grey."""
    try:
        import torch

        if isinstance(images, torch.Tensor):
            images = images.detach().to("cpu", torch.float64).numpy()
    except ImportError:  # pragma: no cover - torch is always there with zoo-core
        pass
    arr = np.asarray(images, dtype=np.float64)
    if arr.ndim == 3:
        arr = arr[:, None]
    if arr.ndim != 4 or arr.shape[1] not in (1, 3) or arr.shape[0] < 1:
        raise ZooError(f"{name} must be shaped (N, C, H, W) with N >= 1 and C in (1, 3), got {tuple(arr.shape)}",
                       hint="pass a batch of grey (C=1) or RGB (C=3) images")
    return arr


def to_bytes(images, value_range=(-1.0, 1.0)) -> np.ndarray:
    """Map values in ``value_range`` to uint8: floor(255 (x - lo) / (hi - lo) + 0.5), clipped."""
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise ZooError(f"value_range must be (low, high) with high > low, got {value_range!r}")
    scaled = (np.asarray(images, dtype=np.float64) - lo) / (hi - lo)
    return np.clip(np.floor(scaled * 255.0 + 0.5), 0, 255).astype(np.uint8)


def grid_array(images, *, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0,
               value_range=(-1.0, 1.0)) -> np.ndarray:
    """The grid as a (H', W', C) uint8 array (C = 1 or 3), without writing anything."""
    arr = _as_array(images)
    n, c, h, w = arr.shape
    ncol = int(nrow) if nrow is not None else math.ceil(math.sqrt(n))
    if ncol < 1:
        raise ZooError(f"nrow must be at least 1, got {nrow}")
    if padding < 0:
        raise ZooError(f"padding must be >= 0, got {padding}")
    ncol = min(ncol, n)
    rows = math.ceil(n / ncol)
    p = int(padding)
    grid = np.full((c, rows * (h + p) + p, ncol * (w + p) + p), float(pad_value), dtype=np.float64)
    for i in range(n):
        r, k = divmod(i, ncol)
        top, left = p + r * (h + p), p + k * (w + p)
        grid[:, top:top + h, left:left + w] = arr[i]
    return to_bytes(grid, value_range).transpose(1, 2, 0)


def _write(array: np.ndarray, path: Path, fmt: str) -> Path:
    from PIL import Image

    picture = Image.fromarray(np.ascontiguousarray(array[:, :, 0] if array.shape[2] == 1 else array))  # L or RGB
    options = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    with atomic_file(path, "wb") as f:
        picture.save(f, format=fmt, **options)
    return path


def save_grid(images, path: str | os.PathLike, *, nrow: int | None = None, padding: int = 2,
              pad_value: float = 1.0, value_range=(-1.0, 1.0)) -> Path:
    """Write (N, C, H, W) images as one grid of ``nrow`` tiles per row (default ceil(sqrt(N))); returns the path."""
    path = Path(path)
    fmt = picture_format(path)
    return _write(grid_array(images, nrow=nrow, padding=padding, pad_value=pad_value, value_range=value_range),
                  path, fmt)


def save_interpolation(images, path: str | os.PathLike, *, steps: int, padding: int = 2, pad_value: float = 1.0,
                       value_range=(-1.0, 1.0)) -> Path:
    """Write interpolation strips: images (rows * steps, C, H, W), each strip of ``steps`` tiles one row."""
    path = Path(path)
    fmt = picture_format(path)
    arr = _as_array(images)
    if steps < 1 or arr.shape[0] % steps:
        raise ZooError(f"{arr.shape[0]} images do not make strips of {steps} steps",
                       hint="pass rows * steps images, each strip's steps consecutive")
    return _write(grid_array(arr, nrow=steps, padding=padding, pad_value=pad_value, value_range=value_range),
                  path, fmt)


def save_pairs(real, recon, path: str | os.PathLike, *, pairs_per_row: int | None = None, padding: int = 2,
               pad_value: float = 1.0, value_range=(-1.0, 1.0)) -> Path:
    """Write real images next to their reconstructions: each row holds ``pairs_per_row`` (real, recon) pairs.

    Default pairs per row: ceil(sqrt(2 N) / 2), so 32 pairs make an 8 x 8 grid (O-GAN's ``sample_ae``).
    """
    path = Path(path)
    fmt = picture_format(path)
    a, b = _as_array(real, "real"), _as_array(recon, "recon")
    if a.shape != b.shape:
        raise ZooError(f"real {tuple(a.shape)} and recon {tuple(b.shape)} differ in shape",
                       hint="pass one reconstruction per real image")
    n = a.shape[0]
    per_row = int(pairs_per_row) if pairs_per_row is not None else math.ceil(math.sqrt(2 * n) / 2)
    if per_row < 1:
        raise ZooError(f"pairs_per_row must be at least 1, got {pairs_per_row}")
    both = np.stack([a, b], axis=1).reshape(2 * n, *a.shape[1:])  # real0, recon0, real1, recon1, ...
    return _write(grid_array(both, nrow=2 * min(per_row, n), padding=padding, pad_value=pad_value,
                             value_range=value_range), path, fmt)


__all__ = ["FORMATS", "grid_array", "picture_format", "save_grid", "save_interpolation", "save_pairs", "to_bytes"]
