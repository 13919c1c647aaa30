"""gRPC's edge: the protobuf messages of facelocal.v1 from and to the core's options and results (once, straight
from the result's arrays)."""

from __future__ import annotations

from typing import TypeVar

import numpy as np
from pydantic import ValidationError

from facelocal.detections import COORDINATE_DECIMALS, SCORE_DECIMALS, rounded
from service import errors, schemas
from service.errors import ServiceError
from service.grpc.gen import facelocal_pb2 as pb
from service.results import AnonymizedResult, DetectionResult

OptionsT = TypeVar("OptionsT", schemas.DetectOptions, schemas.AnonymizeOptions)


def options_from_proto(message: pb.DetectOptions | pb.AnonymizeOptions, model: type[OptionsT]) -> OptionsT:
    """The request's options as ``model``; out-of-range values raise ServiceError 422 (INVALID_ARGUMENT) like
    REST. The proto fields map one to one onto the model's and are all proto3 ``optional``, so an unset field
    keeps the pydantic default and gRPC defaults stay identical to REST's."""
    given = {field.name: value for field, value in message.ListFields()}
    try:
        return model(**given)
    except ValidationError as exc:
        raise errors.validation_error(f"invalid options: {errors.format_validation_errors(exc.errors())}") from exc


def faces_to_proto(result: DetectionResult) -> list[pb.Face]:
    """Each face of ``result`` as a message, straight from the arrays, rounded as REST's JSON is."""
    faces = result.faces
    boxes = rounded(faces.boxes, COORDINATE_DECIMALS)
    scores = rounded(faces.scores, SCORE_DECIMALS)
    landmarks = rounded(faces.landmarks, COORDINATE_DECIMALS) if result.landmarks else [[]] * len(faces)
    messages = [
        pb.Face(
            box=pb.Box(x1=x1, y1=y1, x2=x2, y2=y2),
            score=score,
            landmarks=[pb.Point(x=x, y=y) for x, y in points],
        )
        for (x1, y1, x2, y2), score, points in zip(boxes, scores, landmarks, strict=True)
    ]
    for message, crop in zip(messages, result.crops or (), strict=False):
        message.crop_png = crop
    for message, reason in zip(messages, result.mesh_skipped or (), strict=False):
        message.mesh_skipped = reason or ""
    for message, source in zip(
        messages, () if result.landmark_sources is None else result.landmark_sources, strict=False
    ):
        message.landmarks_source = source
    for message, pose in zip(messages, result.pose_dicts(), strict=False):
        if pose is not None:
            message.pose.CopyFrom(pb.Pose(**pose))
    for message, quality in zip(messages, result.quality_dicts(), strict=False):
        message.quality.CopyFrom(pb.Quality(**quality))
    if faces.meshes is not None and faces.mesh_scores is not None:
        has_mesh = np.isfinite(faces.mesh_scores)
        meshes = np.round(faces.meshes.astype(np.float64), COORDINATE_DECIMALS).reshape(len(faces), -1)
        mesh_scores = np.round(faces.mesh_scores.astype(np.float64), SCORE_DECIMALS)
        for index in np.nonzero(has_mesh)[0]:
            # One packed float field, not 468 messages: 5.6 kB per face on the wire.
            messages[index].mesh.extend(meshes[index].tolist())
            messages[index].mesh_score = float(mesh_scores[index])
    return messages


def result_to_proto(result: DetectionResult, request_id: str = "") -> pb.DetectResponse:
    timings = result.timings
    return pb.DetectResponse(
        width=result.width,
        height=result.height,
        model=result.model,
        faces=faces_to_proto(result),
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


def batch_item_to_proto(outcome: DetectionResult | ServiceError) -> pb.BatchItem:
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
        precision=info.precision or "",
    )


def anonymized_to_proto(result: AnonymizedResult, request_id: str = "") -> pb.AnonymizeResponse:
    return pb.AnonymizeResponse(
        image=result.image,
        media_type=result.media_type,
        width=result.faces.width,
        height=result.faces.height,
        regions=[
            pb.FaceRegion(
                kind=region["kind"],
                box=pb.Box(**dict(zip(("x1", "y1", "x2", "y2"), region["box"], strict=True))),
                score=region["score"],
                polygon=[pb.Point(x=x, y=y) for x, y in region["polygon"]],
            )
            for region in result.region_dicts()
        ],
        truncated=result.truncated,
        request_id=request_id,
    )
