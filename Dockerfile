# svdscope lab image: gunicorn serving app.main:server; `svdscope worker` runs background jobs.
# docker-compose.yml starts it with Redis and a worker (README.md, "Lab deployment").
#
#   docker build -t svdscope .       torch 2.13.0, CPU build (the default)
#   docker build -t svdscope:cuda \
#       --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu128 .
#                                     a CUDA build of torch (pick the CUDA variant that
#                                     pytorch.org lists for 2.13.0): its wheels carry the
#                                     CUDA libraries, so the slim base serves; run the
#                                     containers with GPUs (`--gpus all`)
#   --build-arg BASE_IMAGE=...        another base, e.g. an nvidia/cuda image that has
#                                     Python 3.11 as `python` with pip
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SVDSCOPE_HOST=0.0.0.0 \
    SVDSCOPE_PORT=8050 \
    SVDSCOPE_UPLOAD_DIR=/data/uploads \
    SVDSCOPE_CACHE_DIR=/data/cache

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin svdscope \
    && mkdir -p /data/uploads /data/cache \
    && chown -R svdscope:svdscope /data

WORKDIR /opt/svdscope

# torch first, from the index chosen above: a resolver that sees no torch would pull a
# multi-GB CUDA build from PyPI.
RUN pip install --no-cache-dir "torch==${TORCH_VERSION}" --index-url "${TORCH_INDEX_URL}"

COPY pyproject.toml README.md ./
COPY svdcore ./svdcore
COPY app ./app
COPY assets ./assets
# editable: the app serves assets/ from the source tree next to app/
RUN pip install --no-cache-dir -e .

USER 10001:10001
VOLUME ["/data"]
EXPOSE 8050

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request as u; u.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SVDSCOPE_PORT', '8050'), timeout=4)"]

CMD ["gunicorn", "--config", "python:app.gunicorn_conf", "app.main:server"]
