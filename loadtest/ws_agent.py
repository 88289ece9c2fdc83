"""A harness client on the WebSocket protocol (``--transport ws``): one ``VitrineClient``, one peer connection.

The server offers and the client answers, over ``/v1/rtc``; the server
subscribes the client to the other participants' tracks itself, so a watcher
waits for the first remote video track it is offered.
"""

from __future__ import annotations

from typing import Any

from loadtest.agent import STAGES, Agent, JoinFailure, receiver_of

TIMELINE_STAGES = tuple(s for s in STAGES["ws"] if s not in ("token", "first_rtp", "first_frame"))


class WsAgent(Agent):
    transport = "ws"
    client: Any = None

    async def _connect(self, tokens: list[str], tracks: list[Any]) -> None:
        from loadtest.client import JoinTimeline, VitrineClient

        spec = self.spec
        client = self.client = VitrineClient(
            self.ctx.base_url, tokens[0], tracks=tracks, name=spec.identity, datagram_hook=self.observer
        )
        client.timeline = JoinTimeline(start=self.t0)
        self._receive_on(client.pc)
        try:
            await client.connect(timeout=self._remaining())
            self.ctx.emit(spec.id, "joined")
            if spec.watch:
                try:
                    remote = await client.next_remote_track("video", timeout=self._remaining())
                except TimeoutError:
                    raise JoinFailure("first_rtp", "no video track was offered in time") from None
                self.remote_participant = remote.info.participant_sid if remote.info else None
                await self._first_frame(
                    remote.track, receiver_of(client.pc, remote.track), client.pc, lambda: client.timeline.connected
                )
            if client.pc.connectionState != "connected":
                await client.wait_connected(self._remaining())
        finally:
            for stage in TIMELINE_STAGES:
                self._mark(stage, getattr(client.timeline, stage))

    def _peer_connections(self) -> list[Any]:
        return [self.client.pc] if self.client is not None else []

    def _hold_problem(self) -> str | None:
        state = self.client.pc.connectionState
        if state != "connected":
            return f"connection {state} during the hold"
        if self.client.leave_notice is not None:
            return "the server ended the session"
        return None

    def _participant_sid(self) -> str | None:
        return (self.client.joined or {}).get("participant", {}).get("sid") if self.client is not None else None

    async def _disconnect(self) -> None:
        if self.client is not None:
            await self.client.close()
