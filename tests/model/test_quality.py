"""Face quality (facelocal.quality) on real faces from the shared photos, blurred, darkened and shrunk by known
amounts: each figure moves the way it should and ``usable`` follows."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facelocal.evaluation.landmarks import match_faces
from facelocal.quality import DEFAULT_THRESHOLDS, QUALITY_CROP, face_quality


@pytest.fixture(scope="module")
def serve_detector(weights_path):
    from facelocal.detector import Detector

    return Detector.from_weights(weights_path)


@pytest.fixture(scope="module")
def sharp_faces(serve_detector, photos):
    """The large, sharp faces (eyes >= 40 px apart) of two shared photos, with their images."""
    found = []
    for name in ("two_people_hd.jpg", "single_face_closeup.jpg"):
        faces = serve_detector.detect([photos[name]])[0]
        eyes = np.linalg.norm(faces.landmarks[:, 1] - faces.landmarks[:, 0], axis=-1)
        found.append((photos[name], faces.select(eyes >= 40)))
    assert sum(len(faces) for _, faces in found) == 2
    return found


def test_sharp_well_lit_faces_are_usable(sharp_faces):
    for rgb, faces in sharp_faces:
        quality = face_quality(rgb, faces)
        assert quality.usable.all()
        assert (quality.sharpness > 0.15).all() and (quality.brightness > 0.3).all()


@pytest.mark.parametrize("sigma", [1.0, 2.0])
def test_blur_lowers_sharpness_and_makes_faces_unusable(sharp_faces, sigma):
    """A Gaussian blur of ``sigma`` crop pixels (sigma * side / 112 image pixels)."""
    for rgb, faces in sharp_faces:
        before = face_quality(rgb, faces)
        for row in range(len(faces)):
            side = float(np.max(faces.boxes[row, 2:] - faces.boxes[row, :2]))
            blurred = cv2.GaussianBlur(rgb, (0, 0), sigma * side / QUALITY_CROP)
            after = face_quality(blurred, faces.select(np.array([row])))
            assert after.sharpness[0] < before.sharpness[row] / 4
            assert after.sharpness[0] < DEFAULT_THRESHOLDS.min_sharpness and not after.usable[0]
            assert after.brightness[0] == pytest.approx(before.brightness[row], abs=0.02)


@pytest.mark.parametrize("light", [0.5, 0.25])
def test_darkening_scales_brightness_and_leaves_sharpness(sharp_faces, light):
    for rgb, faces in sharp_faces:
        before = face_quality(rgb, faces)
        after = face_quality((rgb.astype(np.float32) * light).round().astype(np.uint8), faces)
        np.testing.assert_allclose(after.brightness, before.brightness * light, atol=0.01)
        assert (after.underexposed >= before.underexposed).all()
        np.testing.assert_allclose(after.sharpness, before.sharpness, rtol=0.1)
        assert after.usable.any() == (light > 0.25)  # a quarter of the light: too dark to use


def test_shrinking_the_photo_shrinks_the_eye_distance_and_detail(serve_detector, sharp_faces):
    for rgb, faces in sharp_faces:
        before = face_quality(rgb, faces)
        for scale in (0.5, 0.25):
            small = cv2.resize(rgb, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            found = serve_detector.detect([small])[0]
            truth, matched = match_faces(faces.boxes.astype(np.float64) * scale, found.boxes.astype(np.float64))
            assert len(truth) == len(faces)
            after = face_quality(small, found.select(matched))
            np.testing.assert_allclose(after.inter_ocular, before.inter_ocular[truth] * scale, rtol=0.15)
            assert (after.sharpness < before.sharpness[truth]).all()
        assert not after.usable.any()  # a quarter of the size: eyes under 20 px apart or too little detail


def test_frontalness_follows_the_pose_and_a_turned_face_is_unusable(sharp_faces):
    rgb, faces = sharp_faces[1]
    poses = np.array([[0.0, 10.0, 0.0]] * len(faces))
    frontal = face_quality(rgb, faces, poses)
    turned = face_quality(rgb, faces, poses + [0.0, 60.0, 0.0])
    assert frontal.frontalness[0] == pytest.approx(80 / 90)
    assert turned.frontalness[0] == pytest.approx(20 / 90)
    assert frontal.usable[0] and not turned.usable[0]
    assert face_quality(rgb, faces).frontalness[0] != face_quality(rgb, faces).frontalness[0]  # NaN: no pose
