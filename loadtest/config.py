"""A load-test run, described and validated once: the CLI builds it, the runner and workers read it."""

from __future__ import annotations

import ipaddress
import math
import os
from dataclasses import asdict, dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

SCENARIOS = ("consult", "live", "inspection")
SHAPES = ("burst", "ramp")
DIRECTIONS = ("both", "down", "up")
IMPAIR_MODES = ("userspace", "kernel")  # in each client's process, or nftables on a netns link (loadtest/netns.py)
SOURCES = ("preencoded", "live")  # publishers' media: replayed pre-encoded packets, or live encoders
TRANSPORTS = ("ws", "whip")  # how clients join: the WebSocket protocol, or WHIP (publish) + WHEP (watch)
CLIENTS_PER_WORKER = 25  # --workers auto: one process per this many clients (a join costs ~2 ms of loop time)
MAX_CLIENTS = 5000
MAX_WORKERS = 64
MAX_DURATION_S = 3600.0


class ConfigError(ValueError):
    """A run that cannot be started as described; the message says what to change."""


@dataclass(frozen=True)
class ImpairmentConfig:
    """One point of impairment, applied to each impaired client's link (loss in percent)."""

    loss_pct: float = 0.0
    burst: float = 1.0
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    bandwidth_kbps: float = 0.0
    direction: str = "both"
    clients: int | None = None  # how many clients are impaired (None: all)
    seed: int = 1
    mode: str = "userspace"  # kernel: random loss only, applied by the runner's KernelLink, not per client

    @property
    def active(self) -> bool:
        return bool(self.loss_pct or self.delay_ms or self.jitter_ms or self.bandwidth_kbps)

    def link(self, client_index: int) -> Any:
        """The ``LinkImpairment`` for one client (seeded per client), or None when unimpaired or in kernel mode."""
        from loadtest.impair import Impairment, LinkImpairment

        if self.mode == "kernel" or not self.active or (self.clients is not None and client_index >= self.clients):
            return None
        spec = Impairment(
            loss=self.loss_pct / 100.0,
            burst=self.burst,
            delay_ms=self.delay_ms,
            jitter_ms=self.jitter_ms,
            rate_kbps=self.bandwidth_kbps,
        )
        none = Impairment()
        return LinkImpairment(
            down=spec if self.direction in ("both", "down") else none,
            up=spec if self.direction in ("both", "up") else none,
            seed=self.seed * 1_000_003 + client_index,
        )


@dataclass(frozen=True)
class SloConfig:
    join_p95_ms: float = 600.0
    max_failure_pct: float = 1.0
    min_delivered_pct: float | None = None
    max_freeze_pct: float | None = None  # freeze time as a share of the watched time


