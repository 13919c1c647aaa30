"""`facelocal detect` and `facelocal export` as a user runs them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from tests.paths import shared_file


def facelocal(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "facelocal.cli", *args], capture_output=True, text=True, env=full_env, timeout=120
    )


def test_detect_json_schema_and_drawing(tmp_path, weights_path):
    image = shared_file("images", "selfie_group.jpg")
    drawn = tmp_path / "out.png"
    done = facelocal("detect", str(image), "--weights", str(weights_path), "--json", "--draw", str(drawn))
    assert done.returncode == 0, done.stderr
    record = json.loads(done.stdout.strip())
    assert set(record) == {"image", "width", "height", "faces"}
    assert (record["width"], record["height"]) == (1024, 624)
    assert len(record["faces"]) >= 20
    face = record["faces"][0]
    assert set(face) == {"box", "score", "landmarks"}
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 5 and all(len(p) == 2 for p in face["landmarks"])
    picture = np.asarray(Image.open(drawn).convert("RGB"))
    original = np.asarray(Image.open(image).convert("RGB"))
    assert picture.shape == original.shape
    assert (np.abs(picture.astype(int) - original).sum(axis=2) > 0).mean() > 0.01


def test_weights_from_environment_and_thresholds(weights_path):
    image = str(shared_file("images", "wider_train_band_crowd.jpg"))
    env = {"FACELOCAL_WEIGHTS": str(weights_path)}
    strict = json.loads(facelocal("detect", image, "--json", "--score-threshold", "0.9", env=env).stdout)
    loose = json.loads(facelocal("detect", image, "--json", "--score-threshold", "0.3", env=env).stdout)
    assert 0 < len(strict["faces"]) < len(loose["faces"])
    assert min(f["score"] for f in strict["faces"]) > 0.9


def test_missing_weights_exit_nonzero_and_name_the_fix(tmp_path):
    env = {"FACELOCAL_WEIGHTS": "", "FACELOCAL_WEIGHTS_TABLE": str(tmp_path / "none.toml")}
    done = facelocal("detect", str(shared_file("images", "wider_train_band_crowd.jpg")), env=env)
    assert done.returncode == 2
    assert "--weights" in done.stderr and "FACELOCAL_WEIGHTS" in done.stderr and "Traceback" not in done.stderr


def test_bad_resize_flag_is_a_clean_error(weights_path):
    done = facelocal(
        "detect",
        str(shared_file("images", "wider_train_band_crowd.jpg")),
        "--weights",
        str(weights_path),
        "--resize",
        "square:3",
    )
    assert done.returncode == 2 and "invalid resize policy" in done.stderr


def test_detect_with_mesh_json_and_drawing(tmp_path, weights_path, mesh_weights_path):
    image = shared_file("images", "two_people_hd.jpg")
    drawn = tmp_path / "mesh.png"
    done = facelocal(
        "detect",
        str(image),
        "--weights",
        str(weights_path),
        "--json",
        "--draw",
        str(drawn),
        "--mesh",
        "--mesh-weights",
        str(mesh_weights_path),
    )
    assert done.returncode == 0, done.stderr
    faces = json.loads(done.stdout)["faces"]
    assert faces and all(set(face) == {"box", "score", "landmarks", "mesh", "mesh_score"} for face in faces)
    best = faces[0]
    assert len(best["mesh"]) == 468 and all(len(vertex) == 3 for vertex in best["mesh"]) and best["mesh_score"] > 0.9
    x1, y1, x2, y2 = best["box"]
    xs, ys = np.array(best["mesh"])[:, 0], np.array(best["mesh"])[:, 1]
    assert x1 - 5 < xs.mean() < x2 + 5 and y1 - 5 < ys.mean() < y2 + 5
    # The drawing differs from the plain detection drawing where the vertices are.
    plain = tmp_path / "plain.png"
    assert facelocal("detect", str(image), "--weights", str(weights_path), "--draw", str(plain)).returncode == 0
    with_mesh, without = (np.asarray(Image.open(p).convert("RGB")).astype(int) for p in (drawn, plain))
    changed = np.abs(with_mesh - without).sum(axis=2) > 0
    assert changed[int(y1) : int(y2), int(x1) : int(x2)].mean() > 0.03


def test_detect_mesh_needs_the_tflite_and_says_where_to_put_it(tmp_path, weights_path):
    env = {"FACELOCAL_MESH_WEIGHTS": "", "FACELOCAL_WEIGHTS_TABLE": str(tmp_path / "none.toml")}
    done = facelocal(
        "detect", str(shared_file("images", "two_people_hd.jpg")), "--weights", str(weights_path), "--mesh", env=env
    )
    assert done.returncode == 2 and "--mesh-weights" in done.stderr and "Traceback" not in done.stderr


def test_export_mesh_onnx(tmp_path, mesh_weights_path):
    import onnxruntime as ort

    out = tmp_path / "facemesh.onnx"
    done = facelocal("export", "onnx", "--mesh", "--mesh-weights", str(mesh_weights_path), "--out", str(out))
    assert done.returncode == 0, done.stderr
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["crops"]
    assert session.get_modelmeta().custom_metadata_map["facelocal.source_sha256"].startswith("1055cb9d")
