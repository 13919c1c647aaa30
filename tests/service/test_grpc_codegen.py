"""The checked-in gRPC modules are exactly what scripts/gen_proto.sh builds from the .proto today."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GEN_DIR = ROOT / "service" / "grpc" / "gen"
GENERATED = ("facelocal_pb2.py", "facelocal_pb2.pyi", "facelocal_pb2_grpc.py")


def test_generated_code_is_current(tmp_path: Path) -> None:
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "gen_proto.sh"), str(tmp_path)],
        check=True,
        env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(GENERATED)
    for name in GENERATED:
        fresh = (tmp_path / name).read_bytes()
        assert fresh == (GEN_DIR / name).read_bytes(), f"{name} is stale: run scripts/gen_proto.sh"


def test_generated_grpc_module_imports_its_messages_relatively() -> None:
    # `facelocal` is also the model library's package name, so an absolute import would resolve to the wrong module.
    source = (GEN_DIR / "facelocal_pb2_grpc.py").read_text()
    assert "from . import facelocal_pb2" in source
    assert "from facelocal" not in source
