# One image for both programs; the command picks which runs:
#   docker run … IMAGE cloud-relay run
#   docker run … IMAGE edge-agent run
# Settings: mount a file over /etc/<program>/<agent|relay>.toml, or pass <PREFIX>__SECTION__KEY
# environment variables. State lives in the volume /var/lib/<program>. See README.md.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md ./
COPY wire wire
COPY runtime runtime
COPY agent agent
COPY cloud_relay cloud_relay
# Every dependency ships wheels for this platform: no compiler in the image, ever.
RUN /opt/venv/bin/pip install --only-binary=:all: '.[all]' \
    && /opt/venv/bin/pip uninstall --yes pip setuptools

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 plant-link \
    && useradd --system --uid 10001 --gid plant-link --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin plant-link \
    && install -d -o plant-link -g plant-link -m 0750 /var/lib/edge-agent /var/lib/cloud-relay
COPY --from=build /opt/venv /opt/venv
# The documented defaults, as a starting point (the relay's runs as is, on SQLite).
COPY config/agent.example.toml /etc/edge-agent/agent.toml
COPY config/relay.example.toml /etc/cloud-relay/relay.toml
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CLOUD_RELAY__SERVER__LISTEN=0.0.0.0:8080
# The relay's API (on 0.0.0.0 /metrics and /openapi.json ask for the metrics or admin token,
# and `cloud-relay run` refuses to start with neither set); the agent's health page (which
# needs a token off loopback too).
EXPOSE 8080 8787
VOLUME ["/var/lib/edge-agent", "/var/lib/cloud-relay"]
USER 10001:10001
# /healthz of whichever program runs (PID 1, or docker-init's child): 503 (red) is unhealthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 CMD ["python", "-c", "\
import os, urllib.request; \
agent = b'edge-agent' in open('/proc/1/cmdline', 'rb').read(); \
listen = os.environ.get('EDGE_AGENT__HEALTH__LISTEN', '127.0.0.1:8787') if agent \
    else os.environ.get('CLOUD_RELAY__SERVER__LISTEN', '127.0.0.1:8080'); \
urllib.request.urlopen(f'http://127.0.0.1:{listen.rpartition(\":\")[2]}/healthz', timeout=4)"]
CMD ["cloud-relay", "--help"]
