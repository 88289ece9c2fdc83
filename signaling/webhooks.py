"""Webhook delivery: each shop's outbox drained in order, signed, retried, dead-lettered.

``emit`` only appends to the outbox (``vitrine.core.records.outbox``) and wakes the shop's delivery
loop, so the caller never waits on a shop's server and an event is stored before anything is
sent. Called inside a unit of work (``vitrine.core.records.database.Database.unit``), the event is
committed in the same transaction as the record it tells of: a crash keeps both or neither.
One loop per shop, one event at a time: a room's events reach the shop in ``seq`` order.
Delivery is at least once (a receiver that answers 2xx too late sees a retry): receivers
dedupe on the event id.

The lease ``webhooks:<shop>`` (``vitrine.core.state.locks``, a Redis lock in scaled mode) is taken per
event for the longest that event's retries can last, so across processes only one loop sends a
shop's events; the periodic sweep of ``pending_shops()`` resumes the events of a process that died
(the outbox is a record: a restart resumes it too).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import httpx

from signaling.metrics import METRICS
from signaling.state import State
from signaling.webhook_targets import webhook_transport
from vitrine import __version__
from vitrine.core.config import Settings
from vitrine.core.shops import Shop
from vitrine.core.tasks import stop_tasks
from vitrine.core.webhooks import SIGNATURE_HEADER, WebhookEvent, WebhookType, sign, webhook_key

logger = logging.getLogger(__name__)

USER_AGENT = f"Vitrine-Webhooks/{__version__}"
MAX_REASON_CHARS = 200


def backoff_s(settings: Settings, failed_attempts: int) -> float:
    """Wait after the ``failed_attempts``-th failure: base, 2 x base, 4 x base, ... capped at max."""
    return min(settings.webhook_retry_base_s * 2 ** (failed_attempts - 1), settings.webhook_retry_max_s)


def lease_ms(settings: Settings) -> int:
    """How long one event can take with every retry: the lease must outlast it or two nodes could send."""
    attempts = settings.webhook_max_attempts
    waits = sum(backoff_s(settings, failed) for failed in range(1, attempts))
    return int((waits + attempts * (settings.webhook_timeout_s + 1.0) + 10.0) * 1000)


class WebhookDispatcher:
    def __init__(self, settings: Settings, state: State) -> None:
        self._settings, self._state = settings, state
        self._client: httpx.AsyncClient | None = None
        self._loops: dict[str, asyncio.Task[None]] = {}  # shop id -> its running delivery loop
        self._woken: set[str] = set()  # shops with events appended since their loop last looked
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = False
        self._lease_ms = lease_ms(settings)

    async def start(self) -> None:
        # No redirects: a 3xx is a failed attempt, never a request to a host the operator did not set.
        # Every connection goes to a public address, or one the operator allowed (``signaling.webhook_targets``).
        self._client = httpx.AsyncClient(
            follow_redirects=False,
            timeout=self._settings.webhook_timeout_s,
            headers={"User-Agent": USER_AGENT},
            transport=webhook_transport(self._settings),
        )
        self._sweeper = asyncio.create_task(self._sweep())

    async def stop(self) -> None:
        """Stop sending; queued events stay in the outbox (on Redis, for the next process)."""
        self._stopping = True
        await stop_tasks(self._sweeper, *self._loops.values())  # loops release their leases on the way out
        if self._client is not None:
            await self._client.aclose()

    async def emit(self, shop: Shop, type: WebhookType | str, room: str, data: dict[str, Any]) -> WebhookEvent | None:
        """Queue an event for ``shop`` and return it with its ``seq``; None (nothing stored) without a webhook_url.

        Raises if the outbox cannot store it (e.g. Redis is down, or ``data`` is not JSON).
        """
        if not shop.webhook_url:
            return None
        event = WebhookEvent(type=WebhookType(type), shop=shop.id, room=room, data=data)
        event.model_dump_json()  # fail here, not in the delivery loop, on data that is not JSON
        stored = await self._state.records.outbox.append(event)
        # Inside the caller's unit of work (``Database.unit``) the event commits with the record it tells
        # of; the shop's loop is woken after that commit, or it could look before the event is visible.
        self._state.records.db.after_commit(lambda: self._wake(shop.id))
        return stored

    def _wake(self, shop_id: str) -> None:
        if self._stopping:
            return
        self._woken.add(shop_id)
        task = self._loops.get(shop_id)
        if task is None or task.done():
            task = self._loops[shop_id] = asyncio.create_task(self._drain(shop_id))
            task.add_done_callback(lambda done: self._loops.pop(shop_id) if self._loops.get(shop_id) is done else None)

    async def _sweep(self) -> None:
        while True:
            try:
                for shop_id in await self._state.records.outbox.pending_shops():
                    self._wake(shop_id)
            except Exception:
                logger.exception("webhook sweep failed")
            await asyncio.sleep(self._settings.webhook_sweep_s)

    async def _drain(self, shop_id: str) -> None:
        """Deliver the shop's events until its outbox is empty, or another process holds its lease."""
        lock = f"webhooks:{shop_id}"
        try:
            while True:
                self._woken.discard(shop_id)  # an emit during the peek below sets it again: look once more
                token = await self._state.locks.acquire(lock, self._lease_ms)
                if token is None:
                    return  # another process delivers this shop; the sweep retries if it dies
                try:
                    event = await self._state.records.outbox.peek(shop_id)
                    if event is not None:
                        await self._deliver(shop_id, event)
                finally:
                    with contextlib.suppress(Exception):
                        await self._state.locks.release(lock, token)
                if event is None and shop_id not in self._woken:
                    return
        except Exception:
            logger.exception("webhook delivery loop of shop %s failed; the sweep restarts it", shop_id)

    async def _deliver(self, shop_id: str, event: WebhookEvent) -> None:
        """Send one event until a 2xx or the last attempt; the shop is re-read before each attempt."""
        body = event.model_dump_json().encode()
        outbox, attempts = self._state.records.outbox, self._settings.webhook_max_attempts
        reason = "no attempt"
        for attempt in range(1, attempts + 1):
            shop = await self._state.records.shops.get_shop(shop_id)
            if shop is None:
                logger.info("webhook %s (%s) dropped: shop %s is deleted", event.id, event.type, shop_id)
                await outbox.ack(shop_id, event.id)
                return
            if not shop.webhook_url:
                reason = "webhook_url removed"
                break
            failure = await self._attempt(shop, event, body)
            if failure is None:
                METRICS.webhook_deliveries.labels(result="delivered").inc()
                logger.info("webhook %s (%s) delivered to shop %s, attempt %d", event.id, event.type, shop_id, attempt)
                await outbox.ack(shop_id, event.id)
                return
            reason = failure
            if attempt < attempts:
                METRICS.webhook_deliveries.labels(result="retried").inc()
                delay = backoff_s(self._settings, attempt)
                logger.warning(
                    "webhook %s (%s) to shop %s failed (%s), attempt %d of %d; retrying in %.2fs",
                    event.id,
                    event.type,
                    shop_id,
                    reason,
                    attempt,
                    attempts,
                    delay,
                )
                await asyncio.sleep(delay)
        METRICS.webhook_deliveries.labels(result="failed").inc()
        logger.error("webhook %s (%s) to shop %s dead-lettered: %s", event.id, event.type, shop_id, reason)
        await outbox.dead_letter(shop_id, event, reason)
        await outbox.ack(shop_id, event.id)

    async def _attempt(self, shop: Shop, event: WebhookEvent, body: bytes) -> str | None:
        """POST once; None on a 2xx, else why not. Signed with the shop's current key at send time."""
        assert self._client is not None and shop.webhook_url, "started, and only for shops with a URL"
        key = webhook_key(self._settings, shop.id, shop.webhook_key_version)
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: sign(key, body, int(time.time())),
            "Vitrine-Event": event.type.value,
            "Vitrine-Delivery": event.id,
        }
        try:
            # A total deadline: httpx's timeout applies per read, so a trickling server could last forever.
            async with asyncio.timeout(self._settings.webhook_timeout_s):
                # Streamed and never read: the receiver's response body is not needed, however large.
                async with self._client.stream("POST", shop.webhook_url, content=body, headers=headers) as response:
                    status = response.status_code
        except (TimeoutError, httpx.TimeoutException):
            return "timeout"
        except Exception as exc:  # connection refused, TLS, DNS, a malformed response...
            return f"{type(exc).__name__}: {exc}"[:MAX_REASON_CHARS]
        return None if 200 <= status < 300 else f"HTTP {status}"
