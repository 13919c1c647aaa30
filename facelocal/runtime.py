"""Forward functions: the decoded network as numpy in, numpy out, on ONNX Runtime, OpenVINO or torch.

A forward maps a ``(B, 3, H, W)`` uint8 BGR canvas batch (:mod:`facelocal.contract`) to ``boxes (B, K, 4)``,
``scores (B, K)`` and ``landmarks (B, K, 10)`` in canvas pixels. The ONNX Runtime and OpenVINO halves
import no torch.
"""

from __future__ import annotations

import logging
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np

from facelocal.contract import OUTPUT_NAMES, PRECISION_KEY

Forward = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]

RUNTIMES = ("onnxruntime", "openvino")
# fp32 and int8 name what the file stores (``facelocal.precision`` in its metadata); bf16 runs an fp32 file
# with bfloat16 arithmetic, which only OpenVINO does on a CPU (natively where the CPU has AMX or AVX512-BF16).
PRECISIONS = ("fp32", "bf16", "int8")


def onnxruntime_session(model_path: str | Path, threads: int = 0):
    """A CPU session with full graph optimisation and ``threads`` intra-op threads (0: the runtime's choice),
    whose idle threads sleep rather than spin: spinning takes the cores from the service's decoding threads and
    from whatever else runs beside it (README, "Speed")."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])


def model_metadata(model_path: str | Path) -> dict[str, str]:
    """The ``facelocal.*`` entries an export wrote into the file (config, dense, top_k, precision).

    Read through an unoptimised ONNX Runtime session, the one reader of ONNX metadata a serving install has
    (OpenVINO does not expose it); a few tens of milliseconds.
    """
    return _metadata_and_canvas(model_path)[0]


def _metadata_and_canvas(model_path: str | Path) -> tuple[dict[str, str], tuple[int | str | None, ...]]:
    """:func:`model_metadata` and the input's ``(H, W)`` dimensions (an int where fixed, a name where not)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    return dict(session.get_modelmeta().custom_metadata_map), tuple(session.get_inputs()[0].shape[2:])


def openvino_native_bf16() -> bool:
    """Whether OpenVINO computes bf16 natively on this CPU (AMX or AVX512-BF16): its own default precision is
    bf16 exactly then. Elsewhere it simulates bf16, much slower than fp32 (README, "Speed")."""
    import openvino as ov

    return ov.Core().get_property("CPU", "INFERENCE_PRECISION_HINT") == ov.Type.bf16


def precision_candidates(runtime: str, stored: str, int8_file: bool = False) -> tuple[str, ...]:
    """What ``auto`` may run a file that stores ``stored`` at on ``runtime``: each holds the accuracy gate (within
    0.5 AP of fp32 on the WIDER val sample; README, "Speed"). An int8 file runs only as int8; an fp32 file as fp32
    or, on OpenVINO, bf16, or int8 when its quantised export is given too (``int8_file``; the gate was measured on
    OpenVINO, so there only)."""
    if stored == "int8":
        return ("int8",)
    if runtime != "openvino":
        return ("fp32",)
    return ("fp32", "bf16", "int8") if int8_file else ("fp32", "bf16")


# (candidates) -> milliseconds a forward takes at each, measured by the caller (see :func:`load_exported`).
PrecisionTimer = Callable[[Sequence[str]], dict[str, float]]


def resolve_precision(
    runtime: str, requested: str | None, stored: str, timer: PrecisionTimer | None = None, int8_file: bool = False
) -> str:
    """The precision to run a file that stores ``stored`` (fp32 or int8) with, or ``ValueError`` if it cannot be
    honoured.

    ``None`` asks for what the file stores; ``auto`` for the fastest of :func:`precision_candidates`: by
    ``timer``'s measurement where there is a choice, or without one by the CPU's features (bf16 on OpenVINO where
    the CPU computes it natively, else fp32). int8 needs a quantised file (``facelocal export int8``: the file
    itself, or beside an fp32 one, ``int8_file``), and a quantised file runs only as int8; bf16 needs OpenVINO.
    """
    if requested == "auto":
        candidates = precision_candidates(runtime, stored, int8_file)
        if len(candidates) == 1:
            requested = candidates[0]
        elif timer is not None:
            timings = timer(candidates)
            requested = min(candidates, key=timings.__getitem__)
        else:
            requested = "bf16" if openvino_native_bf16() else "fp32"
    precision = requested or stored
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}: use auto or one of {', '.join(PRECISIONS)}")
    if (precision == "int8") != (stored == "int8") and not (precision == "int8" and int8_file):
        raise ValueError(
            f"the model file stores {stored} weights and cannot run as {precision}: "
            + ("quantise it with 'facelocal export int8'" if precision == "int8" else "use an fp32 export")
        )
    if precision == "bf16" and runtime != "openvino":
        raise ValueError("bf16 runs on the openvino runtime only")
    return precision


