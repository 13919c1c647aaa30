"""The canvas is the contract's uint8 BGR, the network subtracts the training mean, and resize policies map back
exactly."""

from __future__ import annotations

import numpy as np
import pytest

from facelocal.config import PostprocessConfig
from facelocal.contract import BGR_MEAN
from facelocal.postprocess import select_faces
from facelocal.preprocess import Placement, ResizePolicy, to_canvas


def test_canvas_is_bgr_pixels_and_the_network_subtracts_the_mean_unscaled():
    import torch

    from facelocal.config import get_config
    from facelocal.models import build_model

    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 200, 100, 50  # R, G, B
    x = to_canvas(rgb)
    assert x.shape == (3, 2, 3) and x.dtype == np.uint8
    assert np.all(x[0] == 50) and np.all(x[1] == 100) and np.all(x[2] == 200)
    # What the backbone sees: blue minus 104, green minus 117, red minus 123: no /255, no std.
    model = build_model(get_config("mobilenet0.25")).eval()
    seen = []
    model.body.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
    model(torch.from_numpy(x[None]))
    expected = np.array([50 - 104, 100 - 117, 200 - 123], np.float32)[:, None, None]
    np.testing.assert_array_equal(seen[0][0].numpy(), np.broadcast_to(expected, (3, 2, 3)))


def test_letterbox_pads_with_the_mean_colour():
    rgb = np.full((10, 20, 3), 255, np.uint8)
    placement = ResizePolicy("letterbox", 32).plan(20, 10)
    x = to_canvas(rgb, placement)
    assert x.shape == (3, 32, 32)
    mean = np.array(BGR_MEAN, np.uint8)[:, None]
    assert np.all(x[:, :10, :20] == 255)
    assert np.all(x[:, 10:, :].reshape(3, -1) == mean) and np.all(x[:, :, 20:].reshape(3, -1) == mean)


@pytest.mark.parametrize(
    ("policy", "size", "expected"),
    [
        ("original", (1024, 624), Placement(1.0, 1024, 624, 1024, 624)),
        ("long:512", (1024, 624), Placement(0.5, 512, 312, 512, 312)),
        ("long:2048", (1024, 624), Placement(2.0, 2048, 1248, 2048, 1248)),
        ("letterbox:640", (1280, 960), Placement(0.5, 640, 480, 640, 640)),
        ("letterbox:640", (320, 200), Placement(1.0, 320, 200, 640, 640)),
        # The service's policy: a VGA image at its own size, others on the next multiple of 32, never upscaled.
        ("fit:640", (640, 480), Placement(1.0, 640, 480, 640, 480)),
        ("fit:640", (1024, 624), Placement(0.625, 640, 390, 640, 416)),
        ("fit:1024", (1024, 624), Placement(1.0, 1024, 624, 1024, 640)),
        ("fit:640", (300, 200), Placement(1.0, 300, 200, 320, 224)),
        ("fit:640", (480, 1920), Placement(1 / 3, 160, 640, 160, 640)),
    ],
)
def test_resize_plans(policy, size, expected):
    assert ResizePolicy.parse(policy).plan(*size) == expected


@pytest.mark.parametrize("text", ["long", "letterbox:", "letterbox:-3", "square:640", "original:5", "fit", "fit:0"])
def test_invalid_policies_are_rejected(text):
    with pytest.raises(ValueError, match="invalid resize policy"):
        ResizePolicy.parse(text)


def test_scaled_mapping_is_exact_on_hand_made_boxes():
    """A face at known canvas coordinates lands at exactly the scaled-back image coordinates."""
    placement = ResizePolicy.parse("letterbox:640").plan(1280, 960)  # scale 0.5
    boxes = np.array([[100, 50, 200, 170], [10, 10, 12, 12]], np.float32)
    landmarks = np.tile(np.array([[120, 90, 180, 90, 150, 120, 130, 150, 170, 150]], np.float32), (2, 1))
    scores = np.array([0.9, 0.8], np.float32)
    result = select_faces(boxes, scores, landmarks, placement, 1280, 960, PostprocessConfig())
    np.testing.assert_array_equal(result.boxes, [[200, 100, 400, 340], [20, 20, 24, 24]])
    np.testing.assert_array_equal(result.landmarks[0], [[240, 180], [360, 180], [300, 240], [260, 300], [340, 300]])


def test_boxes_are_clipped_to_the_image():
    placement = Placement(1.0, 100, 80, 128, 128)
    boxes = np.array([[-5, -3, 120, 90]], np.float32)
    result = select_faces(
        boxes, np.array([0.9], np.float32), np.zeros((1, 10), np.float32), placement, 100, 80, PostprocessConfig()
    )
    np.testing.assert_array_equal(result.boxes, [[0, 0, 100, 80]])


def test_boxes_that_show_no_pixel_of_the_image_are_no_faces():
    # An 8x8 image at the top-left of a 640 canvas: the rest is padding.
    placement = ResizePolicy.parse("letterbox:640").plan(8, 8)
    boxes = np.array(
        [
            [560, 565, 580, 590],  # wholly in the padding: clipped, it would be the point [8, 8, 8, 8]
            [3, 3, 3, 6],  # no width
            [5, 2, 4, 6],  # negative width
            [7.5, 1, 30, 9],  # half a pixel of the image
            [2, -4, 20, 6],  # partly in the padding, but on the image
        ],
        np.float32,
    )
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.55], np.float32)
    result = select_faces(boxes, scores, np.zeros((5, 10), np.float32), placement, 8, 8, PostprocessConfig())
    np.testing.assert_array_equal(result.boxes, [[2, 0, 8, 6]])
    np.testing.assert_array_equal(result.scores, np.float32([0.55]))
