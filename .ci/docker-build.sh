#!/usr/bin/env bash
# Build the action's image from the real Dockerfile on a machine without a container registry:
# ../shared/tools/docker-up.sh starts dockerd and provides a stand-in for python:3.11-slim, and this
# machine's package mirror stands in for PyTorch's CPU index (same pins as requirements.txt).
# Prints `export MLGATE_IMAGE=...` on stdout; progress on stderr.
#   eval "$(bash .ci/docker-build.sh)"
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
tools=${MLGATE_SHARED_TOOLS:-$here/../shared/tools}
tag=${MLGATE_IMAGE:-mlgate:ci}
eval "$("$tools/docker-up.sh")"
echo "export DOCKER_HOST=$DOCKER_HOST"

mirror_args=()
if [ -d /opt/pypi-more/simple/torch ]; then
  # serve the local mirrors on loopback for the build (the build runs with --network=host)
  port_more=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  port_main=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  (cd /opt/pypi-more && exec python3 -m http.server --bind 127.0.0.1 "$port_more" >/dev/null 2>&1) & pid_more=$!
  (cd /opt/pypi && exec python3 -m http.server --bind 127.0.0.1 "$port_main" >/dev/null 2>&1) & pid_main=$!
  trap 'kill $pid_more $pid_main 2>/dev/null || true' EXIT
  for _ in $(seq 50); do curl -fs "http://127.0.0.1:$port_more/simple/torch/" >/dev/null && break; sleep 0.2; done
  mirror_args=(--build-arg "TORCH_INDEX_URL=http://127.0.0.1:$port_more/simple"
               --build-arg "PIP_EXTRA_INDEX_URL=http://127.0.0.1:$port_main/simple https://pypi.org/simple")
fi
echo "[docker-build] building $tag" >&2
docker build --network=host --build-arg BASE_IMAGE="$MLGATE_BASE_IMAGE" "${mirror_args[@]}" -t "$tag" "$here" >&2
echo "export MLGATE_IMAGE=$tag"
