"""A harness client on WHIP and WHEP (``--transport whip``): publish with WHIP, watch with WHEP.

What OBS and a WHEP player do, with the ws client's media and measurements
(``loadtest.agent.Agent``):

* A publisher POSTs a WHIP offer of sendonly audio and video (the same sources
  as over the WebSocket, ``loadtest.source``) to ``/whip/{room}``.
* A watcher POSTs a WHEP offer of recvonly video and audio to
  ``/whep/{room}?participant=<the identity it watches>`` (``ClientSpec.watches``):
  in a consult both members publish, and without the selection the server
  could bind the client's own WHIP video to its WHEP session.
* A client that does both is two sessions, hence two identities:
  ``<identity>`` publishes and ``<identity>.play`` watches, because a second
  session under one identity replaces (kicks) the first.
* WHEP sessions cannot renegotiate, so WHEP is refused with
  ``track_not_found`` until the watched publisher's WHIP offer went through.
  The watcher POSTs its offer again after 50 ms, doubling up to 500 ms, while
  ``--join-timeout`` allows; ``whep_retries`` in its record counts them.
* A client that does both starts WHEP once its WHIP session is connected, as
  a WebSocket client's one peer connection is connected before its first
  frame: the stages stay in order.

Stages: ``offer``, ``http_answer``, ``ice_connected`` and ``connected`` are
those of the client's first session (WHIP for a publisher, WHEP for a
watch-only client); ``first_rtp`` and ``first_frame`` are the WHEP session's.
Both sessions go through the client's one ``LinkObserver``: one impaired link
carries both, as one device's network would.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from loadtest.agent import Agent, JoinFailure
from loadtest.context import AgentContext
from loadtest.scenarios import ClientSpec
from loadtest.whip_client import Kind, WhipError, WhipSession

PLAY_SUFFIX = ".play"  # identities allow [A-Za-z0-9_.:@-]
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 0.5


class WhipAgent(Agent):
    transport = "whip"

    def __init__(self, spec: ClientSpec, ctx: AgentContext) -> None:
        super().__init__(spec, ctx)
        self.sessions: list[WhipSession] = []
        self.whep_retries = 0

    def _identities(self) -> list[str]:
        spec = self.spec
        identities = [spec.identity] if spec.publish else []
        if spec.watch:
            identities.append(spec.identity + PLAY_SUFFIX if spec.publish else spec.identity)
        return identities

    async def _connect(self, tokens: list[str], tracks: list[Any]) -> None:
        spec = self.spec
        unused = iter(tokens)
        try:
            if spec.publish:
                whip = self._open("whip", next(unused), tracks)
                await whip.offer()
                await self._post(whip)
                if spec.watch:
                    await whip.wait_connected(self._remaining())
            if spec.watch:
                if spec.watches is None:
                    raise JoinFailure("http_answer", "the scenario names no publisher to watch")
                whep = self._open("whep", next(unused), [])
                await whep.offer()
                await self._post(whep, {"participant": spec.watches})
                receiver = whep.received("video")
                if receiver is None:
                    raise JoinFailure("first_rtp", "whep bound no video track")
                await self._first_frame(receiver.track, receiver, whep.pc, lambda: whep.timeline.connected)
            for session in self.sessions:
                await session.wait_connected(self._remaining())
        finally:
            if self.sessions:
                first = self.sessions[0].timeline
                for stage, at in (
                    ("offer", first.offer),
                    ("http_answer", first.answer),
                    ("ice_connected", first.ice_connected),
                    ("connected", first.connected),
                ):
                    self._mark(stage, at)

    def _open(self, kind: Kind, token: str, tracks: list[Any]) -> WhipSession:
        session = WhipSession(self.ctx.http, kind, self.spec.room, token, tracks=tracks, datagram_hook=self.observer)
        self.sessions.append(session)
        self._receive_on(session.pc)
        return session

    async def _post(self, session: WhipSession, params: dict[str, str] | None = None) -> None:
        """POST the session's offer; a WHEP offer again while nothing is published yet, within the join timeout."""
        first = session is self.sessions[0]
        stage = "http_answer" if first else "first_rtp"  # a publisher's WHEP waits for its partner's video
        delay = RETRY_FIRST_S
        while True:
            try:
                await asyncio.wait_for(session.post(params), self._remaining())
                break
            except WhipError as exc:
                if session.kind != "whep" or exc.code != "track_not_found" or self._remaining() <= delay:
                    raise JoinFailure(stage, str(exc)) from None
            except TimeoutError:
                raise JoinFailure(stage, f"{session.kind}: no answer in time") from None
            self.whep_retries += 1
            await asyncio.sleep(delay)
            delay = min(2 * delay, RETRY_MAX_S)
        if first:
            self.ctx.emit(self.spec.id, "joined")

    def _peer_connections(self) -> list[Any]:
        return [session.pc for session in self.sessions]

    def _hold_problem(self) -> str | None:
        for session in self.sessions:
            if session.pc.connectionState != "connected":
                return f"{session.kind} connection {session.pc.connectionState} during the hold"
        return None

    def _participant_sid(self) -> str | None:
        """The first session's: a publisher's WHIP session, whose captures subscribers are matched against."""
        return self.sessions[0].sid if self.sessions else None

    def _transport_record(self) -> dict[str, Any]:
        if not self.spec.watch:
            return {}
        # WHEP does not say whose track it bound: the report finds the publisher's sid by this identity.
        return {"remote_identity": self.spec.watches, "whep_retries": self.whep_retries}

    async def _disconnect(self) -> None:
        for session in self.sessions:
            with contextlib.suppress(Exception):
                await session.close()
