# mlgate: a Docker container action. GitHub builds this file from the pinned action's ref.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

# CPU-only wheels keep the image small; a mirror of that index can be passed at build time.
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
# unset on GitHub; a local build can add a package mirror here (see .ci/docker-build.sh)
ARG PIP_EXTRA_INDEX_URL

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLBACKEND=Agg \
    DVC_NO_ANALYTICS=1 \
    WANDB_ERROR_REPORTING=false \
    PYTHONPATH=/opt/mlgate

RUN apt-get update \
 && apt-get install -y --no-install-recommends git ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 # the runner mounts the checkout owned by another user; git would refuse it ("dubious ownership")
 && git config --system --add safe.directory '*'

COPY requirements.txt /opt/mlgate/requirements.txt
RUN pip install --index-url "${TORCH_INDEX_URL}" \
        $(grep -E '^(torch|torchvision)==' /opt/mlgate/requirements.txt) \
 && pip install -r /opt/mlgate/requirements.txt

COPY entrypoint.py /opt/mlgate/entrypoint.py
COPY mlgate /opt/mlgate/mlgate

ENTRYPOINT ["python", "/opt/mlgate/entrypoint.py"]
