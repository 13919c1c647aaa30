"""Fixtures for the model-library tests: the shared photos and reference detections (weights: tests/conftest.py)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.paths import shared_file

# Every photo in shared/data/images; the reference file holds the release's detections on each.
PHOTO_NAMES = (
    "selfie_group.jpg",
    "wider_train_band_crowd.jpg",
    "two_people_hd.jpg",
    "single_face_closeup.jpg",
    "single_face_small.jpg",
    "masked_faces_grid.jpg",
)


@pytest.fixture(scope="session")
def reference() -> dict[str, list[dict]]:
    return json.loads(shared_file("reference", "mnet0.25_reference_detections.json").read_text())


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    from facelocal.imageio import load_image

    return {name: load_image(shared_file("images", name)) for name in PHOTO_NAMES}
