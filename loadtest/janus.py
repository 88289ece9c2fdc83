"""Janus 1.1 (VideoRoom plugin) as the baseline of the join benchmarks: the server and its aiortc clients.

The join benchmarks compare Vitrine with Janus in the same run and with the same client (aiortc, with the
harness's ``media.taps`` installed, as ``WhipSession`` has them), so the difference is the server's.

``JanusServer`` runs Debian's ``janus`` with a private configuration written to a temporary folder: the HTTP
transport and the VideoRoom plugin only (every other plugin, transport, logger and event handler disabled, so
it starts in a fraction of a second and opens one TCP port), full ICE (not ICE Lite), half-trickle, its own RTP
port range, and its log in a file.

Why a network namespace, not 127.0.0.1: Janus never gathers a loopback candidate. Its ``janus_ice_setup_local``
(ice.c) skips every ``IFF_LOOPBACK`` interface before it reads ``ice_enforce_list`` or ``ice_ignore_list``, so
no setting makes it offer 127.0.0.1, and its candidates on the machine's other addresses are unreachable from a
loopback-only client. So Janus runs alone in a namespace of its own linked to the root namespace by a veth
pair (``loadtest.netns.open_link``: 10.231.S.2 in the namespace, 10.231.S.1 on the host side, no loss table),
serves HTTP and gathers candidates on 10.231.S.2, and its clients gather theirs on 10.231.S.1
(``JanusServer.client_ip``): media crosses one veth instead of loopback, and never leaves the machine.

The clients speak the Janus HTTP API: a session (``create``), one handle on ``janus.plugin.videoroom``
(``attach``), plugin messages (``message``: acknowledged at once, answered by an event), and a long-poll GET
that brings those events and keeps the session alive (each poll counts as activity; Janus answers an idle one
with a ``keepalive`` after 30 s). ``JanusPublisher`` joins a room as a publisher and ``configure``s it with an
aiortc offer; ``JanusViewer`` joins as a subscriber of one feed, gets Janus's offer, answers it and ``start``s.
Both send their SDP with every candidate in it (aiortc gathers before ``setLocalDescription`` returns, and ends
the list with ``a=end-of-candidates``), as ``WhipSession`` does: no trickle.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import os
import secrets
import subprocess
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import httpx
from aiortc import MediaStreamTrack, RTCSessionDescription

from loadtest.netns import KernelLink, open_link
from loadtest.server import proc_cpu_seconds, stop_process, with_parent_death
from loadtest.source import MovingPatternTrack
from loadtest.whip_client import ConnectionStages, client_peer_connection, received
from media import taps

VIDEOROOM = "janus.plugin.videoroom"
HTTP_PORT = 8088  # Janus's default; free by construction in its own namespace
RTP_PORTS = (20000, 29999)
START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
POLL_TIMEOUT_S = 45.0  # Janus holds a long poll up to 30 s before it answers ``keepalive``
POLL_FAILURES = 5  # consecutive failed polls before the session's pending requests fail
KEPT = {
    "plugins": {"libjanus_videoroom.so"},
    "transports": {"libjanus_http.so"},
    "events": set(),
    "loggers": set(),
}
LIB_DIRS = ("/usr/lib/*/janus", "/usr/lib/janus", "/usr/local/lib/janus", "/opt/janus/lib/janus")


class JanusStartError(RuntimeError):
    """Janus is not installed, exited, or never answered ``info``."""


class JanusError(Exception):
    """A Janus API or VideoRoom request that failed; ``code`` is short and aggregatable, as ``WhipError``'s."""

    def __init__(self, code: str) -> None:
        super().__init__(f"janus: {code}")
        self.code = code


def janus_lib_dir() -> Path:
    """The folder holding Janus's plugins/, transports/, events/ and loggers/ (Debian: /usr/lib/<triplet>/janus)."""
    for pattern in LIB_DIRS:
        for candidate in sorted(Path("/").glob(pattern.lstrip("/"))):
            if (candidate / "plugins" / "libjanus_videoroom.so").exists():
                return candidate
    raise JanusStartError("Janus is not installed (Debian: apt-get install janus)")


def _jcfg(sections: dict[str, dict[str, str | int | bool]]) -> str:
    """Janus's libconfig-style .jcfg text: ``name: { key = value }`` per section."""

    def value(v: str | int | bool) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        return str(v) if isinstance(v, int) else '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

    lines: list[str] = []
    for name, entries in sections.items():
        lines += [f"{name}: {{", *(f"\t{key} = {value(v)}" for key, v in entries.items()), "}"]
    return "\n".join(lines) + "\n"


