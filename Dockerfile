# One image for every pingpong service; `command:` picks the role.
#
#   docker build -t pingpong .                                  # from PyPI
#   make image PYTHON_IMAGE=local/python:3.11-slim              # offline, from ./wheelhouse
#   docker buildx build --platform linux/amd64,linux/arm64,linux/arm/v7 -t you/pingpong --push .
#
# wheelhouse/ may hold wheels (`make wheelhouse`); pip takes them from there
# first, so the image builds where no package index can be reached.
ARG PYTHON_IMAGE=python:3.12-slim

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY wheelhouse/ /wheelhouse/
COPY pyproject.toml README.md ./
COPY pingpong/ pingpong/
COPY players/ players/
COPY manager/ manager/
COPY proxy/ proxy/
COPY scoreboard/ scoreboard/
COPY bench/ bench/
RUN python3 -m venv /opt/pingpong \
 && /opt/pingpong/bin/pip install --no-cache-dir --disable-pip-version-check \
        --find-links /wheelhouse . \
 && find /opt/pingpong -name __pycache__ -prune -exec rm -rf {} +

FROM ${PYTHON_IMAGE}
COPY --from=build /opt/pingpong /opt/pingpong
# a fixed uid, so Docker secrets can be given to it (stack.yml: uid 10001, mode 0400)
RUN groupadd --system --gid 10001 pingpong \
 && useradd --system --uid 10001 --gid pingpong --no-create-home pingpong
ENV PATH=/opt/pingpong/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HEALTH_FILE=/tmp/pingpong.health
USER pingpong
EXPOSE 3000
# Every service touches HEALTH_FILE every 5 s while connected to NATS; healthy
# while it is fresh. `pingpong healthcheck` checks the same, but a bare python3
# costs ~20 ms against ~0.5 s (a Pi under load would hit the timeout).
# stack.yml checks the proxy with GET /healthz instead.
HEALTHCHECK --interval=5s --timeout=5s --start-period=15s --retries=3 \
    CMD ["python3", "-c", "import os, sys, time; sys.exit(time.time() - os.stat(os.environ['HEALTH_FILE']).st_mtime > 15)"]
# The services handle SIGTERM themselves: drain, finish work in flight, exit 0.
ENTRYPOINT ["pingpong"]
CMD ["proxy"]
