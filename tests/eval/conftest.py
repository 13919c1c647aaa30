"""Fixtures on the shared data (../shared/data beside the repository) for the evaluation tests."""

from __future__ import annotations

import pytest

from tests.paths import shared_file


@pytest.fixture(scope="session")
def ground_truth():
    from facelocal.evaluation.widerface import load_ground_truth

    return load_ground_truth(shared_file("widerface", "ground_truth", "wider_face_val.mat").parent)


@pytest.fixture(scope="session")
def detector(weights_path):
    from facelocal.config import EVAL_POSTPROCESS
    from facelocal.detector import Detector

    return Detector.from_weights(weights_path, postprocess=EVAL_POSTPROCESS)


@pytest.fixture(scope="session")
def selfie_rgb():
    from facelocal.imageio import load_image

    return load_image(shared_file("images", "selfie_group.jpg"))
