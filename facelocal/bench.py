"""Whole-pipeline timing: JPEG decode, pre-processing, forward and post-processing, per stage.

Every backend (ONNX Runtime, OpenVINO at each precision, torch eager, and peers such as YuNet) is timed in the
same run, interleaved per repeat, so that their ratios hold on a noisy machine. Inputs are the shared photos
resized and cropped to each size, JPEG-encoded in memory.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from PIL import Image

from facelocal.config import SERVE_POSTPROCESS, PostprocessConfig
from facelocal.imageio import decode_image
from facelocal.postprocess import select_faces
from facelocal.preprocess import Placement, to_canvas
from facelocal.runtime import Forward

SIZES: dict[str, tuple[int, int]] = {"vga": (640, 480), "hd": (1920, 1080), "4k": (4096, 2160)}
STAGES = ("decode", "preprocess", "forward", "postprocess", "total")
# A runtime, with ``:precision`` where it is not fp32 (see facelocal.runtime.PRECISIONS).
BACKENDS = ("onnxruntime", "openvino", "openvino:bf16", "openvino:int8", "torch")
# The baselines each backend is compared with, on the same size and threads: YuNet (the peer a CPU user picks
# today) and our own fp32 graph on ONNX Runtime.
PEER_BASELINE, FP32_BASELINE = "yunet", "onnxruntime"

# Seconds per stage (a subset of STAGES; a peer's missing stages are ones it does not expose apart) and the
# number of faces found, for one JPEG.
Pipeline = Callable[[bytes], tuple[dict[str, float], int]]

# RetinaFace paper, Table 5: MobileNet-0.25 on CPU, milliseconds (no 4K, no multi-thread HD figure).
PAPER_MS: dict[tuple[str, str], float] = {("vga", "1"): 17.2, ("hd", "1"): 130.4, ("vga", "all"): 5.5}


def make_jpeg(photo: Path, width: int, height: int, quality: int = 90) -> bytes:
    """``photo`` scaled to cover ``width x height``, centre-cropped, encoded as JPEG in memory."""
    image = Image.open(photo).convert("RGB")
    scale = max(width / image.width, height / image.height)
    image = image.resize(
        (max(width, round(image.width * scale)), max(height, round(image.height * scale))), Image.Resampling.BILINEAR
    )
    left, top = (image.width - width) // 2, (image.height - height) // 2
    buffer = io.BytesIO()
    image.crop((left, top, left + width, top + height)).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def thread_count(spec: str) -> int:
    """``1`` or ``all`` (every CPU this process may use) to a number."""
    return len(os.sched_getaffinity(0)) if spec == "all" else int(spec)


def time_pipeline(
    jpeg: bytes, forward: Forward, postprocess: PostprocessConfig = SERVE_POSTPROCESS
) -> tuple[dict[str, float], int]:
    """One pass of the pipeline; seconds per stage and the number of faces found."""
    clock = time.perf_counter
    t0 = clock()
    rgb = decode_image(jpeg)
    t1 = clock()
    height, width = rgb.shape[:2]
    batch = to_canvas(rgb, Placement(1.0, width, height, width, height))[None]
    t2 = clock()
    boxes, scores, landmarks = forward(batch)
    t3 = clock()
    faces = select_faces(
        boxes[0], scores[0], landmarks[0], Placement(1.0, width, height, width, height), width, height, postprocess
    )
    t4 = clock()
    stages = {"decode": t1 - t0, "preprocess": t2 - t1, "forward": t3 - t2, "postprocess": t4 - t3, "total": t4 - t0}
    return stages, len(faces)


def our_pipeline(forward: Forward) -> Pipeline:
    """:func:`time_pipeline` over ``forward``."""
    return partial(time_pipeline, forward=forward)


@dataclass
class BenchResult:
    """Per stage median, p90 and minimum in milliseconds of one (size, backend, threads) combination; NaN for a
    stage the backend does not expose apart.

    The minimum approximates the uncontended cost on a shared machine; the median is the figure to compare.
    """

    size: str
    backend: str
    threads: str
    thread_count: int
    repeats: int
    faces: int
    median_ms: dict[str, float]
    p90_ms: dict[str, float]
    min_ms: dict[str, float]

    @property
    def paper_ms(self) -> float | None:
        """The paper's figure for this size and thread count (ours only: the paper timed RetinaFace)."""
        return None if self.backend == PEER_BASELINE else PAPER_MS.get((self.size, self.threads))

    def record(self) -> dict:
        return {
            "size": self.size,
            "width": SIZES[self.size][0],
            "height": SIZES[self.size][1],
            "backend": self.backend,
            "threads": self.threads,
            "thread_count": self.thread_count,
            "repeats": self.repeats,
            "faces": self.faces,
            "stages": {
                s: {"median_ms": self.median_ms[s], "p90_ms": self.p90_ms[s], "min_ms": self.min_ms[s]}
                for s in STAGES
                if not np.isnan(self.median_ms[s])
            },
            "paper_ms": self.paper_ms,
        }


