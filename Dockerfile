# Container images of the media server (docs/operations.md).
#
#   docker build -t media-server .                      CPU image, embedded Piper voice (default target)
#   docker build --target cuda -t media-server:cuda .   Qwen3-TTS on an NVIDIA GPU (driver >= 580)
#
# The source tree lives in /app and is installed editable, so `web/` stays
# next to the package as media_server/api/static.py expects. Dependencies are
# installed from pyproject.toml alone first, within requirements.lock, so a
# source change does not reinstall them.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
# PyPI's torch 2.11 wheels are built for CUDA 13.0.
ARG CUDA_IMAGE=nvidia/cuda:13.0.2-runtime-ubuntu24.04

FROM ${PYTHON_IMAGE} AS uv
RUN pip install --no-cache-dir uv==0.13.8

# ---- cuda: Qwen3-TTS ------------------------------------------------------

FROM ${CUDA_IMAGE} AS cuda-builder
COPY --from=uv /usr/local/bin/uv /usr/local/bin/uv
# The CUDA image has no Python 3.11: uv installs a standalone build in /opt/python.
ENV UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    VIRTUAL_ENV=/opt/venv
RUN uv python install 3.11 && uv venv --python 3.11 /opt/venv
WORKDIR /app
COPY pyproject.toml requirements.lock ./
# The ray extra: the same image runs a Ray gateway, or a Ray node with engine replicas (deploy/kuberay/).
RUN uv pip install -c requirements.lock -r pyproject.toml --extra qwen --extra ray
COPY . .
RUN uv pip install -c requirements.lock -e '.[qwen,ray]' \
    && /opt/venv/bin/python -m compileall -q media_server signaling

FROM ${CUDA_IMAGE} AS cuda
# sox: the qwen-tts package calls the sox program.
RUN --mount=type=bind,source=deploy/runtime-setup.sh,target=/tmp/runtime-setup.sh sh /tmp/runtime-setup.sh sox
COPY --from=cuda-builder /opt/python /opt/python
COPY --from=cuda-builder /opt/venv /opt/venv
COPY --from=cuda-builder /app /app
COPY --chmod=755 deploy/gpu-prep.sh /usr/local/bin/gpu-prep
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LD_PRELOAD=/usr/local/lib/libjemalloc.so.2 \
    MALLOC_CONF=background_thread:true \
    HOST=0.0.0.0 \
    PORT=8080 \
    LOG_JSON=true \
    VOICE_CACHE_DIR=/data/voices \
    HF_HOME=/data/models \
    TTS_BACKEND=qwen \
    APP_USER=app
WORKDIR /app
USER 10001:10001
EXPOSE 8080
# Qwen3-TTS loads and warms in the background; /healthz answers meanwhile.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/healthz', timeout=3)"]
ENTRYPOINT ["gpu-prep"]
CMD ["media-server", "serve"]

# ---- cpu: the embedded Piper voice (default target) -----------------------

FROM ${PYTHON_IMAGE} AS builder
COPY --from=uv /usr/local/bin/uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_NO_CACHE=1 \
    VIRTUAL_ENV=/opt/venv
RUN uv venv --python /usr/local/bin/python3.11 /opt/venv
WORKDIR /app
COPY pyproject.toml requirements.lock ./
RUN uv pip install -c requirements.lock -r pyproject.toml --extra ray
COPY . .
RUN uv pip install -c requirements.lock -e '.[ray]' \
    && /opt/venv/bin/python -m compileall -q media_server signaling

FROM ${PYTHON_IMAGE} AS cpu
RUN --mount=type=bind,source=deploy/runtime-setup.sh,target=/tmp/runtime-setup.sh sh /tmp/runtime-setup.sh
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /app /app
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LD_PRELOAD=/usr/local/lib/libjemalloc.so.2 \
    MALLOC_CONF=background_thread:true \
    HOST=0.0.0.0 \
    PORT=8080 \
    LOG_JSON=true \
    VOICE_CACHE_DIR=/data/voices
WORKDIR /app
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8080') + '/healthz', timeout=3)"]
CMD ["media-server", "serve"]
