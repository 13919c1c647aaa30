"""The compose deployment, run for real (``make compose-test``; marker ``compose``, outside the default run).

``deployment`` brings one CPU profile up with ``docker compose up --wait`` (the images ``make images`` built, the
bases artifacts/compose.env names), with an API key in compose's environment, and takes it down after its
tests; the tests drive it from the host through the published ports, as a user would.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = ROOT / "artifacts" / "compose.env"
PROFILES = ("embedded", "cpu")
API_KEY = "compose-test-key"
HTTP_URL = "http://127.0.0.1:8000"
GRPC_TARGET = "127.0.0.1:50051"
UP_TIMEOUT_S = 300


def compose(*args: str, timeout: float = UP_TIMEOUT_S + 60) -> str:
    """``docker compose *args`` on this checkout's compose file, with the test's API key; its stdout."""
    if not ENV_FILE.is_file():
        pytest.fail(f"{ENV_FILE} is missing: run `make images` (make compose-test does)", pytrace=False)
    command = ["docker", "compose", "--env-file", str(ENV_FILE), *args]
    result = subprocess.run(
        command, cwd=ROOT, env=os.environ | {"FACELOCAL_API_KEY": API_KEY}, capture_output=True, text=True,
        timeout=timeout,
    )  # fmt: skip
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@dataclass(frozen=True)
class Deployment:
    """A profile that is up: where its API answers, and its containers."""

    profile: str
    http_url: str = HTTP_URL
    grpc_target: str = GRPC_TARGET

    def compose(self, *args: str) -> str:
        return compose("--profile", self.profile, *args)

    def inspect(self, service: str) -> dict:
        """``docker inspect`` of the service's container (stopped ones included)."""
        (container,) = self.compose("ps", "--all", "--quiet", service).split()
        return json.loads(subprocess.run(["docker", "inspect", container], capture_output=True, check=True).stdout)[0]

    def services(self) -> list[str]:
        return self.compose("config", "--services").split()

    def logs(self) -> str:
        return self.compose("logs", "--no-color", "--tail", "40")


@pytest.fixture(scope="module", params=PROFILES)
def deployment(request: pytest.FixtureRequest) -> Iterator[Deployment]:
    compose("--profile", "*", "down", "--remove-orphans")  # the published ports are one profile's at a time
    running = Deployment(request.param)
    try:
        running.compose("up", "--detach", "--wait", "--wait-timeout", str(UP_TIMEOUT_S))
    except AssertionError:
        pytest.fail(f"{request.param} did not come up:\n{running.logs()}", pytrace=False)
    yield running
    running.compose("down", "--remove-orphans")
