"""The API-key check both front ends make: the same header, the same comparison, the same 401."""

from __future__ import annotations

import secrets

from pydantic import SecretStr

from service.errors import unauthorized


def require_bearer(authorization: str | None, key: SecretStr | None, how_to: str = "header") -> None:
    """Return when ``authorization`` is ``Bearer <key>`` (or no key is configured); else 401 ``unauthorized``.

    ``how_to`` names where the client sends it (REST ``header``, gRPC ``metadata``) in the error message.
    The comparison takes the same time however much of the token matches.
    """
    if key is None:
        return
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(
        token.strip().encode(), key.get_secret_value().encode()
    ):
        raise unauthorized(f"missing or invalid API key; send {how_to} 'Authorization: Bearer <key>'")
