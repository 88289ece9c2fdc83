"""Network impairment applied to one client's UDP datagrams: loss, bursts, delay, jitter, a rate cap.

Userspace, so it works anywhere and replays exactly with a seed. Each direction
(``down``: server to client, ``up``: client to server) has its own model and
its own counters, so the loss actually applied can be checked against the loss
asked for.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field


@dataclass(frozen=True)
class Impairment:
    """One direction's impairment. Loss is a fraction (0.1 = 10 %)."""

    loss: float = 0.0
    burst: float = 1.0  # mean loss-burst length in packets; 1 = independent (Bernoulli) loss
    delay_ms: float = 0.0
    jitter_ms: float = 0.0
    rate_kbps: float = 0.0  # 0 = no cap
    queue_ms: float = 300.0  # under a rate cap, packets that would wait longer are dropped

    def __post_init__(self) -> None:
        if not 0.0 <= self.loss < 1.0:
            raise ValueError("loss must be in [0, 1)")
        if self.burst < 1.0:
            raise ValueError("mean burst length must be at least 1 packet")
        if min(self.delay_ms, self.jitter_ms, self.rate_kbps, self.queue_ms) < 0:
            raise ValueError("delay, jitter, rate and queue must not be negative")

    @property
    def is_none(self) -> bool:
        return self.loss == 0 and self.delay_ms == 0 and self.jitter_ms == 0 and self.rate_kbps == 0


class GilbertElliott:
    """Two-state loss: Good loses nothing, Bad loses everything.

    With stationary loss L and mean burst length B: P(Bad→Good) = 1/B and
    P(Good→Bad) = L / (B (1 - L)). B = 1 gives independent loss with rate L.
    """

    def __init__(self, loss: float, burst: float, rng: random.Random) -> None:
        self.rng = rng
        self.loss = loss
        self.p_bad_to_good = 1.0 / burst
        self.p_good_to_bad = loss / (burst * (1.0 - loss)) if loss else 0.0
        self.bad = False

    def drop(self) -> bool:
        if self.p_bad_to_good >= 1.0:
            return self.rng.random() < self.loss
        if self.bad:
            self.bad = self.rng.random() >= self.p_bad_to_good
        else:
            self.bad = self.rng.random() < self.p_good_to_bad
        return self.bad


@dataclass
class DirectionCounters:
    packets: int = 0
    dropped: int = 0
    delayed: int = 0
    queue_drops: int = 0

    @property
    def loss(self) -> float:
        return self.dropped / self.packets if self.packets else 0.0


class DirectionImpairer:
    def __init__(self, spec: Impairment, rng: random.Random) -> None:
        self.spec = spec
        self.rng = rng
        self.loss = GilbertElliott(spec.loss, spec.burst, rng)
        self.counters = DirectionCounters()
        self._link_free_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None

    def process(self, size: int, action: Callable[[], None]) -> None:
        counters = self.counters
        counters.packets += 1
        if self.spec.is_none:
            action()
            return
        if self.loss.drop():
            counters.dropped += 1
            return
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        wait = self.spec.delay_ms / 1000.0
        if self.spec.jitter_ms:
            wait += max(0.0, self.rng.gauss(0.0, self.spec.jitter_ms / 1000.0))
        if self.spec.rate_kbps:
            now = loop.time()
            start = max(now, self._link_free_at)
            if start - now > self.spec.queue_ms / 1000.0:
                counters.dropped += 1
                counters.queue_drops += 1
                return
            self._link_free_at = start + size * 8 / (self.spec.rate_kbps * 1000.0)
            wait += self._link_free_at - now
        if wait <= 0:
            action()
        else:
            counters.delayed += 1
            loop.call_later(wait, action)


@dataclass
class LinkImpairment:
    """Both directions of one client's link, pluggable as a ``media.taps.DatagramHook``."""

    down: Impairment = field(default_factory=Impairment)
    up: Impairment = field(default_factory=Impairment)
    seed: int = 0

    def __post_init__(self) -> None:
        self._down = DirectionImpairer(self.down, random.Random(f"{self.seed}:down"))
        self._up = DirectionImpairer(self.up, random.Random(f"{self.seed}:up"))

    def inbound(self, data: bytes, deliver: Callable[[], None]) -> None:
        self._down.process(len(data), deliver)

    def outbound(self, data: bytes, send: Callable[[], None]) -> None:
        self._up.process(len(data), send)

    @property
    def counters(self) -> dict[str, DirectionCounters]:
        return {"down": self._down.counters, "up": self._up.counters}

    def describe(self) -> dict[str, object]:
        return {"down": asdict(self.down), "up": asdict(self.up), "seed": self.seed}
