#!/usr/bin/env bash
# Regenerates the gRPC/protobuf Python modules from proto/ with grpc_tools.protoc.
# Usage: scripts/gen_proto.sh [OUT_DIR]   (default: service/grpc/gen; PYTHON overrides the interpreter)
# The modules are written flat into OUT_DIR and the generated absolute import `from facelocal.v1 import ...`
# is rewritten to a package-relative one, because `facelocal` is also the name of the model library.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
out="${1:-$root/service/grpc/gen}"
python="${PYTHON:-python}"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python" -m grpc_tools.protoc \
  --proto_path="$root/proto" \
  --python_out="$work" --pyi_out="$work" --grpc_python_out="$work" \
  facelocal/v1/facelocal.proto

mkdir -p "$out"
for f in "$work"/facelocal/v1/facelocal_pb2.py "$work"/facelocal/v1/facelocal_pb2.pyi "$work"/facelocal/v1/facelocal_pb2_grpc.py; do
  sed -e 's/^from facelocal\.v1 import /from . import /' "$f" > "$out/$(basename "$f")"
done
