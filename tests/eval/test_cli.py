"""``facelocal eval widerface`` and ``facelocal bench`` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facelocal.cli import main
from facelocal.evaluation.wider_txt import read_prediction, write_prediction
from tests.paths import shared_file

GT_DIR_FILE = ("widerface", "ground_truth", "wider_face_val.mat")


def test_eval_widerface_scores_a_folder_of_txt_predictions(tmp_path, ground_truth):
    keys = sorted(k for k in ground_truth if k.startswith("0--Parade/"))[:5]
    for key in keys:
        g = ground_truth[key]
        write_prediction(tmp_path / "pred", key, np.column_stack([g.boxes, np.linspace(1, 0.5, len(g.boxes))]))
    out = tmp_path / "out.json"
    code = main([
        "eval", "widerface", "--predictions", str(tmp_path / "pred"), "--gt", str(shared_file(*GT_DIR_FILE).parent),
        "--json", str(out), "--plot", str(tmp_path / "pr.png"),
    ])
    assert code == 0
    summary = json.loads(out.read_text())
    assert summary["images"] == 5
    for setting in ("easy", "medium", "hard"):
        assert summary[setting]["ap"] == pytest.approx(1.0)
        assert summary[setting]["faces"] == sum(len(ground_truth[k].keep[setting]) for k in keys)
    assert (tmp_path / "pr.png").read_bytes()[:4] == b"\x89PNG"


def test_eval_widerface_runs_the_detector_and_writes_the_official_layout(tmp_path, weights_path):
    # No validation images are shared yet: a shared photo stands in under a validation name, so the detect,
    # write and score path runs; its AP is meaningless, its files are checked.
    key = "0--Parade/0_Parade_marchingband_1_465"
    image = tmp_path / "images" / f"{key}.jpg"
    image.parent.mkdir(parents=True)
    image.write_bytes(shared_file("images", "wider_train_band_crowd.jpg").read_bytes())
    out = tmp_path / "out.json"
    code = main([
        "eval", "widerface", "--images", str(tmp_path / "images"), "--gt", str(shared_file(*GT_DIR_FILE).parent),
        "--weights", str(weights_path), "--save-predictions", str(tmp_path / "pred"), "--json", str(out),
    ])
    assert code == 0
    lines = (tmp_path / "pred" / f"{key}.txt").read_text().splitlines()
    faces = read_prediction(tmp_path / "pred" / f"{key}.txt")
    assert lines[0] == key.split("/")[1] and int(lines[1]) == len(faces) > 10
    assert faces[:, 4].min() >= 0.02 and np.all(np.diff(faces[:, 4]) <= 0) and np.all(faces[:, 2:4] > 0)
    summary = json.loads(out.read_text())
    assert summary["images"] == 1 and summary["ms_per_image"] > 0


def test_eval_widerface_without_images_says_what_to_pass(tmp_path, capsys):
    code = main(["eval", "widerface", "--images", str(tmp_path / "none"), "--gt", str(shared_file(*GT_DIR_FILE).parent)])
    assert code == 2 and "--predictions" in capsys.readouterr().err


def test_bench_emits_every_stage_for_each_backend(tmp_path, weights_path):
    out = tmp_path / "bench.json"
    code = main([
        "bench", "--sizes", "vga", "--repeats", "2", "--threads", "1", "--weights", str(weights_path),
        "--photo", str(shared_file("images", "selfie_group.jpg")), "--json", str(out),
    ])
    assert code == 0
    report = json.loads(out.read_text())
    assert report["cpu"] and report["config"] == "mobilenet0.25"
    assert {(r["backend"], r["threads"]) for r in report["results"]} == {("onnxruntime", "1"), ("torch", "1")}
    for record in report["results"]:
        assert (record["width"], record["height"]) == (640, 480) and record["paper_ms"] == 17.2
        assert record["faces"] > 5
        for stage in ("decode", "preprocess", "forward", "postprocess", "total"):
            timing = record["stages"][stage]
            assert 0 < timing["min_ms"] <= timing["median_ms"] <= timing["p90_ms"]
        assert record["stages"]["total"]["median_ms"] >= record["stages"]["forward"]["median_ms"]


def test_bench_mesh_reports_the_cost_per_face_beside_the_detector(tmp_path, weights_path, mesh_weights_path, capsys):
    out = tmp_path / "mesh.json"
    code = main([
        "bench", "--mesh", "--repeats", "1", "--threads", "1", "--weights", str(weights_path),
        "--mesh-weights", str(mesh_weights_path), "--photo", str(shared_file("images", "selfie_group.jpg")),
        "--json", str(out),
    ])
    assert code == 0
    assert "mesh / face, single" in capsys.readouterr().out
    (record,) = json.loads(out.read_text())["mesh"]
    assert record["faces"] >= 15 and record["detector_total_ms"] > 0
    assert set(record["inference_ms_per_face"]) == {"single", "batched", "parallel"}
    assert all(ms > 0 for ms in record["mesh_ms_per_face"].values())
