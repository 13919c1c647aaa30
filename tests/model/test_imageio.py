"""Reduced decoding: only as many pixels as a long side needs, the full size still reported, pixels reserved
before they are decoded."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from facelocal.imageio import ImageDecodeError, _to_rgb, decode_image, decode_reduced
from tests.paths import shared_file


def _encode(image: Image.Image, fmt: str, **save_args) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_args)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def photo_6000() -> Image.Image:
    """The group photo enlarged to 6000x3656 (22 MP)."""
    with Image.open(shared_file("images", "selfie_group.jpg")) as image:
        return image.convert("RGB").resize((6000, 3656), Image.BILINEAR)


def _reserving(data: bytes, cover: int | None) -> tuple[np.ndarray, int, int, list[int]]:
    reserved: list[int] = []
    decoded = decode_reduced(data, cover=cover, reserve=reserved.append)
    return decoded.rgb, decoded.width, decoded.height, reserved


def test_a_large_jpeg_is_decoded_at_the_smallest_scale_that_covers(photo_6000) -> None:
    rgb, width, height, reserved = _reserving(_encode(photo_6000, "JPEG", quality=90), cover=640)
    # 6000 // 640 = 9: the 1/8 DCT scale, 750 x 457, which still covers 640 on the long side.
    assert (width, height) == (6000, 3656)
    assert rgb.shape == (457, 750, 3) and reserved == [750 * 457]


def test_other_formats_are_decoded_whole_then_reduced(photo_6000) -> None:
    rgb, width, height, reserved = _reserving(_encode(photo_6000, "PNG", compress_level=1), cover=640)
    assert (width, height) == (6000, 3656) and reserved == [6000 * 3656]
    assert rgb.shape == (407, 667, 3)  # reduced by 9, the largest factor whose result still covers 640


def test_reduced_pixels_match_the_full_decode_at_canvas_size(photo_6000) -> None:
    data = _encode(photo_6000, "JPEG", quality=90)
    canvas = (640, 390)
    full = np.asarray(Image.fromarray(decode_image(data)).resize(canvas, Image.BILINEAR), np.float32)
    reduced = np.asarray(
        Image.fromarray(decode_reduced(data, cover=640).rgb).resize(canvas, Image.BILINEAR), np.float32
    )
    assert np.abs(full - reduced).mean() < 2.0


def test_small_images_and_no_cover_decode_in_full(photo_6000) -> None:
    small = _encode(photo_6000.resize((600, 366)), "JPEG", quality=90)
    rgb, width, height, reserved = _reserving(small, cover=640)
    assert rgb.shape == (366, 600, 3) and (width, height) == (600, 366) and reserved == [600 * 366]
    np.testing.assert_array_equal(rgb, decode_image(small))
    rgb, *_ = _reserving(_encode(photo_6000, "JPEG", quality=90), cover=None)
    assert rgb.shape == (3656, 6000, 3)


def test_exif_orientation_turns_the_reported_size_too(photo_6000) -> None:
    stored = photo_6000.resize((3000, 1828)).transpose(Image.Transpose.ROTATE_90)  # stored sideways: 1828 x 3000
    exif = Image.Exif()
    exif[0x0112] = 6
    decoded = decode_reduced(_encode(stored, "JPEG", quality=90, exif=exif.tobytes()), cover=640)
    assert (decoded.width, decoded.height) == (3000, 1828)
    assert decoded.rgb.shape == (457, 750, 3)  # upright, at 1/4


def test_reserve_runs_after_the_header_checks_and_can_refuse_the_decode(photo_6000) -> None:
    class Refused(Exception):
        pass

    def refuse(pixels: int) -> None:
        raise Refused(pixels)

    with pytest.raises(Refused):
        decode_reduced(_encode(photo_6000, "JPEG", quality=90), cover=640, reserve=refuse)
    with pytest.raises(ImageDecodeError) as too_large:
        decode_reduced(_encode(photo_6000, "JPEG", quality=90), max_pixels=1_000_000, reserve=refuse)
    assert too_large.value.code == "image_too_large"


# --- image modes: everything becomes 8-bit RGB ------------------------------------------------------------------


def _decoded(image: Image.Image, fmt: str = "PNG") -> np.ndarray:
    return decode_image(_encode(image, fmt))


def test_sixteen_bit_grey_is_rescaled_to_eight_bits() -> None:
    ramp = np.array([[0, 257 * 128, 65535]], np.uint16)
    rgb = _decoded(Image.fromarray(ramp))  # saved as a 16-bit grey PNG
    assert rgb.shape == (1, 3, 3) and rgb.dtype == np.uint8
    assert rgb[0, :, 0].tolist() == [0, 128, 255] and (rgb[..., 0] == rgb[..., 2]).all()


def _converted(image: Image.Image) -> list:
    """The conversion alone, for modes no accepted format decodes to directly."""
    return np.asarray(_to_rgb(image))[0, :, 1].tolist()


def test_thirty_two_bit_grey_keeps_eight_bit_values_and_rescales_larger_ones() -> None:
    assert _converted(Image.fromarray(np.array([[0, 100, 255]], np.int32))) == [0, 100, 255]
    assert _converted(Image.fromarray(np.array([[0, 65535]], np.int32))) == [0, 255]


def test_float_images_are_rescaled_like_grey() -> None:
    assert _converted(Image.fromarray(np.array([[0.0, 255.0]], np.float32))) == [0, 255]


def test_transparency_is_composited_on_white() -> None:
    rgba = np.array([[[255, 0, 0, 255], [0, 0, 255, 0]]], np.uint8)  # opaque red, transparent blue
    assert _decoded(Image.fromarray(rgba, "RGBA")).tolist() == [[[255, 0, 0], [255, 255, 255]]]
    la = np.array([[[40, 255], [40, 0]]], np.uint8)
    assert _decoded(Image.fromarray(la, "LA")).tolist() == [[[40, 40, 40], [255, 255, 255]]]
    palette = Image.fromarray(np.array([[0, 1]], np.uint8), "P")
    palette.putpalette([10, 20, 30, 200, 100, 50])
    palette.info["transparency"] = 1
    assert _decoded(palette).tolist() == [[[10, 20, 30], [255, 255, 255]]]


def test_cmyk_and_greyscale_become_rgb() -> None:
    cmyk = Image.new("CMYK", (2, 2), (0, 255, 255, 0))  # pure red in print colours
    red = _decoded(cmyk, "JPEG")
    assert red.shape == (2, 2, 3) and red[0, 0, 0] > 200 and red[0, 0, 1:].max() < 60
    grey = _decoded(Image.new("L", (2, 2), 77))
    assert grey.shape == (2, 2, 3) and (grey == 77).all()
