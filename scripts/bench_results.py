#!/usr/bin/env python
"""The cost of results on the way out: milliseconds per image to turn one image's faces into the REST JSON body
and the gRPC protobuf bytes, on the group photo, with and without the mesh.

``after`` is this checkout's edge (:mod:`service.rest.shaping`, :mod:`service.grpc.converters`: once, from the
arrays). With ``--before DIR`` the same faces also take the path of the checkout ``DIR`` (``git archive`` of a
commit before "One pipeline"), run there in a subprocess with its own code: ``FaceDetections.faces()`` to
pydantic ``Face`` models, meshes attached by ``model_copy``, FastAPI's response-model validation and
serialisation, protobuf from the models.

    python scripts/bench_results.py [--before /tmp/before] [--repeats 200]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT.parent / "shared" / "data" / "images" / "selfie_group.jpg"

# Runs in either checkout: the faces saved by ``main`` through that checkout's way out, printed as JSON timings.
TIMING = r"""
import json, os, sys, time
import numpy as np
from facelocal.detections import FaceDetections

saved = np.load(sys.argv[1])
repeats = int(sys.argv[2])


def faces(with_mesh):
    meshes = saved["meshes"] if with_mesh else None
    scores = saved["mesh_scores"] if with_mesh else None
    return FaceDetections(saved["boxes"], saved["scores"], saved["landmarks"], 1024, 768, meshes, scores)


def median_ms(run):
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000.0)
    return float(np.median(times))


# (The editable install would find a module this checkout lacks in the other one: ask the folder.)
if not os.path.exists("service/results.py"):  # the checkout before "One pipeline"
    from fastapi.encoders import jsonable_encoder
    from service.grpc.converters import result_to_proto
    from service.schemas import Face, ImageResult, Timings

    def answer(with_mesh):
        found = faces(with_mesh)
        models = [Face(box=f["box"], score=f["score"], landmarks=f["landmarks"]) for f in faces(False).faces()]
        if with_mesh:  # the mesh stage's _attach
            for index, (mesh, score) in enumerate(zip(found.meshes, found.mesh_scores)):
                if np.isfinite(score):
                    vertices = np.round(mesh.astype(np.float64), 2).tolist()
                    update = {"mesh": vertices, "mesh_score": round(float(score), 5)}
                else:
                    update = {"mesh_skipped": "face_too_small"}
                models[index] = models[index].model_copy(update=update)
        timings = Timings(decode=1.0, queue=0.1, inference=7.0, postprocess=0.5, mesh=3.0 if with_mesh else None)
        return ImageResult(width=1024, height=768, model="m", faces=models, timings_ms=timings,
                           mesh_truncated=False if with_mesh else None)

    def to_json(with_mesh):
        # FastAPI validates a returned model against response_model, then serialises it for JSONResponse.
        result = ImageResult.model_validate(answer(with_mesh).model_dump())
        return json.dumps(jsonable_encoder(result), separators=(",", ":")).encode()

    def to_proto(with_mesh):
        return result_to_proto(answer(with_mesh)).SerializeToString()
else:
    from service.grpc.converters import result_to_proto
    from service.rest.shaping import result_response
    from service.results import DetectionResult
    from service.schemas import Timings

    def answer(with_mesh):
        found = faces(with_mesh)
        skipped = [None if np.isfinite(s) else "face_too_small" for s in found.mesh_scores] if with_mesh else None
        timings = Timings(decode=1.0, queue=0.1, inference=7.0, postprocess=0.5, mesh=3.0 if with_mesh else None)
        return DetectionResult(1024, 768, "m", found, False, mesh_skipped=skipped, timings=timings)

    def to_json(with_mesh):
        return result_response(answer(with_mesh)).body

    def to_proto(with_mesh):
        return result_to_proto(answer(with_mesh)).SerializeToString()

print(json.dumps({
    f"{kind} {'mesh' if with_mesh else 'plain'}": [median_ms(lambda: convert(with_mesh)), len(convert(with_mesh))]
    for kind, convert in (("json", to_json), ("protobuf", to_proto)) for with_mesh in (False, True)
}))
"""


def detect(model: Path, mesh_model: Path) -> dict[str, np.ndarray]:
    """The group photo's faces with meshes, from the library."""
    sys.path.insert(0, str(ROOT))
    from facelocal.detector import Detector
    from facelocal.imageio import load_image
    from facelocal.preprocess import ResizePolicy

    detector = Detector.from_onnx(model, mesh_model_path=mesh_model, resize=ResizePolicy("fit", 640))
    (faces,) = detector.detect([load_image(PHOTO)])
    return {name: getattr(faces, name) for name in ("boxes", "scores", "landmarks", "meshes", "mesh_scores")}


def timings(root: Path, saved: Path, repeats: int) -> dict[str, list[float]]:
    run = subprocess.run(
        [sys.executable, "-c", TIMING, str(saved), str(repeats)], cwd=root, capture_output=True, text=True
    )
    if run.returncode:
        sys.exit(f"timing in {root} failed:\n{run.stderr[-3000:]}")
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-path", type=Path, default=ROOT / "artifacts" / "model.onnx")
    parser.add_argument("--mesh-model-path", type=Path, default=ROOT / "artifacts" / "facemesh.onnx")
    parser.add_argument("--before", type=Path, help="a checkout of an earlier commit, timed in the same run")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3, help="alternations of before and after")
    args = parser.parse_args()

    found = detect(args.model_path, args.mesh_model_path)
    meshed = int(np.isfinite(found["mesh_scores"]).sum())
    roots = {"after": ROOT, **({"before": args.before} if args.before else {})}
    runs: dict[str, list[dict[str, list[float]]]] = {name: [] for name in roots}
    with tempfile.TemporaryDirectory() as folder:
        saved = Path(folder) / "faces.npz"
        np.savez(saved, **found)
        for _ in range(args.rounds):
            for name, root in roots.items():
                runs[name].append(timings(root, saved, args.repeats))
    print(f"\n{PHOTO.name}: {len(found['scores'])} faces, {meshed} with a mesh; median of {args.rounds} runs")
    print(f"{'output':18} " + " ".join(f"{name + ' ms':>10} {'bytes':>7}" for name in roots))
    for key in runs["after"][0]:
        cells = []
        for name in roots:
            cells.append(f"{np.median([run[key][0] for run in runs[name]]):>10.3f} {runs[name][0][key][1]:>7}")
        print(f"{key:18} " + " ".join(cells))


if __name__ == "__main__":
    main()
