"""Recognising image bytes before decoding them (content-type checks), and decode errors as ServiceErrors."""

from __future__ import annotations

from collections.abc import Callable

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
