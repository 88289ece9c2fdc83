"""Named locks across every node: a ``LockStore`` (memory or Redis) and ``NamedLocks``, the one way
to hold one.

A lock is a token under a name with a TTL: a holder that dies frees it by expiry, and release is a
compare-and-delete, so an expired holder can never free its successor's lock. Placement, the consult
desk, cases, live shows, relays and webhook leases all lock through here.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import AsyncIterator
from typing import Protocol

from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.state import keys
from vitrine.core.state.redis_util import RedisClient

LOCK_TTL_MS = 10_000
LOCK_WAIT_S = 10.0
POLL_S = 0.005


class LockStore(Protocol):
    async def acquire(self, name: str, ttl_ms: int) -> str | None:
        """Take a named lock for at most ``ttl_ms``; returns the owner token, or None if held."""

    async def release(self, name: str, token: str) -> bool:
        """Release only if ``token`` still owns the lock (compare-and-delete)."""


class MemoryLockStore:
    def __init__(self) -> None:
        self._locks: dict[str, tuple[str, float]] = {}

    async def acquire(self, name: str, ttl_ms: int) -> str | None:
        now = time.monotonic()
        held = self._locks.get(name)
        if held is not None and held[1] > now:
            return None
        token = secrets.token_hex(8)
        self._locks[name] = (token, now + ttl_ms / 1000)
        return token

    async def release(self, name: str, token: str) -> bool:
        held = self._locks.get(name)
        if held is None or held[0] != token:
            return False
        del self._locks[name]
        return True


# KEYS: lock. ARGV: token. Compare-and-delete: an expired holder cannot free a successor's lock.
_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


class RedisLockStore:
    def __init__(self, client: RedisClient) -> None:
        self._r = client
        self._release = client.register_script(_RELEASE)

    async def acquire(self, name: str, ttl_ms: int) -> str | None:
        token = secrets.token_hex(16)
        ok = await self._r.set(keys.lock_key(name), token, nx=True, px=max(1, int(ttl_ms)))
        return token if ok else None

    async def release(self, name: str, token: str) -> bool:
        return bool(await self._release(keys=[keys.lock_key(name)], args=[token]))


class NamedLocks:
    """Hold a named lock on every node without spinning locally.

    Same-process callers queue on an ``asyncio.Lock`` first, so only one of them polls the store;
    the store lock then serializes nodes. The local lock is forgotten when nobody holds or waits
    for it, so one lock per room or case does not pile up in memory.
    """

    def __init__(
        self, store: LockStore, busy_message: str, *, ttl_ms: int = LOCK_TTL_MS, wait_s: float = LOCK_WAIT_S
    ) -> None:
        self._store = store
        self._busy = busy_message
        self._ttl_ms = ttl_ms
        self._wait_s = wait_s
        self._local: dict[str, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, name: str) -> AsyncIterator[None]:
        lock, users = self._local.get(name, (asyncio.Lock(), 0))
        self._local[name] = (lock, users + 1)
        try:
            async with lock:
                token = await self._acquire(name)
                try:
                    yield
                finally:
                    await self._store.release(name, token)
        finally:
            lock, users = self._local[name]
            if users == 1:
                del self._local[name]
            else:
                self._local[name] = (lock, users - 1)

    async def _acquire(self, name: str) -> str:
        deadline = time.monotonic() + self._wait_s
        while (token := await self._store.acquire(name, self._ttl_ms)) is None:
            if time.monotonic() > deadline:
                raise VitrineError(ErrorCode.WORKER_UNAVAILABLE, self._busy)
            await asyncio.sleep(POLL_S)
        return token
