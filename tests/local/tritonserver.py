"""A real ``tritonserver`` from the ``nvidia-pytriton`` wheel, serving our ONNX models: on loopback for the Triton
tests and scripts/bench_triton.py, and as the ``tritonserver`` command of the Triton stand-in image
(``python -m tests.local.tritonserver --model-repository=/models ...``, docker/Dockerfile.stand-in-tritonserver).

The wheel's server has the Python backend but no ONNX Runtime backend. So the launcher writes, in a
temporary repository, a Python-backend model with the name, inputs, outputs, batch size and dynamic
batching of ``model_repository/retinaface/config.pbtxt`` (read from that file, not copied by hand),
whose ``model.py`` runs the same ONNX file with onnxruntime. Only the backend differs from production.

PyTriton's own Python API is not used (its stub's resource tracker does not match this Python); the raw
binary is, with ``LD_LIBRARY_PATH`` at the wheel's ``nvidia_pytriton.libs``. The stub runs the system's
libpython in isolated mode: it ignores ``PYTHONPATH`` and does not see this virtualenv. Its utilities
import numpy before any model code runs, so numpy is linked into the backend folder (which is on the
stub's path); the model then gets the site-packages path as a parameter for everything else.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from google.protobuf import text_format

from service.backends.triton_config import read_model_config
from tests.local.ports import free_port

ROOT = Path(__file__).resolve().parents[2]
CPU_MODEL_CONFIG = ROOT / "model_repository" / "retinaface" / "config.pbtxt"
MESH_MODEL_CONFIG = ROOT / "model_repository" / "facemesh" / "config.pbtxt"
SITE_PACKAGES_PARAMETER = "site_packages"
ONNX_PATH_PARAMETER = "onnx_path"
STARTUP_TIMEOUT_S = 60.0

# Runs inside the Python backend stub. Everything imported after the sys.path line comes from our venv.
MODEL_PY = f'''\
"""Python-backend stand-in for the onnxruntime_onnx platform: the same ONNX file run by onnxruntime."""

import json
import sys


class TritonPythonModel:
    def initialize(self, args):
        parameters = json.loads(args["model_config"])["parameters"]
        sys.path.insert(0, parameters["{SITE_PACKAGES_PARAMETER}"]["string_value"])
        import numpy as np
        import onnxruntime as ort
        import triton_python_backend_utils as pb_utils

        self._np, self._pb = np, pb_utils
        options = ort.SessionOptions()
        options.intra_op_num_threads = 0
        self._session = ort.InferenceSession(
            parameters["{ONNX_PATH_PARAMETER}"]["string_value"],
            sess_options=options,
            providers=["CPUExecutionProvider"],
        )
        self._input = self._session.get_inputs()[0].name
        self._outputs = [output.name for output in self._session.get_outputs()]

    def execute(self, requests):
        # The dynamic batcher hands over several requests at once: run them as one ONNX batch.
        # Tensors cross the stub through DLPack: its pybind11 reads numpy 2 arrays' sizes wrongly
        # (as_numpy / Tensor(name, array) give empty buffers), DLPack carries no numpy struct layout.
        np, pb = self._np, self._pb
        inputs = [np.from_dlpack(pb.get_input_tensor_by_name(request, self._input)) for request in requests]
        sizes = [len(batch) for batch in inputs]
        batch = inputs[0] if len(inputs) == 1 else np.concatenate(inputs)
        results = self._session.run(self._outputs, {{self._input: batch}})
        responses, start = [], 0
        for size in sizes:
            tensors = [
                pb.Tensor.from_dlpack(name, np.ascontiguousarray(result[start : start + size]))
                for name, result in zip(self._outputs, results)
            ]
            responses.append(pb.InferenceResponse(output_tensors=tensors))
            start += size
        return responses
'''


class TritonUnavailableError(RuntimeError):
    """The Triton binary could not be found or did not become ready."""


@dataclass(frozen=True)
class TritonInstall:
    """Where the ``nvidia-pytriton`` wheel put the server, its libraries and the Python backend stub."""

    binary: Path
    libraries: Path
    backend_files: Path
    stub: Path

    @classmethod
    def locate(cls) -> TritonInstall:
        # find_spec locates the package without importing it: installed with --no-deps, its
        # __init__ cannot import, and only the files it ships are needed.
        spec = importlib.util.find_spec("pytriton")
        if spec is None or not spec.submodule_search_locations:
            raise TritonUnavailableError(
                "nvidia-pytriton is not installed; its wheel carries the tritonserver binary the Triton tests run. "
                "Install it without its dependencies (its metadata pins numpy<2): "
                "pip install --no-deps nvidia-pytriton==0.7.0"
            )
        package = Path(spec.submodule_search_locations[0]) / "tritonserver"
        version = f"{sys.version_info.major}.{sys.version_info.minor}"
        install = cls(
            binary=package / "bin" / "tritonserver",
            libraries=package.parent.parent / "nvidia_pytriton.libs",
            backend_files=package / "backends" / "python",
            stub=package / "python_backend_stubs" / version / "triton_python_backend_stub",
        )
        missing = [
            str(path)
            for path in (install.binary, install.libraries, install.backend_files, install.stub)
            if not path.exists()
        ]
        if missing:
            raise TritonUnavailableError(f"nvidia-pytriton install is incomplete, missing: {', '.join(missing)}")
        return install

    def backend_directory(self, parent: Path) -> Path:
        """A ``--backend-directory`` whose ``python/`` holds the backend library, its utils and the stub."""
        python = parent / "backends" / "python"
        python.mkdir(parents=True, exist_ok=True)
        for item in self.backend_files.iterdir():
            if item.is_file():
                shutil.copy2(item, python / item.name)
        shutil.copy2(self.stub, python / self.stub.name)
        site_packages = Path(sysconfig.get_paths()["purelib"])
        for name in ("numpy", "numpy.libs"):
            if (site_packages / name).exists():
                (python / name).symlink_to(site_packages / name, target_is_directory=True)
        return parent / "backends"

    def environment(self) -> dict[str, str]:
        """This process's environment with the wheel's libraries on ``LD_LIBRARY_PATH``."""
        return {**os.environ, "LD_LIBRARY_PATH": f"{self.libraries}:{os.environ.get('LD_LIBRARY_PATH', '')}"}


def server_command(install: TritonInstall, repository: Path, workdir: Path, *options: str) -> list[str]:
    """The ``tritonserver`` command line serving the Python-backend ``repository``, with the backends set up in
    ``workdir`` (once) and ``options`` after them."""
    backends = workdir / "backends"
    if not backends.exists():
        install.backend_directory(workdir)
    return [
        str(install.binary),
        f"--model-repository={repository}",
        f"--backend-directory={backends}",
        "--allow-gpu-metrics=false",
        *options,
    ]


def write_python_model(repository: Path, onnx_path: Path, source_config: Path = CPU_MODEL_CONFIG) -> str:
    """Write a Python-backend twin of ``source_config`` into ``repository``; returns its model name.

    Name, inputs, outputs, ``max_batch_size``, dynamic batching and instance groups are kept as parsed;
    only the platform becomes the Python backend and two parameters tell ``model.py`` where things are.
    """
    if not onnx_path.is_file():
        raise FileNotFoundError(
            f"{onnx_path} is missing; export it with: python scripts/prepare_model_repository.py --weights W"
        )
    config = read_model_config(source_config)
    config.ClearField("platform")
    config.backend = "python"
    config.parameters[SITE_PACKAGES_PARAMETER].string_value = sysconfig.get_paths()["purelib"]
    config.parameters[ONNX_PATH_PARAMETER].string_value = str(onnx_path.resolve())
    model_dir = repository / config.name
    (model_dir / "1").mkdir(parents=True, exist_ok=True)
    (model_dir / "config.pbtxt").write_text(text_format.MessageToString(config))
    (model_dir / "1" / "model.py").write_text(MODEL_PY)
    return config.name


def write_python_repository(source: Path, target: Path, models: Iterable[str]) -> list[str]:
    """The Python-backend twins of ``models`` (folders of ``source`` holding ``config.pbtxt`` and ``1/model.onnx``,
    as in ``model_repository/``) written into ``target``; returns their model names."""
    return [
        write_python_model(target, source / model / "1" / "model.onnx", source / model / "config.pbtxt")
        for model in models
    ]


@dataclass
class TritonServer:
    """One ``tritonserver`` process on 127.0.0.1; ``restart()`` brings it back on the same ports."""

    repository: Path
    workdir: Path
    http_port: int = field(default_factory=free_port)
    grpc_port: int = field(default_factory=free_port)
    metrics_port: int = field(default_factory=free_port)
    address: str = "127.0.0.1"
    process: subprocess.Popen | None = None

    @property
    def grpc_url(self) -> str:
        return f"{self.address}:{self.grpc_port}"

    @property
    def http_url(self) -> str:
        return f"{self.address}:{self.http_port}"

    @property
    def log_path(self) -> Path:
        return self.workdir / "tritonserver.log"

    def start(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        install = TritonInstall.locate()
        command = server_command(
            install,
            self.repository,
            self.workdir,
            f"--http-address={self.address}",
            f"--http-port={self.http_port}",
            f"--grpc-address={self.address}",
            f"--grpc-port={self.grpc_port}",
            f"--metrics-address={self.address}",
            f"--metrics-port={self.metrics_port}",
            "--exit-on-error=true",
            "--exit-timeout-secs=5",
            # Named so that kill() can remove the stubs' regions a SIGKILL leaves behind in /dev/shm.
            f"--backend-config=python,shm-region-prefix-name={self._shm_prefix}",
        )
        with self.log_path.open("ab") as log:
            # A session of its own, so that killing the server also takes its backend stubs down.
            self.process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=install.environment(), start_new_session=True
            )
        self._wait_ready(timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        # Plain HTTP on Triton's health route: tritonclient.http's gevent pool breaks when a later thread collects it.
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise TritonUnavailableError(
                    f"tritonserver exited with {self.process.returncode} while starting; log:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=1.0):
                    return  # 200: urlopen raises HTTPError on anything else
            except (urllib.error.URLError, ConnectionError, TimeoutError):  # refused or not ready while it starts
                pass
            time.sleep(0.2)
        self.kill()
        raise TritonUnavailableError(f"tritonserver not ready within {timeout_s:.0f} s; log:\n{self.log_tail()}")

    @property
    def _shm_prefix(self) -> str:
        return f"facelocal_test_triton_{self.grpc_port}_"

    def log_tail(self, lines: int = 40) -> str:
        if not self.log_path.exists():
            return "(no log)"
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        """SIGKILL the server and its stubs, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
        self.process = None
        for leftover in Path("/dev/shm").glob(self._shm_prefix + "*"):
            leftover.unlink(missing_ok=True)

    def stop(self) -> None:
        """Ask the server to exit, then kill it if it has not within its exit timeout."""
        if self.process is None or self.process.poll() is not None:
            self.process = None
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pass
        self.kill()

    def restart(self, timeout_s: float = STARTUP_TIMEOUT_S) -> None:
        self.kill()
        self.start(timeout_s)


