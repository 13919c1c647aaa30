"""Request and response models shared by the core, REST (and its OpenAPI schema) and gRPC."""

from __future__ import annotations

import base64
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema

from facelocal.anonymize import (
    ANONYMIZE_MAX_SIZE,
    ANONYMIZE_SCORE_THRESHOLD,
    ANONYMIZE_TTA,
    ELLIPSE_GROWTH,
    OVAL_GROWTH,
    AnonymizeMode,
)
from facelocal.config import SERVE_POSTPROCESS
from facelocal.facemesh import CONFIDENT_PRESENCE, MESH_MIN_FACE
from facelocal.pose import POSE_MESH_REFINE
from facelocal.quality import DEFAULT_THRESHOLDS
from facelocal.tta import VOTE_IOU, SmallFaceZoom, TTAMode, TTAPlan
from facelocal.tta_ops import MultiScalePlan

# The library's plans, whose numbers the tta option's description states.
_SCALES, _ZOOM = MultiScalePlan(), SmallFaceZoom()


def _base64_text(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# The core and gRPC hold a crop as PNG bytes; only JSON (REST) carries it as standard base64 text.
Base64PNG = Annotated[
    bytes,
    PlainSerializer(_base64_text, return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "contentEncoding": "base64", "contentMediaType": "image/png"}),
]


NmsThreshold = Annotated[float, Field(ge=0.0, le=1.0, description="IoU above which overlapping boxes are merged (NMS)")]
MaxSize = Annotated[
    int | None,
    Field(
        ge=32,
        description="long side in pixels the image is resized to (never upscaled) before detection, on a canvas "
        "of its own rounded up to 32 px: larger keeps more small faces and costs about (max_size/640)^2 the "
        "inference time; default: the server's canvas_size (GET /v1/models: canvas_size); at most the server's "
        "max_size_limit (above it 422 max_size_too_large); a fixed-canvas model (Triton) letterboxes onto its "
        "square canvas, which is then also the limit",
    ),
]
ImageBase64 = Annotated[str, Field(min_length=1, description="the image file (JPEG, PNG, WebP or BMP), base64-encoded")]


