"""A real MediaWorker driven the way signaling drives it, with aiortc peers standing in for pages: the
``harness`` fixture (registered in conftest.py) for the evidence channel, snapshot and recording tests."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from aiortc import MediaStreamTrack, RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy

from media.worker import MediaWorker
from tests.servers import make_settings
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Participant, Role, Room, RoomKind, TrackSource
from vitrine.core.wire.inspect import case_of_room, inspect_room
from vitrine.core.wire.rpc import (
    AnswerCommand,
    ArtifactStored,
    EvidenceFolder,
    JoinCommand,
    LeaveCommand,
    Negotiated,
    PeerOffer,
    WorkerPush,
    expect,
)
from vitrine.core.wire.rtc import ServerOfferMessage, TrackRequest

TIMEOUT_S = 60.0  # generous: a loaded 2-core machine encodes the publishers' video in this process too
SHOP, CASE = "acme", "cs_AbCdEf123456"
ROOM = Room(name=inspect_room(CASE), kind=RoomKind.INSPECTION, shop=SHOP, max_participants=3)
CHUNK = 64 * 1024
JPEG = b"\xff\xd8\xff\xe0"


async def wait_for(condition: Callable[[], bool], what: str, timeout: float = TIMEOUT_S) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


class Page:
    """One participant's peer, answering the worker's offers: its tracks go on the "send" m-lines."""

    def __init__(self, participant: Participant, tracks: list[MediaStreamTrack], hostile: bool = False) -> None:
        self.participant = participant
        self.tracks = list(tracks)
        self.hostile = hostile  # ignores the worker's max-message-size, which aiortc would enforce
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.channels: asyncio.Queue[RTCDataChannel] = asyncio.Queue()
        self.pc.on("datachannel", self.channels.put_nowait)
        self.offers: list[ServerOfferMessage] = []

    async def answer(self, offer: ServerOfferMessage) -> str:
        self.offers.append(offer)
        sdp = offer.sdp
        if self.hostile:
            sdp = sdp.replace("a=max-message-size:262144", "a=max-message-size:1048576")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for transceiver in self.pc.getTransceivers():
            info = offer.mids.get(transceiver.mid or "")
            if info is None or info.direction != "send" or transceiver.sender.track is not None:
                continue
            track = next((t for t in self.tracks if t.kind == transceiver.kind), None)
            if track is not None:
                self.tracks.remove(track)
                transceiver.sender.replaceTrack(track)
                transceiver.direction = "sendonly"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return self.pc.localDescription.sdp


class Harness:
    """A MediaWorker driven as signaling drives it; its pushes are answered (offers) or kept (artifacts)."""

    def __init__(self, tmp_path: Path) -> None:
        self.settings = make_settings(
            evidence_dir=str(tmp_path / "evidence"), recordings_dir=str(tmp_path / "recordings")
        )
        self.worker = MediaWorker(self.settings, "worker-test", self._push)
        self.pages: dict[str, Page] = {}
        self.artifacts: asyncio.Queue[ArtifactStored] = asyncio.Queue()
        self._answering: set[asyncio.Task[None]] = set()

    @property
    def case_dir(self) -> Path:
        return Path(self.settings.evidence_dir) / SHOP / CASE

    async def _push(self, push: WorkerPush) -> None:
        match push:
            case ArtifactStored():
                self.artifacts.put_nowait(push)
            case PeerOffer(room=room, sid=sid, offer=offer):  # answered later: the worker pushes under the room's lock
                task = asyncio.create_task(self.answer(room, sid, offer))
                self._answering.add(task)
                task.add_done_callback(self._answering.discard)

    async def answer(self, room: str, sid: str, offer: ServerOfferMessage | None) -> None:
        while offer is not None:
            sdp = await self.pages[sid].answer(offer)
            offer = expect(await self.worker.handle(AnswerCommand(room=room, sid=sid, sdp=sdp)), Negotiated).offer

    async def join(
        self,
        identity: str,
        role: Role,
        tracks: list[MediaStreamTrack],
        room: Room = ROOM,
        sid: str | None = None,
        hostile: bool = False,
    ) -> Page:
        participant = Participant(
            sid=sid or f"PA_{identity}",
            identity=identity,
            role=role,
            grants=ROLE_DEFAULT_GRANTS[role],
            node_id="node-test",
        )
        publish = [
            TrackRequest(kind=t.kind, source=TrackSource.CAMERA if t.kind == "video" else TrackSource.MICROPHONE)
            for t in tracks
        ]
        # As signaling does (the inspection's policy): an inspection's buyer joins with the case's evidence folder.
        case = case_of_room(room.name)
        evidence = (
            EvidenceFolder(shop=room.shop, case_id=case)
            if room.kind == RoomKind.INSPECTION and role == Role.BUYER and room.shop is not None and case is not None
            else None
        )
        reply = await self.worker.handle(
            JoinCommand(room=room, participant=participant, publish=publish, evidence=evidence)
        )
        page = self.pages[participant.sid] = Page(participant, tracks, hostile)
        await self.answer(room.name, participant.sid, expect(reply, Negotiated).offer)
        return page

    async def leave(self, page: Page, room: Room = ROOM) -> None:
        expect(await self.worker.handle(LeaveCommand(room=room.name, sid=page.participant.sid)), Negotiated)
        await page.pc.close()

    async def published(self, count: int, room: Room = ROOM) -> None:
        worker = self.worker
        await wait_for(
            lambda: room.name in worker.rooms and len(worker.rooms[room.name].ups) == count, f"{count} published tracks"
        )

    async def close(self) -> None:
        for task in list(self._answering):
            task.cancel()
        await self.worker.close()
        for page in self.pages.values():
            await page.pc.close()


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    running = Harness(tmp_path)
    try:
        yield running
    finally:
        await running.close()
