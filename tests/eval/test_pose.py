"""Head pose (facelocal.pose) on the shared AFLW2000-3D photos: the accuracy on a subset through
``facelocal eval pose``, and how the angles answer to mirrored and rotated photos."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from facelocal.evaluation.landmarks import match_faces
from facelocal.evaluation.pose import load_pose_labels
from facelocal.pose import CanonicalFace, euler_angles, head_poses
from tests.paths import shared_file


@pytest.fixture(scope="module")
def canonical() -> CanonicalFace:
    return CanonicalFace.load(shared_file("weights", "facemesh", "canonical_face_model.obj").parent)


@pytest.fixture(scope="module")
def mesh_detector(weights_path, mesh_weights_path):
    from facelocal.detector import Detector

    return Detector.from_weights(weights_path, mesh_weights=mesh_weights_path, mesh_min_face=0.0, mesh_refine=1)


@pytest.fixture(scope="module")
def labels():
    return load_pose_labels(shared_file("pose", "aflw2000_3d", "pose.json").parent)


def _pose_of(detector, canonical, rgb: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The pose of the detected face best matching ``box`` in ``rgb``."""
    faces = detector.detect([np.ascontiguousarray(rgb)])[0]
    _, found = match_faces(box[None], faces.boxes.astype(np.float64), 0.3)
    assert len(found) == 1
    return head_poses(faces, canonical)[found[0]].astype(np.float64)


def test_euler_angles_invert_the_data_sets_composition():
    """``R = Rx(-pitch) Ry(-yaw) Rz(-roll)`` with standard rotations comes back as (pitch, yaw, roll)."""
    from scipy.spatial.transform import Rotation

    pitch, yaw, roll = 20.0, -35.0, 10.0
    rotation = Rotation.from_euler("XYZ", [-pitch, -yaw, -roll], degrees=True).as_matrix()
    np.testing.assert_allclose(euler_angles(rotation), [pitch, yaw, roll], atol=1e-9)


def test_cli_pose_mae_on_a_subset(tmp_path, weights_path, mesh_weights_path):
    """Every 20th protocol face (25 of 491): MAE within the bound (all 491: see README, "Head pose")."""
    from facelocal.cli import main

    out = tmp_path / "pose.json"
    args = ["eval", "pose", "--data", str(shared_file("pose", "aflw2000_3d", "pose.json").parent)]
    args += ["--weights", str(weights_path), "--mesh-weights", str(mesh_weights_path)]
    assert main([*args, "--limit", "25", "--sample", "stride", "--json", str(out)]) == 0
    record = json.loads(out.read_text())
    assert record["faces"] == 25 and record["faces_detected"] == 25
    assert record["pose_share"] >= 0.88
    assert record["mae_overall"] < 5.0
    assert max(record["mae"].values()) < 6.5


def test_mirrored_photos_give_yaw_and_roll_of_opposite_sign(mesh_detector, canonical, labels):
    from facelocal.imageio import load_image

    turned = [label for label in labels if 15 < abs(label.angles[1]) < 45 and abs(label.angles[2]) > 6][:4]
    assert len(turned) == 4
    for label in turned:
        rgb = load_image(label.path)
        pose = _pose_of(mesh_detector, canonical, rgb, label.box)
        width = rgb.shape[1]
        mirrored_box = np.array([width - label.box[2], label.box[1], width - label.box[0], label.box[3]])
        mirrored = _pose_of(mesh_detector, canonical, rgb[:, ::-1], mirrored_box)
        assert np.sign(pose[1]) == np.sign(label.angles[1]) == -np.sign(mirrored[1]), label.path.name
        assert np.sign(pose[2]) == -np.sign(mirrored[2]), label.path.name
        np.testing.assert_allclose(mirrored[[1, 2]], -pose[[1, 2]], atol=3.0)
        assert abs(mirrored[0] - pose[0]) < 3.0


@pytest.mark.parametrize("degrees", [-30.0, 20.0])
def test_photos_turned_in_plane_shift_roll_by_the_angle(mesh_detector, canonical, labels, degrees):
    """Turning the photo clockwise by ``degrees`` (as displayed) adds ``degrees`` to the roll, within 2."""
    from facelocal.imageio import load_image

    upright = [label for label in labels if np.abs(label.angles).max() < 15][:3]
    for label in upright:
        rgb = load_image(label.path)
        height, width = rgb.shape[:2]
        centre = ((label.box[0] + label.box[2]) / 2, (label.box[1] + label.box[3]) / 2)
        matrix = cv2.getRotationMatrix2D(centre, -degrees, 1.0)  # OpenCV's positive angle is counter-clockwise
        turned = cv2.warpAffine(rgb, matrix, (width, height), borderMode=cv2.BORDER_REPLICATE)
        corners = np.array([[label.box[i], label.box[j], 1.0] for i in (0, 2) for j in (1, 3)]) @ matrix.T
        box = np.concatenate([corners.min(axis=0), corners.max(axis=0)])
        before = _pose_of(mesh_detector, canonical, rgb, label.box)
        after = _pose_of(mesh_detector, canonical, turned, box)
        assert after[2] - before[2] == pytest.approx(degrees, abs=2.0), label.path.name


def test_the_fit_recovers_a_known_pose_of_the_canonical_face(canonical):
    """The canonical face turned by known angles, scaled and moved into image pixels comes back with those
    angles, with equal weights and with MediaPipe's Procrustes weights."""
    from scipy.spatial.transform import Rotation

    from facelocal.pose import head_pose

    angles = np.array([12.0, -40.0, 25.0])
    rotation = Rotation.from_euler("XYZ", -angles, degrees=True).as_matrix()
    mesh = (12.0 * canonical.vertices @ rotation.T + [200.0, -150.0, 0.0]) * [1.0, -1.0, -1.0]  # to image axes
    np.testing.assert_allclose(head_pose(mesh, canonical), angles, atol=1e-6)
    np.testing.assert_allclose(head_pose(mesh, canonical, procrustes_weights=True), angles, atol=1e-6)
    assert (canonical.procrustes_weights > 0).sum() == 33
