# One image for every Vitrine role: `serve` (embedded), `signaling`, `media`, `db upgrade`, `token`, `loadtest`.
#   docker build -t vitrine .
#   docker run --rm -e VITRINE_API_SECRET=... -p 7880:7880 vitrine serve
#   docker run --rm --network host vitrine loadtest run --url https://video.shop.example \
#       --api-key KEY --api-secret SECRET --scenario live --viewers 50 --json /tmp/report.json
# (docs/deployment.md; tests/test_deploy_manifests.py builds the wheel this installs and runs it.)
# Media uses UDP: in containers, run media workers with host networking (see
# docker-compose.yml) or publish VITRINE_RTC_PORT_MIN..MAX/udp and set VITRINE_RTC_PUBLIC_IP.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package needs (no .venv, .git or test artifacts in the image).
WORKDIR /build
COPY pyproject.toml README.md ./
COPY vitrine ./vitrine
COPY signaling ./signaling
COPY media ./media
COPY web ./web
# The load tester (`vitrine loadtest`, `python -m loadtest`) ships in the same wheel.
COPY loadtest ./loadtest
RUN pip install . && rm -rf /build

RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin vitrine \
    && mkdir -p /var/lib/vitrine && chown vitrine /var/lib/vitrine
# Records (the embedded SQLite default), evidence and recordings: mount a volume here.
ENV VITRINE_DATA_DIR=/var/lib/vitrine \
    VITRINE_EVIDENCE_DIR=/var/lib/vitrine/evidence \
    VITRINE_RECORDINGS_DIR=/var/lib/vitrine/recordings
VOLUME /var/lib/vitrine
# Numeric, so that Kubernetes' runAsNonRoot can check it without reading /etc/passwd.
USER 10001
WORKDIR /tmp

# In a container, listen on every interface: the loopback default would also
# confine media candidates to 127.0.0.1 (see vitrine/core/config.py).
ENV VITRINE_HOST=0.0.0.0 \
    VITRINE_PORT=7880
# 7880: HTTP, WebSocket, WHIP, WHEP and signaling's /metrics. 9464: a media worker's /metrics
# (VITRINE_WORKER_METRICS_PORT). Media itself is UDP in VITRINE_RTC_PORT_MIN..MAX (see above).
EXPOSE 7880 9464

ENTRYPOINT ["vitrine"]
CMD ["serve"]
