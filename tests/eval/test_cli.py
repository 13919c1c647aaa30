"""``facelocal eval widerface`` and ``facelocal bench`` end to end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from facelocal.cli import main
from facelocal.evaluation.wider_txt import read_prediction, write_prediction
from facelocal.weights import file_sha256
from tests.paths import shared_file

GT_DIR_FILE = ("widerface", "ground_truth", "wider_face_val.mat")
VAL_SAMPLE = shared_file("widerface", "val_sample", "FILES.txt").parent / "images"
YUNET = "face_detection_yunet_2026may.onnx"


def eval_widerface(*args: str) -> int:
    """``facelocal eval widerface`` against the shared ground truth, with ``args``; its exit code."""
    return main(["eval", "widerface", "--gt", str(shared_file(*GT_DIR_FILE).parent), *args])


def _eval_sample(tmp_path, name: str, *args: str) -> dict:
    """``facelocal eval widerface`` over the shared val sample; its JSON record."""
    out = tmp_path / f"{name}.json"
    assert eval_widerface("--images", str(VAL_SAMPLE), "--json", str(out), *args) == 0
    return json.loads(out.read_text())


def bench(weights_path, *args: str) -> int:
    """``facelocal bench`` of the group photo on one thread with ``weights_path`` and ``args``; its exit code."""
    photo = str(shared_file("images", "selfie_group.jpg"))
    return main(["bench", "--threads", "1", "--weights", str(weights_path), "--photo", photo, *args])


def test_eval_widerface_scores_a_folder_of_txt_predictions(tmp_path, ground_truth):
    keys = sorted(k for k in ground_truth if k.startswith("0--Parade/"))[:5]
    for key in keys:
        g = ground_truth[key]
        write_prediction(tmp_path / "pred", key, np.column_stack([g.boxes, np.linspace(1, 0.5, len(g.boxes))]))
    out = tmp_path / "out.json"
    code = eval_widerface(
        "--predictions", str(tmp_path / "pred"), "--json", str(out), "--plot", str(tmp_path / "pr.png")
    )
    assert code == 0
    summary = json.loads(out.read_text())
    assert summary["images"] == 5
    for setting in ("easy", "medium", "hard"):
        assert summary[setting]["ap"] == pytest.approx(1.0)
        assert summary[setting]["faces"] == sum(len(ground_truth[k].keep[setting]) for k in keys)
    assert (tmp_path / "pr.png").read_bytes()[:4] == b"\x89PNG"


def test_eval_widerface_restricts_predictions_to_an_image_list_and_samples_by_stride(tmp_path):
    reference = str(VAL_SAMPLE.parent / "pred_mnet0.25_release")
    listed = tmp_path / "list.txt"
    listed.write_text("./0--Parade/0_Parade_Parade_0_102.jpg\n1--Handshaking/1_Handshaking_Handshaking_1_275\n")
    assert _eval_sample(tmp_path, "listed", "--predictions", reference, "--image-list", str(listed))["images"] == 2
    # The sorted sample starts with 0--Parade's 10 images: a stride of 10 reaches 10 events, random ones several.
    for sample in ("stride", "random"):
        record = _eval_sample(tmp_path, sample, "--predictions", reference, "--limit", "10", "--sample", sample)
        assert record["images"] == 10
    listed.write_text("0--Parade/not_there\n")
    assert eval_widerface("--predictions", reference, "--image-list", str(listed)) == 2


def test_subset_spreads_a_stride_and_seeds_a_random_draw():
    from argparse import Namespace

    from facelocal.cli.eval import _subset

    keys = [f"{event}--E/{i}" for event in range(10) for i in range(10)]
    stride = _subset(keys, Namespace(limit=10, sample="stride", seed=0))
    assert len({key.split("/")[0] for key in stride}) == 10
    assert _subset(keys, Namespace(limit=3, sample="first", seed=0)) == sorted(keys)[:3]
    drawn = _subset(keys, Namespace(limit=10, sample="random", seed=1))
    assert (
        drawn
        == _subset(keys, Namespace(limit=10, sample="random", seed=1))
        != _subset(keys, Namespace(limit=10, sample="random", seed=2))
    )
    assert _subset(keys, Namespace(limit=None, sample="stride", seed=0)) == sorted(keys)


def test_eval_help_lists_the_post_processing(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "widerface", "--help"])
    text = capsys.readouterr().out
    for option in ("--score-threshold", "--nms-threshold", "--pre-nms-top-k", "--top-k", "--no-clip", "--plus-one"):
        assert option in text


def test_eval_widerface_runs_the_detector_and_writes_the_official_layout(tmp_path, weights_path):
    summary = _eval_sample(
        tmp_path, "ort", "--weights", str(weights_path), "--limit", "6", "--save-predictions", str(tmp_path / "pred")
    )
    assert summary["images"] == 6 and summary["ms_per_image"] > 0
    assert (summary["preset"], summary["runtime"]) == ("mobilenet0.25", "onnxruntime")
    assert summary["sha256"] == file_sha256(weights_path)
    assert summary["postprocess"] == {
        "score_threshold": 0.02,
        "nms_threshold": 0.4,
        "pre_nms_top_k": 5000,
        "post_nms_top_k": 750,
        "clip_boxes": True,
        "plus_one": False,
    }
    written = sorted((tmp_path / "pred").glob("*/*.txt"))
    assert len(written) == 6
    lines = written[0].read_text().splitlines()
    faces = read_prediction(written[0])
    assert lines[0] == written[0].stem and int(lines[1]) == len(faces) > 0
    assert faces[:, 4].min() >= 0.02 and np.all(np.diff(faces[:, 4]) <= 0) and np.all(faces[:, 2:4] > 0)


def test_eval_on_onnxruntime_equals_torch(tmp_path, weights_path):
    """The fast default (the exported graph on ONNX Runtime) scores what the torch network scores."""
    common = ("--weights", str(weights_path), "--limit", "8")
    ort = _eval_sample(tmp_path, "ort", *common)
    eager = _eval_sample(tmp_path, "torch", *common, "--runtime", "torch")
    assert eager["runtime"] == "torch"
    for setting in ("easy", "medium", "hard"):
        assert ort[setting]["ap"] == pytest.approx(eager[setting]["ap"], abs=1e-3)


@pytest.mark.slow
def test_sample_ap_matches_the_reference_pipeline(tmp_path, weights_path):
    """The published accuracy: our defaults on all 323 sample images, within 0.003 of the reference's AP, and
    our evaluator on the reference's own predictions within 0.0001 of the figures published with them."""
    published = {"easy": 0.9246, "medium": 0.8983, "hard": 0.8098}
    reference = _eval_sample(tmp_path, "reference", "--predictions", str(VAL_SAMPLE.parent / "pred_mnet0.25_release"))
    ours = _eval_sample(tmp_path, "ours", "--weights", str(weights_path))
    assert ours["images"] == reference["images"] == 323
    for setting, ap in published.items():
        assert reference[setting]["ap"] == pytest.approx(ap, abs=1e-4)
        assert ours[setting]["ap"] == pytest.approx(ap, abs=3e-3)


