"""Fixtures shared by the service tests (the servers themselves come from tests/conftest.py)."""

from __future__ import annotations

import pytest

from tests.service.helpers import client


@pytest.fixture(scope="module")
def http(service):
    """An HTTP client for the session's default service."""
    with client(service.http_url) as c:
        yield c
