"""Torch dataset over :class:`LabelledImage` records, and the collate that pads faces for batched matching."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import Dataset

from facelocal.data.annotations import NUM_LANDMARKS, FaceAnnotations, LabelledImage
from facelocal.data.augment import Augmenter
from facelocal.imageio import load_image
from facelocal.preprocess import to_canvas


@dataclass
class TrainItem:
    """One augmented image: ``image`` ``(3, S, S)`` uint8 BGR canvas (the network subtracts the mean) and its faces."""

    image: torch.Tensor
    faces: FaceAnnotations


@dataclass
class TrainBatch:
    """A batch with faces padded to the most crowded image, so that matching runs on the whole batch at once.

    images: ``(B, 3, S, S)`` float32; boxes: ``(B, G, 4)`` xyxy pixels; landmarks: ``(B, G, 5, 2)`` pixels;
    has_landmarks: ``(B, G)`` bool; valid: ``(B, G)`` bool, false for padding. ``G >= 1`` even without faces.
    """

    images: torch.Tensor
    boxes: torch.Tensor
    landmarks: torch.Tensor
    has_landmarks: torch.Tensor
    valid: torch.Tensor

    def to(self, device: torch.device | str, non_blocking: bool = False) -> TrainBatch:
        return TrainBatch(*(getattr(self, f).to(device, non_blocking=non_blocking) for f in self.__dataclass_fields__))

    def pin_memory(self) -> TrainBatch:
        return TrainBatch(*(getattr(self, f).pin_memory() for f in self.__dataclass_fields__))


class FaceDataset(Dataset[TrainItem]):
    """Augmented training images.

    ``repeat`` draws every image that many times per epoch (each with a fresh augmentation), for small sets.
    Randomness comes from torch's generator, which the DataLoader seeds per worker and per epoch.
    """

    def __init__(self, records: Sequence[LabelledImage], augment: Augmenter, repeat: int = 1) -> None:
        if not records:
            raise ValueError("the training set is empty")
        self.records = list(records)
        self.augment = augment
        self.repeat = repeat

    def __len__(self) -> int:
        return len(self.records) * self.repeat

    def __getitem__(self, index: int) -> TrainItem:
        record = self.records[index % len(self.records)]
        rng = np.random.default_rng(int(torch.randint(0, 2**62, ())))
        sample = self.augment(load_image(record.path), record.faces, rng)
        return TrainItem(torch.from_numpy(to_canvas(sample.image)), sample.faces)


def collate(items: Sequence[TrainItem]) -> TrainBatch:
    """Stack images and pad each image's faces to ``G = max(1, most faces in an image)``."""
    size = max(1, max(len(item.faces) for item in items))
    batch = len(items)
    boxes = np.zeros((batch, size, 4), np.float32)
    landmarks = np.zeros((batch, size, NUM_LANDMARKS, 2), np.float32)
    has_landmarks = np.zeros((batch, size), bool)
    valid = np.zeros((batch, size), bool)
    for row, item in enumerate(items):
        count = len(item.faces)
        boxes[row, :count] = item.faces.boxes
        landmarks[row, :count] = item.faces.landmarks
        has_landmarks[row, :count] = item.faces.has_landmarks
        valid[row, :count] = True
    return TrainBatch(
        images=torch.stack([item.image for item in items]),
        boxes=torch.from_numpy(boxes),
        landmarks=torch.from_numpy(landmarks),
        has_landmarks=torch.from_numpy(has_landmarks),
        valid=torch.from_numpy(valid),
    )
