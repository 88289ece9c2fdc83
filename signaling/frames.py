"""Reading client frames off a WebSocket, shared by the signaling and the desk sessions.

A read waits for the next frame, the session's writer stopping, or the timeout, whichever comes
first; an oversized frame is reported (typed) and skipped, never parsed, and the loop goes on.
"""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect

from vitrine.core.errors import ErrorCode, VitrineError

CLOSE_NORMAL = 1000


class Idle(Exception):
    """No frame within the timeout, or the session's writer stopped (so nothing more can be said)."""


async def receive_frame(
    ws: WebSocket, writer: asyncio.Future[None], timeout: float, max_bytes: int
) -> str | bytes | None:
    """The next text or binary frame, None for an empty one.

    Raises ``Idle``, ``WebSocketDisconnect`` when the client goes, and ``message_too_large`` for a
    frame over ``max_bytes`` (UTF-8 bytes, not characters).
    """
    receive = asyncio.ensure_future(ws.receive())
    waiting: set[asyncio.Future[Any]] = {receive, writer}
    done, _ = await asyncio.wait(waiting, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    if receive not in done:
        receive.cancel()
        raise Idle
    frame = receive.result()
    if frame["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(frame.get("code", CLOSE_NORMAL))
    raw = frame.get("text") if frame.get("text") is not None else frame.get("bytes")
    if raw is not None and byte_length(raw) > max_bytes:
        raise VitrineError(ErrorCode.MESSAGE_TOO_LARGE, f"messages are limited to {max_bytes} bytes")
    return raw


def byte_length(raw: str | bytes) -> int:
    if isinstance(raw, bytes):
        return len(raw)
    return len(raw) if raw.isascii() else len(raw.encode("utf-8", "surrogatepass"))
