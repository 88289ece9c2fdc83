# One image for every Vitrine role: `serve` (embedded), `signaling`, `media`, `token`.
#   docker build -t vitrine .
#   docker run --rm -e VITRINE_API_SECRET=... -p 7880:7880 vitrine serve
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
RUN pip install . && rm -rf /build

RUN useradd --system --uid 10001 --home-dir /nonexistent --shell /usr/sbin/nologin vitrine \
    && mkdir -p /var/lib/vitrine && chown vitrine /var/lib/vitrine
# Records (the embedded SQLite default), evidence and recordings: mount a volume here.
ENV VITRINE_DATA_DIR=/var/lib/vitrine \
    VITRINE_EVIDENCE_DIR=/var/lib/vitrine/evidence \
    VITRINE_RECORDINGS_DIR=/var/lib/vitrine/recordings
VOLUME /var/lib/vitrine
USER vitrine
WORKDIR /tmp

# In a container, listen on every interface: the loopback default would also
# confine media candidates to 127.0.0.1 (see vitrine/core/config.py).
ENV VITRINE_HOST=0.0.0.0 \
    VITRINE_PORT=7880
EXPOSE 7880

ENTRYPOINT ["vitrine"]
CMD ["serve"]