class DetectOptions(BaseModel):
    """Per-request detection options (REST query or JSON fields, gRPC request fields)."""

    model_config = ConfigDict(extra="forbid")

    score_threshold: float = Field(
        SERVE_POSTPROCESS.score_threshold, ge=0.0, le=1.0, description="keep faces scoring above this probability"
    )
    nms_threshold: NmsThreshold = SERVE_POSTPROCESS.nms_threshold
    max_faces: int | None = Field(
        None,
        ge=1,
        description="return at most this many faces, highest scores first; capped by the server's max_faces "
        "(also the default here) or, with return_crops, its max_crops; the result's truncated flag says whether "
        "faces were left out",
    )
    min_face_size: float = Field(
        0.0, ge=0.0, description="drop faces whose shorter box side is below this many original-image pixels"
    )
    return_landmarks: bool = Field(True, description="include the five landmarks of each face")
    return_crops: bool = Field(False, description="include a 112x112 ArcFace-aligned crop per face (base64 PNG)")
    return_mesh: bool = Field(
        False,
        description="include FaceMesh's 468 3D vertices and presence score for each face at least mesh_min_face "
        "px; valid only when GET /v1/models lists the mesh model (422 mesh_unavailable otherwise, and this server's "
        "schema then allows only false); at most the server's mesh_max_faces faces per image (best scores "
        "first) get one, the image then says mesh_truncated",
    )
    landmarks: Literal["detector", "mesh"] = Field(
        "detector",
        description="where the five landmarks (and the return_crops alignment) come from: 'detector' (RetinaFace's "
        "own) or 'mesh' (FaceMesh's: eye-contour centres, vertex 4, mouth corners 61 and 291; NME 1.94 % against "
        "2.82 % on 300-W Helen); with 'mesh' a face too small for a mesh (mesh_min_face) keeps RetinaFace's points "
        "and each face says landmarks_source; 'mesh' needs the mesh model (422 mesh_unavailable otherwise)",
    )
    return_pose: bool = Field(
        False,
        description="include each meshed face's head pose (pose: pitch, yaw, roll in degrees, AFLW2000-3D's "
        f"Pose_Para convention) for faces whose mesh presence is at least {CONFIDENT_PRESENCE}; the mesh is then "
        f"cropped again from itself ({POSE_MESH_REFINE} more mesh inference a face, as 'facelocal eval pose' "
        "measures it, 4.2 degrees MAE on AFLW2000-3D); needs the mesh model (422 mesh_unavailable otherwise)",
    )
    return_quality: bool = Field(
        False,
        description="include each face's quality figures (quality: sharpness, brightness, exposure, eye distance, "
        "frontalness, has_mesh, usable); works without the mesh model (then frontalness is absent, has_mesh false "
        "and usable judged on the other figures); with it, every face at least mesh_min_face px is meshed and "
        "posed (as with return_pose) for frontalness",
    )
    mesh_min_face: float = Field(
        MESH_MIN_FACE,
        ge=0.0,
        description="with return_mesh, landmarks=mesh, return_pose or return_quality: faces whose longer box side "
        "is below this many pixels get no mesh (mesh_skipped: face_too_small)",
    )
    max_size: MaxSize = None
    tta: TTAMode = Field(
        "none",
        description=f"test-time augmentation, voted together at IoU {VOTE_IOU}: 'flip' adds the mirrored image "
        "(about 2x the inference work); 'multiscale' adds the image resized so that its short side is "
        f"{', '.join(map(str, _SCALES.short_sides))} px (long side at most {_SCALES.max_long_side}, at most "
        f"{_SCALES.max_upscale:g}x up), keeping only the sizes whose long side is at most max_size - larger ones "
        "are skipped, not tiled, so at the default canvas most photos get no extra scale (raise max_size for "
        "them); each runs on a canvas of its size; 'flip,multiscale' mirrors every view; 'auto' runs the image "
        f"and its mirror, then both again at {_ZOOM.factor:g}x only if the image shows a face under "
        f"{_ZOOM.small_side:g} px scoring {_ZOOM.min_score:g} or more and the enlarged image's long side is at "
        "most max_size (else auto is flip). With a mirror, a voted face scores the mean of the view's and its "
        "mirror's scores (a face one of them missed scores half), so score_threshold keeps about the precision "
        "it has without tta. Timings report the slowest view",
    )

    @property
    def tta_plan(self) -> TTAPlan:
        return TTAPlan.parse(self.tta)


class Pose(BaseModel):
    """A head pose in degrees, in AFLW2000-3D's Pose_Para convention (rotation Rx(-pitch) Ry(-yaw) Rz(-roll)),
    as the photo is seen; all 0 for an upright face looking at the camera."""

    pitch: float = Field(..., description="degrees, positive when the chin goes up; -90 to 90")
    yaw: float = Field(
        ...,
        description="degrees, positive when the face turns towards the image's left (the subject's right); -90 to 90",
    )
    roll: float = Field(
        ...,
        description="degrees, positive when the face turns clockwise in the image (its right-hand eye lower); "
        "-180 to 180",
    )


_T = DEFAULT_THRESHOLDS


class Quality(BaseModel):
    """How fit a face is for recognition, on a 112x112 crop of its box turned so the eyes are level, in grey
    levels 0-1 (README, "Face quality")."""

    sharpness: float = Field(
        ...,
        description="variance of the crop's 3x3 Laplacian over its variance (detail, independent of light): >= 0; "
        "sharp faces 0.16-0.31, a 1 px blur brings them under 0.035",
    )
    brightness: float = Field(..., description="mean grey level of the crop, 0-1")
    underexposed: float = Field(..., description="share of the crop's pixels at or below 0.05, 0-1")
    overexposed: float = Field(..., description="share of the crop's pixels at or above 0.95, 0-1")
    inter_ocular: float = Field(..., description="distance between the two eye landmarks, image pixels (>= 0)")
    frontalness: float | None = Field(
        None, description="1 - max(|yaw|, |pitch|) / 90, 0-1 (1: facing the camera); absent for a face without a pose"
    )
    has_mesh: bool = Field(..., description="whether the face got a FaceMesh mesh")
    usable: bool = Field(
        ...,
        description=f"inter_ocular >= {_T.min_inter_ocular:g}, sharpness >= {_T.min_sharpness:g}, "
        f"{_T.min_brightness:g} <= brightness <= {_T.max_brightness:g}, under/overexposed <= {_T.max_clipped:g}, "
        f"and frontalness >= {_T.min_frontalness:g} where known",
    )