def run_benchmark(
    jpegs: dict[str, bytes],
    pipelines: dict[tuple[str, str], Pipeline],
    repeats: int,
    warmup: int = 2,
    progress: bool = True,
) -> list[BenchResult]:
    """Time every size with every ``(backend, threads)`` pipeline; the combinations take turns each repeat."""
    from tqdm import tqdm

    results = []
    for size, jpeg in jpegs.items():
        combos = list(pipelines)
        samples: dict[tuple[str, str], list[dict[str, float]]] = {c: [] for c in combos}
        faces = {}
        for combo in combos:
            for _ in range(warmup):
                pipelines[combo](jpeg)
        for _ in tqdm(range(repeats), desc=f"bench {size}", disable=not progress, leave=False):
            for combo in combos:
                stages, faces[combo] = pipelines[combo](jpeg)
                samples[combo].append(stages)
        for backend, threads in combos:
            table = np.array([[s.get(k, np.nan) for k in STAGES] for s in samples[(backend, threads)]]) * 1000.0
            median, p90, low = np.median(table, axis=0), np.percentile(table, 90, axis=0), table.min(axis=0)
            results.append(
                BenchResult(
                    size,
                    backend,
                    threads,
                    thread_count(threads),
                    repeats,
                    faces[(backend, threads)],
                    dict(zip(STAGES, median.tolist(), strict=True)),
                    dict(zip(STAGES, p90.tolist(), strict=True)),
                    dict(zip(STAGES, low.tolist(), strict=True)),
                )
            )
    return results


def format_table(results: Sequence[BenchResult]) -> str:
    """A markdown table: per stage medians, the total's p90 and minimum, the paper's figure, and each total over
    YuNet's and over our fp32 ONNX Runtime pipeline's (medians; YuNet's minimums too) at the same size and threads."""
    by_key = {(r.size, r.backend, r.threads): r for r in results}

    def ratio(r: BenchResult, baseline: str, stat: str = "median_ms") -> str:
        base = by_key.get((r.size, baseline, r.threads))
        return "" if base is None or base is r else f"{getattr(r, stat)['total'] / getattr(base, stat)['total']:.2f}"

    def ms(value: float) -> str:
        return "–" if np.isnan(value) else f"{value:.1f}"

    header = (
        "| size | threads | backend | decode | preprocess | forward | postprocess | total (median) | total p90 "
        "| total min "
        "| paper Table 5 | ÷ YuNet | ÷ YuNet (min) | ÷ ORT fp32 |"
    )
    lines = [header, "|" + "---|" * 14]
    for r in results:
        paper = r.paper_ms
        m = r.median_ms
        lines.append(
            f"| {r.size} | {r.threads} ({r.thread_count}) | {r.backend} | {ms(m['decode'])} | {ms(m['preprocess'])} "
            f"| {ms(m['forward'])} | {ms(m['postprocess'])} | {ms(m['total'])} | {ms(r.p90_ms['total'])} "
            f"| {ms(r.min_ms['total'])} | {'' if paper is None else f'{paper:.1f}'} | {ratio(r, PEER_BASELINE)} "
            f"| {ratio(r, PEER_BASELINE, 'min_ms')} | {ratio(r, FP32_BASELINE)} |"
        )
    return "\n".join(lines)


