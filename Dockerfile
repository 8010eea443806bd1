# The wms-relay image: one image for every process (worker, scheduler, ingest, desk, flower, metrics,
# sandbox); the command picks which — `docker run IMAGE worker`, `... scheduler`, `... flower --address
# 0.0.0.0`.  Production points REDIS_URL at its Redis/Valkey (appendonly yes, maxmemory-policy noeviction).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    WMS_RELAY_VAR_DIR=/app/var \
    LOG_FORMAT=json

# tini (Debian's) is PID 1: it hands SIGTERM to wms-relay and reaps any orphaned child.  Every wms-relay
# process handles SIGTERM as PID 1 too (a Kubernetes `command:` bypasses the entry point), tested with
# `unshare --pid`.  The Debian release of the base image decides tini's version (DL3008 wants a pin that
# would break with the next base image).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY signing ./signing
COPY tasks ./tasks
COPY worker ./worker
COPY examples ./examples
# The [local] extra brings Flower (and honcho); the runtime dependencies come from pyproject.toml, whose
# version ranges are the project's one statement of them (DL3013 wants pins on a command line instead).
# hadolint ignore=DL3013
RUN pip install ".[local]"

# Not root: a fixed numeric uid, so Kubernetes' runAsNonRoot can check it.
RUN useradd --system --uid 10001 --no-create-home --home-dir /app --shell /usr/sbin/nologin relay \
    && mkdir -p /app/var \
    && chown relay /app/var
USER 10001

# wms-relay worker stops gracefully on SIGTERM: it finishes the sends in flight (give it longer than the
# longest send: docs/operations.md) and hands back what it had not started.  tini passes the signal on;
# the command after the image name is wms-relay's (`docker run IMAGE scheduler`).
STOPSIGNAL SIGTERM
ENTRYPOINT ["tini", "--", "wms-relay"]
CMD ["worker"]