def test_eval_widerface_without_images_says_what_to_pass(tmp_path, capsys):
    code = eval_widerface("--images", str(tmp_path / "none"))
    assert code == 2 and "--predictions" in capsys.readouterr().err


def test_bench_emits_every_stage_for_each_backend(tmp_path, weights_path):
    out = tmp_path / "bench.json"
    code = bench(
        weights_path, "--sizes", "vga", "--repeats", "2", "--backends", "onnxruntime,torch", "--json", str(out)
    )
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
    code = bench(weights_path, "--mesh", "--repeats", "1", "--mesh-weights", str(mesh_weights_path), "--json", str(out))
    assert code == 0
    assert "| single_openvino |" in capsys.readouterr().out
    (record,) = json.loads(out.read_text())["mesh"]
    assert record["faces"] >= 15 and record["detector_total_ms"] > 0
    assert set(record["inference_ms_per_face"]) == {
        f"{mode}{runtime}" for mode in ("single", "batched", "parallel") for runtime in ("", "_openvino")
    }
    assert all(ms > 0 for ms in record["mesh_ms_per_face"].values())


def test_bench_peers_puts_yunet_and_openvino_in_the_same_run(tmp_path, weights_path, capsys):
    out = tmp_path / "bench.json"
    peers = ("--peers", "--yunet", str(shared_file("peers", YUNET)))
    code = bench(
        weights_path,
        "--sizes",
        "vga",
        "--repeats",
        "2",
        "--backends",
        "onnxruntime,openvino:bf16",
        *peers,
        "--json",
        str(out),
    )
    assert code == 0
    results = {r["backend"]: r for r in json.loads(out.read_text())["results"]}
    assert set(results) == {"onnxruntime", "openvino:bf16", "yunet"}
    # YuNet's detect() is its pre-processing, network and NMS at once: no separate stages, no paper figure.
    assert set(results["yunet"]["stages"]) == {"decode", "forward", "total"} and results["yunet"]["paper_ms"] is None
    # Both detectors find the crowd (about 30 faces at score 0.5) in the same VGA frame.
    assert results["yunet"]["faces"] > 10 and results["openvino:bf16"]["faces"] > 10
    table = capsys.readouterr().out
    rows = {
        line.split("|")[3].strip(): [c.strip() for c in line.split("|")[1:-1]]
        for line in table.splitlines()
        if line.startswith("| vga")
    }
    total = {name: r["stages"]["total"]["median_ms"] for name, r in results.items()}
    assert float(rows["onnxruntime"][11]) == pytest.approx(total["onnxruntime"] / total["yunet"], abs=0.006)
    assert float(rows["openvino:bf16"][13]) == pytest.approx(total["openvino:bf16"] / total["onnxruntime"], abs=0.006)
    assert rows["yunet"][4] == rows["yunet"][6] == "–" and rows["yunet"][11] == ""


def test_bench_peers_without_the_model_says_so(tmp_path, weights_path, capsys):
    peers = ("--peers", "--yunet", str(tmp_path / "missing.onnx"))
    code = bench(weights_path, "--sizes", "vga", "--repeats", "1", "--backends", "onnxruntime", *peers)
    assert code == 2 and "--yunet" in capsys.readouterr().err


def test_eval_on_openvino_fp32_equals_onnxruntime(tmp_path, weights_path):
    common = ("--weights", str(weights_path), "--limit", "8")
    ort = _eval_sample(tmp_path, "ort", *common)
    ov = _eval_sample(tmp_path, "ov", *common, "--runtime", "openvino", "--precision", "fp32")
    assert (ov["runtime"], ov["precision"], ort["precision"]) == ("openvino", "fp32", "fp32")
    for setting in ("easy", "medium", "hard"):
        assert ov[setting]["ap"] == pytest.approx(ort[setting]["ap"], abs=1e-4)


def test_eval_refuses_a_precision_the_file_cannot_run(tmp_path, onnx_model_path, capsys):
    code = eval_widerface(
        "--images", str(VAL_SAMPLE), "--onnx", str(onnx_model_path), "--precision", "bf16", "--limit", "1"
    )
    assert code == 2 and "openvino runtime only" in capsys.readouterr().err
