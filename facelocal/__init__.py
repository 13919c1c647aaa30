"""facelocal: RetinaFace face localisation in PyTorch.

The torch-free parts (configs, pre/post-processing, result types, image decoding) import without torch,
so the serving package can use them; the network, detector, training and export need the ``torch`` extra.
"""

from facelocal.config import PRESETS, ModelConfig, PostprocessConfig, get_config
from facelocal.detections import FaceDetections
from facelocal.preprocess import ResizePolicy

__all__ = ["PRESETS", "FaceDetections", "ModelConfig", "PostprocessConfig", "ResizePolicy", "get_config"]
__version__ = "0.1.0"
