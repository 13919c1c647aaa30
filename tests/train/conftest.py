"""Fixtures for the training tests: the shared photos labelled by the shipped model."""

from __future__ import annotations

import numpy as np
import pytest

from facelocal.data.annotations import FaceAnnotations, LabelledImage
from tests.paths import shared_file

PHOTOS = ("selfie_group.jpg", "wider_train_band_crowd.jpg")
# The photos have no five-point annotations, so the labels are the release model's own detections at the
# serving threshold.
LABEL_SCORE = 0.5


@pytest.fixture(scope="session")
def labelled_photos(weights_path) -> list[LabelledImage]:
    """Both shared photos with the faces that ``Detector(DEFAULT_PRESET)`` finds at score >= 0.5."""
    from facelocal.config import DEFAULT_PRESET
    from facelocal.detector import Detector
    from facelocal.imageio import load_image

    detector = Detector.from_weights(weights_path, DEFAULT_PRESET)
    records = []
    for name in PHOTOS:
        path = shared_file("images", name)
        found = detector.detect([load_image(path)])[0]
        assert found.scores.min() >= LABEL_SCORE
        records.append(LabelledImage(path, FaceAnnotations(found.boxes, found.landmarks, np.ones(len(found), bool))))
    return records
