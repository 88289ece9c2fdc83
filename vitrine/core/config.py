"""The one Settings object, read from ``VITRINE_*`` environment variables.

Every process (embedded server, signaling node, media worker, CLI) builds its
configuration here, so a deployment is described by one set of variables.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Annotated, Literal

from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

PLACEHOLDER_SECRETS = frozenset({"", "changeme", "change-me", "secret", "devsecret", "vitrine"})
MIN_SECRET_LENGTH = 32
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class IceServer(BaseModel):
    """One STUN or TURN server, in the browser's ``RTCIceServer`` shape."""

    urls: list[str]
    username: str | None = None
    credential: str | None = None


class InsecureSettingsError(RuntimeError):
    """Raised when a server would start with a missing or placeholder secret."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VITRINE_", extra="ignore")

    # Credentials of the server API; the secret also signs join tokens.
    api_key: str = "vitrine"
    api_secret: SecretStr = SecretStr("")

    # Coordination (rooms, presence, workers, locks, pub/sub). Absent: this process's memory (embedded).
    # Present: Redis, shared by every node of a scaled deployment. Never holds a record.
    redis_url: str | None = None

    # Records (shops, calls, cases, shows, logs, webhooks). By default an SQLite file in ``data_dir``
    # (``./var/vitrine.db``), created and migrated on first start. A scaled deployment with several
    # signaling nodes sets a PostgreSQL URL (``postgresql+asyncpg://user:password@host/db``) and runs
    # ``vitrine db upgrade`` before starting new code.
    data_dir: str = "var"
    database_url: SecretStr | None = None

    # HTTP, WebSocket, WHIP and WHEP share one listener.
    host: str = "127.0.0.1"
    port: int = 7880
    public_url: str | None = None  # as clients reach it, e.g. https://video.shop.example
    allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Media. Empty ICE servers by default: aiortc's built-in STUN host is on
    # the internet and waiting for it adds seconds to every join.
    ice_servers: list[IceServer] = Field(default_factory=list)
    # TURN REST (coturn use-auth-secret): each session gets its own expiring credential.
    turn_urls: Annotated[list[str], NoDecode] = Field(default_factory=list)
    turn_secret: SecretStr | None = None
    turn_credential_ttl_s: int = 3600
    rtc_interfaces: Annotated[list[str], NoDecode] = Field(default_factory=list)
    rtc_public_ip: str | None = None
    rtc_port_min: int = 0
    rtc_port_max: int = 0

    # Limits.
    # HTTP, before any route parses or authenticates a request: the largest request body (SDP offers, shop and
    # product JSON need far less; inspection photos go over the data channel), how long a client may take to
    # send a request's headers (and may pause within its body), the connections one client address may hold
    # open (0: no cap; behind a reverse proxy every client has the proxy's address: cap there instead), and
    # all connections together (uvicorn's limit_concurrency: over it, new requests get 503; 0: no cap).
    max_body_bytes: int = Field(default=1024 * 1024, ge=64 * 1024)
    http_read_timeout_s: float = Field(default=10.0, gt=0)
    max_connections_per_client: int = Field(default=256, ge=0)
    max_connections: int = Field(default=0, ge=0)
    max_message_bytes: int = 64 * 1024
    max_sdp_bytes: int = 32 * 1024
    max_participants_per_room: int = 50
    max_rooms_per_worker: int = 200
    max_tracks_per_participant: int = 4
    send_queue_size: int = 256
    idle_timeout_s: float = 30.0
    # A peer connection nothing (STUN consent checks included) arrived from for this long is gone: the
    # worker frees it and its leave is announced, at most 1.25 times this after its last datagram.
    peer_silence_s: float = Field(default=15.0, gt=0)
    # A room a join token created is removed once nobody has been in it for this long (rooms of the REST API
    # and of records, a show's, a case's, a call's, stay).
    empty_room_grace_s: float = Field(default=60.0, ge=0)
    # A show's anonymous WHEP players (no credentials): at most this many at once from one client address
    # (0: no cap; behind a reverse proxy every player has the proxy's address), and at most one new one per
    # this many seconds from that address.
    whep_max_per_client: int = Field(default=4, ge=0)
    whep_new_every_s: float = Field(default=1.0, ge=0)
    join_timeout_s: float = 10.0
    token_leeway_s: int = 60
    token_default_ttl_s: int = 6 * 3600

    # Scaled mode.
    node_id: str = Field(default_factory=lambda: "node-" + secrets.token_hex(4))
    worker_heartbeat_s: float = 2.0
    worker_ttl_s: float = 6.0
    worker_rpc_timeout_s: float = 10.0
    # A draining worker (SIGTERM, or POST /v1/workers/{id}/drain) stops at the latest this long after it began,
    # whatever rooms it still has; it stops sooner once no room has come back for one worker TTL.
    drain_timeout_s: float = Field(default=30.0, gt=0)

    # Webhooks to shops: one request's deadline, then exponential backoff from base to max between
    # attempts; after max_attempts the event is dead-lettered. The sweep picks up events left by
    # any process (scaled mode: another node may have died holding them).
    webhook_timeout_s: float = Field(default=5.0, gt=0)
    webhook_retry_base_s: float = Field(default=1.0, gt=0)
    webhook_retry_max_s: float = Field(default=60.0, gt=0)
    webhook_max_attempts: int = Field(default=8, ge=1)
    webhook_sweep_s: float = Field(default=2.0, gt=0)
    # Webhooks never go to loopback, private, link-local (cloud metadata), CGNAT, multicast or unspecified
    # addresses (``vitrine.core.netpolicy``), unless inside one of these CIDRs, e.g. "10.0.0.0/8,127.0.0.1/32".
    webhook_allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Consult desk: how long an agent's console rings before the next agent is tried, how long a
    # shopper's or agent's socket may be gone before their place or call is given up, and the queue cap.
    consult_ring_timeout_s: float = 20.0
    consult_reconnect_grace_s: float = 20.0
    consult_max_queue: int = 200
    consult_sweep_s: float = 0.5

    # Live selling: where media workers write show recordings (remuxed, never transcoded). In scaled
    # mode it must be storage that every media worker and signaling node shares.
    recordings_dir: str = "var/recordings"

    # After-sales inspection: where each case's evidence (recording, photos, snapshots, exports) is kept
    # (shared storage in scaled mode, like recordings), the largest photo a buyer's phone may send over the
    # data channel, and the key that signs evidence manifests: an Ed25519 private key in PEM, or, when
    # unset, one derived from the API secret (so every node signs with the same key and none is stored).
    evidence_dir: str = "var/evidence"
    inspect_max_photo_bytes: int = Field(default=40 * 1024 * 1024, ge=1024)
    evidence_key_file: str | None = None
    evidence_sweep_s: float = Field(default=3600.0, gt=0)  # how often expired cases are deleted

    log_level: Literal["debug", "info", "warning", "error"] = "info"

    @field_validator("ice_servers", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return [] if isinstance(value, str) and not value.strip() else value

    @field_validator("allowed_origins", "rtc_interfaces", "turn_urls", "webhook_allowed_networks", mode="before")
    @classmethod
    def _split_csv(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"not a CIDR network: {cidr!r}") from exc
        return value

    @model_validator(mode="after")
    def _check_ports(self) -> Settings:
        if (self.rtc_port_min == 0) != (self.rtc_port_max == 0):
            raise ValueError("set both VITRINE_RTC_PORT_MIN and VITRINE_RTC_PORT_MAX, or neither")
        if self.rtc_port_min > self.rtc_port_max:
            raise ValueError("VITRINE_RTC_PORT_MIN must not exceed VITRINE_RTC_PORT_MAX")
        if self.turn_urls and not (self.turn_secret and self.turn_secret.get_secret_value()):
            raise ValueError("VITRINE_TURN_URLS needs VITRINE_TURN_SECRET to mint credentials")
        if not self.rtc_interfaces and self.host in LOOPBACK_HOSTS:
            # A server only reachable on loopback offers media on loopback too.
            self.rtc_interfaces = ["127.0.0.1"]
        return self

    @property
    def secret_bytes(self) -> bytes:
        return self.api_secret.get_secret_value().encode()

    def secret_is_weak(self) -> bool:
        value = self.api_secret.get_secret_value()
        return value.lower() in PLACEHOLDER_SECRETS or len(value) < MIN_SECRET_LENGTH

    def require_strong_secret(self) -> None:
        """Refuse to serve with a default secret: tokens signed with it are forgeable."""
        if self.secret_is_weak():
            raise InsecureSettingsError(
                "VITRINE_API_SECRET is missing, a placeholder, or shorter than "
                f"{MIN_SECRET_LENGTH} characters. Set a random secret "
                "(python -c 'import secrets; print(secrets.token_urlsafe(32))') "
                "or start with --dev to generate a throwaway one."
            )

    def with_dev_secret(self) -> tuple[Settings, str | None]:
        """Return settings with a generated secret when the configured one is weak."""
        if not self.secret_is_weak():
            return self, None
        generated = secrets.token_urlsafe(32)
        return self.model_copy(update={"api_secret": SecretStr(generated)}), generated
