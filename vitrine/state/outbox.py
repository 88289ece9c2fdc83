"""The webhook outbox: per-shop FIFO of events to deliver, per-room sequence numbers, dead letters.

Events are written here before any delivery is tried, so an event outlives the process that
emitted it (on Redis) and a shop's events go out one at a time in the order they were appended.
Key layout: ``vitrine.state.keys``.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import Protocol

import redis.asyncio as aioredis

from vitrine.state import keys
from vitrine.webhooks import MAX_FAILURES, WebhookEvent, WebhookFailure


class WebhookOutbox(Protocol):
    async def append(self, event: WebhookEvent) -> WebhookEvent:
        """Give the event the next ``seq`` of its (shop, room) and queue it last; returns what was stored."""

    async def peek(self, shop_id: str) -> WebhookEvent | None:
        """The shop's next event to deliver (the head), without removing it."""

    async def ack(self, shop_id: str, event_id: str) -> None:
        """Remove the head if it is ``event_id``: a late ack of an event already gone removes nothing."""

    async def pending_shops(self) -> list[str]:
        """Shops with at least one queued event."""

    async def dead_letter(self, shop_id: str, event: WebhookEvent, reason: str) -> None:
        """Record an event that could not be delivered; only the last ``MAX_FAILURES`` are kept."""

    async def failures(self, shop_id: str, limit: int) -> list[WebhookFailure]:
        """Dead-lettered events, newest first."""


class MemoryWebhookOutbox:
    def __init__(self) -> None:
        self._queues: dict[str, deque[WebhookEvent]] = defaultdict(deque)
        self._seq: dict[tuple[str, str], int] = defaultdict(int)
        self._dead: dict[str, deque[WebhookFailure]] = defaultdict(lambda: deque(maxlen=MAX_FAILURES))

    async def append(self, event: WebhookEvent) -> WebhookEvent:
        self._seq[event.shop, event.room] += 1
        stored = event.model_copy(update={"seq": self._seq[event.shop, event.room]}, deep=True)
        self._queues[event.shop].append(stored)
        return stored.model_copy(deep=True)

    async def peek(self, shop_id: str) -> WebhookEvent | None:
        queue = self._queues.get(shop_id)
        return queue[0].model_copy(deep=True) if queue else None

    async def ack(self, shop_id: str, event_id: str) -> None:
        queue = self._queues.get(shop_id)
        if queue and queue[0].id == event_id:
            queue.popleft()
        if not queue:
            self._queues.pop(shop_id, None)

    async def pending_shops(self) -> list[str]:
        return sorted(shop_id for shop_id, queue in self._queues.items() if queue)

    async def dead_letter(self, shop_id: str, event: WebhookEvent, reason: str) -> None:
        self._dead[shop_id].appendleft(WebhookFailure(event=event.model_copy(deep=True), reason=reason))

    async def failures(self, shop_id: str, limit: int) -> list[WebhookFailure]:
        return [failure.model_copy(deep=True) for failure in list(self._dead.get(shop_id, ()))[:limit]]


# KEYS: seq hash, outbox. ARGV: room, event JSON before the seq value, after it. One step, so two
# nodes appending to one room can never queue seq 2 before seq 1. The JSON is spliced, not
# re-encoded: cjson would round large numbers in ``data``.
_APPEND = """
local seq = redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('RPUSH', KEYS[2], ARGV[2] .. tostring(seq) .. ARGV[3])
return seq
"""

# KEYS: outbox. ARGV: event id. Pops the head only if it is that event; returns the remaining length.
_ACK = """
local head = redis.call('LINDEX', KEYS[1], 0)
if head and cjson.decode(head)['id'] == ARGV[1] then redis.call('LPOP', KEYS[1]) end
return redis.call('LLEN', KEYS[1])
"""

_SEQ_PLACEHOLDER = '"seq":0,'


class RedisWebhookOutbox:
    """A shop's outbox, sequence hash and dead letters share its ``{shop:<id>}`` slot.

    ``WEBHOOKS_PENDING`` is global (another slot): ``append`` adds the shop before and after
    pushing, and pruning removes it then re-checks the list, so a shop with queued events is
    never left out of the set whatever the interleaving (or a crash between the two writes).
    """

    def __init__(self, client: aioredis.Redis) -> None:
        self._r = client
        self._append = client.register_script(_APPEND)
        self._ack = client.register_script(_ACK)

    async def append(self, event: WebhookEvent) -> WebhookEvent:
        before, found, after = event.model_copy(update={"seq": 0}).model_dump_json().partition(_SEQ_PLACEHOLDER)
        if not found:  # the field order of WebhookEvent changed: the splice needs updating
            raise RuntimeError("WebhookEvent JSON has no seq placeholder")
        async with self._r.pipeline(transaction=False) as pipe:  # one round trip, executed in order
            pipe.sadd(keys.WEBHOOKS_PENDING, event.shop)
            await self._append(keys=[keys.webhook_seq_key(event.shop), keys.webhook_outbox_key(event.shop)],
                               args=[event.room, before + '"seq":', "," + after], client=pipe)
            pipe.sadd(keys.WEBHOOKS_PENDING, event.shop)
            _, seq, _ = await pipe.execute()
        return event.model_copy(update={"seq": int(seq)}, deep=True)

    async def peek(self, shop_id: str) -> WebhookEvent | None:
        raw = await self._r.lindex(keys.webhook_outbox_key(shop_id), 0)
        return WebhookEvent.model_validate_json(raw) if raw else None

    async def ack(self, shop_id: str, event_id: str) -> None:
        if not await self._ack(keys=[keys.webhook_outbox_key(shop_id)], args=[event_id]):
            await self._prune(shop_id)

    async def _prune(self, shop_id: str) -> None:
        await self._r.srem(keys.WEBHOOKS_PENDING, shop_id)
        if await self._r.llen(keys.webhook_outbox_key(shop_id)):  # appended meanwhile: keep it listed
            await self._r.sadd(keys.WEBHOOKS_PENDING, shop_id)

    async def pending_shops(self) -> list[str]:
        shop_ids = sorted(await self._r.smembers(keys.WEBHOOKS_PENDING))
        async with self._r.pipeline(transaction=False) as pipe:
            for shop_id in shop_ids:
                pipe.llen(keys.webhook_outbox_key(shop_id))
            lengths = await pipe.execute()
        for shop_id in [shop_id for shop_id, length in zip(shop_ids, lengths, strict=True) if not length]:
            await self._prune(shop_id)  # emptied by delete_shop, or by an ack racing this scan
        return [shop_id for shop_id, length in zip(shop_ids, lengths, strict=True) if length]

    async def dead_letter(self, shop_id: str, event: WebhookEvent, reason: str) -> None:
        async with self._r.pipeline(transaction=True) as pipe:  # same slot: atomic
            pipe.lpush(keys.webhook_dead_key(shop_id), WebhookFailure(event=event, reason=reason).model_dump_json())
            pipe.ltrim(keys.webhook_dead_key(shop_id), 0, MAX_FAILURES - 1)
            await pipe.execute()

    async def failures(self, shop_id: str, limit: int) -> list[WebhookFailure]:
        if limit <= 0:
            return []
        raws = await self._r.lrange(keys.webhook_dead_key(shop_id), 0, limit - 1)
        return [WebhookFailure.model_validate_json(raw) for raw in raws]
