from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DetectOptions(_message.Message):
    __slots__ = ("score_threshold", "nms_threshold", "max_faces", "min_face_size", "return_landmarks", "return_crops", "return_mesh", "tta", "mesh_min_face", "max_size", "landmarks", "return_pose", "return_quality")
    SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    NMS_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_FACES_FIELD_NUMBER: _ClassVar[int]
    MIN_FACE_SIZE_FIELD_NUMBER: _ClassVar[int]
    RETURN_LANDMARKS_FIELD_NUMBER: _ClassVar[int]
    RETURN_CROPS_FIELD_NUMBER: _ClassVar[int]
    RETURN_MESH_FIELD_NUMBER: _ClassVar[int]
    TTA_FIELD_NUMBER: _ClassVar[int]
    MESH_MIN_FACE_FIELD_NUMBER: _ClassVar[int]
    MAX_SIZE_FIELD_NUMBER: _ClassVar[int]
    LANDMARKS_FIELD_NUMBER: _ClassVar[int]
    RETURN_POSE_FIELD_NUMBER: _ClassVar[int]
    RETURN_QUALITY_FIELD_NUMBER: _ClassVar[int]
    score_threshold: float
    nms_threshold: float
    max_faces: int
    min_face_size: float
    return_landmarks: bool
    return_crops: bool
    return_mesh: bool
    tta: str
    mesh_min_face: float
    max_size: int
    landmarks: str
    return_pose: bool
    return_quality: bool
    def __init__(self, score_threshold: _Optional[float] = ..., nms_threshold: _Optional[float] = ..., max_faces: _Optional[int] = ..., min_face_size: _Optional[float] = ..., return_landmarks: _Optional[bool] = ..., return_crops: _Optional[bool] = ..., return_mesh: _Optional[bool] = ..., tta: _Optional[str] = ..., mesh_min_face: _Optional[float] = ..., max_size: _Optional[int] = ..., landmarks: _Optional[str] = ..., return_pose: _Optional[bool] = ..., return_quality: _Optional[bool] = ...) -> None: ...

