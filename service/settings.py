"""Service settings, from ``FACELOCAL_*`` environment variables and ``facelocal serve`` flags."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

MIB = 1024 * 1024


class Settings(BaseSettings):
    """Everything the service needs to start; each field can be set as ``FACELOCAL_<FIELD>``."""

    model_config = SettingsConfigDict(env_prefix="FACELOCAL_", extra="ignore", protected_namespaces=())

    host: str = Field(
        "127.0.0.1", description="address REST and gRPC listen on; 0.0.0.0 for every interface (as in the containers)"
    )
    http_port: int = Field(8000, ge=0, le=65535, description="REST port")
    grpc_port: int = Field(50051, ge=0, le=65535, description="gRPC port")
    backend: Literal["onnxruntime", "openvino", "triton"] = Field(
        "openvino", description="inference backend: openvino or onnxruntime in process, or triton (README, 'Speed')"
    )
    precision: Literal["auto", "fp32", "bf16", "int8"] = Field(
        "auto",
        description="arithmetic of the in-process backends (auto: an int8 file as int8; an fp32 file on openvino as "
        "fp32, bf16 or, given int8_model_path, int8, whichever a forward timed at start-up finds fastest; GET "
        "/v1/models shows the choice); int8 needs a 'facelocal export int8' file (model_path or int8_model_path)",
    )
    model_path: Path = Field(
        Path("artifacts/model.onnx"), description="ONNX model for the onnxruntime and openvino backends"
    )
    int8_model_path: Path | None = Field(
        None,
        description="the int8 export of model_path ('facelocal export int8', make model-int8) for openvino: "
        "precision auto then times it beside fp32 and bf16, and int8 may be asked for; must exist when set; empty or "
        "'none': none",
    )
    model_name: str | None = Field(None, description="reported model name; default: read from the ONNX metadata")
    triton_url: str = Field("127.0.0.1:8001", description="Triton server address (host:port)")
    triton_protocol: Literal["grpc", "http"] = Field("grpc", description="protocol used to talk to Triton")
    triton_model: str = Field("retinaface", description="model name in the Triton repository")
    triton_shared_memory: Literal["auto", "on", "off"] = Field(
        "auto", description="pass tensors to Triton through system shared memory (auto: only on loopback)"
    )
    triton_timeout_s: float = Field(2.0, gt=0, description="per-request Triton timeout in seconds")
    canvas_size: int = Field(
        640,
        ge=32,
        description="default max_size: the long side images are resized to (never upscaled), on a canvas of their "
        "own rounded up to 32 px; a model with a fixed square canvas (Triton) letterboxes onto that instead",
    )
    max_size_limit: int = Field(
        1920,
        ge=32,
        description="largest max_size a request may ask for (long side in pixels; above it 422 max_size_too_large): "
        "inference time and canvas memory grow with its square",
    )
    max_batch_size: int = Field(8, ge=1, description="most images per backend inference")
    max_batches_in_flight: int = Field(
        0,
        ge=0,
        description="detector batches running at once (0: the backend's own: 1 in process, where the runtime uses "
        "every core on one batch; 2 on Triton, which computes one batch while the next travels)",
    )
    max_queue: int = Field(
        64,
        ge=1,
        description="images waiting for inference; with one running batch, the most in flight before 503 queue_full",
    )
    max_body_bytes: int = Field(20 * MIB, ge=1, description="largest accepted request body in bytes")
    max_body_bytes_in_flight: int = Field(
        160 * MIB,
        ge=1,
        description="request bytes held at once over all REST requests (counted from Content-Length before reading, "
        "or as a body streams in, until the answer); beyond it 503 queue_full",
    )
    body_timeout_s: float = Field(
        60.0, gt=0, description="longest a request body may take to arrive, in seconds, before 408 body_timeout"
    )
    header_timeout_s: float = Field(
        10.0,
        gt=0,
        le=30,
        description="longest a request head (request line and headers) may take to arrive, in seconds, from the "
        "connection's start or the previous response; then 408 header_timeout and the connection is closed",
    )
    max_connections: int = Field(
        512,
        ge=1,
        description="open REST connections; a connection past it is answered 503 too_many_connections and closed",
    )
    max_pixels: int = Field(40_000_000, ge=1, description="largest accepted image, in pixels (read from its header)")
    max_pixels_in_flight: int = Field(
        120_000_000,
        ge=1,
        description="decoded pixels held at once (being decoded, or kept for crops); beyond it 503 queue_full",
    )
    max_faces: int = Field(500, ge=1, description="most faces returned per image: the default and cap of max_faces")
    max_crops: int = Field(32, ge=1, description="most faces returned per image with return_crops")
    max_batch_images: int = Field(
        32, ge=1, description="most images in one batch request; beyond it 422 too_many_images"
    )
    api_key: SecretStr | None = Field(
        None, description="when set (not blank), /v1/* requires 'Authorization: Bearer <key>'; blank means no key"
    )
    intra_op_threads: int = Field(
        0, ge=0, description="ONNX Runtime or OpenVINO inference threads (0: runtime default)"
    )
    shutdown_grace_s: float = Field(10.0, ge=0, description="how long in-flight requests may take on shutdown")
    # The dense mesh stage (service/mesh.py): FaceMesh v1 on each detected face.
    mesh_model_path: Path | None = Field(
        Path("artifacts/facemesh.onnx"),
        description="FaceMesh ONNX for the openvino and onnxruntime backends ('facelocal export onnx --mesh'); the "
        "default is used when the file exists, a path set explicitly must exist; empty or 'none': no mesh",
    )
    triton_mesh_model: str = Field(
        "facemesh", description="FaceMesh model in the Triton repository for the triton backend (empty: no mesh)"
    )
    face_geometry_path: Path | None = Field(
        None,
        description="folder of MediaPipe's canonical face (canonical_face_model.obj and its .pbtxt) for return_pose "
        "and return_quality's frontalness, on any backend; unset: the folder of the FaceMesh weights the library "
        "finds ($FACELOCAL_MESH_WEIGHTS or the weights table; make serve passes the shared one); without it "
        "return_pose is answered 422 pose_unavailable",
    )
    mesh_max_faces: int = Field(
        64, ge=1, description="most faces per image that get a mesh (best scores first); the rest are flagged"
    )
    mesh_max_batch_size: int = Field(32, ge=1, description="most face crops per mesh inference")
    mesh_max_queue: int = Field(512, ge=1, description="face crops waiting for mesh inference before 503 queue_full")
    mesh_threads: int = Field(
        0, ge=0, description="threads the in-process mesh backend spreads a batch's crops over (0: every core)"
    )

    @field_validator("mesh_model_path", "int8_model_path", mode="before")
    @classmethod
    def _no_file(cls, value):
        return None if isinstance(value, (str, Path)) and str(value).strip().lower() in ("", "none") else value

    @field_validator("api_key")
    @classmethod
    def _blank_key_is_no_key(cls, key: SecretStr | None) -> SecretStr | None:
        # FACELOCAL_API_KEY= (as compose files write an optional variable) must not be a key nobody can send.
        return key if key is not None and key.get_secret_value().strip() else None

    @model_validator(mode="after")
    def _default_size_within_the_limit(self) -> Settings:
        if self.canvas_size > self.max_size_limit:
            raise ValueError(f"canvas_size ({self.canvas_size}) must not exceed max_size_limit ({self.max_size_limit})")
        return self

    @model_validator(mode="after")
    def _one_body_fits_the_body_budget(self) -> Settings:
        if self.max_body_bytes > self.max_body_bytes_in_flight:
            raise ValueError(
                f"max_body_bytes ({self.max_body_bytes}) must not exceed max_body_bytes_in_flight "
                f"({self.max_body_bytes_in_flight})"
            )
        return self

    @model_validator(mode="after")
    def _one_image_fits_the_pixel_budget(self) -> Settings:
        if self.max_pixels > self.max_pixels_in_flight:
            raise ValueError(
                f"max_pixels ({self.max_pixels}) must not exceed max_pixels_in_flight ({self.max_pixels_in_flight})"
            )
        return self
