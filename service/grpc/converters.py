"""Conversions between the protobuf messages of facelocal.v1 and the core's pydantic models."""

from __future__ import annotations

from pydantic import ValidationError

from service import errors, schemas
from service.errors import ServiceError
from service.grpc.gen import facelocal_pb2 as pb

# Proto fields that map one to one onto schemas.DetectOptions; all are proto3 `optional`, so an unset field
# keeps the pydantic default and gRPC defaults stay identical to REST's.
_OPTION_FIELDS = tuple(schemas.DetectOptions.model_fields)


def options_from_proto(message: pb.DetectOptions) -> schemas.DetectOptions:
    """The request's options; out-of-range values raise ServiceError 422 (INVALID_ARGUMENT) like REST."""
    given = {name: getattr(message, name) for name in _OPTION_FIELDS if message.HasField(name)}
    try:
        return schemas.DetectOptions(**given)
    except ValidationError as exc:
        raise errors.validation_error(f"invalid options: {errors.format_validation_errors(exc.errors())}") from exc


def face_to_proto(face: schemas.Face) -> pb.Face:
    x1, y1, x2, y2 = face.box
    message = pb.Face(
        box=pb.Box(x1=x1, y1=y1, x2=x2, y2=y2),
        score=face.score,
        landmarks=[pb.Point(x=x, y=y) for x, y in face.landmarks or ()],
        crop_png=face.crop or b"",
        mesh_skipped=face.mesh_skipped or "",
    )
    if face.mesh is not None and face.mesh_score is not None:
        # One packed float field, not 468 messages: 5.6 kB per face on the wire.
        message.mesh.extend(value for vertex in face.mesh for value in vertex)
        message.mesh_score = face.mesh_score
    return message


def result_to_proto(result: schemas.ImageResult, request_id: str = "") -> pb.DetectResponse:
    timings = result.timings_ms
    return pb.DetectResponse(
        width=result.width,
        height=result.height,
        model=result.model,
        faces=[face_to_proto(face) for face in result.faces],
        truncated=result.truncated,
        timings=pb.Timings(
            decode_ms=timings.decode,
            queue_ms=timings.queue,
            inference_ms=timings.inference,
            postprocess_ms=timings.postprocess,
            mesh_ms=timings.mesh or 0.0,
        ),
        request_id=request_id,
        mesh_truncated=bool(result.mesh_truncated),
    )


def error_to_proto(error: ServiceError) -> pb.Error:
    return pb.Error(code=error.code, message=error.message)


def batch_item_to_proto(outcome: schemas.ImageResult | ServiceError) -> pb.BatchItem:
    if isinstance(outcome, ServiceError):
        return pb.BatchItem(error=error_to_proto(outcome))
    return pb.BatchItem(result=result_to_proto(outcome))


def model_info_to_proto(info: schemas.ModelInfo) -> pb.ModelInfo:
    return pb.ModelInfo(
        name=info.name,
        backend=info.backend,
        has_dense=info.has_dense,
        canvas_size=info.canvas_size,
        max_batch_size=info.max_batch_size,
        ready=info.ready,
        role=info.role,
    )
