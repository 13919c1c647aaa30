"""Image decoding to RGB uint8 with EXIF orientation applied (Pillow only, no torch).

Every failure raises :class:`ImageDecodeError` with a machine-readable ``code``, so callers can map it
to a client error instead of crashing.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 40_000_000
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")


class ImageDecodeError(ValueError):
    """An image that cannot be turned into pixels. ``code`` is a stable identifier for APIs."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB: 16-bit and float greys are rescaled, alpha dropped, CMYK inverted."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        pixels = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or pixels.max(initial=0) > 255 else 255.0
        grey = np.clip(pixels / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Composite on white: transparent regions of face crops and stickers are usually white backgrounds.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    # Already RGB (most JPEGs): convert() would only copy the pixels.
    return image if image.mode == "RGB" else image.convert("RGB")


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes to an ``(H, W, 3)`` uint8 RGB array, EXIF orientation applied.

    The size is read from the header and checked against ``max_pixels`` before any pixel is decoded,
    so decompression bombs cost nothing.
    """
    if not data:
        raise ImageDecodeError("empty_image", "the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            if image.format not in SUPPORTED_FORMATS:
                raise ImageDecodeError(
                    "unsupported_format", f"unsupported image format {image.format}; send JPEG, PNG, WebP or BMP"
                )
            width, height = image.size
            if width == 0 or height == 0:
                raise ImageDecodeError("empty_image", f"the image has zero size ({width}x{height})")
            if width * height > max_pixels:
                raise ImageDecodeError(
                    "image_too_large", f"{width}x{height} is {width * height} pixels; the limit is {max_pixels}"
                )
            image.load()
            # In place: without an orientation tag the copying variant would duplicate every pixel.
            ImageOps.exif_transpose(image, in_place=True)
            return np.asarray(_to_rgb(image))
    except ImageDecodeError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError("image_too_large", str(exc)) from exc
    except UnidentifiedImageError as exc:
        raise ImageDecodeError("invalid_image", "the data is not a recognised image") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageDecodeError("corrupt_image", f"the image could not be decoded: {exc}") from exc


def load_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read and decode an image file; see :func:`decode_image`."""
    return decode_image(Path(path).read_bytes(), max_pixels=max_pixels)
