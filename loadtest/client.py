"""A Python participant: aiortc plus Vitrine's WebSocket protocol.

Used by the tests, the load-test harness, and anyone scripting a bot. It
answers the server's offers (attaching its local tracks to the m-lines the
server opened for them), records when each join stage happened, and exposes
remote tracks by the publisher's track sid. It keeps the room's participants and tracks as the events tell
them (``RoomMirror``), and asks ``resync`` when an event went missing.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import websockets
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy
from aiortc.rtcrtpreceiver import RemoteStreamTrack

from media import taps
from vitrine.core.models import TrackSource
from vitrine.core.wire.rtc import PROTOCOL_VERSION, MidInfo

logger = logging.getLogger(__name__)

PING_INTERVAL_S = 10.0
GAP_WAIT_S = 1.0  # an event ahead of a missing one waits this long for it (two nodes' publishes can cross)

Message = dict[str, Any]


class RoomMirror:
    """The room's participants and tracks (by sid) as ``joined`` and the room events tell them, applied in
    ``seq`` order. An event ahead of a missing one is held; one at or before the last applied (the numbering
    restarted, or a duplicate) means only a fresh snapshot can be trusted. ``resynced`` replaces the state with
    a ``resync`` answer and returns what the gap hid, as events marked ``resync: true``. Pure: the client owns
    the socket and the timer."""

    def __init__(self, joined: Message) -> None:
        self.seq: int = joined["seq"]
        self.participants: dict[str, Message] = {p["sid"]: p for p in joined["participants"]}
        self.tracks: dict[str, Message] = {t["sid"]: t for t in joined["tracks"]}
        self.held: dict[int, Message] = {}
        self.resyncing = False

    def take(self, event: Message) -> tuple[list[Message], bool]:
        """The events now applied, in order; and True when the client must ask ``resync`` now."""
        if self.resyncing:
            self.held[event["seq"]] = event
            return [], False
        if event["seq"] <= self.seq:
            return [], True
        self.held[event["seq"]] = event
        return self._release(), False

    def resynced(self, snapshot: Message) -> list[Message]:
        """Replace the state with ``snapshot``; the changes it shows that no event did, then the held events
        that come after it."""
        self.resyncing = False
        participants = {p["sid"]: p for p in snapshot["participants"]}
        tracks = {t["sid"]: t for t in snapshot["tracks"]}
        seq = snapshot["seq"]
        hidden = [_event("track_unpublished", seq, track=t) for sid, t in self.tracks.items() if sid not in tracks]
        hidden += [
            _event("participant_left", seq, participant=p)
            for sid, p in self.participants.items()
            if sid not in participants
        ]
        hidden += [
            _event("participant_joined", seq, participant=p)
            for sid, p in participants.items()
            if sid not in self.participants
        ]
        hidden += [_event("track_published", seq, track=t) for sid, t in tracks.items() if sid not in self.tracks]
        self.seq, self.participants, self.tracks = seq, participants, tracks
        self.held = {n: e for n, e in self.held.items() if n > seq}
        return [*hidden, *self._release()]

    def _release(self) -> list[Message]:
        applied = []
        while (event := self.held.pop(self.seq + 1, None)) is not None:
            self.seq = event["seq"]
            self._apply(event)
            applied.append(event)
        return applied

    def _apply(self, event: Message) -> None:
        participant, track = event.get("participant"), event.get("track")
        match event["event"]:
            case "participant_joined" if participant:
                self.participants[participant["sid"]] = participant
            case "participant_left" if participant:
                self.participants.pop(participant["sid"], None)
            case "track_published" if track:
                self.tracks[track["sid"]] = track
            case "track_unpublished" if track:
                self.tracks.pop(track["sid"], None)


def _event(kind: str, seq: int, **body: Message) -> Message:
    return {"type": "event", "event": kind, "seq": seq, "resync": True, **body}


@dataclass
class RemoteTrack:
    track: RemoteStreamTrack
    mid: str
    info: MidInfo | None


@dataclass
class JoinTimeline:
    """Monotonic timestamps (seconds) of each stage of one join."""

    start: float = field(default_factory=time.perf_counter)
    ws_open: float | None = None
    joined: float | None = None
    offer: float | None = None
    answer_sent: float | None = None
    ice_connected: float | None = None
    connected: float | None = None

    def ms(self, stage: str) -> float | None:
        value = getattr(self, stage)
        return None if value is None else (value - self.start) * 1000


class VitrineClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        tracks: Sequence[MediaStreamTrack] = (),
        name: str | None = None,
        origin: str | None = None,
        datagram_hook: taps.DatagramHook | None = None,
    ) -> None:
        self.ws_url = base_url.replace("http://", "ws://").replace("https://", "wss://").rstrip("/") + "/v1/rtc"
        self.token = token
        self.local_tracks = list(tracks)
        self.name = name
        self.origin = origin
        self.datagram_hook = datagram_hook  # e.g. loadtest.impair.LinkImpairment
        taps.HandshakeAccelerator.install()  # a lossy link should not stall on this client's timers
        taps.LeanAiortc.install()  # one certificate per process, as a browser may reuse one
        # max-bundle: aiortc's default "balanced" policy leaves a second m-line of
        # the same kind on a transport that bundling then stops.
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
        self.timeline = JoinTimeline()
        self.joined: dict[str, Any] | None = None
        self.events: list[dict[str, Any]] = []  # room events in seq order, and what a resync found (``resync``)
        self.room: RoomMirror | None = None  # the room's participants and tracks, from ``joined`` on
        self.resyncs = 0  # how many times this client asked for a fresh snapshot
        self.resynced = 0  # how many snapshots it got (``resync`` answers)
        self.errors: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.remote_tracks: asyncio.Queue[RemoteTrack] = asyncio.Queue()
        self.knocks: asyncio.Queue[dict[str, Any]] = asyncio.Queue()  # to a room admin: someone waits to be let in
        self.queued: list[int] = []  # the places in line the server told (``queued``: its worker is busy joining)
        self._in_line = asyncio.Event()
        self.log: list[dict[str, Any]] = []  # the room log's entries as they arrive
        self.leave_notice: dict[str, Any] | None = None
        self.negotiations = 0
        self._mids: dict[str, MidInfo] = {}
        self._ws: Any = None
        self._reader: asyncio.Task[None] | None = None
        self._keepalive: asyncio.Task[None] | None = None
        self._joined = asyncio.Event()
        self._negotiated = asyncio.Event()
        self._closed = asyncio.Event()
        self._gap_timer: asyncio.TimerHandle | None = None
        self.pc.on("track", self._on_track)
        self.pc.on("iceconnectionstatechange", self._on_ice_state)
        self.pc.on("connectionstatechange", self._on_connection_state)

    # -- lifecycle -------------------------------------------------------------------

    async def connect(self, timeout: float = 15.0) -> dict[str, Any]:
        """Open the socket, join, and return the ``joined`` snapshot."""
        headers = {"Origin": self.origin} if self.origin else None
        self._ws = await websockets.connect(self.ws_url, max_size=2**22, additional_headers=headers)
        self.timeline.ws_open = time.perf_counter()
        await self.send(
            {
                "type": "join",
                "v": PROTOCOL_VERSION,
                "token": self.token,
                "name": self.name,
                "publish": [{"kind": t.kind, "source": _source(t.kind)} for t in self.local_tracks],
            }
        )
        self._reader = asyncio.create_task(self._read())
        self._keepalive = asyncio.create_task(self._ping_forever())
        joined = asyncio.create_task(self._joined.wait())
        done, _ = await asyncio.wait({joined, self._reader}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        while not done and self._in_line.is_set():  # in the worker's line, told so again every few seconds
            self._in_line.clear()
            done, _ = await asyncio.wait({joined, self._reader}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        if joined not in done:
            joined.cancel()
            error = self.errors.get_nowait() if not self.errors.empty() else None
            raise ConnectionError(f"join failed: {error or 'timed out'}")
        assert self.joined is not None
        return self.joined

    async def send(self, message: dict[str, Any]) -> None:
        await self._ws.send(json.dumps({k: v for k, v in message.items() if v is not None}))

    async def send_raw(self, data: str | bytes) -> None:
        await self._ws.send(data)

    async def close(self) -> None:
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self.send({"type": "leave"})
            with contextlib.suppress(Exception):
                await self._ws.close()
        if self._keepalive is not None:
            self._keepalive.cancel()
        if self._gap_timer is not None:
            self._gap_timer.cancel()
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._reader
        await self.pc.close()

    async def _ping_forever(self) -> None:
        """Keep the session inside the server's idle timeout (30 s by default)."""
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await asyncio.sleep(PING_INTERVAL_S)
                await self.send({"type": "ping"})

    # -- waiting ---------------------------------------------------------------------

    async def next_error(self, timeout: float = 10.0) -> dict[str, Any]:
        return await asyncio.wait_for(self.errors.get(), timeout)

    async def next_remote_track(self, kind: str | None = None, timeout: float = 20.0) -> RemoteTrack:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            remote = await asyncio.wait_for(self.remote_tracks.get(), max(remaining, 0.001))
            if kind is None or remote.track.kind == kind:
                return remote

    async def wait_closed(self, timeout: float = 10.0) -> None:
        await asyncio.wait_for(self._closed.wait(), timeout)

    async def wait_connected(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.pc.connectionState != "connected":
            if time.monotonic() > deadline or self.pc.connectionState in ("failed", "closed"):
                raise TimeoutError(f"peer connection is {self.pc.connectionState}")
            await asyncio.sleep(0.02)

    # -- incoming --------------------------------------------------------------------

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                message = json.loads(raw)
                await self._on_message(message)
        except websockets.ConnectionClosed:
            pass
        finally:
            self._closed.set()

    async def _on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "joined":
            self.joined = message
            self.room = RoomMirror(message)
            self.timeline.joined = time.perf_counter()
            for knock in message.get("knocks", []):  # knocks that came before this admin
                await self.knocks.put(knock)
            self._joined.set()
        elif kind == "offer":
            await self._answer(message)
        elif kind == "answer":
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="answer"))
        elif kind == "event":
            await self._on_event(message)
        elif kind == "resync" and self.room is not None:
            self.resynced += 1
            self.events.extend(self.room.resynced(message))
            self._watch_gap()
        elif kind == "error":
            if message.get("ref") == "resync" and self.room is not None:  # refused (rate limit): try again later
                self.room.resyncing = False
                self._watch_gap()
            await self.errors.put(message)
        elif kind == "leave":
            self.leave_notice = message
        elif kind == "knock" and message.get("ended") is None:
            await self.knocks.put(message["knock"])
        elif kind == "log":
            self.log.append(message["entry"])
        elif kind == "queued":
            self.queued.append(message["position"])
            self._in_line.set()

    async def _on_event(self, event: Message) -> None:
        if self.room is None:
            self.events.append(event)
            return
        applied, resync = self.room.take(event)
        self.events.extend(applied)
        if resync:
            await self.resync()
        else:
            self._watch_gap()

    def _watch_gap(self) -> None:
        """While an event waits for a missing one, give it ``GAP_WAIT_S`` to come, then resync."""
        if self._gap_timer is not None or self.room is None or not self.room.held or self.room.resyncing:
            return

        def expired() -> None:
            self._gap_timer = None
            if self.room is not None and self.room.held and not self.room.resyncing:
                asyncio.ensure_future(self.resync())

        self._gap_timer = asyncio.get_running_loop().call_later(GAP_WAIT_S, expired)

    async def resync(self) -> None:
        """Ask for the room as it is now; the answer replaces ``room`` (``RoomMirror.resynced``)."""
        if self.room is None or self.room.resyncing:
            return
        self.room.resyncing = True
        self.resyncs += 1
        with contextlib.suppress(websockets.ConnectionClosed):
            await self.send({"type": "resync"})

    async def _answer(self, message: dict[str, Any]) -> None:
        if self.timeline.offer is None:
            self.timeline.offer = time.perf_counter()
        self._mids.update({mid: MidInfo.model_validate(info) for mid, info in message.get("mids", {}).items()})
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=message["sdp"], type="offer"))
        unattached = [t for t in self.local_tracks if t not in {s.track for s in self.pc.getSenders()}]
        for transceiver in self.pc.getTransceivers():
            info = self._mids.get(transceiver.mid or "")
            if info is None or info.direction != "send" or transceiver.sender.track is not None:
                continue
            track = next((t for t in unattached if t.kind == transceiver.kind), None)
            if track is not None:
                unattached.remove(track)
                transceiver.sender.replaceTrack(track)
                transceiver.direction = "sendonly"
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        if self.datagram_hook is not None:  # before the server learns our candidates
            taps.hook_datagrams(self.pc, self.datagram_hook)
        await self.send({"type": "answer", "sdp": self.pc.localDescription.sdp})
        if self.timeline.answer_sent is None:
            self.timeline.answer_sent = time.perf_counter()
        self.negotiations += 1
        self._negotiated.set()

    def _on_track(self, track: RemoteStreamTrack) -> None:
        mid = next((t.mid for t in self.pc.getTransceivers() if t.receiver.track is track), "")
        self.remote_tracks.put_nowait(RemoteTrack(track=track, mid=mid or "", info=self._mids.get(mid or "")))

    def _on_ice_state(self) -> None:
        if self.pc.iceConnectionState == "completed" and self.timeline.ice_connected is None:
            self.timeline.ice_connected = time.perf_counter()

    def _on_connection_state(self) -> None:
        if self.pc.connectionState == "connected" and self.timeline.connected is None:
            self.timeline.connected = time.perf_counter()


def _source(kind: str) -> str:
    return (TrackSource.CAMERA if kind == "video" else TrackSource.MICROPHONE).value