def _disabled(lib_dir: Path, kind: str) -> str:
    """Every module of ``kind`` this installation has, less the ones the harness keeps."""
    names = {path.name for path in (lib_dir / kind).glob("*.so")} - KEPT[kind]
    return ",".join(sorted(names))


@dataclass
class JanusServer:
    """``janus`` as a child process in a network namespace of its own (see the module's docstring for why)."""

    debug_level: int = 3  # warnings and errors: per-session info lines would cost Janus CPU during a burst
    lib_dir: Path | None = None
    conf_dir: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="vitrine-janus-")))
    proc: subprocess.Popen[bytes] | None = None
    link: KernelLink | None = None
    _stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    @property
    def host(self) -> str:
        """Janus's address: its HTTP API and its ICE candidates."""
        assert self.link is not None, "JanusServer.start() first"
        return self.link.client_ip  # the namespace's end of the veth pair

    @property
    def client_ip(self) -> str:
        """Where this process's peers must gather (``taps.configure_host_candidates([server.client_ip])``)."""
        assert self.link is not None, "JanusServer.start() first"
        return self.link.host_ip

    @property
    def url(self) -> str:
        return f"http://{self.host}:{HTTP_PORT}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def log_path(self) -> Path:
        return self.conf_dir / "janus.log"

    def write_config(self) -> None:
        lib_dir = self.lib_dir or janus_lib_dir()
        assert self.link is not None
        general: dict[str, str | int | bool] = {
            "configs_folder": str(self.conf_dir),
            "plugins_folder": str(lib_dir / "plugins"),
            "transports_folder": str(lib_dir / "transports"),
            "events_folder": str(lib_dir / "events"),
            "loggers_folder": str(lib_dir / "loggers"),
            "debug_level": self.debug_level,
            "session_timeout": 60,
            "server_name": "vitrine-baseline",
        }
        files: dict[str, dict[str, dict[str, str | int | bool]]] = {
            "janus.jcfg": {
                "general": general,
                "media": {"rtp_port_range": f"{RTP_PORTS[0]}-{RTP_PORTS[1]}"},
                "nat": {
                    "nice_debug": False,
                    "ice_lite": False,
                    "ice_tcp": False,
                    "full_trickle": False,
                    "ignore_mdns": True,
                    "ice_enforce_list": self.link.client_dev,  # the namespace's only interface but lo
                },
                "plugins": {"disable": _disabled(lib_dir, "plugins")},
                "transports": {"disable": _disabled(lib_dir, "transports")},
                "loggers": {"disable": _disabled(lib_dir, "loggers")},
                "events": {"broadcast": False, "disable": _disabled(lib_dir, "events")},
            },
            "janus.transport.http.jcfg": {
                "general": {
                    "json": "compact",
                    "base_path": "/janus",
                    "http": True,
                    "port": HTTP_PORT,
                    "ip": self.host,
                    "https": False,
                },
                "admin": {"admin_http": False, "admin_https": False},
            },
            "janus.plugin.videoroom.jcfg": {"general": {}},
        }
        for name, sections in files.items():
            (self.conf_dir / name).write_text(_jcfg(sections))

    def start(self) -> None:
        """Create the namespace, write the configuration, start Janus and wait for ``info`` (bounded)."""
        try:
            self.link = self._stack.enter_context(open_link())
            self.write_config()
            command = ["janus", "-F", str(self.conf_dir), "-C", str(self.conf_dir / "janus.jcfg"), "-o"]
            with self.log_path.open("wb") as log:
                self.proc = subprocess.Popen(
                    with_parent_death(["ip", "netns", "exec", self.link.name, *command]),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + START_TIMEOUT_S
        with httpx.Client(timeout=2.0) as client:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise JanusStartError(f"janus exited with {self.proc.returncode}:\n{self.log_tail()}")
                with contextlib.suppress(httpx.HTTPError, ValueError):
                    reply = client.post(self.url + "/janus", json={"janus": "info", "transaction": "ready"}).json()
                    if reply.get("janus") == "server_info":
                        return
                time.sleep(0.1)
        raise JanusStartError(f"janus did not answer info within {START_TIMEOUT_S:.0f} s:\n{self.log_tail()}")

    def stop(self) -> None:
        """Terminate Janus (then kill), then remove its namespace. Safe to call twice."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(STOP_TIMEOUT_S)
        self._stack.close()

    def cpu_seconds(self) -> float:
        return proc_cpu_seconds(self.pid)

    def log_tail(self, chars: int = 4000) -> str:
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")[-chars:]

    def log_errors(self) -> list[str]:
        """Janus's error lines (``[ERR]``), for a run's report."""
        return [line for line in self.log_tail(200_000).splitlines() if "[ERR]" in line][-20:]


# -- the Janus API over HTTP -----------------------------------------------------------------------------


def _plugin_data(message: dict[str, Any]) -> dict[str, Any]:
    """The VideoRoom's answer inside a Janus message; its error as a ``JanusError``."""
    data = message.get("plugindata", {}).get("data")
    if not isinstance(data, dict):
        raise JanusError(f"no plugin data in {message.get('janus')}")
    if "error_code" in data:
        raise JanusError(f"videoroom {data['error_code']}")
    return data


class JanusSession:
    """One Janus API session with one handle on the VideoRoom plugin; its events arrive on a long poll."""

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http
        self.session_id: int | None = None
        self.handle_id: int | None = None
        self.events: collections.deque[dict[str, Any]] = collections.deque(maxlen=100)  # not answers: webrtcup...
        self.webrtcup = asyncio.Event()  # Janus's side of ICE and DTLS is up
        self.hangup = asyncio.Event()  # Janus closed the PeerConnection or the handle
        self._pending: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._poller: asyncio.Task[None] | None = None

    async def open(self) -> None:
        """``create`` the session, start its long poll, ``attach`` the VideoRoom."""
        created = await self._post("/janus", {"janus": "create"})
        self.session_id = int(created["data"]["id"])
        self._poller = asyncio.create_task(self._poll())
        attached = await self._post(f"/janus/{self.session_id}", {"janus": "attach", "plugin": VIDEOROOM})
        self.handle_id = int(attached["data"]["id"])

    async def request(self, body: dict[str, Any]) -> dict[str, Any]:
        """A synchronous VideoRoom request (``create``, ``exists``, ``list``...): its data."""
        reply = await self._post(self._handle_path(), {"janus": "message", "body": body})
        if reply.get("janus") != "success":
            raise JanusError(f"{body.get('request')}: {reply.get('janus')} instead of success")
        return _plugin_data(reply)

    async def message(self, body: dict[str, Any], jsep: dict[str, str] | None, timeout: float) -> dict[str, Any]:
        """An asynchronous VideoRoom request (``join``, ``configure``, ``start``): Janus acks, then sends the event."""
        transaction = secrets.token_hex(8)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[transaction] = future  # before the POST: the event may come back on the poll first
        payload: dict[str, Any] = {"janus": "message", "body": body, **({"jsep": jsep} if jsep else {})}
        try:
            reply = await self._post(self._handle_path(), payload, transaction)
            if reply.get("janus") == "success":  # answered at once after all
                event = reply
            elif reply.get("janus") == "ack":
                event = await asyncio.wait_for(future, timeout)
            else:
                raise JanusError(f"{body.get('request')}: {reply.get('janus')}")
        finally:
            self._pending.pop(transaction, None)
        _plugin_data(event)
        return event

    async def close(self) -> None:
        """``destroy`` the session (best effort: Janus may be gone), then end the poll."""
        if self.session_id is not None:
            with contextlib.suppress(httpx.HTTPError, JanusError, ValueError):
                await self._post(f"/janus/{self.session_id}", {"janus": "destroy"})
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller

    def _handle_path(self) -> str:
        if self.handle_id is None:
            raise JanusError("no handle: open() first")
        return f"/janus/{self.session_id}/{self.handle_id}"

    async def _post(self, path: str, payload: dict[str, Any], transaction: str | None = None) -> dict[str, Any]:
        response = await self.http.post(path, json={**payload, "transaction": transaction or secrets.token_hex(8)})
        if response.status_code != 200:
            raise JanusError(f"HTTP {response.status_code}")
        reply: dict[str, Any] = response.json()
        if reply.get("janus") == "error":
            error = reply.get("error", {})
            raise JanusError(f"{payload['janus']}: {error.get('code')} {str(error.get('reason', ''))[:80]}")
        return reply

    async def _poll(self) -> None:
        """Read events until cancelled; after ``POLL_FAILURES`` failed polls in a row, fail what is pending."""
        failures = 0
        while failures < POLL_FAILURES:
            try:
                response = await self.http.get(
                    f"/janus/{self.session_id}", params={"maxev": 10}, timeout=POLL_TIMEOUT_S
                )
                payload = response.json()
            except (httpx.HTTPError, ValueError):
                failures += 1
                await asyncio.sleep(0.2 * failures)
                continue
            failures = 0
            for event in payload if isinstance(payload, list) else [payload]:
                self._dispatch(event)
            if isinstance(payload, dict) and payload.get("janus") == "error":  # the session is gone
                break
        for future in self._pending.values():
            if not future.done():
                future.set_exception(JanusError("event poll failed"))

    def _dispatch(self, event: dict[str, Any]) -> None:
        kind = event.get("janus")
        if kind == "keepalive":
            return
        future = self._pending.get(str(event.get("transaction")))
        if kind == "event" and future is not None and not future.done():
            future.set_result(event)
            return
        self.events.append(event)
        if kind == "webrtcup":
            self.webrtcup.set()
        elif kind in ("hangup", "detached"):
            self.hangup.set()


async def create_room(http: httpx.AsyncClient, room: int, description: str = "vitrine-bench") -> None:
    """Create a VideoRoom room for one VP8 publisher, from a session of its own (as an application server would)."""
    session = JanusSession(http)
    try:
        await session.open()
        await session.request(
            {
                "request": "create",
                "room": room,
                "description": description,
                "publishers": 1,
                "videocodec": "vp8",
                "audiocodec": "opus",
                "notify_joining": False,
                "permanent": False,
            }
        )
    finally:
        await session.close()


# -- the peers ---------------------------------------------------------------------------------------------


@dataclass
class JanusTimeline:
    """``time.perf_counter()`` of each step of one peer, as ``WhipTimeline``."""

    start: float | None = None  # the first request (session create)
    offer: float | None = None  # a publisher's offer, or a viewer's offer from Janus, is in hand
    answer: float | None = None  # the SDP exchange is done (``configure`` answered, or ``start`` acknowledged)
    ice_connected: float | None = None
    connected: float | None = None
    first_frame: float | None = None  # a viewer's first decoded video frame


class _JanusPeer:
    """An aiortc peer connection driven over one Janus session, with the same client taps as ``WhipSession``."""

    def __init__(self, http: httpx.AsyncClient, room: int) -> None:
        self.room = room
        self.session = JanusSession(http)
        self.timeline = JanusTimeline()
        self.pc = client_peer_connection()
        self._stages = ConnectionStages(self.pc, self.timeline)

    async def wait_connected(self, timeout: float) -> None:
        await self._stages.connected(timeout, "janus")

    async def close(self) -> None:
        """Destroy the Janus session (best effort), then close the peer connection."""
        await self.session.close()
        await self.pc.close()


class JanusPublisher(_JanusPeer):
    """Publish ``tracks`` into a VideoRoom room: ``join`` as a publisher, then ``configure`` with our offer."""

    def __init__(
        self, http: httpx.AsyncClient, room: int, tracks: Iterable[MediaStreamTrack], display: str = "publisher"
    ) -> None:
        super().__init__(http, room)
        self.display = display
        self.feed: int | None = None  # the publisher id viewers subscribe to
        for track in tracks:
            self.pc.addTransceiver(track, direction="sendonly")

    async def publish(self, timeout: float = 20.0) -> None:
        """Join, offer, apply Janus's answer and wait for the connection; each step bounded by ``timeout``."""
        self.timeline.start = time.perf_counter()
        await self.session.open()
        joined = await self.session.message(
            {"request": "join", "ptype": "publisher", "room": self.room, "display": self.display}, None, timeout
        )
        self.feed = int(_plugin_data(joined)["id"])
        await self.pc.setLocalDescription(await self.pc.createOffer())
        self.timeline.offer = time.perf_counter()
        configured = await self.session.message(
            {"request": "configure"},
            {"type": "offer", "sdp": self.pc.localDescription.sdp},
            timeout,
        )
        jsep = configured.get("jsep")
        if not jsep or jsep.get("type") != "answer":
            raise JanusError("configure without an answer")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type="answer"))
        self.timeline.answer = time.perf_counter()
        await self.wait_connected(timeout)


