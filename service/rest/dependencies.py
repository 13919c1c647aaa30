"""Request-scoped access to the core and settings, the API-key check and the checks made before the body."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import ValidationError

from service.auth import require_bearer
from service.core import DetectionCore
from service.errors import format_validation_errors, validation_error
from service.rest.inputs import OptionsT
from service.schemas import AnonymizeOptions, DetectOptions
from service.settings import Settings

# Declares the bearer scheme in the OpenAPI document; auto_error=False: a missing header is our 401 JSON error.
_bearer = HTTPBearer(auto_error=False, description="'Authorization: Bearer <key>' with the server's API key")


# Dependencies are ``async def`` although they never wait: FastAPI runs a plain ``def`` one in its thread pool,
# a thread hop on every request.
async def get_core(request: Request) -> DetectionCore:
    return request.app.state.core


CoreDep = Annotated[DetectionCore, Depends(get_core)]


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def require_api_key(
    request: Request, _credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Let the request through when the bearer token is the configured key (only routed when one is set)."""
    require_bearer(request.headers.get("authorization"), get_settings(request).api_key)


def query_options(request: Request, model: type[OptionsT]) -> OptionsT:
    """``model`` from the query string, validated by pydantic in one call (422 ``validation_error``).

    Not FastAPI's ``Annotated[model, Query()]``: that walks every field's annotation again on every request, 0.1 ms
    of the event loop's time (1 % of a VGA detection). The routes document the parameters all the same
    (:func:`service.rest.docs.query_parameters`)."""
    try:
        # A repeated parameter counts with its last value, as FastAPI reads a single-valued one.
        return model.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise validation_error(format_validation_errors(exc.errors())) from None


async def refuse_before_the_body(request: Request, core: CoreDep) -> DetectOptions:
    """The query options, once what can be refused before the body is read, is: query options this server cannot
    honour (422, even if the JSON body would override them), and any image when the service is full (503).

    The detection routes take their options from here (``CheckedOptions``), so the query is parsed once."""
    options = query_options(request, DetectOptions)
    core.validate_options(options)
    core.check_capacity()
    return options


CheckedOptions = Annotated[DetectOptions, Depends(refuse_before_the_body)]


async def refuse_anonymize_before_the_body(request: Request, core: CoreDep) -> AnonymizeOptions:
    """:func:`refuse_before_the_body` for ``POST /v1/anonymize``'s options."""
    options = query_options(request, AnonymizeOptions)
    core.validate_options(options.detect_options(core.max_size_limit))
    core.check_capacity()
    return options


CheckedAnonymizeOptions = Annotated[AnonymizeOptions, Depends(refuse_anonymize_before_the_body)]
