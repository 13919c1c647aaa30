"""Parity with the public reference pipeline on every shared photo, with the library's defaults."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from facelocal.config import DEFAULT_PRESET, SERVE_POSTPROCESS
from facelocal.detector import Detector
from facelocal.postprocess import box_iou
from facelocal.weights import KNOWN_CHECKPOINTS, file_sha256, preset_for
from tests.model.conftest import PHOTO_NAMES


@pytest.fixture(scope="module")
def default_detector(weights_path):
    """What a user gets from ``Detector.from_weights(path)``, with the reference's unclipped boxes."""
    return Detector.from_weights(weights_path, postprocess=replace(SERVE_POSTPROCESS, clip_boxes=False))


def _matches(reference_faces, detections, min_iou):
    """Index of the detection each reference face matches best, and that IoU."""
    ref_boxes = np.array([face["box"] for face in reference_faces], np.float32).reshape(-1, 4)
    iou = box_iou(ref_boxes, detections.boxes)
    match = iou.argmax(axis=1) if iou.size else np.zeros(0, int)
    best = iou[np.arange(len(reference_faces)), match] if iou.size else np.zeros(0)
    assert len(set(match.tolist())) == len(reference_faces), "two reference faces matched the same detection"
    assert best.min(initial=1.0) >= min_iou
    return match


def test_shipped_file_is_the_release_and_picks_its_preset(weights_path):
    assert KNOWN_CHECKPOINTS[file_sha256(weights_path)] == "mobilenet0.25" == DEFAULT_PRESET
    assert preset_for(weights_path) == "mobilenet0.25"


def test_contradicting_preset_warns(weights_path):
    with pytest.warns(UserWarning, match="known mobilenet0.25 checkpoint"):
        assert preset_for(weights_path, "mobilenet0.25-1mb") == "mobilenet0.25-1mb"


@pytest.mark.parametrize("name", PHOTO_NAMES)
def test_default_config_finds_the_reference_faces(default_detector, photos, reference, name):
    """The check that would have caught the wrong default: every reference face is found at IoU >= 0.5."""
    found = default_detector.detect([photos[name]])[0]
    assert len(found) >= len(reference[name]) > 0
    _matches(reference[name], found, min_iou=0.5)


@pytest.mark.parametrize("name", PHOTO_NAMES)
def test_exact_parity_with_reference_pipeline(default_detector, photos, reference, name):
    """Original size, score 0.5, NMS 0.4, unclipped: the same faces, scores within 1e-3, points within 0.5 px."""
    ours = default_detector.detect([photos[name]])[0]
    expected = reference[name]
    match = _matches(expected, ours, min_iou=0.95)
    np.testing.assert_allclose(ours.scores[match], [face["score"] for face in expected], atol=1e-3)
    ref_landmarks = np.array([face["landmarks"] for face in expected], np.float32)
    assert np.abs(ours.landmarks[match] - ref_landmarks).max() <= 0.5
    extras = np.setdiff1d(np.arange(len(ours)), match)
    assert not np.any(ours.scores[extras] >= 0.51)
