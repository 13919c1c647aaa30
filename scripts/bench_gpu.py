#!/usr/bin/env python3
"""GPU check for the FP16 serving path: parity with ONNX Runtime FP32, and timings against the paper.

Parity: the FP16 network (CUDA, autocast: convolutions in FP16, decode in FP32, as TensorRT's FP16
mode keeps precision-sensitive layers) against the compact ONNX model on ONNX Runtime CPU FP32, on
both shared photos, through the same post-processing: same faces (IoU > 0.9), scores within 0.01,
landmarks within 1 px.

Timings: the raw network (no decode), FP16, channels-last, replayed as a CUDA graph so that kernel
launch overhead (which dominates MobileNet-0.25 at batch 1) is not measured, and the same network through
``torch.compile`` (Inductor's fused kernels, in its CUDA-graph mode); median of timed runs after a
warm-up, CUDA events. Random weights are fine for timing. The lent GPU machine has no TensorRT and its
wheels (over 1 GB) cannot be carried there, so this measures PyTorch + cuDNN FP16: a stand-in for the
TensorRT FP16 engines Triton runs.

With ``--mesh-weights`` and ``--mesh-onnx``, FaceMesh too: FP16 on the GPU against the FaceMesh graph on
ONNX Runtime CPU FP32 on every face the detector finds on ``--images`` (vertices in crop pixels, presence
logit), and its time per face at batch 1, 32 and 64.

    python scripts/bench_gpu.py --weights W --onnx model.onnx --images a.jpg b.jpg \
        [--mesh-weights face_landmark.tflite --mesh-onnx facemesh.onnx]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from facelocal.config import DEFAULT_PRESET, SERVE_POSTPROCESS, get_config  # noqa: E402
from facelocal.contract import OUTPUT_NAMES, PRESET_KEY, TOP_K_KEY  # noqa: E402
from facelocal.imageio import load_image  # noqa: E402
from facelocal.models import build_model, load_pretrained  # noqa: E402
from facelocal.models.decoded import DecodedRetinaFace  # noqa: E402
from facelocal.postprocess import box_iou, select_faces  # noqa: E402
from facelocal.preprocess import ResizePolicy, to_canvas  # noqa: E402

# (name, width, height) as in the RetinaFace paper's timing table.
RESOLUTIONS = {"VGA": (640, 480), "HD": (1920, 1080), "4K": (4096, 2160)}
# RetinaFace paper (Tesla P40), ms per image.
PAPER_MS = {
    ("mobilenet0.25", "VGA"): 1.4,
    ("mobilenet0.25", "HD"): 6.1,
    ("mobilenet0.25", "4K"): 25.6,
    ("resnet152", "VGA"): 75.1,
}


def parity(weights: Path, onnx_path: Path, images: list[Path], all_half: bool = False) -> list[dict]:
    """Faces from FP16 on the GPU against FP32 ONNX Runtime; ``all_half`` runs the decode in FP16 too."""
    import onnxruntime as ort

    # The compact graph names its preset and top-k in its metadata, and its input its canvas.
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    metadata = session.get_modelmeta().custom_metadata_map
    canvas_size = session.get_inputs()[0].shape[2]
    network = load_pretrained(get_config(metadata[PRESET_KEY]), weights)
    network = DecodedRetinaFace(network, top_k=int(metadata[TOP_K_KEY])).cuda().eval()
    if all_half:
        network = network.half()
    report = []
    for path in images:
        rgb = load_image(path)
        height, width = rgb.shape[:2]
        placement = ResizePolicy("letterbox", canvas_size).plan(width, height)
        canvas = to_canvas(rgb, placement)[None]
        reference = session.run(list(OUTPUT_NAMES), {session.get_inputs()[0].name: canvas})
        tensor = torch.from_numpy(canvas).cuda()
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16, enabled=not all_half):
            fp16 = [t.float().cpu().numpy() for t in network(tensor.half() if all_half else tensor)]
        a = select_faces(*(t[0] for t in reference), placement, width, height, SERVE_POSTPROCESS)
        b = select_faces(*(t[0] for t in fp16), placement, width, height, SERVE_POSTPROCESS)
        iou = box_iou(a.boxes, b.boxes) if len(a.boxes) and len(b.boxes) else np.zeros((len(a.boxes), len(b.boxes)))
        match = iou.argmax(1) if iou.size else np.array([], int)
        matched_iou = iou[np.arange(len(match)), match] if iou.size else np.array([])
        entry = {
            "image": path.name,
            "mode": "all FP16" if all_half else "autocast",
            "faces_fp32": len(a.boxes),
            "faces_fp16": len(b.boxes),
            "min_iou": float(matched_iou.min()) if matched_iou.size else None,
            "max_score_diff": float(np.abs(a.scores - b.scores[match]).max()) if match.size else None,
            "max_landmark_diff_px": float(np.abs(a.landmarks - b.landmarks[match]).max()) if match.size else None,
        }
        entry["pass"] = (
            entry["faces_fp32"] == entry["faces_fp16"]
            and len(set(match.tolist())) == len(match)
            and (
                not match.size
                or (entry["min_iou"] > 0.9 and entry["max_score_diff"] <= 0.01 and entry["max_landmark_diff_px"] <= 1.0)
            )
        )
        report.append(entry)
    return report


def time_network(
    config_name: str,
    width: int,
    height: int,
    batch: int,
    replays: int = 50,
    top_k: int | None = None,
    compiled: bool = False,
) -> float:
    """Median ms per forward on ``(batch, 3, height, width)``, replayed as a CUDA graph.

    Without ``top_k``: the raw network, all FP16 (the paper's measure). With it: the serving graph
    (decode and top-k, FP16 convolutions under autocast, FP32 decode), as Triton's engine runs it. With
    ``compiled``, the raw network through ``torch.compile(mode="reduce-overhead")`` instead of a hand-captured graph.
    """
    model = build_model(get_config(config_name)).cuda().eval()
    if compiled:
        network = torch.compile(model.half().to(memory_format=torch.channels_last), mode="reduce-overhead")
        images = torch.randn(batch, 3, height, width, device="cuda", dtype=torch.half)
        images = images.to(memory_format=torch.channels_last)
        with torch.no_grad():
            return median_cuda_ms(lambda: network(images), replays, warm_up=5)
    if top_k is None:
        model, dtype = model.half(), torch.half
    else:
        model, dtype = DecodedRetinaFace(model, top_k=top_k).eval(), torch.float32
    model = model.to(memory_format=torch.channels_last)
    images = torch.randn(batch, 3, height, width, device="cuda", dtype=dtype).to(memory_format=torch.channels_last)
    autocast = torch.autocast("cuda", dtype=torch.float16, enabled=top_k is not None)
    stream = torch.cuda.Stream()
    with torch.no_grad(), autocast:
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):  # warm-up also lets cuDNN pick its algorithms
                model(images)
        torch.cuda.current_stream().wait_stream(stream)
        # The serving graph copies its cached anchors to the GPU on every call, which graph capture
        # forbids: it is timed eagerly (launch overhead included, so an upper bound).
        graph = torch.cuda.CUDAGraph() if top_k is None else None
        if graph is not None:
            with torch.cuda.graph(graph):
                model(images)

    def run() -> None:
        if graph is not None:
            graph.replay()
            return
        with torch.no_grad(), autocast:
            model(images)

    return median_cuda_ms(run, replays)  # the graph, model and images go with this frame


def median_cuda_ms(run, replays: int, warm_up: int = 5) -> float:
    """Median milliseconds of ``run()`` over ``replays`` calls after ``warm_up`` untimed ones (CUDA events)."""
    for _ in range(warm_up):
        run()
    times = []
    for _ in range(replays):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        run()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return float(np.median(times))


def mesh_parity(mesh_weights: Path, mesh_onnx: Path, detector_onnx: Path, images: list[Path]) -> dict:
    """FaceMesh FP16 (autocast) on the GPU against its ONNX graph on ONNX Runtime CPU FP32, on the crops of
    every face the detector finds on ``images``: the largest vertex and presence-logit differences."""
    import onnxruntime as ort

    from facelocal.detector import Detector
    from facelocal.facemesh import crop_faces, to_unit_float
    from facelocal.models.facemesh import load_facemesh

    canvas = ort.InferenceSession(str(detector_onnx), providers=["CPUExecutionProvider"]).get_inputs()[0].shape[2]
    detector = Detector.from_onnx(detector_onnx, resize=ResizePolicy("letterbox", canvas))
    crops = []
    for path in images:
        rgb = load_image(path)
        faces = detector.detect([rgb])[0]
        crops.append(crop_faces(rgb, faces.boxes, faces.landmarks)[0])
    batch = np.concatenate(crops)
    session = ort.InferenceSession(str(mesh_onnx), providers=["CPUExecutionProvider"])
    reference = session.run(None, {session.get_inputs()[0].name: batch})
    network = load_facemesh(mesh_weights).cuda().eval()
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.float16):
        vertices, logits = (t.float().cpu().numpy() for t in network(torch.from_numpy(to_unit_float(batch)).cuda()))
    return {
        "faces": len(batch),
        "max_vertex_diff_px": float(np.abs(vertices - reference[0]).max()),
        "mean_vertex_diff_px": float(np.abs(vertices - reference[0]).mean()),
        "max_presence_logit_diff": float(np.abs(logits - reference[1]).max()),
    }


def time_mesh(mesh_weights: Path, batch: int, replays: int = 50) -> float:
    """Median ms per FaceMesh forward on ``batch`` crops, FP16, channels-last, replayed as a CUDA graph."""
    from facelocal.models.facemesh import load_facemesh

    network = load_facemesh(mesh_weights).cuda().eval().half().to(memory_format=torch.channels_last)
    crops = torch.rand(batch, 192, 192, 3, device="cuda", dtype=torch.half)
    stream = torch.cuda.Stream()
    with torch.no_grad():
        stream.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(stream):
            for _ in range(3):
                network(crops)
        torch.cuda.current_stream().wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            network(crops)
    return median_cuda_ms(graph.replay, replays)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--weights", type=Path, required=True)
    parser.add_argument("--onnx", type=Path, required=True, help="the compact model (model_repository/retinaface)")
    parser.add_argument("--images", type=Path, nargs="+", required=True)
    parser.add_argument("--mesh-weights", type=Path, help="face_landmark.tflite: also check and time FaceMesh")
    parser.add_argument("--mesh-onnx", type=Path, help="the FaceMesh graph (model_repository/facemesh)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    torch.backends.cudnn.benchmark = True

    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, cuDNN {torch.backends.cudnn.version()}")
    results = {
        "gpu": torch.cuda.get_device_name(),
        "parity": [
            entry for all_half in (False, True) for entry in parity(args.weights, args.onnx, args.images, all_half)
        ],
    }
    for entry in results["parity"]:
        print("parity", json.dumps(entry))

    rows = []
    cases = [("mobilenet0.25", name, batch) for name in RESOLUTIONS for batch in (1, 32)]
    cases += [("resnet50", "VGA", 1), ("resnet50", "VGA", 32)]
    print(
        f"{'model':14s} {'input':5s} {'batch':>5s} {'ms/batch':>9s} {'ms/image':>9s} "
        f"{'compiled ms/batch':>17s} {'paper P40 ms':>12s}"
    )
    for config_name, resolution, batch in cases:
        width, height = RESOLUTIONS[resolution]
        ms = time_network(config_name, width, height, batch)
        compiled_ms = time_network(config_name, width, height, batch, compiled=True)
        paper = PAPER_MS.get((config_name.split("-")[0], resolution))
        rows.append(
            {
                "model": config_name,
                "input": resolution,
                "batch": batch,
                "ms_per_batch": ms,
                "ms_per_image": ms / batch,
                "compiled_ms_per_batch": compiled_ms,
                "paper_p40_ms": paper,
            }
        )
        print(
            f"{config_name:14s} {resolution:5s} {batch:5d} {ms:9.3f} {ms / batch:9.3f} "
            f"{compiled_ms:17.3f} {paper or '':>12}"
        )
    for batch in (1, 8, 32):
        ms = time_network(DEFAULT_PRESET, 640, 640, batch, top_k=1000)
        rows.append(
            {
                "model": f"{DEFAULT_PRESET} serving graph (decode + top-1000)",
                "input": "640x640",
                "batch": batch,
                "ms_per_batch": ms,
                "ms_per_image": ms / batch,
                "paper_p40_ms": None,
            }
        )
        print(f"serving graph  640^2 {batch:5d} {ms:9.3f} {ms / batch:9.3f}  (eager: anchors copied per call)")
    results["timings"] = rows
    if args.mesh_weights and args.mesh_onnx:
        results["mesh_parity"] = mesh_parity(args.mesh_weights, args.mesh_onnx, args.onnx, args.images)
        print("mesh parity", json.dumps(results["mesh_parity"]))
        results["mesh_timings"] = []
        for batch in (1, 32, 64):
            ms = time_mesh(args.mesh_weights, batch)
            results["mesh_timings"].append({"batch": batch, "ms_per_batch": ms, "ms_per_face": ms / batch})
            print(f"FaceMesh FP16 batch {batch:3d}: {ms:.3f} ms, {ms / batch:.4f} ms per face")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0 if all(entry["pass"] for entry in results["parity"] if entry["mode"] == "autocast") else 1


if __name__ == "__main__":
    sys.exit(main())
