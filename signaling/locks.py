"""``NamedLocks``: hold a named lock across every node (the ``RoomStore`` lock) without spinning locally.

Same-process callers queue on an ``asyncio.Lock`` first, so only one of them polls the store;
the store lock (SET NX PX on Redis) then serializes nodes. Used where a read-modify-write of
shared records must not interleave: a shop's consult desk, a live show's state.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

from vitrine.errors import ErrorCode, VitrineError
from vitrine.state.base import RoomStore

LOCK_TTL_MS = 10_000
LOCK_WAIT_S = 10.0


class NamedLocks:
    def __init__(self, store: RoomStore, busy_message: str) -> None:
        self._store = store
        self._busy = busy_message
        self._local: dict[str, asyncio.Lock] = {}

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        async with self._local.setdefault(name, asyncio.Lock()):
            deadline = time.monotonic() + LOCK_WAIT_S
            while (token := await self._store.acquire_lock(name, LOCK_TTL_MS)) is None:
                if time.monotonic() > deadline:
                    raise VitrineError(ErrorCode.WORKER_UNAVAILABLE, self._busy)
                await asyncio.sleep(0.005)
            try:
                yield
            finally:
                await self._store.release_lock(name, token)
