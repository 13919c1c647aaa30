"""The TensorRT build step without TensorRT: ``build_trt_engine.py --dry-run`` checks the ONNX files the model
repository ships against the ``_trt`` configs and states the optimisation profile the GPU build would use."""

from __future__ import annotations

from pathlib import Path

import pytest

from scripts.build_trt_engine import main as build_trt_engine

REPOSITORY = Path(__file__).resolve().parents[2] / "model_repository"


def dry_run(onnx: Path, model: str, tmp_path: Path) -> int:
    config = REPOSITORY / f"{model}_trt" / "config.pbtxt"
    return build_trt_engine(["--dry-run", "--onnx", str(onnx), "--config", str(config), "--out", str(tmp_path / "p")])


def test_dry_run_states_the_detector_and_mesh_profiles(compact_onnx_path, mesh_repository_onnx, tmp_path, capsys):
    assert dry_run(compact_onnx_path, "retinaface", tmp_path) == 0
    assert dry_run(mesh_repository_onnx, "facemesh", tmp_path) == 0
    printed = capsys.readouterr().out
    assert "FP16, profile images [1..32 (opt 16), 3, 640, 640]" in printed
    assert "FP16, profile crops [1..64 (opt 32), 192, 192, 3]" in printed
    assert not (tmp_path / "p").exists()


def test_dry_run_refuses_an_onnx_that_is_not_the_configs_model(mesh_repository_onnx, tmp_path):
    with pytest.raises(ValueError, match="the config wants images uint8"):
        dry_run(mesh_repository_onnx, "retinaface", tmp_path)
