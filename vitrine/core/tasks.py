"""Fire-and-forget tasks that stay referenced until they finish.

The event loop keeps only weak references to tasks, so a task nobody holds can
be garbage-collected mid-flight. Every place that starts one and moves on
(RTCP feedback, RPC requests, pub/sub dispatchers) keeps it in a ``TaskSet``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")

CANCEL_AGAIN_S = 1.0  # longer than a cancelled loop's own cleanup (one last command) takes


async def stop_tasks(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel ``tasks`` and wait until every one has finished, cancelling again those that run on.

    On Python 3.11 a cancellation can be lost: ``asyncio.wait_for`` returns normally when its inner await finishes
    just as its task is cancelled (CPython gh-86296, fixed in 3.12), and libraries await through it (redis-py's
    sends do). A loop that lost its cancellation runs on, and a shutdown that awaited it once would wait forever.
    Exceptions other than the cancellation are not raised here: a stopping loop's failure is its own to log."""
    running = {task for task in tasks if task is not None}
    while pending := {task for task in running if not task.done()}:
        for task in pending:
            task.cancel()
        await asyncio.wait(pending, timeout=CANCEL_AGAIN_S)
    for task in running:
        if not task.cancelled():
            task.exception()  # retrieved: asyncio does not log it as never retrieved


class TaskSet:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Future[Any]] = set()

    def spawn(self, awaitable: Awaitable[T]) -> asyncio.Future[T]:
        """Start ``awaitable`` now and hold it until it is done."""
        task = asyncio.ensure_future(awaitable)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def __iter__(self) -> Iterator[asyncio.Future[Any]]:
        return iter(list(self._tasks))

    def __len__(self) -> int:
        return len(self._tasks)

    async def cancel(self) -> None:
        """Cancel every task still running and wait until each has finished (``stop_tasks``)."""
        await stop_tasks(*self._tasks)


class Cadence:
    """Wakes a loop every ``period_s`` on a fixed beat: the time a beat's own work takes does not push the next
    one later (a heartbeat that took 0.4 s of a 2 s period still comes every 2 s, where ``sleep(period)`` after the
    work would come every 2.4 s and let a registration with a short TTL lapse). A loop stalled past whole periods
    beats once at once and keeps the beat from there: missed beats are skipped, never bunched."""

    def __init__(self, period_s: float) -> None:
        self.period_s = period_s
        self._next: float | None = None

    def delay(self, now: float) -> float:
        """How long to wait at ``now`` (loop time) for the next beat, which it then counts as taken."""
        self._next = (now if self._next is None else self._next) + self.period_s
        if self._next < now:
            self._next = now
        return self._next - now

    async def wait(self) -> None:
        await asyncio.sleep(self.delay(asyncio.get_running_loop().time()))
