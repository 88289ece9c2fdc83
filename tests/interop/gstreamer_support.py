"""GStreamer publishers and a Chromium WHEP viewer, for the interop tests.

``GstPublisher`` runs ``gst_whip_publisher.py`` (GStreamer ``webrtcbin`` from Debian's packages, under Debian's
``/usr/bin/python3``) and keeps the JSON lines it prints. ``whep_viewer`` opens a minimal WHEP player in
Chromium: a page routed onto the server's origin (so no CORS is involved), an ``RTCPeerConnection`` with one
receive-only video m-line, and ``fetch``. ``viewer_stats`` reads what the browser decoded.

The server under test offers media on a non-loopback address of this host (``media_address``), as the README
tells operators with same-host encoders to do: libnice, inside every GStreamer client, never uses loopback.
Packets to a local address never leave the machine; the kernel loops them back.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from media import taps
from tests.browser_support import STATE_TIMEOUT_MS, WatchedPage, playwright_api

SYSTEM_PYTHON = "/usr/bin/python3"
PUBLISHER = Path(__file__).resolve().with_name("gst_whip_publisher.py")
# The elements the publisher's pipelines use, and the Debian package of each.
ELEMENTS = {
    "webrtcbin": "gstreamer1.0-plugins-bad",
    "nicesrc": "gstreamer1.0-nice",
    "dtlssrtpenc": "gstreamer1.0-plugins-bad",
    "vp8enc": "gstreamer1.0-plugins-good",
    "rtpvp8pay": "gstreamer1.0-plugins-good",
    "x264enc": "gstreamer1.0-plugins-ugly",
    "rtph264pay": "gstreamer1.0-plugins-good",
    "opusenc": "gstreamer1.0-plugins-base",
    "videotestsrc": "gstreamer1.0-plugins-base",
}
INSTALL_HINT = "run scripts/install-system-deps (GStreamer, gstreamer1.0-nice, python3-gi, gir1.2-gst-plugins-bad-1.0)"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
STATE_TIMEOUT_S = STATE_TIMEOUT_MS / 1000
WHEP_PAGE = "/__interop/whep.html"


def require_gstreamer() -> str:
    """GStreamer's version string, or fail the test saying what to install (never skip)."""
    check = (
        "import gi, sys\n"
        "for namespace in ('Gst', 'GstWebRTC', 'GstSdp'): gi.require_version(namespace, '1.0')\n"
        "from gi.repository import Gst, GstWebRTC, GstSdp\n"
        "Gst.init(None)\n"
        f"missing = [n for n in {sorted(ELEMENTS)!r} if Gst.ElementFactory.find(n) is None]\n"
        "print(' '.join(missing) if missing else Gst.version_string()); sys.exit(1 if missing else 0)\n"
    )
    try:
        result = subprocess.run([SYSTEM_PYTHON, "-c", check], capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        pytest.fail(f"{SYSTEM_PYTHON} is missing: {INSTALL_HINT}", pytrace=False)
    if result.returncode != 0:
        missing = result.stdout.split() if result.stdout.strip() else []
        packages = sorted({ELEMENTS[name] for name in missing if name in ELEMENTS})
        detail = f"missing elements {missing} ({', '.join(packages)})" if missing else result.stderr.strip()[-500:]
        pytest.fail(f"GStreamer cannot run the publisher: {detail}; {INSTALL_HINT}", pytrace=False)
    return result.stdout.strip()


def media_address() -> str:
    """An IPv4 address of this host that is not loopback, for ``VITRINE_RTC_INTERFACES``; fail if there is none."""
    addresses = [a for a in taps.host_addresses() if ipaddress.ip_address(a).version == 4]
    if not addresses:
        pytest.fail(
            "this host has no non-loopback IPv4 address, and libnice (GStreamer's ICE) never uses loopback: "
            "give it one (e.g. a veth pair or a dummy interface) to run the GStreamer interop tests",
            pytrace=False,
        )
    return addresses[0]


class GstPublisher:
    """One ``gst_whip_publisher.py`` process and the events it has printed so far."""

    def __init__(self, url: str, token: str, *options: str) -> None:
        self.args = [SYSTEM_PYTHON, str(PUBLISHER), url, token, *options]
        self.events: list[dict[str, Any]] = []
        self.stderr = b""
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            *self.args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            with contextlib.suppress(ValueError):
                self.events.append(json.loads(line))

    def last(self, event: str) -> dict[str, Any] | None:
        return next((e for e in reversed(self.events) if e["event"] == event), None)

    def diagnostics(self) -> str:
        lines = "\n  ".join(json.dumps(e)[:400] for e in self.events[-20:])
        return f"publisher events:\n  {lines}\nstderr:\n{self.stderr.decode(errors='replace')[-2000:]}"

    async def wait_for(self, condition: Callable[[GstPublisher], bool], what: str) -> None:
        """Poll ``condition`` until it holds; fail with the publisher's events if it exits or time runs out."""
        deadline = time.monotonic() + STATE_TIMEOUT_S
        while not condition(self):
            failed = self.last("failed")
            exited = self.proc is not None and self.proc.returncode is not None
            if failed is not None or exited or time.monotonic() > deadline:
                if exited:
                    await self._collect_stderr()
                raise AssertionError(f"publisher: timed out or stopped waiting for {what}\n{self.diagnostics()}")
            await asyncio.sleep(0.1)

    def connected(self) -> bool:
        state = self.last("connection")
        return state is not None and state["state"] == "connected"

    async def stop(self) -> int:
        """SIGTERM (the publisher then DELETEs its session) and wait; the exit code."""
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_S)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        if self._reader is not None:
            await self._reader
        await self._collect_stderr()
        assert self.proc.returncode is not None
        return self.proc.returncode

    async def _collect_stderr(self) -> None:
        if self.proc is not None and self.proc.stderr is not None and not self.stderr:
            self.stderr = await self.proc.stderr.read()