# -- the FaceMesh stage --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MeshMode:
    """One way the mesh stage can run the N faces of one image (or of several requests: the service's batcher)."""

    description: str
    runtime: str = "onnxruntime"
    rows_at_once: int | None = None  # None: every face in one inference
    parallel: bool = False  # faces split over the threads, each running single-threaded inferences


MESH_MODES = {
    "single": MeshMode("one face per inference, one after another", rows_at_once=1),
    "batched": MeshMode("every face in one inference"),
    "parallel": MeshMode(
        "faces split over the threads, one at a time each (the service's CPU mode)", rows_at_once=1, parallel=True
    ),
    "single_openvino": MeshMode("single on OpenVINO", "openvino", rows_at_once=1),
    "batched_openvino": MeshMode("batched on OpenVINO", "openvino"),
    "parallel_openvino": MeshMode("parallel on OpenVINO", "openvino", rows_at_once=1, parallel=True),
}
# The mode the others are compared with (ratios measured in the same rounds): ONNX Runtime, one face at a time.
MESH_BASELINE = "single"


@dataclass
class MeshBenchResult:
    """Per-face milliseconds of the mesh stage on one photo, beside the detector's cost on that photo."""

    threads: str
    thread_count: int
    faces: int
    detector_ms: float
    crop_ms_per_face: float
    project_ms_per_face: float
    inference_ms_per_face: dict[str, float]
    repeats: int
    # The fastest round's crop + inference + projection per face, by mode: the uncontended cost on a shared machine.
    min_mesh_ms_per_face: dict[str, float] | None = None

    def record(self) -> dict:
        return {
            "threads": self.threads,
            "thread_count": self.thread_count,
            "faces": self.faces,
            "detector_total_ms": self.detector_ms,
            "crop_ms_per_face": self.crop_ms_per_face,
            "project_ms_per_face": self.project_ms_per_face,
            "inference_ms_per_face": self.inference_ms_per_face,
            "mesh_ms_per_face": {
                mode: self.crop_ms_per_face + self.project_ms_per_face + ms
                for mode, ms in self.inference_ms_per_face.items()
            },
            "min_mesh_ms_per_face": self.min_mesh_ms_per_face,
            "repeats": self.repeats,
        }


