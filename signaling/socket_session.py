"""The loop under every WebSocket session: /v1/rtc (``signaling.session``) and the consult desk's sockets
(``signaling.consult.sockets``).

One loop reads the socket and one task writes it, and neither waits on the other. What goes out is queued in a
bounded outbox (``VITRINE_SEND_QUEUE_SIZE``): a client too slow to drain it is closed with 1013 (try again)
rather than buffered without limit. A read waits for the next frame, the writer's end, or the timeout, whichever
comes first (``signaling.frames``); an oversized or unparsable frame becomes a typed ``error`` and the loop goes
on. Ending is one call, ``stop``: the writer sends what is queued (or drops it), then a last word if there is
one, then closes with the code given; nothing more is read or queued after it.

A subclass says what a frame is (``parse``), what it does (``dispatch``), how long a read may wait
(``read_timeout``), what running out of time means (``on_idle``), and what to undo once the socket is done
(``closed``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from signaling.frames import CLOSE_NORMAL, Idle, receive_frame
from signaling.metrics import METRICS
from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.shops import ShopFields
from vitrine.core.wire.rtc import ErrorMessage, encode

logger = logging.getLogger(__name__)

CLOSE_POLICY = 1008  # a page on an origin that may not use the socket
CLOSE_TRY_AGAIN = 1013  # too slow to receive, or sent away to join again
WRITER_GRACE_S = 2.0  # once the read loop ends, what is queued has this long to go out


class SocketSession:
    label = "socket"  # what the logs call it

    def __init__(self, ws: WebSocket, settings: Settings) -> None:
        self.ws = ws
        self.settings = settings
        self.ending = False  # ``stop`` was called: the outbox ends with its sentinel
        self._outbox: asyncio.Queue[str | None] = asyncio.Queue(maxsize=settings.send_queue_size)
        self._last_word: str | None = None
        self._close_code = CLOSE_NORMAL

    # -- what a subclass says ------------------------------------------------------------

    def parse(self, raw: str | bytes) -> Any:
        """The frame as a message with a ``type``, or a typed error."""
        raise NotImplementedError

    async def dispatch(self, message: Any) -> None:
        raise NotImplementedError

    def read_timeout(self) -> float:
        return self.settings.idle_timeout_s

    def on_idle(self) -> None:
        """No frame within ``read_timeout``: the loop ends, and then the socket (``run``)."""

    async def closed(self) -> None:
        """The socket is done (the client went, or the loop ended): undo what the session holds."""

    # -- outgoing ------------------------------------------------------------------------

    def push_raw(self, raw: str) -> None:
        """Queue an encoded frame. Once the socket is ending nothing more is queued: it would never go out."""
        if self.ending:
            return
        try:
            self._outbox.put_nowait(raw)
        except asyncio.QueueFull:
            logger.warning("closing a %s whose send queue is full", self.label)
            self.too_slow()

    def too_slow(self) -> None:
        """The outbox is full: what is queued is dropped and the client is told to try again."""
        self.stop(code=CLOSE_TRY_AGAIN, drop_queued=True)

    def stop(self, last_word: str | None = None, code: int = CLOSE_NORMAL, *, drop_queued: bool = False) -> None:
        """End the socket: the writer sends what is queued (none of it with ``drop_queued``, or when the outbox is
        full: its reader is gone or too slow), then ``last_word``, then closes with ``code``. A later call, before
        the writer gets there, replaces the last word and the code."""
        self._last_word, self._close_code = last_word, code
        if drop_queued or self._outbox.full():
            while not self._outbox.empty():
                self._outbox.get_nowait()
            self._outbox.put_nowait(None)
        elif not self.ending:
            self._outbox.put_nowait(None)
        self.ending = True

    def error(self, exc: VitrineError, ref: str | None = None) -> None:
        METRICS.signaling_errors.labels(code=exc.code.value).inc()
        self.push_raw(encode(ErrorMessage(code=exc.code, message=exc.message, ref=ref)))

    def origin_allowed_by(self, shop: ShopFields) -> bool:
        """A browser page may use a shop's socket from one of the shop's embed origins, or from an origin this
        server allows (its own pages)."""
        return self.ws.headers.get("origin") in shop.allowed_origins or origin_allowed(
            self.ws, self.settings.allowed_origins
        )

    async def _writer(self) -> None:
        while (raw := await self._outbox.get()) is not None:
            await self.ws.send_text(raw)
        if self._last_word is not None:
            with contextlib.suppress(Exception):
                await self.ws.send_text(self._last_word)
        with contextlib.suppress(Exception):
            await self.ws.close(self._close_code)

    # -- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        writer = asyncio.create_task(self._writer())
        try:
            await self._read_loop(writer)
        except WebSocketDisconnect:
            pass
        finally:
            try:
                await self.closed()
            except Exception:
                logger.exception("cleanup after a %s failed", self.label)
            if not writer.done():
                if not self.ending:
                    self.stop()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer, WRITER_GRACE_S)
            writer.cancel()

    async def _read_loop(self, writer: asyncio.Task[None]) -> None:
        while not writer.done() and not self.ending:
            try:
                raw = await receive_frame(self.ws, writer, self.read_timeout(), self.settings.max_message_bytes)
            except Idle:
                if not writer.done() and not self.ending:
                    self.on_idle()
                return
            except VitrineError as exc:
                self.error(exc)
                continue
            if raw is not None:
                await self._handle(raw)

    async def _handle(self, raw: str | bytes) -> None:
        """One message, whatever it holds: every failure becomes a typed ``error`` and the loop goes on."""
        ref = None
        try:
            message = self.parse(raw)
            ref = message.type
            await self.dispatch(message)
        except VitrineError as exc:
            self.error(exc, ref or exc.ref)
        except Exception:
            logger.exception("unexpected failure handling a %s %s message", self.label, ref or "client")
            self.error(VitrineError(ErrorCode.INTERNAL, "internal error"), ref)


def origin_allowed(ws: WebSocket, allowed: list[str]) -> bool:
    """CORS middleware does not cover WebSockets, so check Origin by hand.

    No Origin header (a native client) is allowed. With no allow-list, only
    same-origin browsers are; ``*`` in the list allows any origin.
    """
    origin = ws.headers.get("origin")
    if origin is None:
        return True
    if allowed:
        return "*" in allowed or origin in allowed
    host = ws.headers.get("host", "")
    return origin.split("://", 1)[-1] == host
