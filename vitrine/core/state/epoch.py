"""Noticing that coordination state was lost: an epoch token every process compares on each tick.

Redis holds coordination only, and may lose all of it (a restart without persistence, a flush, a
failover to an empty replica). Nothing in Redis says "I am empty", so the first process to find the
epoch key missing writes a fresh random token (SET NX), and every process remembers the token it
saw last. A different token means everything a process put into Redis before is gone:

- a media worker closes every room it holds before it registers again, so no room is ever served by
  two workers (placement only picks registered workers);
- a signaling node re-creates the rooms of its connected sessions and sends those sessions to
  reconnect, and consult consoles to re-announce themselves (``signaling.runtime``).

In memory (embedded) the epoch never changes: the state dies with the process that holds it.
"""

from __future__ import annotations

import logging
import secrets
from typing import Protocol

from vitrine.core.state import keys
from vitrine.core.state.redis_util import RedisClient

logger = logging.getLogger(__name__)


class EpochStore(Protocol):
    async def current(self) -> str:
        """The epoch token, written first if missing."""


class MemoryEpochStore:
    def __init__(self) -> None:
        self._token = secrets.token_hex(8)

    async def current(self) -> str:
        return self._token


class RedisEpochStore:
    def __init__(self, client: RedisClient) -> None:
        self._r = client

    async def current(self) -> str:
        token = await self._r.get(keys.EPOCH)
        if token is None:
            await self._r.set(keys.EPOCH, secrets.token_hex(8), nx=True)  # one writer wins; all read its token
            token = await self._r.get(keys.EPOCH)
        return str(token)


class EpochWatch:
    """One process's view of the epoch: ``changed()`` is True once per loss of coordination state."""

    def __init__(self, store: EpochStore) -> None:
        self._store = store
        self._seen: str | None = None

    async def changed(self) -> bool:
        token = await self._store.current()
        if self._seen is None or token == self._seen:
            self._seen = token
            return False
        logger.warning("coordination state was lost (epoch %s -> %s): rebuilding", self._seen, token)
        self._seen = token
        return True
