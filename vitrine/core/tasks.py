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
        """Cancel every task still running and wait until each has finished."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