def start_local_triton(workdir: Path, onnx_path: Path, mesh_onnx_path: Path | None = None) -> tuple[TritonServer, str]:
    """Start a Triton serving ``onnx_path`` as the CPU model (and ``mesh_onnx_path`` as the FaceMesh model of
    ``model_repository/facemesh``); returns the server and the detector's model name."""
    repository = workdir / "repository"
    model_name = write_python_model(repository, onnx_path)
    if mesh_onnx_path is not None:
        write_python_model(repository, mesh_onnx_path, MESH_MODEL_CONFIG)
    server = TritonServer(repository=repository, workdir=workdir)
    server.start()
    return server, model_name


def main(argv: list[str] | None = None) -> None:
    """``tritonserver`` with the real server's options, serving an ONNX ``--model-repository`` (``model_repository/``'s
    layout) through Python-backend twins written to a temporary folder; every other option goes to the binary."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--model-repository", type=Path, required=True)
    parser.add_argument("--load-model", action="append", default=[], help="as tritonserver's; default: every model")
    known, options = parser.parse_known_args(argv)
    source: Path = known.model_repository
    models = known.load_model or sorted(path.parent.name for path in source.glob("*/1/model.onnx"))
    workdir = Path(tempfile.mkdtemp(prefix="tritonserver-"))
    repository = workdir / "repository"
    names = write_python_repository(source, repository, models)
    install = TritonInstall.locate()
    command = server_command(install, repository, workdir, *(f"--load-model={name}" for name in names), *options)
    os.execve(command[0], command, install.environment())


if __name__ == "__main__":
    main()