class DetectRequest(_message.Message):
    __slots__ = ("image", "options", "request_id")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    options: DetectOptions
    request_id: str
    def __init__(self, image: _Optional[bytes] = ..., options: _Optional[_Union[DetectOptions, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class Box(_message.Message):
    __slots__ = ("x1", "y1", "x2", "y2")
    X1_FIELD_NUMBER: _ClassVar[int]
    Y1_FIELD_NUMBER: _ClassVar[int]
    X2_FIELD_NUMBER: _ClassVar[int]
    Y2_FIELD_NUMBER: _ClassVar[int]
    x1: float
    y1: float
    x2: float
    y2: float
    def __init__(self, x1: _Optional[float] = ..., y1: _Optional[float] = ..., x2: _Optional[float] = ..., y2: _Optional[float] = ...) -> None: ...

class Point(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ...) -> None: ...

class Face(_message.Message):
    __slots__ = ("box", "score", "landmarks", "crop_png", "mesh", "mesh_score", "mesh_skipped", "landmarks_source", "pose", "quality")
    BOX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    LANDMARKS_FIELD_NUMBER: _ClassVar[int]
    CROP_PNG_FIELD_NUMBER: _ClassVar[int]
    MESH_FIELD_NUMBER: _ClassVar[int]
    MESH_SCORE_FIELD_NUMBER: _ClassVar[int]
    MESH_SKIPPED_FIELD_NUMBER: _ClassVar[int]
    LANDMARKS_SOURCE_FIELD_NUMBER: _ClassVar[int]
    POSE_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    box: Box
    score: float
    landmarks: _containers.RepeatedCompositeFieldContainer[Point]
    crop_png: bytes
    mesh: _containers.RepeatedScalarFieldContainer[float]
    mesh_score: float
    mesh_skipped: str
    landmarks_source: str
    pose: Pose
    quality: Quality
    def __init__(self, box: _Optional[_Union[Box, _Mapping]] = ..., score: _Optional[float] = ..., landmarks: _Optional[_Iterable[_Union[Point, _Mapping]]] = ..., crop_png: _Optional[bytes] = ..., mesh: _Optional[_Iterable[float]] = ..., mesh_score: _Optional[float] = ..., mesh_skipped: _Optional[str] = ..., landmarks_source: _Optional[str] = ..., pose: _Optional[_Union[Pose, _Mapping]] = ..., quality: _Optional[_Union[Quality, _Mapping]] = ...) -> None: ...

class Pose(_message.Message):
    __slots__ = ("pitch", "yaw", "roll")
    PITCH_FIELD_NUMBER: _ClassVar[int]
    YAW_FIELD_NUMBER: _ClassVar[int]
    ROLL_FIELD_NUMBER: _ClassVar[int]
    pitch: float
    yaw: float
    roll: float
    def __init__(self, pitch: _Optional[float] = ..., yaw: _Optional[float] = ..., roll: _Optional[float] = ...) -> None: ...

class Quality(_message.Message):
    __slots__ = ("sharpness", "brightness", "underexposed", "overexposed", "inter_ocular", "frontalness", "has_mesh", "usable")
    SHARPNESS_FIELD_NUMBER: _ClassVar[int]
    BRIGHTNESS_FIELD_NUMBER: _ClassVar[int]
    UNDEREXPOSED_FIELD_NUMBER: _ClassVar[int]
    OVEREXPOSED_FIELD_NUMBER: _ClassVar[int]
    INTER_OCULAR_FIELD_NUMBER: _ClassVar[int]
    FRONTALNESS_FIELD_NUMBER: _ClassVar[int]
    HAS_MESH_FIELD_NUMBER: _ClassVar[int]
    USABLE_FIELD_NUMBER: _ClassVar[int]
    sharpness: float
    brightness: float
    underexposed: float
    overexposed: float
    inter_ocular: float
    frontalness: float
    has_mesh: bool
    usable: bool
    def __init__(self, sharpness: _Optional[float] = ..., brightness: _Optional[float] = ..., underexposed: _Optional[float] = ..., overexposed: _Optional[float] = ..., inter_ocular: _Optional[float] = ..., frontalness: _Optional[float] = ..., has_mesh: _Optional[bool] = ..., usable: _Optional[bool] = ...) -> None: ...

class Timings(_message.Message):
    __slots__ = ("decode_ms", "queue_ms", "inference_ms", "postprocess_ms", "mesh_ms")
    DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    QUEUE_MS_FIELD_NUMBER: _ClassVar[int]
    INFERENCE_MS_FIELD_NUMBER: _ClassVar[int]
    POSTPROCESS_MS_FIELD_NUMBER: _ClassVar[int]
    MESH_MS_FIELD_NUMBER: _ClassVar[int]
    decode_ms: float
    queue_ms: float
    inference_ms: float
    postprocess_ms: float
    mesh_ms: float
    def __init__(self, decode_ms: _Optional[float] = ..., queue_ms: _Optional[float] = ..., inference_ms: _Optional[float] = ..., postprocess_ms: _Optional[float] = ..., mesh_ms: _Optional[float] = ...) -> None: ...

class DetectResponse(_message.Message):
    __slots__ = ("width", "height", "model", "faces", "timings", "request_id", "mesh_truncated", "truncated")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    FACES_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    MESH_TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    model: str
    faces: _containers.RepeatedCompositeFieldContainer[Face]
    timings: Timings
    request_id: str
    mesh_truncated: bool
    truncated: bool
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., model: _Optional[str] = ..., faces: _Optional[_Iterable[_Union[Face, _Mapping]]] = ..., timings: _Optional[_Union[Timings, _Mapping]] = ..., request_id: _Optional[str] = ..., mesh_truncated: _Optional[bool] = ..., truncated: _Optional[bool] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class DetectBatchRequest(_message.Message):
    __slots__ = ("images", "options", "request_id")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedScalarFieldContainer[bytes]
    options: DetectOptions
    request_id: str
    def __init__(self, images: _Optional[_Iterable[bytes]] = ..., options: _Optional[_Union[DetectOptions, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class BatchItem(_message.Message):
    __slots__ = ("result", "error")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    result: DetectResponse
    error: Error
    def __init__(self, result: _Optional[_Union[DetectResponse, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class DetectBatchResponse(_message.Message):
    __slots__ = ("items", "request_id")
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[BatchItem]
    request_id: str
    def __init__(self, items: _Optional[_Iterable[_Union[BatchItem, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class DetectStreamResponse(_message.Message):
    __slots__ = ("request_id", "result", "error")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    request_id: str
    result: DetectResponse
    error: Error
    def __init__(self, request_id: _Optional[str] = ..., result: _Optional[_Union[DetectResponse, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class AnonymizeOptions(_message.Message):
    __slots__ = ("mode", "score_threshold", "nms_threshold", "tta", "max_size")
    MODE_FIELD_NUMBER: _ClassVar[int]
    SCORE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    NMS_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    TTA_FIELD_NUMBER: _ClassVar[int]
    MAX_SIZE_FIELD_NUMBER: _ClassVar[int]
    mode: str
    score_threshold: float
    nms_threshold: float
    tta: str
    max_size: int
    def __init__(self, mode: _Optional[str] = ..., score_threshold: _Optional[float] = ..., nms_threshold: _Optional[float] = ..., tta: _Optional[str] = ..., max_size: _Optional[int] = ...) -> None: ...

class AnonymizeRequest(_message.Message):
    __slots__ = ("image", "options", "request_id")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    options: AnonymizeOptions
    request_id: str
    def __init__(self, image: _Optional[bytes] = ..., options: _Optional[_Union[AnonymizeOptions, _Mapping]] = ..., request_id: _Optional[str] = ...) -> None: ...

class FaceRegion(_message.Message):
    __slots__ = ("kind", "box", "score", "polygon")
    KIND_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    POLYGON_FIELD_NUMBER: _ClassVar[int]
    kind: str
    box: Box
    score: float
    polygon: _containers.RepeatedCompositeFieldContainer[Point]
    def __init__(self, kind: _Optional[str] = ..., box: _Optional[_Union[Box, _Mapping]] = ..., score: _Optional[float] = ..., polygon: _Optional[_Iterable[_Union[Point, _Mapping]]] = ...) -> None: ...

class AnonymizeResponse(_message.Message):
    __slots__ = ("image", "media_type", "width", "height", "regions", "truncated", "request_id")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MEDIA_TYPE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    REGIONS_FIELD_NUMBER: _ClassVar[int]
    TRUNCATED_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    media_type: str
    width: int
    height: int
    regions: _containers.RepeatedCompositeFieldContainer[FaceRegion]
    truncated: bool
    request_id: str
    def __init__(self, image: _Optional[bytes] = ..., media_type: _Optional[str] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., regions: _Optional[_Iterable[_Union[FaceRegion, _Mapping]]] = ..., truncated: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "backend", "has_dense", "canvas_size", "max_batch_size", "ready", "role", "precision")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    HAS_DENSE_FIELD_NUMBER: _ClassVar[int]
    CANVAS_SIZE_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_SIZE_FIELD_NUMBER: _ClassVar[int]
    READY_FIELD_NUMBER: _ClassVar[int]
    ROLE_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    name: str
    backend: str
    has_dense: bool
    canvas_size: int
    max_batch_size: int
    ready: bool
    role: str
    precision: str
    def __init__(self, name: _Optional[str] = ..., backend: _Optional[str] = ..., has_dense: _Optional[bool] = ..., canvas_size: _Optional[int] = ..., max_batch_size: _Optional[int] = ..., ready: _Optional[bool] = ..., role: _Optional[str] = ..., precision: _Optional[str] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ...) -> None: ...
