"""Request-scoped access to the core and settings, the API-key check and the early capacity check."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.core import DetectionCore
from service.errors import unauthorized
from service.settings import Settings

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


async def refuse_when_full(request: Request) -> None:
    """503 before the body is read when the service cannot take an image now: reading it would be wasted."""
    get_core(request).check_capacity()
