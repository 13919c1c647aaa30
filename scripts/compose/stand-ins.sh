#!/usr/bin/env bash
# Stand-ins for the registry images, for hosts that cannot pull them (this one, CI, air-gapped machines):
#   facelocal/stand-in-python:3.11-bookworm     for python:3.11-slim-bookworm: Debian bookworm (debootstrap
#                                                --variant=minbase) with Debian's Python 3.11 and pip
#   facelocal/stand-in-tritonserver:25.01       for nvcr.io/nvidia/tritonserver:25.01-py3: the nvidia-pytriton
#                                                wheel's tritonserver behind tests/local/tritonserver.py, which
#                                                serves model_repository/'s ONNX models through the Python backend
# Each is built only when missing (FORCE=1 rebuilds). The host's CA bundle goes into the base image and pip uses
# it, so that builds reach PyPI through a TLS-intercepting proxy as the host does.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON_STAND_IN=${PYTHON_STAND_IN:-facelocal/stand-in-python:3.11-bookworm}
TRITON_STAND_IN=${TRITON_STAND_IN:-facelocal/stand-in-tritonserver:25.01}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
HOST_CA_BUNDLE=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

missing() { [ "${FORCE:-0}" = 1 ] || ! docker image inspect "$1" >/dev/null 2>&1; }

if missing "$PYTHON_STAND_IN"; then
    rootfs=$(mktemp -d)
    trap 'rm -rf "$rootfs"' EXIT
    # libpython3.11 is the shared library Triton's Python-backend stub links; curl is Triton's health check.
    debootstrap --variant=minbase --include=python3,python3-pip,libpython3.11,ca-certificates,curl \
        bookworm "$rootfs" "$DEBIAN_MIRROR"
    # The host's bundle (with any proxy CA it trusts) replaces the image's; pip reads it through PIP_CERT.
    cp "$HOST_CA_BUNDLE" "$rootfs/etc/ssl/certs/ca-certificates.crt"
    # As in the official image: `python` and `pip` are Python 3.11, and pip installs system-wide.
    ln -sf python3 "$rootfs/usr/bin/python"
    ln -sf pip3 "$rootfs/usr/bin/pip"
    rm -f "$rootfs"/usr/lib/python3.11/EXTERNALLY-MANAGED
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    tar -C "$rootfs" -c . | docker import \
        --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
        --change 'ENV LANG=C.UTF-8' \
        --change 'CMD ["python3"]' - "$PYTHON_STAND_IN"
    rm -rf "$rootfs"
    trap - EXIT
fi

if missing "$TRITON_STAND_IN"; then
    docker build --build-arg "PYTHON_IMAGE=$PYTHON_STAND_IN" -f docker/Dockerfile.stand-in-tritonserver \
        -t "$TRITON_STAND_IN" .
fi
