"""Outside encoders publish: GStreamer ``webrtcbin`` (Debian's packages) over WHIP, watched in Chromium over WHEP.

What it proves, end to end: DTLS with GStreamer's RSA certificate (media/taps/lean.py), RTP packetized at
GStreamer's default ``mtu=1400`` forwarded whole (media/taps/srtp.py: the publisher counts the packets it made
that pylibsrtp's own buffer would have refused), and a same-host encoder reaching a server configured as the
README says (``VITRINE_RTC_INTERFACES`` set to an address of this host). Chromium must decode frames of the
published size, and keep decoding.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from urllib.parse import urljoin

import pytest

from media import taps
from tests.browser_support import WatchedPage, chromium, playwright_api
from tests.interop.gstreamer_support import (
    STATE_TIMEOUT_S,
    GstPublisher,
    gst_publisher,
    media_address,
    require_gstreamer,
    viewer_stats,
    wait_decoding,
    whep_viewer,
)
from tests.live_helpers import console_client, make_show
from tests.servers import RunningServer, embedded_server
from vitrine.core.models import Role

WIDTH, HEIGHT = 640, 360
MTU = 1400
STOCK_SRTP_LIMIT = 1356  # the longest RTP pylibsrtp's own 1500-byte buffer protects
CODECS = [pytest.param("vp8", "video/VP8", id="vp8"), pytest.param("h264", "video/H264", id="h264")]


@pytest.fixture(scope="module")
def gstreamer() -> str:
    return require_gstreamer()


@pytest.fixture
async def gst_server() -> AsyncIterator[RunningServer]:
    """The embedded server with media on a non-loopback address of this host, as the README says to run it."""
    address = media_address()
    try:
        async with embedded_server(rtc_interfaces=[address]) as running:
            yield running
    finally:
        taps.configure_host_candidates(["127.0.0.1"])  # back to the suite's loopback_only_ice


@pytest.fixture
async def gst_browser(gst_server: RunningServer) -> AsyncIterator[playwright_api.Browser]:
    async with chromium() as instance:
        yield instance


def _published_big_packets(publisher: GstPublisher) -> bool:
    stats = publisher.last("stats")
    return stats is not None and stats["big_packets"] > 0


async def _keeps_decoding(viewer: WatchedPage, after: int, more: int) -> None:
    deadline = time.monotonic() + STATE_TIMEOUT_S
    while (stats := await viewer_stats(viewer))["framesDecoded"] < after + more:
        assert time.monotonic() < deadline, f"decoding stopped at {stats}"
        await asyncio.sleep(0.2)


async def _watch_and_check(
    server: RunningServer, browser: playwright_api.Browser, publisher: GstPublisher, whep: str, token: str | None
) -> dict[str, object]:
    await publisher.wait_for(GstPublisher.connected, "the encoder's peer connection to connect")
    viewer = await whep_viewer(browser, server.url, whep, token)
    try:
        stats = await wait_decoding(viewer, WIDTH, HEIGHT, frames=30)
        assert stats["keyFramesDecoded"] >= 1
        await _keeps_decoding(viewer, int(stats["framesDecoded"]), more=30)
        await publisher.wait_for(_published_big_packets, f"RTP packets over {STOCK_SRTP_LIMIT} bytes")
        return stats
    finally:
        await viewer.close()


@pytest.mark.parametrize(("codec", "mime"), CODECS)
async def test_a_gstreamer_encoder_publishes_into_a_room_and_chromium_watches(
    gstreamer: str, gst_server: RunningServer, gst_browser: playwright_api.Browser, codec: str, mime: str
) -> None:
    room = f"gst-{codec}"
    dropped_before = taps.OversizeRtp.dropped
    publish_url = f"{gst_server.url}/whip/{room}"
    token = gst_server.token(room, "encoder", Role.HOST)
    size = ("--width", str(WIDTH), "--height", str(HEIGHT))
    async with gst_publisher(publish_url, token, "--codec", codec, "--mtu", str(MTU), *size) as publisher:
        viewer_token = gst_server.token(room, "viewer-1", Role.VIEWER, create=False)
        stats = await _watch_and_check(gst_server, gst_browser, publisher, f"/whep/{room}", viewer_token)
        assert stats["codec"] == mime
        published = publisher.last("stats")
        assert published is not None and STOCK_SRTP_LIMIT < published["largest"] <= MTU
        assert taps.OversizeRtp.dropped == dropped_before  # every packet fit
        worker = gst_server.runtime.media_worker
        media = worker.media_stats()
        assert media["published_tracks"] == 2  # video and the publisher's Opus
        assert (media["decoders_running"], media["encoders_created"]) == (0, 0)  # forwarded, never decoded
        # GStreamer writes its candidates into the first m-line only: they reached the shared transport anyway.
        encoder = next(p for p in worker.rooms[room].peers.values() if p.participant.identity == "encoder")
        ice = encoder.pc.getTransceivers()[0].receiver.transport.transport
        assert any(c.type == "host" and c.ip == media_address() for c in ice.getRemoteCandidates())
    assert await publisher.stop() == 0
    deleted = publisher.last("deleted")
    assert deleted is not None and deleted.get("status") == 200, publisher.diagnostics()


async def test_a_gstreamer_encoder_takes_a_show_live_with_its_stream_key(
    gstreamer: str, gst_server: RunningServer, gst_browser: playwright_api.Browser
) -> None:
    show = await make_show(gst_server)
    console = await console_client(gst_server, show)
    try:
        settings = (await console.get("/v1/live/console")).json()
        whip_url = urljoin(gst_server.url, settings["whip_url"])
        options = ("--codec", "h264", "--mtu", str(MTU), "--width", str(WIDTH), "--height", str(HEIGHT))
        async with gst_publisher(whip_url, settings["stream_key"], *options) as publisher:
            # The show's public WHEP: any player, no credentials.
            whep = f"/v1/live/{show['shop']}/{show['id']}/whep"
            stats = await _watch_and_check(gst_server, gst_browser, publisher, whep, None)
            assert stats["codec"] == "video/H264"
            assert (await console.get("/v1/live/console")).json()["show"]["state"] == "live"  # the encoder started it
        assert await publisher.stop() == 0
    finally:
        await console.aclose()


async def test_on_loopback_only_the_server_says_what_to_set_and_a_gstreamer_encoder_cannot_connect(
    gstreamer: str, caplog: pytest.LogCaptureFixture
) -> None:
    """``vitrine serve`` on 127.0.0.1 offers media on 127.0.0.1 only. libnice gathers no loopback candidate and
    pins its sockets to their interface, so its checks never reach us: the server must say so at start."""
    address = media_address()
    with caplog.at_level("WARNING", logger="vitrine.embedded"):
        async with embedded_server() as server:  # rtc_interfaces left to the loopback default of a loopback host
            assert server.settings.rtc_interfaces == ["127.0.0.1"]
            notes = [r.getMessage() for r in caplog.records if r.name == "vitrine.embedded"]
            assert len(notes) == 1, notes
            assert "VITRINE_RTC_INTERFACES" in notes[0] and address in notes[0]
            room = "gst-loopback"
            async with gst_publisher(
                f"{server.url}/whip/{room}", server.token(room, "encoder", Role.HOST)
            ) as publisher:
                await publisher.wait_for(lambda p: p.last("answered") is not None, "the WHIP answer")
                answer = publisher.last("answered")
                assert answer is not None and all(" 127.0.0.1 " in c for c in answer["candidates"])
                offer = publisher.last("offer")
                assert offer is not None and not any(" 127.0.0.1 " in c for c in offer["candidates"])
                await publisher.wait_for(
                    lambda p: (p.last("ice") or {}).get("state") == "failed", "ICE to fail, as libnice's does"
                )
    caplog.clear()
    try:
        with caplog.at_level("WARNING", logger="vitrine.embedded"):
            async with embedded_server(rtc_interfaces=[address]):
                assert not [r for r in caplog.records if r.name == "vitrine.embedded"]  # configured: nothing to say
    finally:
        taps.configure_host_candidates(["127.0.0.1"])  # back to the suite's loopback_only_ice