def run_mesh_benchmark(
    photo: Path,
    detector_onnx: Path,
    mesh_onnx: Path,
    threads: Sequence[str],
    repeats: int,
    min_face: float | None = None,
    progress: bool = True,
) -> list[MeshBenchResult]:
    """Time the mesh stage per face on ``photo`` (the faces the detector finds there, longer side >= ``min_face``)
    in each mode of :data:`MESH_MODES`, and the detector's whole pipeline on the same photo; medians of
    ``repeats`` rounds in which the modes take turns."""
    import cv2
    from tqdm import tqdm

    from facelocal.facemesh import MESH_MIN_FACE, OnnxFaceMesh, crop_faces, mesh_eligible, project_vertices
    from facelocal.runtime import onnxruntime_forward

    min_face = MESH_MIN_FACE if min_face is None else min_face
    jpeg = Path(photo).read_bytes()
    rgb = decode_image(jpeg)
    results = []
    for spec in threads:
        count = thread_count(spec)
        cv2.setNumThreads(count)  # the crops' warp: process-wide, like the inference threads here
        forward = onnxruntime_forward(detector_onnx, count)
        height, width = rgb.shape[:2]
        placement = Placement(1.0, width, height, width, height)
        boxes, scores, landmarks = forward(to_canvas(rgb, placement)[None])
        faces = select_faces(boxes[0], scores[0], landmarks[0], placement, width, height, SERVE_POSTPROCESS)
        faces = faces.select(np.nonzero(mesh_eligible(faces.boxes, min_face))[0])
        if len(faces) == 0:
            raise ValueError(f"no face of {min_face:g} px or more in {photo}")
        runners = {
            name: OnnxFaceMesh(
                mesh_onnx,
                threads=1 if mode.parallel else count,
                rows_at_once=mode.rows_at_once,
                workers=count if mode.parallel else 1,
                runtime=mode.runtime,
            )
            for name, mode in MESH_MODES.items()
        }
        crops, geometries = crop_faces(rgb, faces.boxes, faces.landmarks)
        for runner in runners.values():
            for _ in range(2):  # warm-up; OpenVINO compiles a model for a batch shape it sees a second time
                runner(crops)
        time_pipeline(jpeg, forward)
        samples: dict[str, list[float]] = {name: [] for name in (*runners, "detector", "crop", "project")}
        clock = time.perf_counter
        for _ in tqdm(range(repeats), desc=f"mesh bench, {spec} threads", disable=not progress, leave=False):
            samples["detector"].append(time_pipeline(jpeg, forward)[0]["total"])
            started = clock()
            crops, geometries = crop_faces(rgb, faces.boxes, faces.landmarks)
            samples["crop"].append(clock() - started)
            for name, runner in runners.items():
                started = clock()
                vertices, _ = runner(crops)
                samples[name].append(clock() - started)
            started = clock()
            for raw, geometry in zip(vertices, geometries, strict=True):
                project_vertices(raw, geometry)
            samples["project"].append(clock() - started)
        for runner in runners.values():
            runner.close()
        per_face = {name: float(np.median(values)) * 1000.0 / len(faces) for name, values in samples.items()}
        overhead = np.array(samples["crop"]) + np.array(samples["project"])
        fastest = {name: float((np.array(samples[name]) + overhead).min()) * 1000.0 / len(faces) for name in runners}
        results.append(
            MeshBenchResult(
                spec,
                count,
                len(faces),
                float(np.median(samples["detector"])) * 1000.0,
                per_face["crop"],
                per_face["project"],
                {name: per_face[name] for name in runners},
                repeats,
                fastest,
            )
        )
    return results


def format_mesh_table(results: Sequence[MeshBenchResult]) -> str:
    """A markdown table: detector total on the photo, crop and projection, then the mesh stage's cost per face
    (crop + inference + projection) in each mode of :data:`MESH_MODES`, its ratio to :data:`MESH_BASELINE`, and
    the fastest round's cost per face."""
    lines = [
        "| threads | faces | detector, whole photo (ms) | crop / face | project / face | mode "
        "| mesh / face (ms) | vs single | fastest round / face |",
        "|" + "---|" * 9,
    ]
    for r in results:
        overhead = r.crop_ms_per_face + r.project_ms_per_face
        baseline = r.inference_ms_per_face[MESH_BASELINE] + overhead
        for row, (mode, inference) in enumerate(r.inference_ms_per_face.items()):
            head = (
                f"| {r.threads} ({r.thread_count}) | {r.faces} | {r.detector_ms:.1f} | {r.crop_ms_per_face:.2f} "
                f"| {r.project_ms_per_face:.3f} "
                if row == 0
                else "| | | | | "
            )
            fastest = r.min_mesh_ms_per_face[mode] if r.min_mesh_ms_per_face else float("nan")
            lines.append(
                f"{head}| {mode} | {inference + overhead:.2f} | {(inference + overhead) / baseline:.2f} "
                f"| {fastest:.2f} |"
            )
    return "\n".join(lines)
