"""Getting image bytes and options out of a request: multipart, raw image body or JSON with base64."""

from __future__ import annotations

import base64
import binascii
import json
from typing import TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from service.errors import (
    ServiceError,
    bad_request,
    format_validation_errors,
    unsupported_media_type,
    validation_error,
)
from service.images import MEDIA_TYPES, sniff_format
from service.schemas import (
    AnonymizeJSONRequest,
    AnonymizeOptions,
    BatchJSONRequest,
    DetectJSONRequest,
    DetectOptions,
)

ModelT = TypeVar("ModelT", bound=BaseModel)

ACCEPTED = "multipart/form-data, application/json, " + ", ".join(MEDIA_TYPES)


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def check_declared_type(declared: str, data: bytes) -> None:
    """415 when the bytes are a different known format than the declared media type says."""
    sniffed = sniff_format(data)
    if sniffed is not None and sniffed != MEDIA_TYPES[declared]:
        raise unsupported_media_type(f"declared {declared} but the data is {sniffed}", code="content_type_mismatch")


OptionsT = TypeVar("OptionsT", DetectOptions, AnonymizeOptions)


async def read_image(
    request: Request, query: OptionsT, json_model: type[DetectJSONRequest] | type[AnonymizeJSONRequest]
) -> tuple[bytes, OptionsT]:
    """The one image of ``POST /v1/detect`` or ``/v1/anonymize`` and the options (JSON fields, read with
    ``json_model``, override query parameters)."""
    kind = media_type(request)
    if kind == "multipart/form-data":
        form = await _read_form(request)
        upload = form.get("image")
        if not isinstance(upload, UploadFile):
            raise bad_request("missing_image", "multipart field 'image' (a file) is required")
        return await _read_upload(upload), query
    if kind == "application/json":
        body = await _parse_json(request, json_model)
        return decode_base64(body.image), merge_options(query, body)
    if kind in MEDIA_TYPES:
        data = await request.body()
        check_declared_type(kind, data)
        return data, query
    raise unsupported_media_type(f"content type {kind or '(none)'!r} is not accepted; send one of {ACCEPTED}")


async def read_images(request: Request, query: DetectOptions) -> tuple[list[bytes | ServiceError], DetectOptions]:
    """The images of ``POST /v1/detect/batch``; an undecodable base64 item becomes that item's error."""
    kind = media_type(request)
    if kind == "multipart/form-data":
        form = await _read_form(request)
        uploads = [item for item in form.getlist("images") if isinstance(item, UploadFile)]
        if not uploads:
            raise bad_request("missing_image", "multipart field 'images' (one or more files) is required")
        items: list[bytes | ServiceError] = []
        for upload in uploads:
            try:
                items.append(await _read_upload(upload))
            except ServiceError as exc:
                items.append(exc)
        return items, query
    if kind == "application/json":
        body = await _parse_json(request, BatchJSONRequest)
        return [_decode_or_error(text) for text in body.images], merge_options(query, body)
    raise unsupported_media_type(
        f"content type {kind or '(none)'!r} is not accepted; send multipart/form-data or application/json"
    )


def merge_options(query: OptionsT, body: BaseModel) -> OptionsT:
    """Options given in the JSON body win over the same options given as query parameters."""
    fields = set(type(query).model_fields)
    merged = {**query.model_dump(exclude_unset=True), **body.model_dump(include=fields, exclude_unset=True)}
    return type(query)(**merged)


def decode_base64(text: str) -> bytes:
    """Standard base64, optionally as a ``data:`` URL."""
    if text.startswith("data:"):
        text = text.partition(",")[2]
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise bad_request("invalid_base64", "the image is not valid base64") from None


def _decode_or_error(text: str) -> bytes | ServiceError:
    try:
        return decode_base64(text)
    except ServiceError as exc:
        return exc


async def _read_upload(upload: UploadFile) -> bytes:
    data = await upload.read()
    declared = (upload.content_type or "").lower()
    if declared in MEDIA_TYPES:
        check_declared_type(declared, data)
    return data


async def _read_form(request: Request) -> FormData:
    """The multipart form; 400 ``invalid_multipart`` for a body that does not parse or has more than 1,000 parts
    (Starlette's limits), which Starlette itself would answer with a bare HTTP error."""
    try:
        return await request.form()
    except HTTPException as exc:
        raise bad_request("invalid_multipart", f"the multipart body cannot be read: {exc.detail}") from None


async def _parse_json(request: Request, model: type[ModelT]) -> ModelT:
    body = await request.body()
    try:
        payload = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request("invalid_json", "the body is not valid JSON") from None
    except RecursionError:
        # Python's parser recurses once per nesting level; no request field is nested more than twice.
        raise bad_request("invalid_json", "the body nests JSON arrays or objects too deeply") from None
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise validation_error(format_validation_errors(exc.errors())) from None
