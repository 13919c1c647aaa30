"""RetinaFace network: backbones, FPN, SSH and heads."""

from facelocal.models.retinaface import HeadOutputs, RetinaFace, build_model, load_pretrained

__all__ = ["HeadOutputs", "RetinaFace", "build_model", "load_pretrained"]
