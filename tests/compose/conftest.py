"""The compose deployment, run for real (``make compose-test``; marker ``compose``, outside the default run).

``deployment`` brings one CPU profile up with ``docker compose up --wait`` (the images ``make images`` built, the
bases artifacts/compose.env names), with an API key in compose's environment, and takes it down after its
tests; the tests drive it from the host through the published ports, as a user would.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.local import compose as deploy
from tests.local.compose import GRPC_TARGET, HTTP_URL, ComposeError

PROFILES = ("embedded", "cpu")
API_KEY = "compose-test-key"
ENV = {"FACELOCAL_API_KEY": API_KEY}


@dataclass(frozen=True)
class Deployment:
    """A profile that is up: where its API answers, and its containers."""

    profile: str
    http_url: str = HTTP_URL
    grpc_target: str = GRPC_TARGET

    def compose(self, *args: str) -> str:
        return deploy.compose("--profile", self.profile, *args, env=ENV)

    def inspect(self, service: str) -> dict:
        """``docker inspect`` of the service's container (stopped ones included)."""
        (container,) = self.compose("ps", "--all", "--quiet", service).split()
        return json.loads(subprocess.run(["docker", "inspect", container], capture_output=True, check=True).stdout)[0]

    def services(self) -> list[str]:
        return self.compose("config", "--services").split()


@pytest.fixture(scope="module", params=PROFILES)
def deployment(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    running = Deployment(request.param)
    try:
        deploy.up(running.profile, env=ENV)
    except ComposeError as error:
        logs = deploy.compose("--profile", running.profile, "logs", "--no-color", "--tail", "40", env=ENV)
        pytest.fail(f"{error}\n{logs}", pytrace=False)
    yield running
    deploy.down(running.profile, env=ENV)
