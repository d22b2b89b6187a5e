#!/usr/bin/env bash
# Set up everything codegym needs on a fresh Debian/Ubuntu machine, idempotently:
#   1. Python dependencies (torch pinned to the CPU wheel 2.13.0 first, so nothing pulls CUDA)
#   2. a Docker engine, installed and started in the background when none answers (needs root)
#   3. the sandbox image, built offline with debootstrap when it is missing
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}

echo "== codegym setup: Python packages"
"$PYTHON" -m pip install --quiet --disable-pip-version-check "torch==2.13.0"
"$PYTHON" -m pip install --quiet --disable-pip-version-check -e ".[train,dev,hf,ray,openai]"

echo "== codegym setup: Docker engine"
if ! docker info >/dev/null 2>&1; then
  if [ "$(id -u)" != "0" ]; then
    echo "error: no Docker daemon answers and installing/starting one needs root." >&2
    echo "       Start Docker yourself (or re-run as root), then run this script again." >&2
    exit 1
  fi
  if ! command -v dockerd >/dev/null 2>&1; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y docker.io >/dev/null || { apt-get update >/dev/null && apt-get install -y docker.io >/dev/null; }
  fi
  nohup dockerd >/var/log/codegym-dockerd.log 2>&1 &
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || { echo "error: dockerd did not start; see /var/log/codegym-dockerd.log" >&2; exit 1; }
fi

echo "== codegym setup: sandbox image"
if ! codegym sandbox doctor >/dev/null 2>&1; then
  if ! command -v debootstrap >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y debootstrap >/dev/null || { apt-get update >/dev/null && apt-get install -y debootstrap >/dev/null; }
  fi
  codegym sandbox build
fi
codegym sandbox doctor