class Face(BaseModel):
    """One detected face, in original-image pixels after EXIF orientation."""

    box: list[float] = Field(..., min_length=4, max_length=4, description="[x1, y1, x2, y2] in image pixels")
    score: float = Field(..., ge=0.0, le=1.0, description="face probability")
    landmarks: list[list[float]] | None = Field(
        None,
        description="five [x, y] points: left eye, right eye, nose, left and right mouth corner "
        "(absent when return_landmarks is false)",
    )
    crop: Base64PNG | None = Field(
        None, description="112x112 ArcFace-aligned face as base64 PNG (only with return_crops)"
    )
    mesh: list[list[float]] | None = Field(
        None,
        description="468 [x, y, z] FaceMesh vertices in image pixels, z the relative depth on the same scale "
        "(negative towards the camera), in the canonical FaceMesh vertex order (only with return_mesh)",
    )
    mesh_score: float | None = Field(
        None, description="FaceMesh presence probability: above 0.5, the mesh model sees a face (with the mesh)"
    )
    mesh_skipped: str | None = Field(
        None,
        description="with return_mesh, why this face has no mesh: face_too_small (under mesh_min_face) or "
        "mesh_limit (beyond the server's mesh_max_faces per image)",
    )
    landmarks_source: Literal["detector", "mesh"] | None = Field(
        None, description="where this face's landmarks came from (with the landmarks): detector or mesh"
    )
    pose: Pose | None = Field(None, description="with return_pose: the head pose (absent for a face without one)")
    quality: Quality | None = Field(None, description="with return_quality: the quality figures")


class Timings(BaseModel):
    """Where the time of one image went, in milliseconds."""

    decode: float = Field(..., description="decoding and letterboxing the image")
    queue: float = Field(..., description="waiting in the micro-batcher queue")
    inference: float = Field(..., description="the batched backend inference this image was part of")
    postprocess: float = Field(..., description="thresholds, NMS, mapping to image pixels, crops")
    mesh: float | None = Field(
        None,
        description="the mesh stage: crops, waiting for and running the batched mesh inference, pose and quality "
        "(when one of return_mesh, landmarks=mesh, return_pose, return_quality ran it)",
    )


class ImageResult(BaseModel):
    """Faces found in one image."""

    width: int = Field(..., description="image width in pixels, after EXIF orientation")
    height: int = Field(..., description="image height in pixels, after EXIF orientation")
    model: str = Field(..., description="name of the model that produced the faces")
    faces: list[Face] = Field(..., description="faces by descending score")
    truncated: bool = Field(
        False, description="true when more faces passed the thresholds than max_faces (or the server's cap) let through"
    )
    timings_ms: Timings = Field(..., description="per-stage timings in milliseconds")
    mesh_truncated: bool | None = Field(
        None, description="with return_mesh: true when faces beyond mesh_max_faces were left without a mesh"
    )


class ErrorBody(BaseModel):
    code: str = Field(..., description="stable machine-readable error code, e.g. corrupt_image, queue_full")
    message: str = Field(..., description="human-readable explanation")


class ErrorResponse(BaseModel):
    """Every error the service returns has this shape."""

    error: ErrorBody


class BatchResponse(BaseModel):
    """One entry per input image, in input order: its result, or its own error."""

    results: list[ImageResult | ErrorResponse] = Field(
        ..., description="per image: an ImageResult, or {error: {code, message}} if that image failed"
    )


class DetectJSONRequest(DetectOptions):
    """``POST /v1/detect`` with a JSON body: a base64 image plus options."""

    image: ImageBase64


class BatchJSONRequest(DetectOptions):
    """``POST /v1/detect/batch`` with a JSON body: base64 images plus options applied to all of them."""

    images: list[str] = Field(
        ..., min_length=1, description="image files, each base64-encoded; at most the server's max_batch_images"
    )


