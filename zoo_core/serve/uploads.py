"""Pictures sent to ``zoo serve``: checked before anything decodes them (Pillow only, no gradio).

A file is refused with a ZooError saying what was wrong when it is larger than
the byte limit, is not a picture Pillow reads, or declares more pixels than the
pixel limit (a decompression bomb: a few kilobytes that inflate to gigabytes).
The header is read first and the pixels only once the size is known to be fine.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

MAX_BYTES = 10 * 2**20  # 10 MiB, `zoo serve --max-upload-mb`
MAX_PIXELS = 25_000_000  # 25 megapixels, `zoo serve --max-pixels`


def upload_path(value) -> Path | None:
    """The file behind a gradio file value (a FileData dict or object, or a path); None when nothing was sent."""
    if value is None or value == "":
        return None
    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    if isinstance(value, dict):
        path = value.get("path")
    else:
        path = getattr(value, "path", None)
    return Path(path) if path else None


def open_picture(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES, max_pixels: int = MAX_PIXELS,
                 what: str = "the picture"):
    """The picture at ``path`` as a loaded PIL image, or a ZooError saying why it was refused."""
    from PIL import Image, UnidentifiedImageError

    from ..errors import ZooError

    path = Path(path)
    try:
        size = path.stat().st_size
    except OSError:
        raise ZooError(f"{what} did not arrive", hint="upload it again") from None
    if size > max_bytes:
        raise ZooError(f"{what} is {size / 2**20:.1f} MiB, more than the {max_bytes / 2**20:g} MiB this server accepts",
                       hint="send a smaller picture (the server's limit is `zoo serve --max-upload-mb`)")
    with warnings.catch_warnings():
        # Pillow's own warning comes before we know the size; our limit below says it with the numbers.
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            image = Image.open(path)
            width, height = image.size
            if width * height > max_pixels:
                image.close()
                raise ZooError(f"{what} declares {width} x {height} pixels ({width * height / 1e6:.0f} MP), more "
                               f"than the {max_pixels / 1e6:g} MP this server decodes (a decompression bomb?)",
                               hint="send a smaller picture (the server's limit is `zoo serve --max-pixels`)")
            image.load()
        except ZooError:
            raise
        except Image.DecompressionBombError:
            raise ZooError(f"{what} declares more pixels than Pillow decodes safely (a decompression bomb?)",
                           hint="send a smaller picture") from None
        except UnidentifiedImageError:
            raise ZooError(f"{what} is not a picture this server can read", hint="send a PNG, JPEG, WebP, GIF or "
                           "BMP file") from None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:  # truncated or damaged data
            raise ZooError(f"{what} is damaged: {exc}", hint="send the picture again, or another one") from None
    return image
