"""MediaPipe FaceMesh v1 (``face_landmark.tflite``) as a PyTorch module, loaded tensor by tensor from the file.

The TFLite graph is a residual MobileNet-like network on a ``192 x 192`` RGB crop: a stride-2 3x3 convolution,
then blocks ``PReLU(skip + Conv1x1(DepthwiseConv3x3(x)))`` (at stride 2 the skip is a 2x2 max-pool, zero-padded
along channels when they grow), splitting after the 6x6 stage into a mesh branch (468 x (x, y, z) in crop pixels)
and a face-presence branch (one logit). Every tensor of the file is a convolution kernel or bias or a PReLU
slope, stored as float16 and dequantised to float32 when the graph runs, so the float32 copies loaded here are
the very values TFLite computes with.

:func:`load_facemesh` parses the flatbuffer with the ``tflite`` package (export side only; the service never
imports this module) and checks the file against this layout: the set of tensor names, every shape and dtype,
the channel paddings, and the input and outputs. A file that differs in any of these is refused with a message
naming what differs.

TensorFlow's ``SAME`` padding of a stride-2 3x3 convolution on an even input pads one pixel on the bottom and
right only; :class:`DepthwiseBlock` and the stem pad explicitly so that torch computes the same windows.

PReLU is computed as ``Relu(x) - a * Relu(-x)``: identical values (``x`` for ``x >= 0``, ``a * x`` otherwise,
without rounding) and, in ONNX, plain ``Relu``/``Mul``/``Sub`` nodes, which ONNX Runtime's CPU provider runs
about four times faster than its ``PRelu`` kernel.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facelocal.facemesh import INPUT_SIZE, NUM_VERTICES, TFLITE_SHA256

INPUT_TENSOR = "input_1"
MESH_OUTPUT = "conv2d_21"
PRESENCE_OUTPUT = "conv2d_31"


class PReLU(nn.Module):
    """Per-channel PReLU as ``Relu(x) - a * Relu(-x)`` (exactly PReLU; see the module docstring)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x) - self.weight.view(1, -1, 1, 1) * torch.relu(-x)


def _same_pad_stride2(x: torch.Tensor) -> torch.Tensor:
    """TensorFlow ``SAME`` padding for a 3x3 window at stride 2 on an even-sized map: bottom and right only."""
    return F.pad(x, (0, 1, 0, 1))


@dataclass(frozen=True)
class BlockSpec:
    """One residual block, named after its TFLite layers: ``depthwise_conv2d_<d>``, ``conv2d_<c>``, ``p_re_lu_<p>``."""

    depthwise: int
    pointwise: int
    prelu: int
    channels_in: int
    channels_out: int
    stride: int = 1


