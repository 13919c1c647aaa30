"""Request-scoped access to the core and settings, the API-key check and the checks made before the body."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.core import DetectionCore
from service.errors import unauthorized
from service.schemas import DetectOptions
from service.settings import Settings

# The detection options as query parameters (one instance per request, shared by the route and its checks).
QueryOptions = Annotated[DetectOptions, Query()]

# auto_error=False: a missing header is our 401 JSON error, not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="'Authorization: Bearer <key>' with the server's API key")


def get_core(request: Request) -> DetectionCore:
    return request.app.state.core


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def require_api_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Let the request through when the bearer token is the configured key (only routed when one is set)."""
    expected = get_settings(request).api_key
    if credentials is None or not secrets.compare_digest(
        credentials.credentials.encode(), expected.get_secret_value().encode()
    ):
        raise unauthorized()


async def refuse_before_the_body(request: Request, options: QueryOptions) -> None:
    """What can be refused before the body is read, is: query options this server cannot honour (422, even if
    the JSON body would override them), and any image when the service is full (503)."""
    core = get_core(request)
    core.validate_options(options)
    core.check_capacity()
