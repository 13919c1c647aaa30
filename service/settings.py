"""Service settings, from ``FACELOCAL_*`` environment variables and ``facelocal serve`` flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Everything the service needs to start; each field can be set as ``FACELOCAL_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="FACELOCAL_", extra="ignore", protected_namespaces=())

    host: str = Field("0.0.0.0", description="address REST and gRPC listen on")
    http_port: int = Field(8000, ge=0, le=65535, description="REST port")
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port")
    backend: Literal["onnxruntime", "openvino", "triton"] = Field(
        "openvino", description="inference backend: openvino or onnxruntime in process, or triton (README, 'Speed')"
    )
    precision: Literal["auto", "fp32", "bf16", "int8"] = Field(
        "auto",
        description="arithmetic of the in-process backends (auto: an int8 file as int8, an fp32 file as bf16 on "
        "openvino where the CPU computes bf16 natively, else fp32); int8 needs a 'facelocal export int8' file",
    )
    model_path: Path = Field(Path("artifacts/model.onnx"), description="ONNX model for the onnxruntime and openvino backends")
    model_name: str | None = Field(None, description="reported model name; default: read from the ONNX metadata")
    triton_url: str = Field("127.0.0.1:8001", description="Triton server address (host:port)")
    triton_protocol: Literal["grpc", "http"] = Field("grpc", description="protocol used to talk to Triton")
    triton_model: str = Field("retinaface", description="model name in the Triton repository")
    triton_shared_memory: Literal["auto", "on", "off"] = Field(
        "auto", description="pass tensors to Triton through system shared memory (auto: only on loopback)"
    )
    triton_timeout_s: float = Field(2.0, gt=0, description="per-request Triton timeout in seconds")
    canvas_size: int = Field(640, ge=32, description="square canvas images are letterboxed onto (never upscaled)")
    max_batch_size: int = Field(8, ge=1, description="most images per backend inference")
    max_delay_ms: float = Field(5.0, ge=0, description="longest wait for a batch to fill, in milliseconds")
    max_queue: int = Field(64, ge=1, description="images waiting for inference; with one running batch, the most in flight before 503 queue_full")
    max_body_bytes: int = Field(20 * MIB, ge=1, description="largest accepted request body in bytes")
    max_pixels: int = Field(40_000_000, ge=1, description="largest accepted decoded image, in pixels")
    api_key: SecretStr | None = Field(None, description="when set, /v1/* requires 'Authorization: Bearer <key>'")
    intra_op_threads: int = Field(0, ge=0, description="ONNX Runtime or OpenVINO inference threads (0: runtime default)")
    shutdown_grace_s: float = Field(10.0, ge=0, description="how long in-flight requests may take on shutdown")
