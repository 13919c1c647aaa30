"""Static int8 post-training quantisation of an exported model with NNCF, for OpenVINO on CPUs with VNNI.

The result is an ONNX file with QuantizeLinear/DequantizeLinear pairs (per-channel weights, per-tensor
symmetric activations) and ``facelocal.precision = int8`` in its metadata; OpenVINO compiles those pairs into
int8 kernels. ONNX Runtime runs the same file, without a speed-up. Calibration reads the images in sorted
order and NNCF's statistics are deterministic, so the same images, weights and versions give the same file.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from facelocal.contract import INPUT_NAME, PRECISION_KEY
from facelocal.imageio import load_image
from facelocal.preprocess import ResizePolicy, to_canvas

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

# Layers left in fp32, as node-name patterns of the export, chosen by val-sample AP (README, "Speed"):
# - the in-graph decode (every node outside /model/): box offsets and exponents need more than 8 bits, and
#   quantising them costs about 65 AP points;
# - the 1x1 heads (class, box, landmarks at each level): their outputs are the raw scores and offsets, the same
#   reason, at almost no cost;
# - the depthwise 3x3 convolutions of the backbone: one filter per channel, whose ranges one activation scale
#   cannot cover (about 0.8 AP on Medium and Hard when quantised).
KEEP_FP32 = (
    r"^/(?!model/).*",
    r"/model/(Bbox|Class|Landmark)Head\..*",
    r"(?!/model/body/stage1/stage1\.0/)/model/body/stage\d/stage\d\.\d+/stage\d\.\d+\.0/Conv",
)


@dataclass(frozen=True)
class QuantizeConfig:
    """How to calibrate. ``keep_fp32`` are regular expressions over ONNX node names; ``resize`` is applied to each
    calibration image (``original``: as it is, as the evaluation runs); at most ``subset_size`` images are read."""

    keep_fp32: tuple[str, ...] = KEEP_FP32
    resize: str = "original"
    subset_size: int = 1000


def calibration_images(folders: Iterable[str | Path]) -> list[Path]:
    """Every image file directly in ``folders``: folder after folder, each sorted by name (the order calibration
    reads them in, which changes the result slightly)."""
    searched = [Path(folder) for folder in folders]
    paths: list[Path] = []
    for folder in searched:
        if not folder.is_dir():
            raise FileNotFoundError(f"calibration folder {folder} not found")
        paths += sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not paths:
        raise FileNotFoundError("no calibration images (.jpg, .png, .bmp, .webp) in " + ", ".join(map(str, searched)))
    return paths


def quantize_int8(
    fp32_model: str | Path, out: str | Path, images: Sequence[Path], config: QuantizeConfig = QuantizeConfig()
) -> Path:
    """Quantise the fp32 export ``fp32_model`` to int8 with ``images`` as calibration data; write ``out``.

    Each image becomes one ``(1, 3, H, W)`` uint8 canvas at the size ``config.resize`` gives it.
    """
    import logging

    import nncf
    import onnx

    nncf.set_log_level(logging.WARNING)  # it lists every ignored node at INFO
    policy = ResizePolicy.parse(config.resize)

    def to_input(path: Path) -> dict:
        rgb = load_image(path)
        return {INPUT_NAME: to_canvas(rgb, policy.plan(rgb.shape[1], rgb.shape[0]))[None]}

    model = onnx.load(str(fp32_model))
    quantized = nncf.quantize(
        model,
        nncf.Dataset(list(images), to_input),
        preset=nncf.QuantizationPreset.PERFORMANCE,
        subset_size=min(len(images), config.subset_size),
        ignored_scope=nncf.IgnoredScope(patterns=list(config.keep_fp32), validate=False),
    )
    entries = {entry.key: entry for entry in quantized.metadata_props}
    if PRECISION_KEY in entries:
        entries[PRECISION_KEY].value = "int8"
    else:
        quantized.metadata_props.add(key=PRECISION_KEY, value="int8")
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(quantized, str(out))
    return out