@dataclass(frozen=True)
class RunConfig:
    scenario: str = "consult"
    embedded: bool = False
    media_workers: int = 0  # with ``embedded``: scaled mode, signaling and this many ``vitrine media`` on a Redis
    url: str | None = None
    api_key: str | None = None
    api_secret: str | None = None
    pairs: int = 1
    viewers: int = 0
    shape: str = "burst"
    join_rate: float = 10.0  # joins per second, for --shape ramp
    duration_s: float = 10.0
    workers: int | None = None
    join_timeout_s: float = 20.0
    losses_pct: tuple[float, ...] = (0.0,)  # several values: a sweep, one run per value
    impairment: ImpairmentConfig = field(default_factory=ImpairmentConfig)
    video_width: int = 320
    video_height: int = 240
    fps: float = 30.0  # aiortc's VideoStreamTrack paces at 30 fps: not yet configurable
    audio: bool = True
    source: str = "preencoded"
    transport: str = "ws"
    rtc_interfaces: tuple[str, ...] = ()
    json_path: str | None = None
    markdown_path: str | None = None
    plots_dir: str | None = None
    progress: bool = True
    slo: SloConfig = field(default_factory=SloConfig)

    # -- derived -------------------------------------------------------------------

    @property
    def is_sweep(self) -> bool:
        return len(self.losses_pct) > 1

    @property
    def client_count(self) -> int:
        if self.scenario == "live":
            return 1 + self.viewers
        return 2 * self.pairs

    @property
    def worker_count(self) -> int:
        if self.workers:
            return self.workers
        auto = math.ceil(self.client_count / CLIENTS_PER_WORKER)
        return max(1, min(auto, os.cpu_count() or 1, MAX_WORKERS))

    @property
    def ramp_span_s(self) -> float:
        """Seconds from the first to the last join start of the main phase."""
        if self.shape == "burst":
            return 0.0
        joiners = self.viewers if self.scenario == "live" else self.client_count
        return max(0, joiners - 1) / self.join_rate

    def point(self, loss_pct: float) -> RunConfig:
        """This configuration with one loss value (one point of a sweep)."""
        return replace(self, losses_pct=(loss_pct,), impairment=replace(self.impairment, loss_pct=loss_pct))

    def interfaces(self) -> list[str]:
        """ICE host-candidate interfaces for harness clients: loopback for a local target."""
        if self.rtc_interfaces:
            return list(self.rtc_interfaces)
        if self.embedded or _is_loopback(self.url or ""):
            return ["127.0.0.1"]
        return []

    def public_dict(self) -> dict[str, Any]:
        """The configuration as the report shows it: no secret."""
        data = asdict(self)
        data["api_secret"] = "***" if self.api_secret else None
        data["losses_pct"] = list(self.losses_pct)
        data["rtc_interfaces"] = list(self.rtc_interfaces)
        data["clients"] = self.client_count
        data["workers"] = self.worker_count
        return data

    # -- validation ------------------------------------------------------------------

    def validate(self) -> RunConfig:
        problems: list[str] = []
        if self.scenario not in SCENARIOS:
            problems.append(f"--scenario must be one of {', '.join(SCENARIOS)}")
        if self.embedded == bool(self.url):
            problems.append("give exactly one target: --embedded or --scaled N (start a server here) or --url URL")
        if self.media_workers < 0:
            problems.append("--scaled needs a number of media workers, at least 1")
        if self.media_workers and self.impairment.mode == "kernel":
            problems.append("--impair-mode kernel runs an embedded server only, not --scaled")
        if self.url:
            parts = urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                problems.append(f"--url must look like http://host:port, not {self.url!r}")
            if not self.api_key or not self.api_secret:
                problems.append("--url needs --api-key and --api-secret (or VITRINE_API_KEY/VITRINE_API_SECRET)")
        if self.scenario in ("consult", "inspection") and not 1 <= self.pairs <= MAX_CLIENTS // 2:
            problems.append(f"--pairs must be between 1 and {MAX_CLIENTS // 2}")
        if self.scenario == "live" and not 1 <= self.viewers < MAX_CLIENTS:
            problems.append(f"--scenario live needs --viewers between 1 and {MAX_CLIENTS - 1}")
        if self.shape not in SHAPES:
            problems.append(f"--shape must be one of {', '.join(SHAPES)}")
        if not 0 < self.join_rate <= 10_000:
            problems.append("--join-rate must be a positive number of joins per second")
        if not 0 < self.duration_s <= MAX_DURATION_S:
            problems.append(f"--duration must be in (0, {MAX_DURATION_S:.0f}] seconds")
        if self.workers is not None and not 1 <= self.workers <= MAX_WORKERS:
            problems.append(f"--workers must be between 1 and {MAX_WORKERS}")
        if not 1 <= self.join_timeout_s <= 600:
            problems.append("--join-timeout must be between 1 and 600 seconds")
        if not self.losses_pct or len(self.losses_pct) > 20:
            problems.append("--loss takes 1 to 20 comma-separated percentages")
        for loss in self.losses_pct:
            if not 0 <= loss < 100:
                problems.append(f"--loss {loss}: each loss must be in [0, 100) percent")
        imp = self.impairment
        if imp.burst < 1:
            problems.append("--burst is a mean loss-burst length in packets: at least 1")
        if min(imp.delay_ms, imp.jitter_ms, imp.bandwidth_kbps) < 0:
            problems.append("--delay, --jitter and --bandwidth must not be negative")
        if imp.direction not in DIRECTIONS:
            problems.append(f"--impair-direction must be one of {', '.join(DIRECTIONS)}")
        if imp.clients is not None and imp.clients < 0:
            problems.append("--impair-clients must not be negative")
        if imp.mode not in IMPAIR_MODES:
            problems.append(f"--impair-mode must be one of {', '.join(IMPAIR_MODES)}")
        if imp.mode == "kernel":
            problems.extend(self._kernel_mode_problems())
        if self.source not in SOURCES:
            problems.append(f"--source must be one of {', '.join(SOURCES)}")
        if self.transport not in TRANSPORTS:
            problems.append(f"--transport must be one of {', '.join(TRANSPORTS)}")
        if not (16 <= self.video_width <= 1920 and 16 <= self.video_height <= 1080):
            problems.append("--video-size must be between 16x16 and 1920x1080")
        for address in self.rtc_interfaces:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                problems.append(f"--rtc-interface {address!r} is not an IP address")
        slo = self.slo
        if slo.join_p95_ms <= 0:
            problems.append("--slo-join-p95 must be positive (milliseconds)")
        if not 0 <= slo.max_failure_pct <= 100:
            problems.append("--slo-max-failures must be a percentage")
        for name, value in (("--slo-min-delivered", slo.min_delivered_pct), ("--slo-max-freeze", slo.max_freeze_pct)):
            if value is not None and not 0 <= value <= 100:
                problems.append(f"{name} must be a percentage")
        if problems:
            raise ConfigError("; ".join(problems))
        return self

    def _kernel_mode_problems(self) -> list[str]:
        """Kernel mode is nftables random drop on one namespace link shared by every client, next to a local server."""
        imp = self.impairment
        problems = []
        if not self.embedded:
            problems.append(
                "--impair-mode kernel needs --embedded: the server must listen on the host side of "
                "the veth pair the harness creates, which a server reached by --url does not"
            )
        unsupported = [
            name
            for name, used in (
                ("--burst", imp.burst != 1),
                ("--delay", imp.delay_ms),
                ("--jitter", imp.jitter_ms),
                ("--bandwidth", imp.bandwidth_kbps),
            )
            if used
        ]
        if unsupported:
            problems.append(
                f"--impair-mode kernel applies random loss only (nftables numgen; this kernel has no "
                f"tc netem): leave out {', '.join(unsupported)}, or use --impair-mode userspace"
            )
        if imp.clients is not None:
            problems.append(
                "--impair-clients needs --impair-mode userspace: in kernel mode every client "
                "shares the namespace's one link"
            )
        if self.rtc_interfaces:
            problems.append(
                "--rtc-interface does not combine with --impair-mode kernel: the clients gather "
                "candidates on their namespace address, which the harness picks"
            )
        return problems


def _is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parse_losses(text: str) -> tuple[float, ...]:
    """ "10" or "0,2,5,10" (percent) to a tuple of floats."""
    try:
        values = tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(f"--loss takes percentages like 10 or 0,2,5,10, not {text!r}") from None
    if not values:
        raise ConfigError("--loss needs at least one value")
    return values