class AnonymizeOptions(BaseModel):
    """Options of ``POST /v1/anonymize`` (REST query or JSON fields, gRPC AnonymizeOptions)."""

    model_config = ConfigDict(extra="forbid")

    mode: AnonymizeMode = Field("blur", description="blur (Gaussian, sigma 12 % of the region) or pixelate (8 blocks)")
    score_threshold: float = Field(
        ANONYMIZE_SCORE_THRESHOLD,
        ge=0.0,
        le=1.0,
        description="cover faces scoring above this probability (a high-recall default, below /v1/detect's)",
    )
    nms_threshold: NmsThreshold = SERVE_POSTPROCESS.nms_threshold
    tta: TTAMode = Field(ANONYMIZE_TTA, description="test-time augmentation, as /v1/detect's tta (default: auto)")
    max_size: MaxSize = Field(
        None,
        description=f"long side in pixels the image is resized to (never upscaled) before detection; default: "
        f"{ANONYMIZE_MAX_SIZE}, or the server's max_size_limit (GET /v1/models) if lower, so most photos are searched "
        "at their own resolution, since a face missed is a face left uncovered (at /v1/detect's canvas_size a WIDER "
        "FACE photo loses its small faces); above the limit 422 max_size_too_large",
    )
    return_regions: bool = Field(
        False,
        description="answer JSON (AnonymizeResult: the image as base64 and each face's region) instead of the bare "
        "image",
    )

    def detect_options(self, max_size_limit: int) -> DetectOptions:
        """The detection this anonymisation runs on a server whose largest ``max_size`` is ``max_size_limit``."""
        return DetectOptions(
            score_threshold=self.score_threshold,
            nms_threshold=self.nms_threshold,
            tta=self.tta,
            max_size=self.max_size or min(ANONYMIZE_MAX_SIZE, max_size_limit),
        )


class AnonymizeJSONRequest(AnonymizeOptions):
    """``POST /v1/anonymize`` with a JSON body: a base64 image plus options."""

    image: ImageBase64


class FaceRegion(BaseModel):
    """The region one face was covered on."""

    kind: Literal["mesh", "ellipse"] = Field(
        ...,
        description=f"ellipse: about the box, its semi-axes the box's half sides times {ELLIPSE_GROWTH:g}; mesh (a "
        f"face with a confident mesh): the convex hull of that ellipse and FaceMesh's face oval grown "
        f"{OVAL_GROWTH:g}x",
    )
    box: list[float] = Field(..., min_length=4, max_length=4, description="the face's [x1, y1, x2, y2]")
    score: float = Field(..., ge=0.0, le=1.0, description="face probability")
    polygon: list[list[float]] = Field(..., description="[x, y] vertices of the covered region, image pixels")


class AnonymizeResult(BaseModel):
    """``POST /v1/anonymize`` with ``return_regions=true``."""

    width: int = Field(..., description="image width in pixels, after EXIF orientation")
    height: int = Field(..., description="image height in pixels, after EXIF orientation")
    media_type: str = Field(..., description="the image's media type: the input's (image/jpeg, image/png, ...)")
    image: str = Field(..., description="the anonymised image, base64", json_schema_extra={"contentEncoding": "base64"})
    regions: list[FaceRegion] = Field(..., description="one per covered face, by descending score")
    truncated: bool = Field(
        False, description="true when more faces were found than the server's max_faces: those were not covered"
    )


class ModelInfo(BaseModel):
    """The model the service runs."""

    name: str = Field(..., description="model name, e.g. mobilenet0.25, facemesh")
    role: str = Field("detector", description="detector (faces, boxes, landmarks) or mesh (return_mesh vertices)")
    backend: str = Field(..., description="inference backend: openvino, onnxruntime or triton")
    has_dense: bool = Field(..., description="whether return_mesh is available")
    canvas_size: int = Field(
        ...,
        description="the default max_size: long side images are resized to (a fixed-canvas model: its square "
        "canvas; mesh: the crop side)",
    )
    max_batch_size: int = Field(..., description="most images (mesh: face crops) per backend inference")
    precision: str | None = Field(
        None,
        description="arithmetic the model runs at in process: fp32, bf16 or int8 (with precision=auto the fastest "
        "that holds the accuracy gate, timed at start-up); absent on Triton, whose model configuration decides",
    )
    ready: bool = Field(..., description="whether the warm-up inference has passed")


class ModelList(BaseModel):
    models: list[ModelInfo]


class HealthStatus(BaseModel):
    status: str = Field(..., description="ok (live) or ready")
