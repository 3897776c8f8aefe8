# mlgate: a Docker container action. GitHub builds this file from the pinned action's ref.
# Size and start-up figures: `python bench/container.py`.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    MPLBACKEND=Agg \
    DVC_NO_ANALYTICS=1 \
    WANDB_ERROR_REPORTING=false \
    PYTHONPATH=/opt/mlgate

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# git: DVC and mlgate read the checkout's history. Without its documentation, manual pages and
# translations (~15 MB; the copyright files stay, SBOM scanners read them) and without apt's caches
# (the official base image keeps none; a debootstrap-built stand-in would keep ~100 MB here).
# DL3008 (apt versions not pinned): Debian's mirror keeps only the current version of a package, so
# a pin breaks the build at the next security update; the base image's tag is the pin.
# hadolint ignore=DL3008
RUN printf '%s\n' 'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright' \
        'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/locale/*' \
        > /etc/dpkg/dpkg.cfg.d/mlgate-no-docs \
 && apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
 # the runner mounts the checkout owned by another user; git would refuse it ("dubious ownership")
 && git config --system --add safe.directory '*'

# torch and torchvision from the CPU index, at the pins in requirements.txt; then the rest from PyPI.
# What nothing at run time reads goes in the same layer: the packages' own test suites (~65 MB)
# and torch's C++ headers (~63 MB; only for compiling extensions, and the image has no compiler).
# Byte code stays (~235 MB): without it every run compiles what it imports, ~6 s more per run.
# (Declared here, not above: a build argument in scope is part of every later RUN's cache key.)
# CPU-only wheels keep the image small; a mirror of that index can be passed at build time.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# unset on GitHub; a local build can add a package mirror here (see .ci/docker-build.sh)
ARG PIP_EXTRA_INDEX_URL
COPY requirements.txt /opt/mlgate/requirements.txt
RUN grep -E '^(torch|torchvision)==' /opt/mlgate/requirements.txt \
      | xargs pip install --index-url "${TORCH_INDEX_URL}" \
 && pip install -r /opt/mlgate/requirements.txt \
 && site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') \
 && rm -rf "${site}/torch/include" \
 && find "${site}" -mindepth 2 -type d -name tests -prune -exec rm -rf {} +

COPY entrypoint.py /opt/mlgate/entrypoint.py
COPY mlgate /opt/mlgate/mlgate
RUN python -m compileall -q /opt/mlgate/mlgate

ENTRYPOINT ["python", "/opt/mlgate/entrypoint.py"]
