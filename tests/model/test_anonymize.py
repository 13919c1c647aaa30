"""Anonymisation (facelocal.anonymize) on the shared photos: every face covered, nothing else touched; mesh faces
on their face oval; and where the library's landmarks=mesh takes its points (facelocal.landmark_source)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from facelocal.anonymize import anonymize, face_regions, region_mask
from facelocal.detections import FaceDetections
from facelocal.evaluation.coverage import box_coverage
from facelocal.facemesh import CONFIDENT_PRESENCE, five_points
from facelocal.landmark_source import with_landmarks_from


@pytest.fixture(scope="module")
def mesh_detector(weights_path, mesh_weights_path):
    from facelocal.detector import Detector

    return Detector.from_weights(weights_path, mesh_weights=mesh_weights_path)


def _xywh(boxes: np.ndarray) -> np.ndarray:
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1)


@pytest.mark.parametrize("mode", ["blur", "pixelate"])
def test_every_face_is_covered_and_nothing_else_changes(mesh_detector, photos, mode):
    rgb = photos["selfie_group.jpg"]
    faces = mesh_detector.detect([rgb])[0]
    assert len(faces) >= 20
    result = anonymize(rgb, faces, mode)
    assert len(result.regions) == len(faces) and set(result.region_kinds) == {"mesh", "ellipse"}
    assert (box_coverage(result.mask, _xywh(faces.boxes)) >= 0.9).all()
    changed = (result.image != rgb).any(axis=2)
    assert not (changed & ~result.mask).any()
    assert changed[result.mask].mean() > 0.8
    grey = lambda image: cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)  # noqa: E731
    inner = cv2.erode(result.mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)  # no region edges
    detail = lambda image: cv2.Laplacian(grey(image), cv2.CV_32F)[inner].var()  # noqa: E731
    colours = lambda image: len(np.unique(image[inner], axis=0))  # noqa: E731
    if mode == "blur":
        assert detail(result.image) < detail(rgb) / 4
    else:  # blocks of one colour: 8 across a face
        assert colours(result.image) < colours(rgb) / 10
    assert result.mask.mean() < 0.35  # a group selfie: the faces and their hair, not the whole photo


def test_meshed_faces_are_covered_on_their_face_oval(mesh_detector, photos):
    rgb = photos["two_people_hd.jpg"]
    faces = mesh_detector.detect([rgb])[0]
    regions, kinds = face_regions(faces)
    meshed = np.nonzero(kinds == "mesh")[0]
    assert len(meshed) >= 1
    for row in meshed:
        oval = region_mask([regions[row]], faces.width, faces.height)
        for x, y in five_points(faces.meshes[row]).astype(int):
            assert oval[y, x]
        assert box_coverage(oval, _xywh(faces.boxes[row : row + 1]))[0] >= 0.9


def test_unknown_mode_is_refused(photos):
    faces = FaceDetections.empty(4, 4)
    with pytest.raises(ValueError, match="unknown mode"):
        anonymize(np.zeros((4, 4, 3), np.uint8), faces, "smear")
    assert anonymize(np.zeros((4, 4, 3), np.uint8), faces).mask.sum() == 0


def test_landmarks_from_the_mesh_where_it_is_confident(mesh_detector, photos):
    from dataclasses import replace

    rgb = photos["selfie_group.jpg"]
    faces = mesh_detector.detect([rgb])[0]
    assert np.isfinite(faces.mesh_scores).any() and not np.isfinite(faces.mesh_scores).all()
    # One meshed face made doubtful: a profile whose crop failed keeps RetinaFace's points (its mesh "eye" can sit
    # on the ear).
    doubted = int(np.nonzero(faces.mesh_scores >= CONFIDENT_PRESENCE)[0][0])
    scores = faces.mesh_scores.copy()
    scores[doubted] = CONFIDENT_PRESENCE / 2
    faces = replace(faces, mesh_scores=scores)
    meshed = np.nan_to_num(scores, nan=0.0) >= CONFIDENT_PRESENCE
    assert not meshed[doubted] and meshed.any()
    chosen, sources = with_landmarks_from(faces, "mesh")
    assert sources.tolist() == ["mesh" if m else "detector" for m in meshed]
    for row in range(len(faces)):
        expected = five_points(faces.meshes[row]) if meshed[row] else faces.landmarks[row]
        np.testing.assert_allclose(chosen.landmarks[row], expected, rtol=1e-6)
    same, detector_sources = with_landmarks_from(faces, "detector")
    assert same is faces and set(detector_sources) == {"detector"}
    with pytest.raises(ValueError, match="unknown landmark source"):
        with_landmarks_from(faces, "nose")


def test_detect_cli_takes_landmarks_from_the_mesh(capsys, weights_path, mesh_weights_path):
    import json

    from facelocal.cli import main
    from tests.paths import shared_file

    photo = str(shared_file("images", "two_people_hd.jpg"))
    common = [photo, "--weights", str(weights_path), "--json"]
    assert main(["detect", *common, "--landmarks", "mesh"]) == 2  # needs --mesh
    capsys.readouterr()
    records = {}
    for source in ("detector", "mesh"):
        assert main(["detect", *common, "--mesh", "--mesh-weights", str(mesh_weights_path), "--landmarks", source]) == 0
        records[source] = json.loads(capsys.readouterr().out)["faces"]
    # The shouting profile on the left has a mesh FaceMesh doubts (presence 0.11): it keeps RetinaFace's points.
    confident = [face["mesh_score"] >= CONFIDENT_PRESENCE for face in records["mesh"]]
    assert confident == [True, False]
    assert [face.get("landmarks_source") for face in records["mesh"]] == ["mesh", "detector"]
    assert "landmarks_source" not in records["detector"][0]
    for mesh_face, detector_face, meshed in zip(records["mesh"], records["detector"], confident, strict=True):
        if meshed:
            np.testing.assert_allclose(mesh_face["landmarks"], five_points(np.array(mesh_face["mesh"])), atol=0.01)
            assert mesh_face["landmarks"] != detector_face["landmarks"]
        else:
            assert mesh_face["landmarks"] == detector_face["landmarks"]
