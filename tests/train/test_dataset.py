"""FaceDataset and collate: network inputs and padded faces."""

from __future__ import annotations

import numpy as np
import torch

from facelocal.data.annotations import FaceAnnotations
from facelocal.data.augment import AugmentConfig, Augmenter
from facelocal.data.dataset import FaceDataset, TrainItem, collate


def test_dataset_items_are_network_inputs(labelled_photos):
    torch.manual_seed(0)
    dataset = FaceDataset(labelled_photos, Augmenter(AugmentConfig(image_size=128)), repeat=3)
    assert len(dataset) == 6
    item = dataset[3]
    # The serving canvas: uint8 BGR pixels (the network subtracts the mean itself).
    assert item.image.shape == (3, 128, 128) and item.image.dtype == torch.uint8
    assert int(item.image.max()) > 200 and int(item.image.min()) < 50
    assert len(item.faces) >= 1
    # Two draws of the same image differ (fresh augmentation each time).
    assert not torch.equal(dataset[0].image, dataset[0].image)


def test_collate_pads_faces_and_marks_padding():
    one = FaceAnnotations(np.array([[1, 2, 3, 4]]), np.ones((1, 5, 2)), np.array([True]))
    none = FaceAnnotations.empty()
    three = FaceAnnotations(np.tile([[5, 6, 7, 8]], (3, 1)), np.zeros((3, 5, 2)), np.array([False, True, False]))
    items = [TrainItem(torch.full((3, 8, 8), float(i)), f) for i, f in enumerate([one, none, three])]
    batch = collate(items)
    assert batch.images.shape == (3, 3, 8, 8) and batch.images[2].eq(2).all()
    assert batch.boxes.shape == (3, 3, 4) and batch.landmarks.shape == (3, 3, 5, 2)
    assert batch.valid.tolist() == [[True, False, False], [False, False, False], [True, True, True]]
    assert batch.has_landmarks.tolist() == [[True, False, False], [False, False, False], [False, True, False]]
    assert batch.boxes[0, 0].tolist() == [1, 2, 3, 4]
    # A batch without any face still has one (invalid) slot, so matching keeps its shapes.
    assert collate([items[1]]).valid.shape == (1, 1)
