#!/usr/bin/env bash
# Builds the images docker-compose.yml runs (facelocal-api, and the GPU profile's facelocal-trt-build with
# --gpu) on the bases this host can get, and records those bases in artifacts/compose.env, which every
# `make compose-*` command passes to compose. The standard bases are the defaults (FACELOCAL_PYTHON_IMAGE,
# FACELOCAL_TRITON_IMAGE override them); a base that can be neither found locally nor pulled is replaced by its
# stand-in (scripts/compose/stand-ins.sh). The models are exported on the host first (make images).
set -euo pipefail
cd "$(dirname "$0")/../.."
ENV_FILE=artifacts/compose.env
python_image=${FACELOCAL_PYTHON_IMAGE:-python:3.11.7-slim-bookworm}
triton_image=${FACELOCAL_TRITON_IMAGE:-nvcr.io/nvidia/tritonserver:25.01-py3}

scripts/compose/ensure-docker.sh
available() { docker image inspect "$1" >/dev/null 2>&1 || timeout 120 docker pull -q "$1" >/dev/null 2>&1; }
if ! available "$python_image" || ! available "$triton_image"; then
    scripts/compose/stand-ins.sh
    available "$python_image" || python_image=facelocal/stand-in-python:3.11-bookworm
    available "$triton_image" || triton_image=facelocal/stand-in-tritonserver:25.01
    echo "no registry for the standard bases: using $python_image and $triton_image"
fi
mkdir -p "$(dirname "$ENV_FILE")"
printf 'FACELOCAL_PYTHON_IMAGE=%s\nFACELOCAL_TRITON_IMAGE=%s\n' "$python_image" "$triton_image" >"$ENV_FILE"
docker compose --env-file "$ENV_FILE" --profile embedded build
