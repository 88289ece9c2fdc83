"""The WebSocket signaling endpoint. The token travels in the first message, never in the URL."""

from __future__ import annotations

from fastapi import APIRouter, WebSocket

from signaling.deps import HubDep, RoomsDep, SettingsDep
from signaling.metrics import METRICS
from signaling.session import RtcSession
from signaling.socket_session import origin_allowed

router = APIRouter(tags=["rtc"])


@router.websocket("/v1/rtc")
async def rtc(ws: WebSocket, settings: SettingsDep, rooms: RoomsDep, hub: HubDep) -> None:
    # An origin the server does not know may still be a shop's embed origin: the join token names
    # the shop, so the session decides at join (and refuses everything else).
    foreign_origin = None if origin_allowed(ws, settings.allowed_origins) else ws.headers.get("origin")
    await ws.accept()
    METRICS.sessions.inc()
    try:
        await RtcSession(ws, settings, rooms, hub, foreign_origin=foreign_origin).run()
    finally:
        METRICS.sessions.dec()
