"""``facelocal bench``: time decode, pre-processing, forward and post-processing against the paper's Table 5 and,
with ``--peers``, against OpenCV's YuNet in the same run; with ``--mesh``, the FaceMesh stage's cost per face on
the group photo beside the detector's."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from facelocal.cli.common import add_calibration_argument, add_mesh_weights_argument, add_model_arguments
from facelocal.peers import YUNET_MODEL as DEFAULT_YUNET

# In the shared data ($FACELOCAL_DATA) unless --photo / --yunet say otherwise.
DEFAULT_PHOTO = "images/selfie_group.jpg"


def _csv(choices: tuple[str, ...] | None = None):
    def parse(text: str) -> list[str]:
        items = [t.strip() for t in text.split(",") if t.strip()]
        bad = [t for t in items if choices and t not in choices]
        if not items or bad:
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(choices or ())}")
        return items

    return parse


def register(subparsers: argparse._SubParsersAction) -> None:
    from facelocal.bench import BACKENDS, SIZES

    parser = subparsers.add_parser("bench", help="time the whole pipeline per stage", description=__doc__)
    parser.add_argument("--sizes", type=_csv(tuple(SIZES)), default=list(SIZES), help="vga,hd,4k")
    parser.add_argument(
        "--backends",
        type=_csv(BACKENDS),
        default=["onnxruntime", "openvino", "openvino:bf16", "torch"],
        help=f"runtime[:precision] list from {','.join(BACKENDS)} (openvino:int8 calibrates first, "
        "unless --int8-model is given)",
    )
    parser.add_argument("--peers", action="store_true", help="time OpenCV's YuNet too (the peers extra)")
    parser.add_argument(
        "--yunet", type=Path, help=f"YuNet ONNX file for --peers (default: {DEFAULT_YUNET} in $FACELOCAL_DATA)"
    )
    parser.add_argument("--int8-model", type=Path, metavar="MODEL.onnx", help="a 'facelocal export int8' file")
    add_calibration_argument(parser)
    parser.add_argument("--threads", type=_csv(), default=["1", "all"], help="thread counts: 1,all or numbers")
    parser.add_argument("--repeats", type=int, default=30, help="timed passes per combination (after 2 warm-ups)")
    parser.add_argument(
        "--photo", type=Path, help=f"photo the inputs are made from (default: {DEFAULT_PHOTO} in $FACELOCAL_DATA)"
    )
    parser.add_argument("--json", type=Path, metavar="OUT.json", help="write every result as JSON")
    parser.add_argument(
        "--mesh",
        action="store_true",
        help="time only the FaceMesh stage per face on --photo (single runs, one batch, faces over threads), "
        "beside the detector's cost on that photo",
    )
    add_mesh_weights_argument(parser)
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import platform
    import tempfile

    from facelocal import bench
    from facelocal.cli import CommandError
    from facelocal.cli.common import data_path, export_model, load_torch_model
    from facelocal.models.decoded import DecodedRetinaFace
    from facelocal.runtime import exported_forward, torch_forward

    args.photo = data_path(args.photo, DEFAULT_PHOTO, "--photo")
    if not args.photo.is_file():
        raise CommandError(f"photo {args.photo} not found (use --photo)")
    if any(t != "all" and not t.isdigit() for t in args.threads):
        raise CommandError("--threads takes 1, all or positive numbers")
    if args.repeats < 1:
        raise CommandError("--repeats must be at least 1")
    model = load_torch_model(args)
    if args.mesh:
        return run_mesh(args, model)
    jpegs = {size: bench.make_jpeg(args.photo, *bench.SIZES[size]) for size in args.sizes}
    with tempfile.TemporaryDirectory() as tmp:
        files = {}
        pipelines = {}
        for backend in args.backends:
            runtime, _, precision = backend.partition(":")
            for threads in args.threads:
                count = bench.thread_count(threads)
                if runtime == "torch":
                    forward = torch_forward(DecodedRetinaFace(model.eval()), count)
                else:
                    stored = "int8" if precision == "int8" else "fp32"
                    if stored not in files:
                        given = args.int8_model if stored == "int8" else None
                        out = Path(tmp) / f"{stored}.onnx"
                        files[stored] = given or export_model(model, out, stored, args.calibration)
                    forward = exported_forward(files[stored], runtime, count, precision or "fp32")
                pipelines[(backend, threads)] = bench.our_pipeline(forward)
        if args.peers:
            pipelines.update(_peer_pipelines(args))
        results = bench.run_benchmark(jpegs, pipelines, args.repeats)
    cpu = _cpu_model()
    print(
        f"CPU: {cpu}; {bench.thread_count('all')} usable threads; config {model.config.name}; "
        f"{args.repeats} repeats; ms"
    )
    print(bench.format_table(results))
    if args.json:
        report = {
            "cpu": cpu,
            "machine": platform.machine(),
            "config": model.config.name,
            "results": [r.record() for r in results],
        }
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def run_mesh(args: argparse.Namespace, model) -> int:
    import platform
    import tempfile

    from facelocal import bench
    from facelocal.cli.common import load_mesh_model
    from facelocal.export import export_mesh_onnx, export_onnx

    mesh, source = load_mesh_model(args)
    with tempfile.TemporaryDirectory() as tmp:
        detector_onnx = export_onnx(model, Path(tmp) / "model.onnx")
        mesh_onnx = export_mesh_onnx(mesh, Path(tmp) / "facemesh.onnx")
        results = bench.run_mesh_benchmark(args.photo, detector_onnx, mesh_onnx, args.threads, args.repeats)
    cpu = _cpu_model()
    print(
        f"CPU: {cpu}; {bench.thread_count('all')} usable threads; detector {model.config.name} at original size; "
        f"FaceMesh from {source}; {args.photo.name}; {args.repeats} repeats; ms (median)"
    )
    print(bench.format_mesh_table(results))
    print(
        "mesh / face = crop + inference + projection; "
        + "; ".join(f"{name}: {mode.description}" for name, mode in bench.MESH_MODES.items())
    )
    if args.json:
        report = {
            "cpu": cpu,
            "machine": platform.machine(),
            "config": model.config.name,
            "photo": str(args.photo),
            "mesh": [r.record() for r in results],
        }
        args.json.write_text(json.dumps(report, indent=2))
    return 0


def _peer_pipelines(args: argparse.Namespace) -> dict:
    """YuNet at every thread count, or :class:`CommandError` when its model file is missing."""
    from facelocal.bench import PEER_BASELINE, thread_count
    from facelocal.cli import CommandError
    from facelocal.cli.common import data_path
    from facelocal.peers import yunet_pipeline

    yunet = data_path(args.yunet, DEFAULT_YUNET, "--yunet")
    try:
        return {(PEER_BASELINE, threads): yunet_pipeline(yunet, thread_count(threads)) for threads in args.threads}
    except FileNotFoundError as exc:
        raise CommandError(f"{exc} (use --yunet)") from None


def _cpu_model() -> str:
    """The CPU's model name from /proc/cpuinfo (what ``lscpu`` prints), or the platform's processor string."""
    import platform

    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"
