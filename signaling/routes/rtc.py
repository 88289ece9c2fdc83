"""The WebSocket signaling endpoint. The token travels in the first message, never in the URL."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from signaling.metrics import METRICS
from signaling.runtime import Runtime
from signaling.session import CLOSE_POLICY, RtcSession, origin_allowed

router = APIRouter(tags=["rtc"])


@router.websocket("/v1/rtc")
async def rtc(ws: WebSocket) -> None:
    runtime: Runtime = ws.app.state.runtime
    if not origin_allowed(ws, runtime.settings.allowed_origins):
        await ws.close(code=CLOSE_POLICY, reason="origin not allowed")
        return
    await ws.accept()
    METRICS.sessions.inc()
    try:
        await RtcSession(ws, runtime.settings, runtime.rooms, runtime.hub).run()
    finally:
        METRICS.sessions.dec()
