"""``facelocal serve`` in a subprocess on free loopback ports, running this checkout's code."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.local.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT_S = 60.0


class ServeStartError(RuntimeError):
    """The server exited while starting or did not become ready in time."""


@dataclass
class ServeProcess:
    """A running ``facelocal serve``: its process and REST URL."""

    process: subprocess.Popen
    url: str

    def wait_ready(self, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Until ``/readyz`` answers 200; :class:`ServeStartError` with the server's stderr (when it is a pipe)
        if the process exits first, or after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                _, stderr = self.process.communicate()
                raise ServeStartError(f"facelocal serve exited with {self.process.returncode}: {stderr or ''}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        self.stop()
        raise ServeStartError(f"facelocal serve at {self.url} was not ready within {timeout_s:.0f} s")

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM (the graceful shutdown), then SIGKILL if it has not exited within ``timeout_s``."""
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()


def start_serve(
    model_path: Path | None,
    *flags: str,
    env: dict[str, str] | None = None,
    stdout: int | None = subprocess.DEVNULL,
    stderr: int | None = subprocess.PIPE,
    root: Path = ROOT,
) -> ServeProcess:
    """``facelocal serve --model-path model_path *flags`` on 127.0.0.1, once it is ready (``model_path`` None:
    no ``--model-path``, for flags that name the model another way).

    ``env`` is added to this process's environment. ``stderr`` is a text pipe by default, so that a failed start
    says why; a server that logs a lot must get another (a full pipe blocks it). ``root``: the checkout whose code
    runs (another one than this, e.g. an earlier commit's, for a before/after benchmark).
    """
    http_port = free_port()
    command = [
        sys.executable, "-m", "facelocal.cli", "serve", "--host", "127.0.0.1", "--http-port", str(http_port),
        "--grpc-port", str(free_port()), *(("--model-path", str(model_path)) if model_path else ()), *flags,
    ]  # fmt: skip
    process = subprocess.Popen(command, cwd=root, env=os.environ | (env or {}), stdout=stdout, stderr=stderr, text=True)
    running = ServeProcess(process, f"http://127.0.0.1:{http_port}")
    running.wait_ready()
    return running
