"""The accuracy gate of each shipped reduced precision: val-sample AP within 0.5 AP points of fp32 on every setting.

About a minute per precision on 2 cores (int8 calibrates first), hence slow.
"""

from __future__ import annotations

import json

import pytest

from facelocal.cli import main
from tests.paths import shared_file

# The fp32 export on ONNX Runtime (and OpenVINO fp32, identical) on the 323 sample images, original size.
FP32_AP = {"easy": 0.9244, "medium": 0.8976, "hard": 0.8081}
GATE = 0.005


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_precision_holds_the_val_sample_ap_gate(tmp_path, weights_path, precision) -> None:
    shared = shared_file("images", "selfie_group.jpg").parents[1]
    out = tmp_path / "ap.json"
    code = main(
        [
            "eval",
            "widerface",
            "--images",
            str(shared / "widerface" / "val_sample" / "images"),
            "--gt",
            str(shared / "widerface" / "ground_truth"),
            "--weights",
            str(weights_path),
            "--runtime",
            "openvino",
            "--precision",
            precision,
            "--json",
            str(out),
            "--calibration",
            str(shared / "landmarks" / "300w_helen_test" / "images"),
            str(shared / "images"),
        ]
    )
    assert code == 0
    record = json.loads(out.read_text())
    assert (record["images"], record["runtime"], record["precision"]) == (323, "openvino", precision)
    for setting, reference in FP32_AP.items():
        assert record[setting]["ap"] == pytest.approx(reference, abs=GATE), setting