class JanusViewer(_JanusPeer):
    """Subscribe to one publisher's ``feed``: ``join`` as a subscriber, answer Janus's offer, ``start``."""

    def __init__(self, http: httpx.AsyncClient, room: int, feed: int) -> None:
        super().__init__(http, room)
        self.feed = feed

    async def join(self, timeout: float) -> None:
        """Session, handle, join, answer and start; the whole exchange bounded by ``timeout``."""
        self.timeline.start = time.perf_counter()
        await asyncio.wait_for(self._join(timeout), timeout)

    async def _join(self, timeout: float) -> None:
        await self.session.open()
        attached = await self.session.message(
            {"request": "join", "ptype": "subscriber", "room": self.room, "streams": [{"feed": self.feed}]},
            None,
            timeout,
        )
        jsep = attached.get("jsep")
        if not jsep or jsep.get("type") != "offer":
            raise JanusError("join without an offer")
        self.timeline.offer = time.perf_counter()
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=jsep["sdp"], type="offer"))
        except Exception as exc:
            raise JanusError(f"offer rejected ({type(exc).__name__})") from None
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        await self.session.message(
            {"request": "start"}, {"type": "answer", "sdp": self.pc.localDescription.sdp}, timeout
        )
        self.timeline.answer = time.perf_counter()

    def received(self, kind: str) -> Any:
        """The receiver of the ``kind`` track Janus sends this viewer, or None."""
        return received(self.pc, kind)

    async def video_frame(self, timeout: float) -> Any:
        """The next decoded video frame (bounded); the first one's time goes in the timeline."""
        receiver = self.received("video")
        if receiver is None:
            raise JanusError("no video in Janus's offer")
        frame = await asyncio.wait_for(receiver.track.recv(), timeout)
        if self.timeline.first_frame is None:
            self.timeline.first_frame = time.perf_counter()
        return frame


