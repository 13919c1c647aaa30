"""The paper's augmentation keeps boxes and landmarks together."""

from __future__ import annotations

import numpy as np
import pytest

from facelocal.data.annotations import FaceAnnotations
from facelocal.data.augment import (
    AugmentConfig,
    Augmenter,
    PhotometricConfig,
    crop_and_resize,
    horizontal_flip,
    photometric_distort,
    random_square_crop,
)
from facelocal.imageio import load_image

# Landmarks may sit a little outside a detector's box (chin-less crops, profile noses).
BOX_MARGIN = 0.1


def landmarks_inside_boxes(faces: FaceAnnotations, margin: float = BOX_MARGIN) -> np.ndarray:
    """``(N,)`` whether all five points of each face lie in its box grown by ``margin`` of its size."""
    size = faces.boxes[:, 2:] - faces.boxes[:, :2]
    low = faces.boxes[:, None, :2] - margin * size[:, None]
    high = faces.boxes[:, None, 2:] + margin * size[:, None]
    return np.all((faces.landmarks >= low) & (faces.landmarks <= high), axis=(1, 2))


def frontal(faces: FaceAnnotations) -> np.ndarray:
    """Faces whose eyes and mouth corners are both clearly on their own side of the nose."""
    x = faces.landmarks[..., 0]
    width = faces.boxes[:, 2] - faces.boxes[:, 0]
    gap = 0.05 * width
    return (x[:, 0] + gap < x[:, 2]) & (x[:, 2] + gap < x[:, 1]) & (x[:, 3] + gap < x[:, 2]) & (x[:, 2] + gap < x[:, 4])


@pytest.mark.parametrize("seed", range(12))
def test_augmented_landmarks_stay_on_their_faces(labelled_photos, seed):
    record = labelled_photos[seed % 2]
    image = load_image(record.path)
    assert landmarks_inside_boxes(record.faces).all(), "the labels themselves must satisfy the check"
    source_frontal = frontal(record.faces)
    augment = Augmenter(AugmentConfig(image_size=320))
    sample = augment(image, record.faces, np.random.default_rng(seed))
    faces = sample.faces
    assert sample.image.shape == (320, 320, 3) and sample.image.dtype == np.uint8
    assert len(faces) >= 1
    assert (faces.boxes >= 0).all() and (faces.boxes <= 320).all()
    whole = ~sample.clipped
    assert landmarks_inside_boxes(faces.select(whole)).all()
    # Frontal faces stay frontal, whether the sample was flipped or not: the left/right pairs were swapped.
    assert frontal(faces.select(whole & source_frontal[sample.face_indices])).all()


def test_landmarks_keep_their_place_relative_to_the_box(labelled_photos):
    """Without clipping, each point's position in box-normalised coordinates survives crop, resize and flip."""
    record = labelled_photos[0]
    image = load_image(record.path)

    def relative(faces: FaceAnnotations) -> np.ndarray:
        size = faces.boxes[:, None, 2:] - faces.boxes[:, None, :2]
        return (faces.landmarks - faces.boxes[:, None, :2]) / size

    crop = np.array([100, 50, 500, 450], np.float32)
    inside = np.all((record.faces.boxes[:, :2] >= crop[:2]) & (record.faces.boxes[:, 2:] <= crop[2:]), axis=1)
    assert inside.sum() >= 3
    source = record.faces.select(inside)
    resized, moved, clipped = crop_and_resize(image, source, crop, 640)
    assert not clipped.any()
    np.testing.assert_allclose(relative(moved), relative(source), atol=1e-4)
    flipped_image, flipped = horizontal_flip(resized, moved)
    expected = relative(moved)[:, [1, 0, 2, 4, 3]]
    expected[..., 0] = 1 - expected[..., 0]
    np.testing.assert_allclose(relative(flipped), expected, atol=1e-4)
    np.testing.assert_array_equal(flipped_image[:, 0], resized[:, -1])


def test_flip_swaps_left_and_right_pairs():
    image = np.zeros((10, 100, 3), np.uint8)
    points = np.array([[[30, 4], [50, 4], [40, 6], [32, 8], [48, 8]]], np.float32)
    faces = FaceAnnotations(np.array([[20, 0, 60, 10]]), points, np.array([True]))
    _, flipped = horizontal_flip(image, faces)
    np.testing.assert_allclose(flipped.boxes, [[40, 0, 80, 10]])
    # Left eye (index 0) comes from the mirrored right eye: 100 - 50.
    np.testing.assert_allclose(flipped.landmarks[0], [[50, 4], [70, 4], [60, 6], [52, 8], [68, 8]])


def test_crop_keeps_faces_by_centre_and_clips():
    faces = FaceAnnotations(
        np.array([[10, 10, 30, 30], [90, 10, 130, 30], [150, 150, 170, 170]]),
        np.zeros((3, 5, 2)),
        np.zeros(3, bool),
    )
    config = AugmentConfig(crop_scale=(0.5, 0.5))
    rng = np.random.default_rng(0)
    for _ in range(50):
        crop, inside = random_square_crop(200, 200, faces, rng, config)
        assert crop[2] - crop[0] == crop[3] - crop[1] == 100
        centres = (faces.boxes[:, :2] + faces.boxes[:, 2:]) / 2
        assert inside.tolist() == np.all((centres > crop[:2]) & (centres < crop[2:]), axis=1).tolist()
        assert inside.any()
        _, moved, clipped = crop_and_resize(np.zeros((200, 200, 3), np.uint8), faces.select(inside), crop, 100)
        assert (moved.boxes >= 0).all() and (moved.boxes <= 100).all()


def test_crop_falls_back_to_the_padded_image_when_no_face_fits():
    faces = FaceAnnotations(np.array([[0, 0, 2, 2]]), np.zeros((1, 5, 2)), np.zeros(1, bool))
    config = AugmentConfig(crop_scale=(0.3, 0.3), crop_attempts=5)
    crop, inside = random_square_crop(300, 200, faces, np.random.default_rng(0), config)
    assert crop.tolist() == [0, 0, 300, 300] and inside.all()
    image, moved, _ = crop_and_resize(np.full((200, 300, 3), 255, np.uint8), faces, crop, 150)
    assert image.shape == (150, 150, 3)
    assert (image[120:, :] != 255).all(), "the padding below the image is mean-coloured"
    np.testing.assert_allclose(moved.boxes, [[0, 0, 1, 1]])


def test_photometric_distortion_changes_colours_not_shape():
    image = np.random.default_rng(1).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    outputs = [photometric_distort(image, np.random.default_rng(s), PhotometricConfig()) for s in range(8)]
    assert all(o.shape == image.shape and o.dtype == np.uint8 for o in outputs)
    assert sum(not np.array_equal(o, image) for o in outputs) >= 6
    grey = np.full((4, 4, 3), 128, np.uint8)
    no_op = PhotometricConfig(brightness=0, contrast=(1, 1), saturation=(1, 1), hue=0)
    # Grey has no hue or saturation, so the HSV round trip must give it back exactly.
    np.testing.assert_array_equal(photometric_distort(grey, np.random.default_rng(0), no_op), grey)
