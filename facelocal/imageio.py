"""Image decoding to RGB uint8 with EXIF orientation applied (Pillow only, no torch).

Every failure raises :class:`ImageDecodeError` with a machine-readable ``code``, so callers can map it
to a client error instead of crashing.
"""

from __future__ import annotations

import io
import math
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

DEFAULT_MAX_PIXELS = 40_000_000
SUPPORTED_FORMATS = ("JPEG", "PNG", "WEBP", "BMP")
# EXIF orientations that turn the image by 90 degrees, so that its upright width and height swap.
QUARTER_TURNS = (5, 6, 7, 8)


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


@dataclass(frozen=True)
class DecodedImage:
    """Pixels of an image, possibly decoded at reduced size.

    ``rgb`` is ``(h, w, 3)`` uint8 with EXIF orientation applied; ``width x height`` is the image's full size
    (after EXIF orientation), which ``rgb`` equals unless decoding was asked to reduce it.
    """

    rgb: np.ndarray
    width: int
    height: int


def decode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode encoded image bytes to an ``(H, W, 3)`` uint8 RGB array at full size, EXIF orientation applied.

    The size is read from the header and checked against ``max_pixels`` before any pixel is decoded,
    so decompression bombs cost nothing.
    """
    return decode_reduced(data, max_pixels).rgb


def decode_reduced(
    data: bytes,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    cover: int | None = None,
    reserve: Callable[[int], None] | None = None,
) -> DecodedImage:
    """Decode like :func:`decode_image`, but only as finely as a long side of ``cover`` pixels needs.

    With ``cover``, a larger JPEG is decoded at the smallest DCT scale (1/2, 1/4 or 1/8) whose size still
    covers ``cover`` on the long side, which skips most of the decoding work and memory; other formats are
    decoded in full and then shrunk by the largest integer factor that keeps that cover. ``reserve`` is called
    with the number of pixels the decoder is about to produce, after the header checks and before any pixel
    is decoded; it may raise to refuse the work.
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
            if cover is not None and max(width, height) > cover:
                # Asked per side, so that the reduced size keeps the image's proportions around ``cover``.
                shrink = cover / max(width, height)
                image.draft(None, (math.ceil(width * shrink), math.ceil(height * shrink)))
            if reserve is not None:
                reserve(image.width * image.height)
            image.load()
            if image.getexif().get(ExifTags.Base.Orientation) in QUARTER_TURNS:
                width, height = height, width
            # In place: without an orientation tag the copying variant would duplicate every pixel.
            ImageOps.exif_transpose(image, in_place=True)
            rgb = _to_rgb(image)
            if cover is not None and (factor := max(rgb.size) // cover) > 1:
                rgb = rgb.reduce(factor)
            return DecodedImage(np.asarray(rgb), width, height)
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
