"""Batched inference: images of any size in, one :class:`FaceDetections` each out, on torch, ONNX Runtime or
OpenVINO."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facelocal.config import SERVE_POSTPROCESS, ModelConfig, PostprocessConfig, get_config
from facelocal.postprocess import select_faces
from facelocal.preprocess import ResizePolicy, to_network_input
from facelocal.runtime import Forward, exported_forward, torch_forward
from facelocal.types import FaceDetections
from facelocal.weights import preset_for


class Detector:
    """Runs a decoded RetinaFace forward (:mod:`facelocal.runtime`) over RGB images.

    Images whose canvases share a shape (always so under a letterbox policy) go through the network as one
    batch; others are grouped by shape, so no image is padded beyond its own canvas.
    """

    def __init__(
        self,
        forward: Forward,
        postprocess: PostprocessConfig = SERVE_POSTPROCESS,
        resize: ResizePolicy = ResizePolicy(),
        max_batch_size: int = 16,
    ) -> None:
        self.forward = forward
        self.postprocess = postprocess
        self.resize = resize
        self.max_batch_size = max_batch_size

    @classmethod
    def from_model(cls, model, **kwargs) -> Detector:
        """Torch eager over a :class:`~facelocal.models.retinaface.RetinaFace`."""
        from facelocal.models.decoded import DecodedRetinaFace

        return cls(torch_forward(DecodedRetinaFace(model.eval())), **kwargs)

    @classmethod
    def from_weights(cls, weights: str | Path, config: str | ModelConfig | None = None, **kwargs) -> Detector:
        """Load a checkpoint in the public format (``strict=True``) and run it with torch.

        Without ``config`` the preset comes from the file (:func:`facelocal.weights.preset_for`).
        """
        from facelocal.models.retinaface import load_pretrained

        if not isinstance(config, ModelConfig):
            config = get_config(preset_for(weights, config))
        return cls.from_model(load_pretrained(config, weights), **kwargs)

    @classmethod
    def from_onnx(
        cls,
        model_path: str | Path,
        threads: int = 0,
        runtime: str = "onnxruntime",
        precision: str | None = None,
        **kwargs,
    ) -> Detector:
        """An exported model (``facelocal export onnx`` or ``int8``, dynamic size) on ONNX Runtime or OpenVINO at
        ``precision`` (None: as the file stores it); needs no torch."""
        return cls(exported_forward(model_path, runtime, threads, precision), **kwargs)

    def with_resize(self, resize: ResizePolicy) -> Detector:
        """The same network and post-processing under another resize policy."""
        return Detector(self.forward, self.postprocess, resize, self.max_batch_size)

    def detect(self, images: Sequence[np.ndarray]) -> list[FaceDetections]:
        """Find faces in ``(H, W, 3)`` uint8 RGB images; results come back in input order."""
        placements = [self.resize.plan(image.shape[1], image.shape[0]) for image in images]
        groups: dict[tuple[int, int], list[int]] = defaultdict(list)
        for index, placement in enumerate(placements):
            groups[(placement.canvas_h, placement.canvas_w)].append(index)
        results: list[FaceDetections | None] = [None] * len(images)
        for indices in groups.values():
            for start in range(0, len(indices), self.max_batch_size):
                chunk = indices[start : start + self.max_batch_size]
                batch = np.stack([to_network_input(images[i], placements[i]) for i in chunk])
                boxes, scores, landmarks = self.forward(batch)
                for row, i in enumerate(chunk):
                    height, width = images[i].shape[:2]
                    results[i] = select_faces(
                        boxes[row], scores[row], landmarks[row], placements[i], width, height, self.postprocess
                    )
        return results
