"""Recognising image bytes before decoding them (content-type checks), decode errors as ServiceErrors, and
writing pixels back in the format they came in (``/v1/anonymize``)."""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
from PIL import Image

from facelocal.imageio import DecodedImage, ImageDecodeError, decode_reduced
from service.errors import from_decode_error

# Media types accepted as a raw request body, by the format their bytes must have.
MEDIA_TYPES = {"image/jpeg": "JPEG", "image/png": "PNG", "image/webp": "WEBP", "image/bmp": "BMP"}


def sniff_format(data: bytes) -> str | None:
    """The image format the leading bytes announce (JPEG, PNG, WEBP, BMP), or ``None``."""
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    if data.startswith(b"BM"):
        return "BMP"
    return None


def decode(data: bytes, max_pixels: int, cover: int | None, reserve: Callable[[int], None]) -> DecodedImage:
    """Decode as :func:`facelocal.imageio.decode_reduced` does, raising ``ServiceError`` (400/413/415) for
    bad images."""
    try:
        return decode_reduced(data, max_pixels, cover, reserve)
    except ImageDecodeError as exc:
        raise from_decode_error(exc) from None


# What an anonymised image is written with, by format: JPEG and WebP near their sources' quality.
_SAVE_OPTIONS: dict[str, dict] = {"JPEG": {"quality": 95}, "WEBP": {"quality": 95}, "PNG": {}, "BMP": {}}
_MEDIA_TYPE_OF = {fmt: media for media, fmt in MEDIA_TYPES.items()}


def encode_like(rgb: np.ndarray, data: bytes) -> tuple[bytes, str]:
    """The ``(H, W, 3)`` uint8 RGB pixels encoded in the format of the image ``data`` (JPEG, PNG, WebP, BMP;
    any other format as PNG), without metadata; and its media type."""
    fmt = sniff_format(data) or "PNG"
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, format=fmt, **_SAVE_OPTIONS[fmt])
    return buffer.getvalue(), _MEDIA_TYPE_OF[fmt]