@contextlib.asynccontextmanager
async def gst_publisher(url: str, token: str, *options: str) -> AsyncIterator[GstPublisher]:
    """A running publisher, stopped on the way out (its events printed if the test failed)."""
    publisher = GstPublisher(url, token, *options)
    await publisher.start()
    try:
        yield publisher
    except BaseException:
        await publisher.stop()
        print(publisher.diagnostics())
        raise
    await publisher.stop()


# -- the viewer ------------------------------------------------------------------------------------------

WHEP_HTML = """<!doctype html>
<meta charset="utf-8">
<title>WHEP viewer</title>
<script>
// A minimal WHEP player (RFC 9725-style, non-trickle): offer, wait for every candidate, POST, apply the answer.
// 404 means nothing is published yet: the same offer is posted again.
window.whepPlay = async (url, token) => {
  // With camera permission granted Chromium offers its real addresses, not mDNS names that aioice would
  // have to resolve with multicast on the network.
  (await navigator.mediaDevices.getUserMedia({ video: true })).getTracks().forEach((t) => t.stop());
  const pc = new RTCPeerConnection();
  const video = document.createElement("video");
  Object.assign(video, { muted: true, autoplay: true, playsInline: true });
  document.body.append(video);
  pc.ontrack = (event) => { video.srcObject = new MediaStream([event.track]); };
  pc.addTransceiver("video", { direction: "recvonly" });
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((resolve) => {
    if (pc.iceGatheringState === "complete") return resolve();
    pc.addEventListener("icegatheringstatechange", () => pc.iceGatheringState === "complete" && resolve());
  });
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(url, {
      method: "POST",
      headers: token
        ? { "Content-Type": "application/sdp", Authorization: `Bearer ${token}` }
        : { "Content-Type": "application/sdp" },
      body: pc.localDescription.sdp,
    });
    if (response.status === 201) {
      await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
      window.whep = { pc, video, attempts: attempt + 1, location: response.headers.get("Location") };
      return window.whep.attempts;
    }
    if (response.status !== 404 || attempt > 100) {
      throw new Error(`WHEP answered ${response.status}: ${await response.text()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
};
window.whepStats = async () => {
  const { pc, video } = window.whep;
  const stats = await pc.getStats();
  let inbound = null;
  stats.forEach((s) => { if (s.type === "inbound-rtp" && s.kind === "video") inbound = s; });
  const codec = inbound && inbound.codecId ? stats.get(inbound.codecId) : null;
  return {
    connection: pc.connectionState,
    framesDecoded: inbound ? inbound.framesDecoded || 0 : 0,
    keyFramesDecoded: inbound ? inbound.keyFramesDecoded || 0 : 0,
    frameWidth: inbound ? inbound.frameWidth || 0 : 0,
    frameHeight: inbound ? inbound.frameHeight || 0 : 0,
    codec: codec ? codec.mimeType : null,
    videoWidth: video.videoWidth,
    videoHeight: video.videoHeight,
  };
};
</script>
"""


async def whep_viewer(
    browser: playwright_api.Browser, server_url: str, whep_path: str, token: str | None
) -> WatchedPage:
    """A Chromium page on the server's origin playing ``whep_path``; ``token`` None posts without credentials."""
    context = await browser.new_context()
    page = await context.new_page()
    watched = WatchedPage(page, name="whep viewer")

    async def serve_page(route: playwright_api.Route) -> None:
        await route.fulfill(status=200, content_type="text/html", body=WHEP_HTML)

    await page.route(server_url + WHEP_PAGE, serve_page)
    await page.goto(server_url + WHEP_PAGE)
    try:
        await page.evaluate("([url, token]) => whepPlay(url, token)", [server_url + whep_path, token or ""])
    except playwright_api.Error as exc:
        raise AssertionError(f"the WHEP player failed: {exc}\n{watched.diagnostics()}") from None
    return watched


async def viewer_stats(viewer: WatchedPage) -> dict[str, Any]:
    stats: dict[str, Any] = await viewer.page.evaluate("whepStats()")
    return stats


async def wait_decoding(viewer: WatchedPage, width: int, height: int, frames: int) -> dict[str, Any]:
    """Wait until the viewer has decoded ``frames`` frames of ``width`` x ``height`` and shows them; the stats."""
    deadline = time.monotonic() + STATE_TIMEOUT_S
    while True:
        stats = await viewer_stats(viewer)
        if (
            stats["framesDecoded"] >= frames
            and (stats["frameWidth"], stats["frameHeight"]) == (width, height)
            and (stats["videoWidth"], stats["videoHeight"]) == (width, height)
        ):
            return stats
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the viewer did not decode {frames} frames of {width}x{height}: {stats}\n{viewer.diagnostics()}"
            )
        await asyncio.sleep(0.2)
