"""Annotation readers: RetinaFace label.txt (with and without landmarks) and WIDER bbx_gt."""

from __future__ import annotations

import numpy as np
import pytest

from facelocal.data.annotations import (
    load_annotations,
    read_retinaface_labels,
    read_wider_boxes,
    write_retinaface_labels,
)

LABELS = """\
# 0--Parade/a.jpg
449 330 122 149 488.906 373.643 0.0 542.089 376.442 0.0 515.031 412.83 0.0 485.955 425.893 0.0 538.357 431.491 0.0 0.82
10 20 30 40 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0 -1.0
# 1--Handshaking/b.jpg
5 6 7 8
# 2--Empty/c.jpg
"""

WIDER = """\
0--Parade/a.jpg
2
78 221 7 8 2 0 0 0 0 0
10 10 20 30 0 0 0 1 0 0
1--Empty/b.jpg
0
0 0 0 0 0 0 0 0 0 0
2--One/c.jpg
1
1 2 3 4 0 0 0 0 0 0
"""


def test_label_txt_boxes_landmarks_and_missing_landmarks(tmp_path):
    (tmp_path / "images").mkdir()
    labels = tmp_path / "label.txt"
    labels.write_text(LABELS)
    records = read_retinaface_labels(labels)
    names = ("0--Parade/a.jpg", "1--Handshaking/b.jpg", "2--Empty/c.jpg")
    assert [r.path for r in records] == [tmp_path / "images" / name for name in names]
    first = records[0].faces
    np.testing.assert_allclose(first.boxes, [[449, 330, 571, 479], [10, 20, 40, 60]])
    assert first.has_landmarks.tolist() == [True, False]
    np.testing.assert_allclose(first.landmarks[0, 0], [488.906, 373.643], rtol=1e-6)
    np.testing.assert_allclose(first.landmarks[0, 4], [538.357, 431.491], rtol=1e-6)
    assert first.boxes.dtype == np.float32 and first.landmarks.shape == (2, 5, 2)
    # A box-only line (the public validation labels) has no landmarks either.
    assert records[1].faces.has_landmarks.tolist() == [False]
    assert len(records[2].faces) == 0 and records[2].faces.boxes.shape == (0, 4)


def test_label_txt_round_trip(tmp_path):
    labels = tmp_path / "label.txt"
    labels.write_text(LABELS)
    records = read_retinaface_labels(labels, images_root=tmp_path)
    write_retinaface_labels(records, tmp_path / "copy.txt")
    again = read_retinaface_labels(tmp_path / "copy.txt", images_root=tmp_path)
    for a, b in zip(records, again, strict=True):
        assert a.path == b.path
        np.testing.assert_allclose(a.faces.boxes, b.faces.boxes, atol=1e-3)
        assert a.faces.has_landmarks.tolist() == b.faces.has_landmarks.tolist()
        has = a.faces.has_landmarks
        np.testing.assert_allclose(a.faces.landmarks[has], b.faces.landmarks[has], atol=1e-3)


def test_wider_boxes_drop_invalid_and_read_empty_images(tmp_path):
    gt = tmp_path / "wider_face_train_bbx_gt.txt"
    gt.write_text(WIDER)
    records = read_wider_boxes(gt, images_root=tmp_path / "imgs")
    assert [len(r.faces) for r in records] == [1, 0, 1]
    np.testing.assert_allclose(records[0].faces.boxes, [[78, 221, 85, 229]])
    assert not records[0].faces.has_landmarks.any()
    assert records[2].path == tmp_path / "imgs" / "2--One/c.jpg"


def test_load_annotations_picks_the_reader(tmp_path):
    (tmp_path / "label.txt").write_text(LABELS)
    assert len(load_annotations(tmp_path)) == 3
    wider = tmp_path / "w" / "wider_face_val_bbx_gt.txt"
    wider.parent.mkdir()
    wider.write_text(WIDER)
    assert [len(r.faces) for r in load_annotations(wider.parent)] == [1, 0, 1]
    with pytest.raises(FileNotFoundError):
        load_annotations(tmp_path / "nothing")


@pytest.mark.parametrize("text, line", [("# a.jpg\n1 2 x 4\n", 2), ("1 2 3 4\n# a.jpg\n", 1), ("# a.jpg\n1 2\n", 2)])
def test_malformed_label_txt_names_the_line(tmp_path, text, line):
    bad = tmp_path / "label.txt"
    bad.write_text(text)
    with pytest.raises(ValueError, match=f"label.txt:{line}"):
        read_retinaface_labels(bad)
