"""Hostile input gets a typed error, never a 500 or a dead socket loop, and leaves nothing behind."""

from __future__ import annotations

import asyncio
import logging
import random
import re
import struct
import time

import httpx
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from loadtest.client import VitrineClient
from media.taps import MalformedPackets
from tests.desk_helpers import DeskClient
from tests.live_helpers import go_live, make_show
from tests.media_helpers import av_tracks
from tests.servers import RunningServer
from vitrine.core.models import Role

SDP = "application/sdp"
SDPFRAG = "application/trickle-ice-sdpfrag"
FUZZ_SEED, FUZZ_CASES = 1414, 40
JUNK = [
    "",
    "0",
    "-1",
    "65536",
    "99999999999999999999",
    "example.com",
    "IN IP4 example.com",
    "IN IP6 ::1",
    "\x00",
    "é",
    "a" * 300,
    "typ",
    "udp",
    ":",
    "=",
    "a=rtcp-mux",
    "c=IN IP4 not-an-ip",
    "m=video 9",
]


async def _offer(publish: bool) -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    if publish:
        for track in av_tracks():
            pc.addTransceiver(track, direction="sendonly")
    else:
        pc.addTransceiver("video", direction="recvonly")
        pc.addTransceiver("audio", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def _headers(token: str | None, content_type: str = SDP) -> dict[str, str]:
    return {"Content-Type": content_type} | ({"Authorization": f"Bearer {token}"} if token else {})


async def test_empty_offers_are_a_typed_400_on_every_whip_and_whep_endpoint(server: RunningServer) -> None:
    show = await make_show(server)
    console, _ = await go_live(server, show)
    await console.aclose()
    host, viewer = server.token("empty", "obs", Role.HOST), server.token("empty", "kim", Role.VIEWER, create=False)
    async with httpx.AsyncClient(base_url=server.url) as http:
        for path, token in (
            ("/whip/empty", host),
            ("/whep/empty", viewer),
            (f"/v1/live/acme/{show['id']}/whep", None),
        ):  # anonymous
            for body in (b"", b"   \r\n"):
                response = await http.post(path, content=body, headers=_headers(token))
                assert (response.status_code, response.json()["code"]) == (400, "invalid_sdp"), path


async def test_an_offer_whose_connection_address_is_not_an_ip_is_refused_at_the_offer(server: RunningServer) -> None:
    pc, offer = await _offer(publish=True)
    async with httpx.AsyncClient(base_url=server.url) as http, server.api() as api:
        for bad in (
            re.sub(r"c=IN IP4 \S+", "c=IN IP4 example.com", offer),
            re.sub(r"a=rtcp:(\d+) IN IP4 \S+", r"a=rtcp:\1 IN IP4 example.com", offer),
        ):
            assert bad != offer
            response = await http.post("/whip/named", content=bad, headers=_headers(server.token("named", "obs")))
            assert response.status_code == 400 and response.json()["code"] == "invalid_sdp", response.text
        assert (await api.get("/v1/rooms")).json() == []  # refused before anything was admitted
    assert server.runtime.media_worker.media_stats()["rooms"] == 0
    await pc.close()


async def test_a_lone_surrogate_gets_a_typed_error_and_the_socket_goes_on(server: RunningServer) -> None:
    for url in (
        server.ws_url,
        *(server.url.replace("http://", "ws://") + f"/v1/consult/{side}" for side in ("shopper", "agent")),
    ):
        client = await DeskClient.connect(url)
        try:
            for raw in ('{"type":"\\ud800"}', '{"type":"ping","ts":1,"x":"\\udfff"}', '{"\\udbff":1}'):
                await client.ws.send(raw)
            await client.ws.send('{"type":"ping","ts":7}')
            pong = await client.expect("pong", lambda m: m["ts"] == 7)
            assert pong and [e["code"] for e in client.of("error")] == ["invalid_json"] * 3, url
        finally:
            await client.close()


def _mutate(text: str, rng: random.Random) -> str:
    """One to three random edits of an SDP or sdpfrag, line- and token-wise, seeded."""
    lines = text.split("\r\n")
    for _ in range(rng.randint(1, 3)):
        i = rng.randrange(len(lines))
        op = rng.randrange(6)
        if op == 0:
            del lines[i]
        elif op == 1:
            lines.insert(i, lines[rng.randrange(len(lines))])
        elif op == 2:
            j = rng.randrange(len(lines))
            lines[i], lines[j] = lines[j], lines[i]
        elif op == 3:
            tokens = lines[i].split(" ")
            tokens[rng.randrange(len(tokens))] = rng.choice(JUNK)
            lines[i] = " ".join(tokens)
        elif op == 4:
            lines.insert(i, rng.choice(JUNK))
        else:
            cut = rng.randrange(len(lines[i]) + 1)
            lines[i] = lines[i][:cut]
        if not lines:
            lines = [""]
    return "\r\n".join(lines)


async def test_sdp_fuzz_on_whip_whep_and_trickle_gives_no_5xx_and_leaks_no_room(server: RunningServer) -> None:
    rng = random.Random(FUZZ_SEED)
    publisher, offer = await _offer(publish=True)
    player, play_offer = await _offer(publish=False)
    host = server.token("fuzz", "obs", Role.HOST)
    statuses: dict[str, list[int]] = {"whip": [], "whep": [], "patch": []}
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http, server.api() as api:
        published = await http.post("/whip/fuzz", content=offer, headers=_headers(host))
        assert published.status_code == 201, published.text
        await publisher.setRemoteDescription(RTCSessionDescription(sdp=published.text, type="answer"))
        deadline = time.monotonic() + 20
        while len((await api.get("/v1/rooms/fuzz")).json()["tracks"]) < 2:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        rooms_before = (await api.get("/v1/rooms")).json()
        stats_before = server.runtime.media_worker.media_stats()
        created: list[tuple[str, str]] = []
        for case in range(FUZZ_CASES):
            for kind, base in (("whip", offer), ("whep", play_offer)):
                token = server.token("fuzz", f"{kind}-{case}", Role.HOST if kind == "whip" else Role.VIEWER)
                response = await http.post(f"/{kind}/fuzz", content=_mutate(base, rng), headers=_headers(token))
                statuses[kind].append(response.status_code)
                if response.status_code == 201:
                    created.append((response.headers["location"], token))
            fragment = _mutate(
                "a=ice-ufrag:abcd\r\na=ice-pwd:efghijklmnopqrstuvwxyz12\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0"
                "\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\n"
                "a=end-of-candidates",
                rng,
            )
            response = await http.patch(
                published.headers["location"], content=fragment, headers=_headers(host, SDPFRAG)
            )
            statuses["patch"].append(response.status_code)
        for location, token in created:
            # The fuzz's sessions have no client: one whose ICE already failed (the copied candidates answer no
            # one) was freed by the worker, and its resource is a typed 404. Either way nothing may be left over.
            gone = await http.delete(location, headers=_headers(token))
            assert gone.status_code == 200 or gone.json()["code"] == "not_joined", (location, gone.text)
        assert (await api.get("/v1/rooms")).json() == rooms_before
        stats = server.runtime.media_worker.media_stats()
        assert (stats["rooms"], stats["participants"]) == (stats_before["rooms"], stats_before["participants"])
    await publisher.close()
    await player.close()
    assert all(status < 500 for codes in statuses.values() for status in codes), statuses
    assert {400} <= set(statuses["whip"]) and {400} <= set(statuses["whep"]), statuses  # the fuzz did bite


def _bad_extensions(data: bytes) -> bytes:
    """The RTP packet with its header extensions replaced by two-byte values for every id: wrong lengths for
    audio level (1 byte) and abs-send-time (3 bytes), ASCII for mid and rid so those still decode."""
    first = data[0]
    pos = 12 + 4 * (first & 0x0F)
    header = data[:pos]
    if first & 0x10:
        pos += 4 + 4 * struct.unpack_from("!H", data, pos + 2)[0]
    elements = b"".join(bytes([(i << 4) | 1]) + b"ab" for i in range(1, 15)) + b"\0\0"
    return (
        bytes([first | 0x10]) + header[1:] + b"\xbe\xde" + struct.pack("!H", len(elements) // 4) + elements + data[pos:]
    )


async def test_bad_header_extensions_are_counted_and_logged_once_not_per_packet(server: RunningServer) -> None:
    records: list[logging.LogRecord] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record)

    keep = Keep(logging.WARNING)
    logging.getLogger().addHandler(keep)
    publisher = VitrineClient(server.url, server.token("flood", "seller", Role.AGENT), tracks=av_tracks())
    try:
        await publisher.connect()
        await publisher.wait_connected()
        before = MalformedPackets.counts["rtp_header_extension"]
        transport = publisher.pc.getTransceivers()[0].sender.transport  # bundled: one for both tracks
        send_rtp = transport._send_rtp

        async def rewritten(data: bytes) -> None:
            await send_rtp(_bad_extensions(data))

        transport._send_rtp = rewritten
        deadline = time.monotonic() + 30
        while MalformedPackets.counts["rtp_header_extension"] < before + 200:
            assert time.monotonic() < deadline, "the worker never saw the bad packets"
            await asyncio.sleep(0.05)
        async with httpx.AsyncClient(base_url=server.url) as http:
            metrics = (await http.get("/metrics")).text
    finally:
        logging.getLogger().removeHandler(keep)
        await publisher.close()
    assert not [r for r in records if r.name == "asyncio"]  # was: a traceback per packet
    assert len([r for r in records if r.name == "media.taps.malformed"]) <= 1  # one per minute (0: said already)
    assert not any(r.exc_info for r in records)
    exported = next(
        line
        for line in metrics.splitlines()
        if line.startswith('vitrine_media_malformed_packets_total{cause="rtp_header_extension"')
    )
    assert float(exported.split()[-1]) >= before + 200
