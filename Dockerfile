# syntax=docker/dockerfile:1
# CognitionOS: the wheel built in one stage, installed into a slim image in the next.
# The same image runs every Procfile process (see deploy/compose.yaml):
#   release: cognitionos migrate    web: cognitionos serve    worker: cognitionos worker

FROM python:3.11-slim AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cognitionos ./cognitionos
# Our wheel, plus a wheel of every dependency, so the final stage installs offline and
# needs neither a compiler nor the network.
RUN pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    COGNITIONOS_ENV=production \
    COGNITIONOS_HOST=0.0.0.0 \
    PORT=8000
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    pip install --no-index --find-links /wheels cognitionos \
    && pip uninstall --yes setuptools wheel \
    && useradd --create-home --uid 10001 --user-group cognitionos
USER cognitionos
WORKDIR /home/cognitionos
EXPOSE 8000
# The web process's liveness; deploy/compose.yaml replaces it for the worker (its metrics
# port) and turns it off for the release job.
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health/live' % os.environ.get('PORT', '8000'), timeout=2)"]
CMD ["cognitionos", "serve", "--host", "0.0.0.0"]
