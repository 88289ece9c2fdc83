"""Joins a media worker connects at once: a bounded number of handshakes in flight, the rest in line, in order.

Why: one worker runs every peer's ICE checks, DTLS handshake and SCTP in Python, on one event loop. When 150
viewers join at once, 150 handshakes start together; each one's STUN checks and DTLS flights wait behind all
the others', their retransmission timers fire, checks are retried, and the work grows while little of it
finishes (49 of 150 connected within 30 s, issue 17). With a few in flight, each finishes in tens of
milliseconds and hands its place to the next: the line moves at the worker's full speed, and every join
finishes, in the order it came.

``HandshakeGate.enter`` gives a join a ``Slot`` at once while fewer than ``limit`` are in flight and nobody
waits; otherwise the join waits in a FIFO line (a freed slot goes straight to the head of the line, so a later
join never overtakes) and the caller is told its place (``queued``), again every ``NOTICE_S`` while it waits.
The slot is given back once the handshake is over (the worker's ``PeerSession`` releases it: connected, failed
or closed; or the join had nothing to negotiate), and at the latest ``timeout_s`` after it started, so a client
that never answers holds nobody up (its connection goes on, outside the bound).

The line is bounded by its length (``max_waiting``: past it a join is refused with ``worker_busy``, and the
client retries later), not by a time: it always moves, since every slot comes back within ``timeout_s``, so a
join that got in line gets its turn however slow the burst, and none is refused for being patient. Timeouts
count from the turn: the client's join timeout from ``joined`` (the handshake's start), and a signaling node
waiting for the join's reply over Redis from the last notice.

The queue waits before the room's lock is taken: the handshakes in flight need that lock for their answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable

from vitrine.core.errors import ErrorCode, VitrineError

logger = logging.getLogger(__name__)

QueueListener = Callable[[int], Awaitable[None]]  # told a waiting join's place in line (1: next)
NOTICE_S = 5.0  # a waiting join is told its place again this often: the client and signaling know it still waits


class WorkerBusy(VitrineError):
    """The line is full: retry shortly."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.WORKER_BUSY, message)


class Slot:
    """One handshake's place among those in flight; ``release`` is idempotent."""

    def __init__(self, gate: HandshakeGate, timeout_s: float) -> None:
        self._gate = gate
        self._timer = asyncio.get_running_loop().call_later(timeout_s, self._expire)
        self.released = False

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        self._timer.cancel()
        self._gate._free()

    def _expire(self) -> None:
        if not self.released:
            self._gate.expired += 1
            self.release()


class HandshakeGate:
    """At most ``limit`` handshakes in flight; the joins beyond wait in FIFO order, at most ``max_waiting`` of
    them."""

    def __init__(self, limit: int, *, max_waiting: int, timeout_s: float, notice_s: float = NOTICE_S) -> None:
        self.limit = limit
        self.max_waiting = max_waiting
        self.timeout_s = timeout_s
        self.notice_s = notice_s
        self.in_flight = 0
        self.peak = 0  # the most in flight at once, ever: never above ``limit``
        self._line: deque[asyncio.Future[None]] = deque()
        self.queued = 0  # joins that had to wait, ever
        self.refused = 0  # joins refused with worker_busy (a full line), ever
        self.expired = 0  # slots given back by ``timeout_s``, not by their handshake's end

    @property
    def waiting(self) -> int:
        return len(self._line)

    async def enter(self, queued: QueueListener | None = None) -> Slot:
        """A slot for one handshake: at once, or when the joins ahead have theirs (``queued`` is told the
        place in line as the join enters it, and again every ``notice_s``). Raises ``WorkerBusy`` when the line
        is full."""
        if self.in_flight < self.limit and not self._line:
            self._take()
            return Slot(self, self.timeout_s)
        if len(self._line) >= self.max_waiting:
            self.refused += 1
            raise WorkerBusy(f"{len(self._line)} joins are waiting on this media worker; retry shortly")
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._line.append(turn)
        self.queued += 1
        try:
            while not turn.done():
                if queued is not None:
                    await _tell(queued, self._line.index(turn) + 1)
                await asyncio.wait((turn,), timeout=self.notice_s)
        except BaseException:
            if turn.done() and not turn.cancelled():  # the slot came just as the wait ended: hand it on
                self._free()
            else:
                turn.cancel()
                with contextlib.suppress(ValueError):
                    self._line.remove(turn)
            raise
        return Slot(self, self.timeout_s)

    def _free(self) -> None:
        """A handshake ended: its slot goes to the first join still waiting, or back to the pool."""
        self.in_flight -= 1
        while self._line:
            turn = self._line.popleft()
            if not turn.done():
                turn.set_result(None)
                self._take()
                return

    def _take(self) -> None:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)


async def _tell(queued: QueueListener, position: int) -> None:
    """A listener's failure (signaling unreachable) never costs the join its place."""
    try:
        await queued(position)
    except asyncio.CancelledError:
        raise
    except Exception:
        logger.exception("telling a waiting join its place failed")
