"""Helpers of the hardening suites (bad input, tokens): a log-leak guard, probes, real offers.

``leak_guard`` fails a test if the API secret, a token the test used, or
anything shaped like a JWT reaches any log record. ``Probe`` is a client that
records every message and can misbehave on purpose.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection
from aiortc.rtcconfiguration import RTCBundlePolicy

from loadtest.client import RemoteTrack, VitrineClient
from tests.media_helpers import av_tracks
from tests.servers import TEST_SECRET, RunningServer
from vitrine.core.wire.rtc import PROTOCOL_VERSION

# Generous timeouts: a loaded 2-core machine runs three aiortc peers here.
WAIT_S = 30.0
# Long enough that no socket is closed for idling while a slow machine decodes frames.
PATIENT = {"idle_timeout_s": 600.0, "join_timeout_s": 300.0}
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}")
# The test's own WebSocket client traces its outgoing frames (join messages included) at DEBUG;
# that is the test talking, not the server.
CLIENT_TRACE_LOGGERS = ("websockets.client",)


# -- nothing sent or minted here may reach a log ---------------------------------------------


class _Collector(logging.Handler):
    """For uvicorn's loggers, which do not propagate to the root logger caplog listens on."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class LeakGuard:
    def __init__(self, caplog: pytest.LogCaptureFixture) -> None:
        self.caplog = caplog
        self.watched: set[str] = {TEST_SECRET}
        self.collector = _Collector()
        self._attached: list[logging.Logger] = []

    def watch(self, value: str) -> str:
        if value:
            self.watched.add(value)
        return value

    def attach_non_propagating(self) -> None:
        for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
            logger = logging.getLogger(name)
            if not logger.propagate and logger not in self._attached:
                logger.addHandler(self.collector)
                self._attached.append(logger)

    def detach(self) -> None:
        for logger in self._attached:
            logger.removeHandler(self.collector)
        self._attached.clear()

    def records(self) -> list[logging.LogRecord]:
        phases = [self.caplog.get_records(when) for when in ("setup", "call", "teardown")]
        return [r for records in phases for r in records] + self.collector.records

    def check(self) -> None:
        leaks = []
        for record in self.records():
            if record.name.startswith(CLIENT_TRACE_LOGGERS):
                continue
            for text in _texts(record):
                if any(value in text for value in self.watched) or JWT_SHAPE.search(text):
                    leaks.append(f"{record.name}:{record.levelname}")  # never print the secret itself
        assert not leaks, f"a secret or join token was logged by: {sorted(set(leaks))}"


def _texts(record: logging.LogRecord) -> Iterator[str]:
    try:
        yield record.getMessage()
    except Exception:  # a record with broken args: check its parts
        yield str(record.msg)
        yield repr(record.args)
    if record.exc_info and record.exc_info[1] is not None:
        yield "".join(traceback.format_exception(*record.exc_info))
    if record.exc_text:
        yield record.exc_text
    if record.stack_info:
        yield record.stack_info


# -- a server, and a room where media flows -----------------------------------------------------


class FrameCounter:
    """Decodes a remote track in the background and counts the frames."""

    def __init__(self, remote: RemoteTrack) -> None:
        self.kind = remote.track.kind
        self.count = 0
        self.error: BaseException | None = None
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._run(remote))

    async def _run(self, remote: RemoteTrack) -> None:
        try:
            while True:
                await remote.track.recv()
                self.count += 1
                self._changed.set()
        except Exception as exc:
            self.error = exc
            self._changed.set()

    async def more(self, frames: int, timeout: float = WAIT_S) -> None:
        """Wait until ``frames`` frames newer than now have been decoded."""
        target = self.count + frames

        async def reach() -> None:
            while self.count < target:
                if self.task.done():
                    raise AssertionError(f"the {self.kind} track ended: {self.error!r}")
                self._changed.clear()
                if self.count < target and not self.task.done():
                    await self._changed.wait()

        try:
            await asyncio.wait_for(reach(), timeout)
        except TimeoutError:
            raise AssertionError(
                f"only {self.count - target + frames} of {frames} new {self.kind} frames in {timeout}s"
            ) from None

    def stop(self) -> None:
        self.task.cancel()


class Probe(VitrineClient):
    """A VitrineClient that records every server message, so tests can wait for errors and pongs.

    With ``auto_answer`` it answers the server's offers like any client; without, the offers
    queue up in ``offers`` for the test to answer (or mangle) itself.
    """

    def __init__(self, server: RunningServer, token: str = "", *, auto_answer: bool = True, **kwargs: Any) -> None:
        super().__init__(server.url, token, **kwargs)
        self.inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.history: list[str] = []  # the type of every message received, in order
        self.offers: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.auto_answer = auto_answer

    async def open(self) -> None:
        """The socket only: no join."""
        self._ws = await websockets.connect(self.ws_url, max_size=2**22)
        self._reader = asyncio.create_task(self._read())

    async def _on_message(self, message: dict[str, Any]) -> None:
        self.history.append(message.get("type", "?"))
        await self.inbox.put(message)
        if message.get("type") == "offer" and not self.auto_answer:
            await self.offers.put(message)
            return
        if message.get("type") == "answer" and self.pc.signalingState != "have-local-offer":
            return  # an answer to an offer this probe sent from another peer connection
        await super()._on_message(message)

    async def send_json(self, message: dict[str, Any]) -> None:
        """Exactly this message (``send`` drops None values, and ``"candidate": null`` means something)."""
        await self.send_raw(json.dumps(message))

    async def expect(self, *types: str, timeout: float = WAIT_S) -> dict[str, Any]:
        """The next message of one of ``types``; offers, answers and events in between are skipped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise AssertionError(f"no {types} message within {timeout}s")
            try:
                message = await asyncio.wait_for(self.inbox.get(), remaining)
            except TimeoutError:
                raise AssertionError(f"no {types} message within {timeout}s") from None
            if message["type"] in types:
                return message

    async def expect_error(self, code: str, ref: str | None = None) -> dict[str, Any]:
        error = await self.expect("error")
        assert error["code"] == code, error
        assert error.get("ref") == ref, error
        assert error["message"], error
        return error

    async def join(self, token: str, **extra: Any) -> dict[str, Any]:
        await self.send_json({"type": "join", "v": PROTOCOL_VERSION, "token": token, **extra})
        return await self.expect("joined", "error")

    async def assert_alive(self) -> None:
        """The same socket still works: a ping gets its pong."""
        ts = secrets.randbelow(2**31)
        await self.send_json({"type": "ping", "ts": ts})
        pong = await self.expect("pong")
        assert pong.get("ts") == ts, pong

    async def wait_negotiated(self, count: int = 1) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        while self.negotiations < count:
            assert loop.time() < deadline, f"{self.negotiations} negotiations, expected {count}"
            await asyncio.sleep(0.02)


async def publisher_offer(recvonly: bool = False) -> str:
    """A real aiortc offer: sendonly audio and video (a publisher), or recvonly (a player)."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    try:
        if recvonly:
            pc.addTransceiver("video", direction="recvonly")
            pc.addTransceiver("audio", direction="recvonly")
        else:
            for track in av_tracks():
                pc.addTransceiver(track, direction="sendonly")
        await pc.setLocalDescription(await pc.createOffer())
        return pc.localDescription.sdp
    finally:
        await pc.close()
