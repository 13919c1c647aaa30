"""Other face detectors, timed beside ours: OpenCV's YuNet through ``cv2.FaceDetectorYN``.

YuNet runs its own pipeline the way a user of it would: OpenCV decodes the JPEG to BGR and ``detect`` does its
resizing, network and NMS in one call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from facelocal.bench import Pipeline

# The YuNet release the benchmarks compare against, in the shared data (../shared/data/peers/SOURCES.md).
YUNET_MODEL = "peers/face_detection_yunet_2026may.onnx"


@dataclass(frozen=True)
class YuNetConfig:
    """``cv2.FaceDetectorYN`` thresholds: score 0.5 as our serving threshold, NMS 0.3 and top-k 5000 as
    OpenCV's own sample uses."""

    score_threshold: float = 0.5
    nms_threshold: float = 0.3
    top_k: int = 5000


def yunet_pipeline(model_path: str | Path, threads: int, config: YuNetConfig = YuNetConfig()) -> Pipeline:
    """JPEG bytes to faces with YuNet on ``threads`` OpenCV threads.

    Stages: ``decode`` (``cv2.imdecode``), ``forward`` (``detect``: YuNet's pre-processing, network and NMS
    together, which OpenCV does not expose apart) and ``total``.
    """
    if not Path(model_path).is_file():
        raise FileNotFoundError(f"YuNet model {model_path} not found")
    detector = cv2.FaceDetectorYN.create(
        str(model_path), "", (320, 320), config.score_threshold, config.nms_threshold, config.top_k
    )

    def run(jpeg: bytes) -> tuple[dict[str, float], int]:
        # OpenCV's thread count is process-wide, and other pipelines in the same run may use another.
        cv2.setNumThreads(threads)
        clock = time.perf_counter
        t0 = clock()
        bgr = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        t1 = clock()
        if bgr is None:
            raise ValueError("OpenCV cannot decode this image")
        detector.setInputSize((bgr.shape[1], bgr.shape[0]))
        _, faces = detector.detect(bgr)
        t2 = clock()
        return {"decode": t1 - t0, "forward": t2 - t1, "total": t2 - t0}, 0 if faces is None else len(faces)

    return run
