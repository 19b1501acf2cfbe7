"""Reading picture files as 8-bit RGB, whatever mode Pillow decodes them in, or a ZooError naming the file.

``Image.convert("RGB")`` alone is right for 8-bit pictures only: it clips 16-bit grey values
(``I;16``: 0..65535) at 255, so a dark 16-bit PNG turns white, and it drops alpha, leaving whatever
colour lies under transparent pixels. Here:

- 8-bit modes (``1``, ``L``, ``P``, ``RGB``, ``RGBX``, ``CMYK``, ``YCbCr``, ``LAB``, ``HSV``) are
  converted by Pillow, as before (the pixels of 8-bit RGB and grey pictures are unchanged);
- 16-bit grey (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``, and ``I`` decoded from a PNG, as older
  Pillows do) maps v to floor(v * 255 / 65535 + 0.5); Pillow already reads 16-bit RGB(A) PNGs as 8-bit;
- transparency (an alpha channel: ``LA``, ``La``, ``PA``, ``RGBA``, ``RGBa``; or a ``tRNS``
  transparent colour in ``L``, ``RGB``, ``P``, 16-bit grey) is composited over black, so a
  transparent pixel reads as black whatever colour it stores (a premultiplied picture);
- ``F`` (32-bit float) and ``I`` from other formats (32-bit integers) have no fixed range of values:
  they are refused by name, as is any other mode.

Only regular files are opened (a FIFO would block forever), and a picture whose pixel count passes
Pillow's decompression-bomb limit is refused before it is decoded.
"""

from __future__ import annotations

import os
import stat
from contextlib import contextmanager

from typing import TYPE_CHECKING

import numpy as np

from zoo_core import ZooError

if TYPE_CHECKING:  # Pillow is imported when a picture is read, not when the module is
    from PIL import Image

EIGHT_BIT = ("1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr", "LAB", "HSV")
WITH_ALPHA = ("LA", "La", "PA", "RGBA", "RGBa")
SIXTEEN_BIT = ("I;16", "I;16B", "I;16L", "I;16N")
#: What a damaged or foreign file makes Pillow's decoders raise (SyntaxError: "broken PNG file" and kin).
DECODE_ERRORS = (OSError, ValueError, SyntaxError, EOFError, IndexError, TypeError, KeyError, MemoryError)


def check_regular_file(path: str | os.PathLike) -> None:
    """Raise a ZooError naming ``path`` unless it is (a link to) a regular file: missing, dangling link,
    link loop, FIFO, device or socket."""
    try:
        st = os.stat(path)
    except OSError as exc:
        link = os.path.islink(path)
        what = {True: "a symbolic link that leads nowhere (dangling, or a loop of links)",
                False: f"the picture cannot be opened ({exc.strerror})"}[link]
        raise ZooError(what, where=str(path),
                       hint="remove the link or make it point at a picture (`find DIR -xtype l` lists broken links)"
                       if link else "check the path and its permissions") from None
    if not stat.S_ISREG(st.st_mode):
        raise ZooError("not a regular file (a FIFO, device or socket is never read as a picture)", where=str(path),
                       hint="remove it from the picture folder, or pass a picture file")


def _sixteen_bit(im) -> Image.Image:
    from PIL import Image

    values = np.asarray(im).astype(np.float64)
    if values.size and (values.min() < 0 or values.max() > 65535):
        raise ZooError(f"16-bit picture with values outside 0..65535 ({values.min():g}..{values.max():g})",
                       where=im.filename or None, hint="save it as an 8- or 16-bit PNG")
    grey = np.floor(values * (255.0 / 65535.0) + 0.5).astype(np.uint8)
    key = im.info.get("transparency")
    if isinstance(key, int):  # tRNS: pixels of exactly this value are transparent, i.e. black over black
        grey[values == key] = 0
    return Image.fromarray(grey).convert("RGB")


def to_rgb(im, path: str | os.PathLike = "") -> Image.Image:
    """A decoded Pillow picture as 8-bit RGB (see the module doc); a ZooError naming ``path`` for a mode
    without a fixed range of values."""
    from PIL import Image

    mode = im.mode
    if mode in SIXTEEN_BIT or (mode == "I" and im.format == "PNG"):
        return _sixteen_bit(im)
    if mode == "La":
        im, mode = im.convert("LA"), "LA"  # Pillow has no La -> RGBA conversion
    if mode in WITH_ALPHA or (mode in EIGHT_BIT and "transparency" in im.info):
        rgba = im.convert("RGBA")
        black = Image.new("RGBA", rgba.size, (0, 0, 0, 255))
        return Image.alpha_composite(black, rgba).convert("RGB")
    if mode in EIGHT_BIT:
        return im.convert("RGB")
    kind = {"F": "32-bit floating-point", "I": "32-bit integer"}.get(mode, "unsupported")
    raise ZooError(f"cannot read a picture of mode {mode!r} ({kind} pixels: no fixed range of values to map to "
                   "0..255)", where=str(path),
                   hint="save it as an 8- or 16-bit PNG, or as a JPEG")


def open_rgb(path: str | os.PathLike) -> Image.Image:
    """The picture file ``path`` as an 8-bit RGB Pillow image, or a ZooError naming it."""
    from PIL import Image

    check_regular_file(path)
    with _named_errors(path):
        im = Image.open(path)
    with im:
        with _named_errors(path):
            im.load()  # every byte is decoded here: what follows only converts pixels
        return to_rgb(im, path)


@contextmanager
def _named_errors(path):
    """What Pillow raises for a damaged, foreign or oversized file, as one ZooError naming it."""
    from PIL import Image, UnidentifiedImageError

    hint = "remove or replace the file (files whose suffix is .png/.jpg/.jpeg are read as pictures)"
    try:
        yield
    except Image.DecompressionBombError as exc:
        raise ZooError(f"the picture is too large to decode safely: {exc}", where=str(path),
                       hint="shrink it, or remove it from the picture folder") from None
    except UnidentifiedImageError:
        raise ZooError("not a picture Pillow can read (unknown or damaged format)", where=str(path),
                       hint=hint) from None
    except DECODE_ERRORS as exc:
        raise ZooError(f"cannot read the picture: {exc}", where=str(path), hint=hint) from None


__all__ = ["DECODE_ERRORS", "EIGHT_BIT", "SIXTEEN_BIT", "WITH_ALPHA", "check_regular_file", "open_rgb", "to_rgb"]
