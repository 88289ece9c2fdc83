"""The one Settings object, read from ``VITRINE_*`` environment variables.

Every process (embedded server, signaling node, media worker, CLI) builds its
configuration here, so a deployment is described by one set of variables.
"""

from __future__ import annotations

import ipaddress
import os
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


WORKER_NEVER_USES = {"api_secret", "database_url"}  # kept from `vitrine serve`'s worker processes


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VITRINE_", extra="ignore")

    # Each field's description is the operator's documentation: ``python -m vitrine.core.settings_doc README.md``
    # writes it into the README's configuration table, which has no other source.

    api_key: str = Field(
        default="vitrine", description="API key: the Basic-auth user name, and the `iss` of join tokens"
    )
    api_secret: SecretStr = Field(
        default=SecretStr(""),
        description="API secret: the Basic-auth password; it also signs join tokens (HS256). Servers and"
        " `vitrine token` refuse to run if it is empty, a placeholder or shorter than 32 characters. `serve --dev`"
        " generates one instead",
    )
    redis_url: str | None = Field(
        default=None,
        description="unset: coordination (rooms, workers, locks, presence, events) in this process's memory"
        " (embedded). Set: coordination in Redis, shared by every node; Redis never holds a record. Required by"
        " `vitrine signaling` and `vitrine media`",
    )

    # Records.
    data_dir: str = Field(
        default="var",
        description="the folder of the embedded records database (shops, calls, cases, shows, logs, webhooks),"
        " `vitrine.db` (SQLite), created and migrated on first start. Not used when `VITRINE_DATABASE_URL` is set",
    )
    database_url: SecretStr | None = Field(
        default=None,
        description="the records database in PostgreSQL: `postgresql+asyncpg://user:password@host/db`. Unset:"
        " SQLite in `VITRINE_DATA_DIR`. Several signaling nodes need PostgreSQL. It is a secret: it is logged only"
        " with its password hidden. Run `vitrine db upgrade` before new code starts on it",
    )

    # Listener.
    host: str = Field(
        default="127.0.0.1",
        description="listen address for HTTP, WebSocket, WHIP and WHEP. While `VITRINE_RTC_INTERFACES` is unset, a"
        " loopback host also limits media to 127.0.0.1 (this applies to `vitrine media` as well)",
    )
    port: int = Field(default=7880, description="listen port")
    public_url: str | None = Field(
        default=None,
        description="the URL clients use to reach the server, e.g. `https://video.shop.example`. `POST /v1/tokens`"
        " builds its `ws_url` from it (`wss://` for `https://`). Unset: the request's base URL is used instead",
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="browser origins allowed to call the API (CORS) and to open `/v1/rtc`. If empty, only"
        " same-origin pages may open the WebSocket; `*` allows any origin",
    )

    # Media. Empty ICE servers by default: aiortc's built-in STUN host is on
    # the internet and waiting for it adds seconds to every join.
    ice_servers: list[IceServer] = Field(
        default_factory=list,
        description='STUN/TURN servers for clients, a JSON list of `{"urls": [...], "username": ...,'
        ' "credential": ...}`. Sent in `joined` and in WHIP/WHEP `Link` headers. Empty by default (no internet'
        " STUN lookups)",
    )
    turn_urls: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="TURN server URLs for which each session gets its own expiring TURN REST credential (coturn's"
        " `use-auth-secret`). Requires `VITRINE_TURN_SECRET`",
    )
    turn_secret: SecretStr | None = Field(
        default=None,
        description="coturn's `static-auth-secret`; signs the per-session TURN credentials. Never sent to clients",
    )
    turn_credential_ttl_s: int = Field(
        default=3600, description="how long a session's TURN credential stays valid, in seconds"
    )
    rtc_interfaces: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="addresses to gather media (ICE host) candidates on. Empty means every non-loopback address, or"
        " 127.0.0.1 when the host is loopback. Encoders built on libnice (GStreamer) never reach a loopback address:"
        " for one on the same host, set this to an address of the host (the server's startup warning lists them)",
    )
    rtc_public_ip: str | None = Field(
        default=None, description="address to advertise in place of host-candidate addresses (1:1 NAT)"
    )
    rtc_port_min: int = Field(
        default=0, description="lowest UDP port for media. Set both MIN and MAX, or neither (`0` = any port)"
    )
    rtc_port_max: int = Field(default=0, description="highest UDP port for media")

    # Limits. The HTTP ones apply before any route parses or authenticates a request.
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=64 * 1024,
        description="largest HTTP request body on any route, enforced while it streams in, before parsing or"
        " authentication: a larger one gets `413 message_too_large` and the connection is closed. SDP offers and"
        " shop and product JSON need far less; inspection photos go over the data channel, not HTTP",
    )
    http_read_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="how long a client may take to send a request's headers (`408`, connection closed), or pause"
        " inside its body (`408 request_timeout`)",
    )
    max_connections_per_client: int = Field(
        default=256,
        ge=0,
        description="open connections (WebSockets included) one client address may hold; past it a new connection"
        " gets `503` and is closed. `0`: no cap. Behind a reverse proxy every client has the proxy's address: cap"
        " at the proxy and set `0`. Raise it for a load test from one host",
    )
    max_connections: int = Field(
        default=0,
        ge=0,
        description="all connections together (uvicorn's `limit_concurrency`): past it, new requests get `503`."
        " `0`: no cap",
    )
    max_message_bytes: int = Field(
        default=64 * 1024,
        description="largest WebSocket message accepted; larger ones get `message_too_large`. The transport itself"
        " caps frames at 1 MiB",
    )
    max_sdp_bytes: int = Field(
        default=32 * 1024, description="largest SDP accepted, from WebSocket or as a WHIP/WHEP body"
    )
    max_participants_per_room: int = Field(
        default=50, description="capacity of rooms created by a join token, and the cap on REST defaults"
    )
    max_rooms_per_worker: int = Field(
        default=200, description="rooms one media worker accepts; a full worker is skipped by placement"
    )
    max_tracks_per_participant: int = Field(default=4, description="tracks one participant may publish")
    max_handshakes_per_worker: int = Field(
        default=16,
        ge=1,
        description="joins one media worker connects at once (ICE and DTLS, in Python on one event loop); the"
        " others wait in line, first come first served, and are told (`queued` on `/v1/rtc`; a WHIP/WHEP request"
        " is held). A burst of joins all at once would otherwise starve each other's handshakes",
    )
    join_queue_max: int = Field(
        default=1000,
        ge=0,
        description="joins one media worker holds in line; past it a join is refused with `worker_busy` (WHIP/WHEP:"
        " `503` with `Retry-After`). The line has no time limit: it moves as handshakes end, each within"
        " `VITRINE_HANDSHAKE_TIMEOUT_S`",
    )
    handshake_timeout_s: float = Field(
        default=10.0,
        gt=0,
        description="a join whose connection is not up (ICE and DTLS) this long after the worker started it gives"
        " its place among `VITRINE_MAX_HANDSHAKES_PER_WORKER` to the next in line; the connection itself goes on",
    )
    send_queue_size: int = Field(
        default=256,
        description="outgoing messages queued per WebSocket; a client that falls further behind is disconnected"
        " (with `reconnect`)",
    )
    idle_timeout_s: float = Field(
        default=30.0,
        description="a joined socket that sends nothing for this long is closed (clients ping every 10 s)",
    )
    peer_silence_s: float = Field(
        default=15.0,
        gt=0,
        description="a peer connection nothing arrived from (not even an ICE consent check) for this long is gone:"
        " the worker frees it and the participant's leave is announced, at most 1.25 times this after its last"
        " datagram. A connection that closes or fails is freed at once. Applies to WebSocket, WHIP and WHEP"
        " sessions alike",
    )
    empty_room_grace_s: float = Field(
        default=60.0,
        ge=0,
        description="a room a join token created is removed once nobody has been in it for this long; rooms made"
        " over REST, and those of shows, cases and calls, stay",
    )
    whep_max_per_client: int = Field(
        default=4,
        ge=0,
        description="anonymous WHEP players (`POST /v1/live/{shop}/{show}/whep`) one client address may hold on one"
        " show; past it `429`. `0`: no cap. Behind a reverse proxy every player has the proxy's address",
    )
    whep_new_every_s: float = Field(
        default=1.0,
        ge=0,
        description="one client address starts at most one new anonymous WHEP player per this many seconds; `0`:"
        " no pacing",
    )
    join_timeout_s: float = Field(default=10.0, description="a socket that has not joined within this time is closed")
    token_leeway_s: int = Field(default=60, description="clock-skew leeway when checking a token's `exp`/`nbf`")
    token_default_ttl_s: int = Field(default=6 * 3600, description="token lifetime when none is given (6 h)")
    token_audiences: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="values a join token's optional `aud` claim may name besides `vitrine:join` and"
        " `VITRINE_PUBLIC_URL` (docs/tokens.md). The audiences of Vitrine's other token families (`vitrine:desk`,"
        " ...) are refused here",
    )

    media_workers: int | Literal["auto"] = Field(
        default="auto",
        description="media worker processes `vitrine serve` runs beside signaling, each on a core of its own: `auto`"
        " (one per core this process may use), a number, or `0` for one worker inside the server's process."
        " Calls are placed on the least loaded, and a live show's viewers are spread over all of them. They need"
        " no Redis: `vitrine serve` lends them its own coordination over a private Unix socket, and starts a"
        " worker again if one dies",
    )

    # Scaled mode.
    node_id: str = Field(
        default_factory=lambda: "node-" + secrets.token_hex(4),
        description="this process's id. Names its Redis inbox; a media worker registers as `<node id>-media`",
    )
    worker_heartbeat_s: float = Field(
        default=2.0,
        description="worker heartbeat interval, which is also how often signaling checks for dead workers",
    )
    worker_ttl_s: float = Field(
        default=6.0, description="a worker's registration expires this long after its last heartbeat"
    )
    worker_rpc_timeout_s: float = Field(
        default=10.0, description="how long signaling waits for a worker's reply over Redis"
    )
    participant_lease_s: float = Field(
        default=15.0,
        gt=0,
        description="a participant stays in its room only while its signaling node renews its lease: one whose"
        " node stopped renewing (it died) leaves the room this long after the last renewal, at most one"
        " `VITRINE_PARTICIPANT_LEASE_RENEW_S` later, and frees its place. A node that was only paused for longer"
        " finds its sessions expired and sends them to reconnect",
    )
    participant_lease_renew_s: float = Field(
        default=3.0,
        gt=0,
        description="how often a signaling node renews its participants' leases, and how often one live node"
        " sweeps out the participants whose lease ran out. Keep it well under `VITRINE_PARTICIPANT_LEASE_S`",
    )
    drain_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="a draining worker (`SIGTERM`, `POST /v1/workers/{id}/drain`) stops at the latest this long"
        " after the drain began, closing whatever rooms it still has; it stops sooner, once no room has come back"
        " for `VITRINE_WORKER_TTL_S`. Give containers a stop grace period longer than this",
    )

    # Webhooks to shops.
    webhook_timeout_s: float = Field(default=5.0, gt=0, description="the deadline of one webhook delivery attempt")
    webhook_retry_base_s: float = Field(
        default=1.0,
        gt=0,
        description="the wait before a failed delivery's first retry; it doubles after each failure",
    )
    webhook_retry_max_s: float = Field(
        default=60.0, gt=0, description="the longest wait between two attempts of one delivery"
    )
    webhook_max_attempts: int = Field(
        default=8,
        ge=1,
        description="attempts of one delivery before it is given up and listed at"
        " `GET /v1/shops/{shop}/webhook-failures`",
    )
    webhook_sweep_s: float = Field(
        default=2.0,
        gt=0,
        description="how often each process looks for queued webhook events to send, its own and those a dead"
        " process left",
    )
    # The policy these CIDRs open holes in is ``vitrine.core.netpolicy``.
    webhook_allowed_networks: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="CIDRs webhooks may go to although they are loopback, private, link-local (cloud metadata),"
        " CGNAT, multicast or unspecified, e.g. `10.0.0.0/8,127.0.0.1/32`. Empty: such targets are refused when"
        " set (`422 url_not_allowed`) and at every delivery (by the addresses the name resolves to)",
    )

    # Consult desk.
    consult_ring_timeout_s: float = Field(
        default=20.0,
        description="how long an agent's console rings before the next agent is tried; the agent who missed it is"
        " set away",
    )
    consult_reconnect_grace_s: float = Field(
        default=20.0,
        description="how long a shopper's or agent's desk socket may be gone before their place in the queue or"
        " their call is given up",
    )
    consult_max_queue: int = Field(
        default=200, description="shoppers one shop's consult queue holds; past it a new one is refused"
    )
    consult_sweep_s: float = Field(
        default=0.5, description="how often each node checks its shops' rings, waits and reconnect graces"
    )

    # Live selling and after-sales inspection.
    recordings_dir: str = Field(
        default="var/recordings",
        description="where media workers write recordings (shows, inspections while they run), remuxed, never"
        " transcoded. In scaled mode, storage that every media worker and signaling node shares",
    )
    evidence_dir: str = Field(
        default="var/evidence",
        description="inspection evidence: one folder per case with its recording, photos, snapshots and exports."
        " Shared storage in scaled mode",
    )
    inspect_max_photo_bytes: int = Field(
        default=40 * 1024 * 1024,
        ge=1024,
        description="the largest photo a buyer's phone may send over the data channel (40 MiB)",
    )
    evidence_key_file: str | None = Field(
        default=None,
        description="an Ed25519 private key (PEM) that signs evidence manifests. Unset: a key derived from"
        " `VITRINE_API_SECRET`, so every node signs with the same key and none is stored",
    )
    evidence_sweep_s: float = Field(
        default=3600.0,
        gt=0,
        description="how often cases past their shop's `evidence_retention_days` are deleted",
    )

    log_level: Literal["debug", "info", "warning", "error"] = Field(
        default="info", description="the lowest level logged"
    )
    log_format: Literal["text", "json"] = Field(
        default="text",
        description="`text`: one line per record, for a terminal; `json`: one object per line with node, request,"
        " room and participant ids, for a log pipeline (docs/operations.md)",
    )
    worker_metrics_port: int = Field(
        default=9464,
        ge=0,
        le=65535,
        description="the port on which a scaled media worker (`vitrine media`) serves Prometheus `/metrics`, on"
        " `VITRINE_HOST`; `0`: not served. Workers sharing a host need one port each. Signaling serves its own on"
        " its HTTP port",
    )

    @field_validator("ice_servers", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return [] if isinstance(value, str) and not value.strip() else value

    @field_validator(
        "allowed_origins", "rtc_interfaces", "turn_urls", "webhook_allowed_networks", "token_audiences", mode="before"
    )
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

    @field_validator("token_audiences")
    @classmethod
    def _join_audiences(cls, value: list[str]) -> list[str]:
        """A console or inspection-link audience here would let those tokens in as join tokens: refuse it."""
        for audience in value:
            if audience.startswith("vitrine:") and audience != "vitrine:join":
                raise ValueError(f"{audience!r} is reserved for Vitrine's own tokens")
        return value

    @model_validator(mode="after")
    def _check_ports(self) -> Settings:
        if (self.rtc_port_min == 0) != (self.rtc_port_max == 0):
            raise ValueError("set both VITRINE_RTC_PORT_MIN and VITRINE_RTC_PORT_MAX, or neither")
        if self.rtc_port_min > self.rtc_port_max:
            raise ValueError("VITRINE_RTC_PORT_MIN must not exceed VITRINE_RTC_PORT_MAX")
        if self.turn_urls and not (self.turn_secret and self.turn_secret.get_secret_value()):
            raise ValueError("VITRINE_TURN_URLS needs VITRINE_TURN_SECRET to mint credentials")
        if self.participant_lease_renew_s >= self.participant_lease_s:
            raise ValueError("VITRINE_PARTICIPANT_LEASE_RENEW_S must be shorter than VITRINE_PARTICIPANT_LEASE_S")
        if not self.rtc_interfaces and self.host in LOOPBACK_HOSTS:
            # A server only reachable on loopback offers media on loopback too.
            self.rtc_interfaces = ["127.0.0.1"]
        return self

    @field_validator("media_workers")
    @classmethod
    def _workers(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value < 0:
            raise ValueError("VITRINE_MEDIA_WORKERS is `auto`, 0 or more")
        return value

    def worker_processes(self) -> int:
        """How many media worker processes `vitrine serve` runs (0: its worker is in its own process)."""
        if self.media_workers == "auto":
            usable = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else range(os.cpu_count() or 1)
            return max(1, len(usable))
        return self.media_workers

    def for_worker_process(self, node_id: str) -> dict[str, object]:
        """These settings, as a worker process of `vitrine serve` runs with them (``Settings.model_validate`` takes
        them back): its own node id, no metrics port (the server's ``/metrics`` shows its workers'), and without
        the API secret and the database URL, which a media worker never uses."""
        values = {
            name: value.get_secret_value() if isinstance(value, SecretStr) else value
            for name, value in self.model_dump(exclude=WORKER_NEVER_USES).items()
        }
        return {**values, "node_id": node_id, "worker_metrics_port": 0, "media_workers": 0}

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
