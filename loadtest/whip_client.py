"""One WHIP (RFC 9725) or WHEP session: an aiortc peer connection, offered over plain HTTP.

The offer is non-trickle, as OBS and most WHIP clients send it: aiortc's
``setLocalDescription`` returns only once every ICE candidate is gathered, so
the POSTed SDP is complete and the session never PATCHes candidates. The
server answers ``201 Created`` with its SDP answer and a ``Location``, the
resource to DELETE at the end. Any other answer is a ``WhipError`` with the
server's typed error code, so a caller can tell "nothing published yet"
(``track_not_found``, worth retrying for WHEP) from a real refusal.

The join token travels only in the ``Authorization`` header; it never appears
in an exception or in anything a caller might log.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import httpx
from aiortc import MediaStreamTrack, RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy

from media import taps

Kind = Literal["whip", "whep"]


class WhipError(Exception):
    """A WHIP/WHEP request that did not end in a usable ``201``; ``code`` is short and aggregatable."""

    def __init__(self, kind: Kind, code: str) -> None:
        super().__init__(f"{kind}: {code}")
        self.kind = kind
        self.code = code


@dataclass
class WhipTimeline:
    """``time.perf_counter()`` of each step of one session."""

    offer: float | None = None  # our offer is ready, every candidate gathered
    answer: float | None = None  # the 201 arrived and its answer is applied
    ice_connected: float | None = None
    connected: float | None = None


class StageTimes(Protocol):
    ice_connected: float | None
    connected: float | None


def client_peer_connection() -> RTCPeerConnection:
    """A harness client's peer connection: bundled, no ICE servers, with the client taps every harness peer uses
    (a lossy link should not stall on this client's timers; one certificate per process)."""
    taps.HandshakeAccelerator.install()
    taps.LeanAiortc.install()
    return RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))


class ConnectionStages:
    """Stamps when ``pc`` completed ICE and then DTLS into ``timeline``, and sets ``settled`` once it is connected,
    failed or closed: WHIP/WHEP sessions and the Janus peers (``loadtest/janus.py``) watch theirs alike."""

    def __init__(self, pc: RTCPeerConnection, timeline: StageTimes) -> None:
        self.pc, self.timeline = pc, timeline
        self.settled = asyncio.Event()
        pc.on("iceconnectionstatechange", self._on_ice_state)
        pc.on("connectionstatechange", self._on_connection_state)

    async def connected(self, timeout: float, what: str) -> None:
        """Return once the connection is up; ``ConnectionError`` if it failed or closed, ``TimeoutError`` if it is
        still on its way after ``timeout``."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.settled.wait(), timeout)
        state = self.pc.connectionState
        if state in ("failed", "closed"):
            raise ConnectionError(f"{what} peer connection {state}")
        if state != "connected":
            raise TimeoutError(f"{what} peer connection still {state}")

    def _on_ice_state(self) -> None:
        if self.pc.iceConnectionState == "completed" and self.timeline.ice_connected is None:
            self.timeline.ice_connected = time.perf_counter()

    def _on_connection_state(self) -> None:
        state = self.pc.connectionState
        if state == "connected" and self.timeline.connected is None:
            self.timeline.connected = time.perf_counter()
        if state in ("connected", "failed", "closed"):
            self.settled.set()


def received(pc: RTCPeerConnection, kind: str) -> Any:
    """The receiver of the ``kind`` track ``pc`` receives, or None."""
    for transceiver in pc.getTransceivers():
        if transceiver.kind == kind and transceiver.currentDirection == "recvonly":
            return transceiver.receiver
    return None


class WhipSession:
    """``whip``: send ``tracks``; ``whep``: receive one video and one audio track."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        kind: Kind,
        room: str,
        token: str,
        *,
        tracks: Sequence[MediaStreamTrack] = (),
        datagram_hook: taps.DatagramHook | None = None,
    ) -> None:
        self.http = http
        self.kind = kind
        self.room = room
        self._auth = {"Authorization": f"Bearer {token}"}
        self.datagram_hook = datagram_hook
        self.resource: str | None = None
        self.timeline = WhipTimeline()
        self.pc = client_peer_connection()
        if kind == "whip":
            for track in tracks:
                self.pc.addTransceiver(track, direction="sendonly")
        else:
            self.pc.addTransceiver("video", direction="recvonly")
            self.pc.addTransceiver("audio", direction="recvonly")
        self._stages = ConnectionStages(self.pc, self.timeline)

    @property
    def sid(self) -> str | None:
        """The server's participant sid for this session: the last segment of its resource URL."""
        return self.resource.rstrip("/").rsplit("/", 1)[-1] if self.resource else None

    async def offer(self) -> None:
        """Create the offer and gather every candidate; the datagram hook is in place before any is sent."""
        await self.pc.setLocalDescription(await self.pc.createOffer())
        if self.datagram_hook is not None:
            taps.hook_datagrams(self.pc, self.datagram_hook)
        self.timeline.offer = time.perf_counter()

    async def post(self, params: dict[str, str] | None = None) -> None:
        """POST the offer (again, after a refusal: it is still our local description) and apply the answer."""
        response = await self.http.post(
            f"/{self.kind}/{self.room}",
            params=params,
            content=self.pc.localDescription.sdp,
            headers={**self._auth, "Content-Type": "application/sdp"},
        )
        if response.status_code != 201:
            raise WhipError(self.kind, _error_code(response))
        location = response.headers.get("location")
        if not location:
            raise WhipError(self.kind, "201 without a Location")
        self.resource = location
        if not response.headers.get("content-type", "").startswith("application/sdp"):
            raise WhipError(self.kind, "201 without an SDP answer")
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
        except Exception as exc:
            raise WhipError(self.kind, f"answer rejected ({type(exc).__name__})") from None
        self.timeline.answer = time.perf_counter()

    def received(self, kind: str) -> Any:
        """The receiver of the ``kind`` track the server bound to this WHEP session, or None."""
        return received(self.pc, kind)

    async def wait_connected(self, timeout: float) -> None:
        await self._stages.connected(timeout, self.kind)

    async def close(self) -> None:
        """DELETE the resource (best effort: the server may be gone), then close the peer connection."""
        if self.resource is not None:
            with contextlib.suppress(httpx.HTTPError):
                await self.http.delete(self.resource, headers=self._auth)
        await self.pc.close()


def _error_code(response: httpx.Response) -> str:
    """The typed code of a Vitrine error body, else the HTTP status (a proxy's page, a bare 500)."""
    try:
        code = response.json().get("code")
    except (ValueError, AttributeError):
        code = None
    return code if isinstance(code, str) and code.isidentifier() and len(code) <= 40 else f"HTTP {response.status_code}"