def time_forwards(forwards: dict[str, Forward], shape: tuple[int, ...], runs: int = 7) -> dict[str, float]:
    """Median milliseconds of each forward on a ``shape`` uint8 batch, measured in turns (so that drift on a
    shared machine hits them alike) after warm-up calls (OpenVINO compiles a model for a shape it sees again)."""
    batch = np.zeros(shape, np.uint8)
    for forward in forwards.values():
        for _ in range(OpenVinoForward.SPECIALISE_AFTER + 1):
            forward(batch)
    times: dict[str, list[float]] = {name: [] for name in forwards}
    for _ in range(runs):
        for name, forward in forwards.items():
            started = time.perf_counter()
            forward(batch)
            times[name].append((time.perf_counter() - started) * 1000.0)
    return {name: float(np.median(values)) for name, values in times.items()}


def onnxruntime_forward(model_path: str | Path, threads: int = 0) -> Forward:
    """The exported model (``facelocal export onnx``) on ONNX Runtime."""
    session = onnxruntime_session(model_path, threads)
    input_name = session.get_inputs()[0].name

    def forward(batch: np.ndarray):
        return tuple(session.run(None, {input_name: batch}))

    return forward


def openvino_config(threads: int = 0, precision: str = "fp32") -> dict:
    """OpenVINO CPU plugin settings: one stream tuned for latency, ``threads`` inference threads (0: the runtime's
    choice), the arithmetic precision, and threads left unpinned.

    Threads are left unpinned because OpenVINO pins each compiled model's threads from the first core up, so two
    single-threaded models (the mesh stage's workers) would share one core while another idles, and the detector's
    threads could not leave a core the service's decoding threads are using (figures in the README, "Cost per
    face").

    The precision is always set because OpenVINO's default on CPUs with bfloat16 support is bf16, which is not the
    fp32 the name promises. An int8 file's quantised layers run in int8 whatever the hint; its unquantised ones
    (kept in fp32 on purpose) stay fp32.
    """
    config = {
        "PERFORMANCE_HINT": "LATENCY",
        "NUM_STREAMS": 1,
        "INFERENCE_PRECISION_HINT": "bf16" if precision == "bf16" else "f32",
        "ENABLE_CPU_PINNING": False,
    }
    if threads:
        config["INFERENCE_NUM_THREADS"] = threads
    return config


