"""The serving graph's contract, in one place: what goes in, what comes out, and what the file says about itself.

Read by the export, both serving backends, the Triton config check, the training data and the scripts. Numpy
only, so the serving path can import it without torch.

Input ``images``: ``(B, 3, H, W)`` uint8 BGR pixels. The graph subtracts :data:`BGR_MEAN` itself, so every
backend receives the same lossless bytes (a quarter of float32's) and padding in the mean colour is zero to
the network. Outputs, in canvas pixels: ``boxes`` ``(B, K, 4)`` xyxy, ``scores`` ``(B, K)`` face probability,
``landmarks`` ``(B, K, 10)`` interleaved ``(x, y)``; K is every anchor, or the ``top_k`` best sorted by score.
"""

from __future__ import annotations

import numpy as np

INPUT_NAME = "images"
INPUT_DTYPE = np.uint8
OUTPUT_NAMES = ("boxes", "scores", "landmarks")

# Mean colour the public weights were trained with, BGR; pixels are not scaled. Whole numbers, so a canvas
# padded with it in uint8 is exact.
BGR_MEAN: tuple[int, int, int] = (104, 117, 123)
RGB_MEAN: tuple[int, int, int] = BGR_MEAN[::-1]

# Keys of the ONNX metadata (and the Triton config.pbtxt parameters) that describe a model file.
PRESET_KEY = "facelocal.config"
DENSE_KEY = "facelocal.dense"
TOP_K_KEY = "facelocal.top_k"
# What the file stores: fp32 or int8 (bf16 is a way of running an fp32 file, not a file).
PRECISION_KEY = "facelocal.precision"
# The FaceMesh graph's keys: which model it is, its vertex count, and the sha256 of the file it was made from.
MODEL_KEY = "facelocal.model"
MESH_VERTICES_KEY = "facelocal.mesh_vertices"
SOURCE_SHA256_KEY = "facelocal.source_sha256"
