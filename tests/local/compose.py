"""``docker compose`` on this checkout's docker-compose.yml, with the bases ``make images`` chose
(artifacts/compose.env): for tests/compose and scripts/bench_compose.py."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = ROOT / "artifacts" / "compose.env"
UP_TIMEOUT_S = 300
# Where a profile's API answers on the host (its published ports).
HTTP_URL = "http://127.0.0.1:8000"
GRPC_TARGET = "127.0.0.1:50051"


class ComposeError(RuntimeError):
    """A compose command failed; the message holds its output."""


def compose(*args: str, env: dict[str, str] | None = None, timeout: float = UP_TIMEOUT_S + 60) -> str:
    """``docker compose *args`` (``env`` added to this process's environment, for compose's variables); its
    stdout."""
    if not ENV_FILE.is_file():
        raise ComposeError(f"{ENV_FILE} is missing: run `make images` first")
    command = ["docker", "compose", "--env-file", str(ENV_FILE), *args]
    result = subprocess.run(
        command, cwd=ROOT, env=os.environ | (env or {}), capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        raise ComposeError(f"{' '.join(command)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def up(profile: str, env: dict[str, str] | None = None) -> None:
    """Take down whatever profile is up (they publish the same ports), then bring ``profile`` up, healthy."""
    compose("--profile", "*", "down", "--remove-orphans", env=env)
    compose("--profile", profile, "up", "--detach", "--wait", "--wait-timeout", str(UP_TIMEOUT_S), env=env)


def down(profile: str, env: dict[str, str] | None = None) -> None:
    compose("--profile", profile, "down", "--remove-orphans", env=env)