class OpenVinoForward:
    """The exported model on OpenVINO's CPU plugin (:func:`openvino_config`), as a :data:`Forward`.

    A model compiled for one input shape runs faster than the shape-free one, but compiling one takes time and
    memory that grows with its pixels (README, "Speed"). So a ``(B, 3, H, W)`` shape gets its own compiled model
    the ``SPECIALISE_AFTER``-th time it is seen, while fewer than ``MAX_SPECIALISED`` shapes of at most
    ``MAX_SPECIALISED_PIXELS`` B*H*W in all have one (a server's canvases at every batch size, a benchmark's
    frames); other shapes, such as a folder of photos of every size, run the shape-free model. One caller at a
    time; outputs are copies, safe to keep across calls.

    ``compile_in_background`` (the service's choice): the compile runs in a thread of its own while the call, and
    every call of that shape until the compiled model is ready, runs the shape-free model, so no request waits for
    a compile. Off, the call that decides to compile waits for it (the library's benchmarks, which want the
    compiled model's time at once).
    """

    SPECIALISE_AFTER = 2
    MAX_SPECIALISED = 16
    # Batches of 1 to 8 on a 640 x 640 canvas are 14.7 M pixels (about 700 MB); a 4K frame is 8.8 M.
    MAX_SPECIALISED_PIXELS = 16_000_000

    def __init__(
        self,
        model_path: str | Path,
        threads: int = 0,
        precision: str = "fp32",
        output_names: Sequence[str] = OUTPUT_NAMES,
        compile_in_background: bool = False,
    ) -> None:
        import openvino as ov

        self._core = ov.Core()
        self._model = self._core.read_model(str(model_path))
        self._config = openvino_config(threads, precision)
        self._output_names = tuple(output_names)
        self._dynamic = self._compile(self._model)
        self._seen: Counter[tuple[int, ...]] = Counter()
        self._specialised: dict[tuple[int, ...], Forward] = {}
        # Shapes whose compile has been decided and is not done (or failed: then they stay shape-free).
        self._pending: set[tuple[int, ...]] = set()
        self.compile_in_background = compile_in_background
        self._compiler: ThreadPoolExecutor | None = None

    @property
    def input_shape(self):
        """The model's input ``PartialShape``: ``[?, 3, ?, ?]``, or with a fixed canvas ``[?, 3, S, S]``."""
        return self._model.input(0).get_partial_shape()

    @property
    def specialised_shapes(self) -> list[tuple[int, ...]]:
        return list(self._specialised)

    def wait_for_compiles(self) -> None:
        """Until every background compile decided so far has finished."""
        if self._compiler is not None:
            self._compiler.submit(lambda: None).result()

    def _compile(self, model) -> Forward:
        compiled = self._core.compile_model(model, "CPU", self._config)
        request = compiled.create_infer_request()
        outputs = [compiled.output(name) for name in self._output_names]

        def forward(batch: np.ndarray):
            # The input is only read during the call, so OpenVINO may use it in place.
            results = request.infer({0: batch}, share_inputs=True)
            return tuple(results[output] for output in outputs)

        return forward

    def _room_for(self, shape: tuple[int, ...]) -> bool:
        held = [*self._specialised, *self._pending]
        return (
            len(held) < self.MAX_SPECIALISED
            and sum(map(_batch_pixels, held)) + _batch_pixels(shape) <= self.MAX_SPECIALISED_PIXELS
        )

    def _specialise(self, shape: tuple[int, ...]) -> Forward:
        model = self._model.clone()
        model.reshape(list(shape))
        forward = self._specialised[shape] = self._compile(model)
        self._pending.discard(shape)
        return forward

    def _specialise_quietly(self, shape: tuple[int, ...]) -> None:
        try:
            self._specialise(shape)
        except Exception as exc:  # e.g. out of memory: the shape keeps the shape-free model
            logging.getLogger(__name__).warning("OpenVINO could not compile a model for %s: %s", shape, exc)

    def __call__(self, batch: np.ndarray) -> tuple[np.ndarray, ...]:
        shape = batch.shape
        forward = self._specialised.get(shape)
        if forward is None:
            self._seen[shape] += 1
            if self._seen[shape] < self.SPECIALISE_AFTER or shape in self._pending or not self._room_for(shape):
                return self._dynamic(batch)
            self._pending.add(shape)
            if self.compile_in_background:
                if self._compiler is None:
                    self._compiler = ThreadPoolExecutor(max_workers=1, thread_name_prefix="openvino-compile")
                self._compiler.submit(self._specialise_quietly, shape)
                return self._dynamic(batch)
            forward = self._specialise(shape)
        return forward(batch)


def _batch_pixels(shape: tuple[int, ...]) -> int:
    """B*H*W of a ``(B, 3, H, W)`` or ``(B, H, W, 3)`` shape."""
    return math.prod(shape) // 3


@dataclass
class ExportedModel:
    """An exported file loaded on a runtime: its :data:`Forward` and what the file says about itself.

    Attributes:
        forward: the detector's forward (with the default output names).
        runtime: ``onnxruntime`` or ``openvino``.
        precision: the arithmetic it runs at (:func:`resolve_precision`).
        metadata: the export's ``facelocal.*`` entries (:func:`model_metadata`).
        fixed_canvas: the square canvas side the graph requires, or None when any size runs.
        precision_ms: with ``auto`` and a choice, each candidate's measured forward time (ms); else empty.
    """

    forward: Forward
    runtime: str
    precision: str
    metadata: dict[str, str]
    fixed_canvas: int | None
    precision_ms: dict[str, float] = field(default_factory=dict)