class DepthwiseBlock(nn.Module):
    """``PReLU(skip + Conv1x1(DepthwiseConv3x3(x)))``; at stride 2 the skip is max-pooled and channel-padded."""

    def __init__(self, spec: BlockSpec) -> None:
        super().__init__()
        self.spec = spec
        cin, cout = spec.channels_in, spec.channels_out
        self.depthwise = nn.Conv2d(cin, cin, 3, spec.stride, 1 if spec.stride == 1 else 0, groups=cin)
        self.pointwise = nn.Conv2d(cin, cout, 1)
        self.prelu = PReLU(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.spec.stride == 1:
            return self.prelu(x + self.pointwise(self.depthwise(x)))
        branch = self.pointwise(self.depthwise(_same_pad_stride2(x)))
        skip = F.max_pool2d(x, 2, 2)
        extra = self.spec.channels_out - self.spec.channels_in
        if extra:
            skip = F.pad(skip, (0, 0, 0, 0, 0, extra))  # zeros appended along channels (TFLite PAD)
        return self.prelu(skip + branch)


# The layout of face_landmark.tflite, read off its operator list.
TRUNK = (
    BlockSpec(1, 2, 2, 16, 16),
    BlockSpec(2, 3, 3, 16, 16),
    BlockSpec(3, 4, 4, 16, 32, stride=2),
    BlockSpec(4, 5, 5, 32, 32),
    BlockSpec(5, 6, 6, 32, 32),
    BlockSpec(6, 7, 7, 32, 64, stride=2),
    BlockSpec(7, 8, 8, 64, 64),
    BlockSpec(8, 9, 9, 64, 64),
    BlockSpec(9, 10, 10, 64, 128, stride=2),
    BlockSpec(10, 11, 11, 128, 128),
    BlockSpec(11, 12, 12, 128, 128),
    BlockSpec(12, 13, 13, 128, 128, stride=2),
    BlockSpec(13, 14, 14, 128, 128),
    BlockSpec(14, 15, 15, 128, 128),
)
MESH_BLOCKS = (
    BlockSpec(15, 16, 16, 128, 128, stride=2),
    BlockSpec(16, 17, 17, 128, 128),
    BlockSpec(17, 18, 18, 128, 128),
)
MESH_REDUCE = (19, 19)  # conv2d_19 (1x1, 128 -> 32) and p_re_lu_19
MESH_TAIL = BlockSpec(18, 20, 20, 32, 32)
MESH_HEAD = 21  # conv2d_21: 3x3 VALID at stride 3 on the 3x3 map, 1404 outputs
PRESENCE_BLOCK = BlockSpec(23, 28, 26, 128, 128, stride=2)
PRESENCE_REDUCE = (29, 27)
PRESENCE_TAIL = BlockSpec(24, 30, 28, 32, 32)
PRESENCE_HEAD = 31
STEM = (1, 1)  # conv2d_1 (3x3, stride 2, 3 -> 16) and p_re_lu_1
CHANNEL_PADDINGS = {"channel_padding_1": 16, "channel_padding_2": 32, "channel_padding_3": 64}


class FaceMeshNet(nn.Module):
    """FaceMesh v1. Input ``(B, 192, 192, 3)`` float32 RGB in ``[0, 1]`` (NHWC, as the TFLite model).

    Returns ``vertices`` ``(B, 468, 3)``: x, y in crop pixels (``0..192``) and z, relative depth on the x scale,
    and ``presence_logit`` ``(B, 1)`` (sigmoid > 0.5: a face fills the crop).
    """

    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, 2, 0)
        self.stem_prelu = PReLU(16)
        self.trunk = nn.Sequential(*(DepthwiseBlock(spec) for spec in TRUNK))
        self.mesh_blocks = nn.Sequential(*(DepthwiseBlock(spec) for spec in MESH_BLOCKS))
        self.mesh_reduce = nn.Conv2d(128, 32, 1)
        self.mesh_reduce_prelu = PReLU(32)
        self.mesh_tail = DepthwiseBlock(MESH_TAIL)
        self.mesh_head = nn.Conv2d(32, NUM_VERTICES * 3, 3, 3)
        self.presence_block = DepthwiseBlock(PRESENCE_BLOCK)
        self.presence_reduce = nn.Conv2d(128, 32, 1)
        self.presence_reduce_prelu = PReLU(32)
        self.presence_tail = DepthwiseBlock(PRESENCE_TAIL)
        self.presence_head = nn.Conv2d(32, 1, 3, 3)

    def forward(self, crops: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = crops.permute(0, 3, 1, 2)
        x = self.stem_prelu(self.stem(_same_pad_stride2(x)))
        features = self.trunk(x)  # (B, 128, 6, 6)
        mesh = self.mesh_tail(self.mesh_reduce_prelu(self.mesh_reduce(self.mesh_blocks(features))))
        vertices = self.mesh_head(mesh).reshape(-1, NUM_VERTICES, 3)
        presence = self.presence_tail(self.presence_reduce_prelu(self.presence_reduce(self.presence_block(features))))
        return vertices, self.presence_head(presence).reshape(-1, 1)

    # -- where each TFLite tensor goes ---------------------------------------------------------------

    def tflite_targets(self) -> dict[str, tuple[torch.Tensor, str]]:
        """TFLite tensor name -> (the parameter it fills, its kind: ``conv``, ``depthwise``, ``bias``, ``prelu``)."""
        targets: dict[str, tuple[torch.Tensor, str]] = {}

        def kernel_and_bias(name: str, module: nn.Conv2d, kind: str) -> None:
            targets[f"{name}/Kernel"] = (module.weight, kind)
            if module.bias is None:  # every layer is built with a bias; this keeps the type exact
                raise TypeError(f"{name} has no bias")
            targets[f"{name}/Bias"] = (module.bias, "bias")

        def conv(index: int, module: nn.Conv2d) -> None:
            kernel_and_bias(f"conv2d_{index}", module, "conv")

        def depthwise(index: int, module: nn.Conv2d) -> None:
            kernel_and_bias(f"depthwise_conv2d_{index}", module, "depthwise")

        def prelu(index: int, module: PReLU) -> None:
            targets[f"p_re_lu_{index}/Alpha"] = (module.weight, "prelu")

        def block(module: DepthwiseBlock) -> None:
            depthwise(module.spec.depthwise, module.depthwise)
            conv(module.spec.pointwise, module.pointwise)
            prelu(module.spec.prelu, module.prelu)

        conv(STEM[0], self.stem)
        prelu(STEM[1], self.stem_prelu)
        for module in (*self.trunk, *self.mesh_blocks, self.mesh_tail, self.presence_block, self.presence_tail):
            block(module)
        conv(MESH_REDUCE[0], self.mesh_reduce)
        prelu(MESH_REDUCE[1], self.mesh_reduce_prelu)
        conv(MESH_HEAD, self.mesh_head)
        conv(PRESENCE_REDUCE[0], self.presence_reduce)
        prelu(PRESENCE_REDUCE[1], self.presence_reduce_prelu)
        conv(PRESENCE_HEAD, self.presence_head)
        return targets


def torch_mesh_infer(model: FaceMeshNet):
    """``model`` as a :data:`~facelocal.facemesh.MeshInfer`: uint8 crops in, numpy vertices and logits out."""
    from facelocal.facemesh import to_unit_float

    model.eval()

    def infer(crops: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.inference_mode():
            vertices, logits = model(torch.from_numpy(to_unit_float(crops)))
        return vertices.numpy(), logits.numpy()

    return infer


class FaceMeshFileError(ValueError):
    """The ``.tflite`` file is not the FaceMesh v1 model this module implements; the message says what differs."""


@dataclass(frozen=True)
class TfliteTensor:
    name: str
    shape: tuple[int, ...]
    dtype: str  # FLOAT16, FLOAT32, INT32...
    data: np.ndarray | None  # None for activations (no buffer)


def read_tflite_tensors(path: str | Path) -> tuple[dict[str, TfliteTensor], dict[str, tuple[int, ...]]]:
    """Every tensor of the first subgraph by name, and the graph's inputs and outputs (name -> shape)."""
    try:
        import tflite
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("reading .tflite files needs the tflite package: pip install -e '.[torch]'") from exc

    buffer = Path(path).read_bytes()
    try:
        model = tflite.Model.GetRootAsModel(buffer, 0)
        graph = model.Subgraphs(0)
        if model.SubgraphsLength() != 1 or graph is None:
            raise FaceMeshFileError(f"{path}: expected one subgraph, found {model.SubgraphsLength()}")
    except FaceMeshFileError:
        raise
    except Exception as exc:
        raise FaceMeshFileError(f"{path} is not a TFLite flatbuffer: {type(exc).__name__}: {exc}") from exc
    type_names = {value: name for name, value in vars(tflite.TensorType).items() if not name.startswith("_")}
    numpy_types = {"FLOAT16": np.float16, "FLOAT32": np.float32, "INT32": np.int32}
    tensors: dict[str, TfliteTensor] = {}
    for index in range(graph.TensorsLength()):
        tensor = graph.Tensors(index)
        name = tensor.Name().decode()
        shape = tuple(int(v) for v in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()
        dtype = type_names.get(tensor.Type(), str(tensor.Type()))
        raw = model.Buffers(tensor.Buffer()).DataAsNumpy() if tensor.Buffer() > 0 else 0
        data = None
        if not isinstance(raw, int) and raw.size:
            if dtype not in numpy_types:
                raise FaceMeshFileError(f"{path}: tensor {name} holds {dtype} data, which FaceMesh v1 does not use")
            data = np.frombuffer(raw.tobytes(), numpy_types[dtype]).reshape(shape)
        if name in tensors:
            raise FaceMeshFileError(f"{path}: tensor name {name} appears twice")
        tensors[name] = TfliteTensor(name, shape, dtype, data)

    def ends(indices) -> dict[str, tuple[int, ...]]:
        return {
            graph.Tensors(int(i)).Name().decode(): tuple(int(v) for v in graph.Tensors(int(i)).ShapeAsNumpy())
            for i in indices
        }

    return tensors, {**ends(graph.InputsAsNumpy()), **ends(graph.OutputsAsNumpy())}


def _to_torch_layout(array: np.ndarray, kind: str) -> np.ndarray:
    """TFLite layouts to torch's: conv ``(O, H, W, I)`` -> ``(O, I, H, W)``; depthwise ``(1, H, W, C)`` ->
    ``(C, 1, H, W)``; PReLU slopes ``(1, 1, C)`` -> ``(C,)``; biases as they are."""
    if kind == "conv":
        return array.transpose(0, 3, 1, 2)
    if kind == "depthwise":
        return array.transpose(3, 0, 1, 2)
    if kind == "prelu":
        return array.reshape(-1)
    return array


def load_facemesh(path: str | Path, check_sha256: bool = False) -> FaceMeshNet:
    """Build :class:`FaceMeshNet` and fill every parameter from ``face_landmark.tflite``.

    Every weight tensor of the file must map onto a parameter and every parameter must be filled, with the
    same element count and shape (after the layout change); the graph's input and outputs and its channel
    paddings must be the ones this module computes. Anything else raises :class:`FaceMeshFileError`.
    With ``check_sha256`` the file must also be the released one (``facelocal.facemesh.TFLITE_SHA256``).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"FaceMesh model {path} not found")
    if check_sha256:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != TFLITE_SHA256:
            raise FaceMeshFileError(
                f"{path}: sha256 {digest} is not the released face_landmark.tflite ({TFLITE_SHA256})"
            )
    tensors, ends = read_tflite_tensors(path)
    expected_ends = {
        INPUT_TENSOR: (1, INPUT_SIZE, INPUT_SIZE, 3),
        MESH_OUTPUT: (1, 1, 1, NUM_VERTICES * 3),
        PRESENCE_OUTPUT: (1, 1, 1, 1),
    }
    if ends != expected_ends:
        raise FaceMeshFileError(f"{path}: inputs/outputs are {ends}, FaceMesh v1 has {expected_ends}")

    for name, channels in CHANNEL_PADDINGS.items():
        paddings = tensors.get(f"{name}/Paddings")
        want = np.array([[0, 0], [0, 0], [0, 0], [0, channels]], np.int32)
        if paddings is None or paddings.data is None or not np.array_equal(paddings.data, want):
            got = None if paddings is None or paddings.data is None else paddings.data.tolist()
            raise FaceMeshFileError(
                f"{path}: {name}/Paddings is {got}, expected {want.tolist()} (zeros after the channels)"
            )

    model = FaceMeshNet()
    targets = model.tflite_targets()
    weights = {name: t.data for name, t in tensors.items() if t.data is not None and t.dtype in ("FLOAT16", "FLOAT32")}
    missing = sorted(set(targets) - set(weights))
    unexpected = sorted(set(weights) - set(targets))
    if missing or unexpected:
        raise FaceMeshFileError(
            f"{path}: weight tensors differ from FaceMesh v1: "
            f"missing {missing[:8]}{'...' if len(missing) > 8 else ''}, "
            f"unexpected {unexpected[:8]}{'...' if len(unexpected) > 8 else ''}"
        )
    with torch.no_grad():
        for name, (parameter, kind) in targets.items():
            array = _to_torch_layout(weights[name].astype(np.float32), kind)
            if tuple(array.shape) != tuple(parameter.shape):
                raise FaceMeshFileError(
                    f"{path}: tensor {name} has shape {weights[name].shape}, "
                    f"which does not fit {tuple(parameter.shape)}"
                )
            parameter.copy_(torch.from_numpy(np.ascontiguousarray(array)))
    return model.eval()
