"""Request-scoped access to the core and settings, and the optional API-key check."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from service.core import DetectionCore
from service.errors import unauthorized
from service.settings import Settings

# auto_error=False: a missing header is our 401 JSON error (or fine, when no key is set), not FastAPI's 403.
_bearer = HTTPBearer(auto_error=False, description="'Authorization: Bearer <key>', required only when an API key is set")


def get_core(request: Request) -> DetectionCore:
    return request.app.state.core


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def require_api_key(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """Let the request through when no key is configured or the bearer token matches it."""
    expected = get_settings(request).api_key
    if expected is None:
        return
    if credentials is None or not secrets.compare_digest(
        credentials.credentials.encode(), expected.get_secret_value().encode()
    ):
        raise unauthorized()