# The canvas ``auto`` times the candidate precisions on: a VGA photo's, the commonest a server sees.
AUTO_TIMING_CANVAS = (480, 640)


def load_exported(
    model_path: str | Path,
    runtime: str = "onnxruntime",
    threads: int = 0,
    precision: str | None = None,
    compile_in_background: bool = False,
    int8_path: str | Path | None = None,
) -> ExportedModel:
    """An exported file on ``runtime`` at ``precision`` (None: as stored), checked by :func:`resolve_precision`.

    ``auto`` with a choice (an fp32 file on OpenVINO: fp32 or bf16, and int8 from ``int8_path``, the same weights'
    ``facelocal export int8``) compiles each candidate and times a forward of each on the model's canvas
    (:data:`AUTO_TIMING_CANVAS` where any size runs), in turns, then keeps the fastest: about a second at start-up,
    and the right answer on CPUs whose features do not tell (AVX512-BF16 without AMX, or VNNI without bf16, say).
    ``compile_in_background``: see :class:`OpenVinoForward` (set after the timing, which wants the compiled models
    at once)."""
    if runtime not in RUNTIMES:
        raise ValueError(f"unknown runtime {runtime!r}: use one of {', '.join(RUNTIMES)}")
    metadata, (height, width) = _metadata_and_canvas(model_path)
    fixed = height if isinstance(height, int) and height == width else None
    stored = metadata.get(PRECISION_KEY, "fp32")
    if int8_path is not None:
        _check_int8_file(int8_path, metadata, (height, width))
    forwards: dict[str, Forward] = {}

    def build(precision: str) -> Forward:
        if precision not in forwards:
            path = int8_path if precision == "int8" and stored != "int8" and int8_path is not None else model_path
            # With the default output names OpenVINO returns the detector's three outputs.
            forwards[precision] = (
                cast(Forward, OpenVinoForward(path, threads, precision))
                if runtime == "openvino"
                else onnxruntime_forward(path, threads)
            )
        return forwards[precision]

    timings: dict[str, float] = {}

    def timer(candidates: Sequence[str]) -> dict[str, float]:
        canvas = (fixed, fixed) if fixed else AUTO_TIMING_CANVAS
        timings.update(time_forwards({name: build(name) for name in candidates}, (1, 3, *canvas)))
        return timings

    precision = resolve_precision(runtime, precision, stored, timer, int8_file=int8_path is not None)
    forward = build(precision)
    if isinstance(forward, OpenVinoForward):
        forward.compile_in_background = compile_in_background
    return ExportedModel(forward, runtime, precision, metadata, fixed, timings)


def _check_int8_file(path: str | Path, metadata: dict[str, str], canvas: tuple[int | str | None, ...]) -> None:
    """``ValueError`` unless ``path`` is the int8 export (``facelocal export int8``) of the model whose metadata and
    input dimensions are given, as far as the files tell (the same metadata but the precision, the same canvas):
    auto would otherwise time, and may serve, another network."""
    int8_metadata, int8_canvas = _metadata_and_canvas(path)
    if int8_metadata.get(PRECISION_KEY) != "int8":
        raise ValueError(f"{path} is not a quantised file: make it with 'facelocal export int8'")
    for key in sorted((set(metadata) | set(int8_metadata)) - {PRECISION_KEY}):
        if int8_metadata.get(key) != metadata.get(key):
            raise ValueError(f"{path} is not the int8 export of the served model ({key} differs)")
    if int8_canvas != canvas:
        raise ValueError(f"{path} takes a {int8_canvas} canvas, the served model {canvas}")


def exported_forward(
    model_path: str | Path, runtime: str = "onnxruntime", threads: int = 0, precision: str | None = None
) -> Forward:
    """The forward of :func:`load_exported`."""
    return load_exported(model_path, runtime, threads, precision).forward


def torch_forward(network, threads: int | None = None) -> Forward:
    """Torch eager on ``network`` (a ``DecodedRetinaFace``), with ``threads`` intra-op threads if given."""
    import torch

    network.eval()

    def forward(batch: np.ndarray):
        if threads is not None:
            torch.set_num_threads(threads)
        with torch.inference_mode():
            return tuple(t.numpy() for t in network(torch.from_numpy(batch)))

    return forward
