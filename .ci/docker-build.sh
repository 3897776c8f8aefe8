#!/usr/bin/env bash
# Build the action's image from the real Dockerfile, wherever a Docker engine can be had:
#  - on our development machines (no container registry) ../shared/tools/docker-up.sh starts
#    dockerd and provides a stand-in for python:3.11-slim; its output is eval'd here;
#  - anywhere else (GitHub runners, laptops) a plain `docker build` with the Dockerfile's default
#    base image, provided `docker info` answers.
# When this machine has a local package mirror (/opt/pypi-more, /opt/pypi), it is served on loopback
# as the build's torch index and extra index (same pins as requirements.txt); elsewhere the
# Dockerfile's defaults (PyTorch's CPU index, PyPI) apply.
# Prints `export ...` lines on stdout (MLGATE_IMAGE, and DOCKER_HOST when one is set); progress on
# stderr. Exits 3 when no Docker engine answers and docker-up.sh does not exist.
#   eval "$(bash .ci/docker-build.sh)"
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tools=${MLGATE_SHARED_TOOLS:-$(dirname "$here")/shared/tools}
tag=${MLGATE_IMAGE:-mlgate:ci}

build_args=()
if [ -f "$tools/docker-up.sh" ]; then
  eval "$(bash "$tools/docker-up.sh")"
  build_args+=(--build-arg "BASE_IMAGE=$MLGATE_BASE_IMAGE")
elif ! why=$(docker info 2>&1 >/dev/null); then
  echo "[docker-build] no Docker engine answers (docker info failed: ${why:-no output})" \
       "and $tools/docker-up.sh does not exist" >&2
  exit 3
fi
if [ -n "${DOCKER_HOST:-}" ]; then
  echo "export DOCKER_HOST=$DOCKER_HOST"
fi

# The mirror's URL is part of the build's cache key (build arguments are), so it is served on fixed
# ports when they are free: a random port would rebuild the torch layer (minutes) on every run.
pids=()
stop_servers() {
  local pid
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
}
trap stop_servers EXIT
serve() {  # serve folder $1 on loopback, on port $2 when free, else on any free port; sets $port
  port=$(python3 - "$2" <<'PY'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
PY
)
  (cd "$1" && exec python3 -m http.server --bind 127.0.0.1 "$port" >/dev/null 2>&1) &
  pids+=($!)
  for _ in $(seq 50); do
    python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' \
      "http://127.0.0.1:$port/simple/" 2>/dev/null && return
    sleep 0.2
  done
  echo "[docker-build] serving $1 on 127.0.0.1:$port failed" >&2
  exit 1
}
mirror=()
if [ -d /opt/pypi-more/simple/torch ]; then
  serve /opt/pypi-more 38471
  mirror+=(--build-arg "TORCH_INDEX_URL=http://127.0.0.1:$port/simple")
fi
if [ -d /opt/pypi/simple ]; then
  serve /opt/pypi 38472
  mirror+=(--build-arg "PIP_EXTRA_INDEX_URL=http://127.0.0.1:$port/simple https://pypi.org/simple")
fi
if [ ${#mirror[@]} -gt 0 ]; then
  # the mirror is served on the host's loopback, which the build reaches with --network=host
  build_args+=(--network=host "${mirror[@]}")
fi

echo "[docker-build] building $tag" >&2
docker build "${build_args[@]}" -t "$tag" "$here" >&2
echo "export MLGATE_IMAGE=$tag"