# -- a publisher in its own process, for the benchmarks -------------------------------------------------------


def publisher_main(url: str, client_ip: str, room: int, conn: Connection, max_lifetime_s: float) -> None:
    """Publish a 640x480 30 fps MovingPatternTrack (the benchmarks' "pattern" video) until told "stop".

    Its own process, as the Vitrine benchmark's ``Publisher``: the encoder's CPU stays off the viewers' loop.
    """
    taps.configure_host_candidates([client_ip])
    try:
        asyncio.run(_publish_until_stopped(url, room, conn, max_lifetime_s))
    except Exception as exc:  # report and exit: the parent is waiting on the pipe
        with contextlib.suppress(Exception):
            conn.send(("error", repr(exc)))


async def _publish_until_stopped(url: str, room: int, conn: Connection, max_lifetime_s: float) -> None:
    deadline = time.monotonic() + max_lifetime_s
    async with httpx.AsyncClient(base_url=url, timeout=30) as http:
        publisher = JanusPublisher(http, room, [MovingPatternTrack(640, 480)])
        try:
            await publisher.publish(timeout=20)
            conn.send(("ready", {"feed": publisher.feed, "pid": os.getpid()}))
            while time.monotonic() < deadline and not publisher.session.hangup.is_set():
                if conn.poll() and conn.recv() == "stop":
                    break
                await asyncio.sleep(0.05)
        finally:
            await asyncio.wait_for(publisher.close(), 10)


class JanusPublisherProcess:
    """Parent-side handle of ``publisher_main``: ``start`` returns once it publishes, with its ``feed``."""

    def __init__(self, server: JanusServer, room: int, max_lifetime_s: float) -> None:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(
            target=publisher_main,
            daemon=True,
            name="janus-publisher",
            args=(server.url, server.client_ip, room, child, max_lifetime_s),
        )
        self.feed: int | None = None

    def start(self, timeout: float = 40.0) -> int:
        self.proc.start()
        try:
            if not self.conn.poll(timeout):
                raise TimeoutError("the Janus publisher did not answer")
            kind, payload = self.conn.recv()
        except EOFError:
            raise RuntimeError(f"the Janus publisher exited ({self.proc.exitcode})") from None
        if kind != "ready":
            raise RuntimeError(f"the Janus publisher failed: {payload}")
        self.feed = int(payload["feed"])
        return self.feed

    def stop(self) -> None:
        with contextlib.suppress(Exception):
            self.conn.send("stop")
        stop_process(self.proc)
