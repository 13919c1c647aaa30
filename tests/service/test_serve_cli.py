"""``facelocal serve`` as users run it: a clear message without a model, graceful SIGTERM with work in flight."""

from __future__ import annotations

import signal
import threading
import time

import httpx
import pytest

from facelocal.cli import main
from tests.local.serve import start_serve
from tests.service.helpers import client, photo_bytes


def test_missing_model_says_how_to_export_it(tmp_path, capsys) -> None:
    missing = tmp_path / "nope.onnx"
    assert main(["serve", "--model-path", str(missing)]) == 2
    message = capsys.readouterr().err
    assert str(missing) in message and f"facelocal export onnx --out {missing}" in message


def test_flags_override_environment(monkeypatch) -> None:
    from facelocal.cli import build_parser
    from service.cli import build_settings

    monkeypatch.setenv("FACELOCAL_MAX_BATCH_SIZE", "3")
    monkeypatch.setenv("FACELOCAL_HTTP_PORT", "9001")
    arguments = ["serve", "--http-port", "9100", "--max-batches-in-flight", "2"]
    settings = build_settings(build_parser().parse_args(arguments))
    assert (settings.max_batch_size, settings.http_port, settings.max_batches_in_flight, settings.grpc_port) == (
        3,
        9100,
        2,
        50051,
    )


def test_sigterm_finishes_in_flight_requests_then_exits(onnx_model_path) -> None:
    server = start_serve(onnx_model_path, "--max-batch-size", "2")
    url, process = server.url, server.process
    try:
        responses: list[httpx.Response] = []
        files = [("images", (f"{i}.jpg", photo_bytes(), "image/jpeg")) for i in range(8)]

        def post() -> None:
            with client(url) as http:
                responses.append(http.post("/v1/detect/batch", files=files))

        worker = threading.Thread(target=post)
        worker.start()
        # Wait until the batch is being worked on (queue or inference), then ask the server to stop.
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            text = httpx.get(url + "/metrics", timeout=5).text
            if "facelocal_inferences_total 0.0" not in text:
                break
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
        worker.join(60)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert len(responses) == 1 and responses[0].status_code == 200
    results = responses[0].json()["results"]
    assert len(results) == 8 and all(len(r["faces"]) > 20 for r in results)
    with pytest.raises(httpx.TransportError):
        httpx.get(url + "/healthz", timeout=2)


def test_serve_weights_exports_once_into_a_cache_keyed_by_content(tmp_path, monkeypatch, weights_path) -> None:
    from facelocal.weights import file_sha256
    from service.cli import export_cached

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    exported = export_cached(weights_path, None)
    assert exported == tmp_path / "facelocal" / "models" / f"{file_sha256(weights_path)[:16]}-mobilenet0.25.onnx"
    stamp = exported.stat().st_mtime_ns
    assert export_cached(weights_path, None).stat().st_mtime_ns == stamp  # reused, not exported again
    # Another preset is another export, never the stale one.
    with pytest.warns(UserWarning):
        assert export_cached(weights_path, "mobilenet0.25-1mb").name.endswith("-mobilenet0.25-1mb.onnx")
    assert main(["serve", "--weights", str(weights_path), "--model-path", "x.onnx"]) == 2


def test_serve_weights_also_serves_the_mesh_the_environment_names(
    tmp_path, monkeypatch, weights_path, mesh_weights_path
) -> None:
    from facelocal.weights import file_sha256
    from service.cli import export_cached_mesh

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("FACELOCAL_MESH_WEIGHTS", raising=False)
    monkeypatch.setenv("FACELOCAL_WEIGHTS_TABLE", str(tmp_path / "no-table.toml"))
    assert export_cached_mesh() is None  # nothing names a mesh: none is served
    monkeypatch.setenv("FACELOCAL_MESH_WEIGHTS", str(mesh_weights_path))
    exported = export_cached_mesh()
    assert exported == tmp_path / "facelocal" / "models" / f"{file_sha256(mesh_weights_path)[:16]}-facemesh.onnx"
    # `facelocal serve --weights` as a user runs it (the suite's "no mesh" default taken out of its environment).
    monkeypatch.delenv("FACELOCAL_MESH_MODEL_PATH")
    server = start_serve(None, "--weights", str(weights_path), "--log-level", "warning")
    try:
        with client(server.url) as http:
            assert len(http.get("/v1/models").json()["models"]) == 2  # the detector and the mesh
            answer = http.post(
                "/v1/detect?return_mesh=true", content=photo_bytes(), headers={"content-type": "image/jpeg"}
            )
            assert answer.status_code == 200, answer.text
            assert len(answer.json()["faces"][0]["mesh"]) == 468
    finally:
        server.stop()
    monkeypatch.setenv("FACELOCAL_MESH_WEIGHTS", str(tmp_path / "missing.tflite"))
    assert main(["serve", "--weights", str(weights_path)]) == 2  # a named file that is missing is an error


def test_every_setting_is_a_flag_with_its_description() -> None:
    from facelocal.cli import build_parser
    from service.settings import Settings

    serve = build_parser()._subparsers._group_actions[0].choices["serve"]
    flags = {option: action for action in serve._actions for option in action.option_strings}
    for name, field in Settings.model_fields.items():
        action = flags[f"--{name.replace('_', '-')}"]
        assert action.dest == name and field.description in action.help and f"FACELOCAL_{name.upper()}" in action.help
