"""The buyer's evidence channel end to end: a real MediaWorker, real aiortc peers, real files.

A page's side is an aiortc peer that answers the worker's offers like ``loadtest/client.py`` does. Photos
travel over the ``evidence`` data channel while the buyer's video keeps flowing; the tests check the
replies, the ``ArtifactStored`` push that tells signaling, and what is (or is not) left on disk.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
from pathlib import Path

import pytest
from aiortc import RTCDataChannel
from aiortc.mediastreams import AudioStreamTrack

from loadtest.client import VitrineClient
from media.evidence_channel import MAX_CHUNK_BYTES
from tests.evidence_helpers import Evidence, buyer_with_channel, leftovers, photo
from tests.media_helpers import MovingPatternTrack, av_tracks
from tests.servers import embedded_server
from tests.worker_harness import CHUNK, ROOM, SHOP, TIMEOUT_S, Harness, wait_for
from vitrine.core.auth import mint_token
from vitrine.core.errors import ErrorCode
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Role, Room, RoomKind, TrackSource
from vitrine.core.wire.inspect import Artifact, ArtifactKind
from vitrine.core.wire.rpc import Negotiated, PublishCommand, expect
from vitrine.core.wire.rtc import TrackRequest


async def assert_stored(harness: Harness, evidence: Evidence, request: str, payload: bytes) -> Artifact:
    reply = await evidence.reply()
    assert reply["type"] == "stored" and reply["request"] == request, reply
    artifact = Artifact.model_validate(reply["artifact"])
    push = await asyncio.wait_for(harness.artifacts.get(), TIMEOUT_S)
    assert push.artifact == artifact
    assert (push.room, push.sid, push.node_id) == (ROOM.name, "PA_buyer", "node-test")
    assert artifact.kind == ArtifactKind.PHOTO and artifact.request == request
    assert artifact.sha256 == hashlib.sha256(payload).hexdigest() and artifact.bytes == len(payload)
    assert (harness.case_dir / artifact.file).read_bytes() == payload
    return artifact


# -- the photo path -----------------------------------------------------------------------------------


async def test_a_photo_is_stored_while_the_video_flows(harness: Harness) -> None:
    _, evidence = await buyer_with_channel(harness)
    await harness.join("inspector", Role.INSPECTOR, [])  # watches the buyer's video
    await wait_for(lambda: harness.worker.media_stats()["packets_out"] > 30, "the inspector's video")
    before = harness.worker.media_stats()
    payload = photo(3 * 1024 * 1024 + 12345)
    evidence.send_photo("req-1", payload)
    artifact = await assert_stored(harness, evidence, "req-1", payload)
    during = harness.worker.media_stats()
    assert during["packets_in"] > before["packets_in"] and during["packets_out"] > before["packets_out"]
    assert artifact.content_type == "image/jpeg" and (artifact.width, artifact.height) == (4000, 3000)
    assert artifact.source == "buyer camera (takePhoto)" and artifact.file.endswith(".jpg")
    assert leftovers(harness) == [artifact.file], "no .part file is left"
    stats = harness.worker.media_stats()
    assert stats["decoders_running"] == 0 and stats["encoders_created"] == 0

    # PNG and WebP, in one chunk each, and the largest chunk allowed.
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(MAX_CHUNK_BYTES - 8)
    evidence.send_photo("req-2", png, chunk=MAX_CHUNK_BYTES, content_type="image/png", method="canvas")
    assert (await assert_stored(harness, evidence, "req-2", png)).file.endswith(".png")
    webp = b"RIFF\x00\x01\x00\x00WEBPVP8 " + os.urandom(5000)
    evidence.send_photo("req-3", webp, content_type="image/webp", method="grabFrame")
    assert (await assert_stored(harness, evidence, "req-3", webp)).source == "buyer camera (grabFrame)"


async def test_an_oversized_photo_is_refused_and_the_channel_still_works(harness: Harness) -> None:
    _, evidence = await buyer_with_channel(harness, hostile=True)
    limit = harness.settings.inspect_max_photo_bytes
    evidence.header("too-big", limit + 1)
    await evidence.error(ErrorCode.MESSAGE_TOO_LARGE, "too-big")
    evidence.header("empty", 0)
    await evidence.error(ErrorCode.INVALID_MESSAGE, "empty")

    # More data than announced, and a chunk over 256 KiB: each ends its transfer, whose tail is dropped quietly.
    evidence.header("overflow", 1000)
    evidence.channel.send(photo(1500))
    evidence.channel.send(b"the rest of it")
    await evidence.error(ErrorCode.MESSAGE_TOO_LARGE, "overflow")
    evidence.header("big-chunk", 2 * MAX_CHUNK_BYTES)
    evidence.channel.send(photo(MAX_CHUNK_BYTES + 1))
    await evidence.error(ErrorCode.MESSAGE_TOO_LARGE, "big-chunk")
    evidence.channel.send(os.urandom(MAX_CHUNK_BYTES - 1))

    payload = photo(700_000)
    evidence.send_photo("after", payload)
    await assert_stored(harness, evidence, "after", payload)
    await wait_for(lambda: len(leftovers(harness)) == 1, "the refused photos' partial files to go")
    assert harness.artifacts.empty()


async def test_malformed_messages_get_typed_errors_and_a_photo_still_succeeds(harness: Harness) -> None:
    buyer, evidence = await buyer_with_channel(harness)
    evidence.channel.send(b"binary before any header")
    await evidence.error(ErrorCode.INVALID_MESSAGE)
    evidence.channel.send("{not json")
    await evidence.error(ErrorCode.INVALID_JSON)
    evidence.channel.send('{"type": "photo", "type": "cancel"}')
    await evidence.error(ErrorCode.INVALID_JSON)
    evidence.channel.send('{"type": "selfie", "request": "r-1"}')
    await evidence.error(ErrorCode.INVALID_MESSAGE, "r-1")
    evidence.header("bad-request/../x", 10)
    await evidence.error(ErrorCode.INVALID_MESSAGE)
    evidence.header("extra", 10, exif={"gps": [0, 0]})
    await evidence.error(ErrorCode.INVALID_MESSAGE, "extra")
    evidence.channel.send(json.dumps({"type": "cancel", "padding": "x" * 5000}))
    await evidence.error(ErrorCode.MESSAGE_TOO_LARGE)

    png_as_jpeg = b"\x89PNG\r\n\x1a\n" + os.urandom(300_000)
    evidence.send_photo("wrong-magic", png_as_jpeg)
    await evidence.error(ErrorCode.INVALID_MESSAGE, "wrong-magic")
    evidence.send_photo("short", b"\xff\xd8")
    await evidence.error(ErrorCode.INVALID_MESSAGE, "short")

    # A second header aborts the first, which the error names; the second goes ahead.
    first = photo(400_000)
    evidence.header("first", len(first))
    evidence.channel.send(first[:CHUNK])
    second = photo(500_000)
    evidence.send_photo("second", second)
    await evidence.error(ErrorCode.INVALID_MESSAGE, "first")
    await assert_stored(harness, evidence, "second", second)

    # A refused message during a transfer ends it: one error names the photo, one the message.
    evidence.header("interrupted", 900_000)
    for _ in range(10):
        evidence.channel.send(photo(CHUNK))
    evidence.channel.send('{"type": "cancel"')
    evidence.channel.send(photo(CHUNK))
    await evidence.error(ErrorCode.INVALID_MESSAGE, "interrupted")
    await evidence.error(ErrorCode.INVALID_JSON)

    # A cancelled transfer leaves nothing; data already in flight is dropped without an error.
    evidence.header("cancelled", 2_000_000)
    for _ in range(20):
        evidence.channel.send(photo(CHUNK))
    evidence.channel.send(json.dumps({"type": "cancel"}))
    payload = photo(1_500_000)
    evidence.send_photo("last", payload)
    artifact = await assert_stored(harness, evidence, "last", payload)
    await wait_for(lambda: len(leftovers(harness)) == 2, "every partial file to go")
    assert artifact.file in leftovers(harness)
    assert harness.artifacts.empty()
    assert buyer.pc.connectionState == "connected" and evidence.channel.readyState == "open"


async def test_an_idle_transfer_times_out(harness: Harness) -> None:
    buyer, evidence = await buyer_with_channel(harness)
    channel = harness.worker.rooms[ROOM.name].peers[buyer.participant.sid].evidence
    assert channel is not None
    channel.idle_timeout_s = 1.0
    evidence.header("stalled", 2_000_000)
    for _ in range(20):  # 1.25 MiB: a partial file is written
        evidence.channel.send(photo(CHUNK))
    reply = await evidence.error(ErrorCode.INVALID_MESSAGE, "stalled")
    assert "no data" in reply["message"]
    await wait_for(lambda: leftovers(harness) == [], "the stalled photo's partial file to go")


@pytest.mark.parametrize("how", ["the page closes", "the buyer leaves"])
async def test_a_buyer_gone_mid_transfer_leaves_no_partial_file(harness: Harness, how: str) -> None:
    buyer, evidence = await buyer_with_channel(harness)
    evidence.header("interrupted", 5_000_000)
    for _ in range(40):  # 2.5 MiB: more than one write
        evidence.channel.send(photo(CHUNK))
    await wait_for(lambda: any(name.endswith(".part") for name in leftovers(harness)), "the partial file")
    if how == "the page closes":
        await buyer.pc.close()
    else:
        await harness.leave(buyer)
        assert leftovers(harness) == [], "leaving waits for the partial file to go"
    await wait_for(lambda: leftovers(harness) == [], "the partial file to go")
    assert harness.artifacts.empty()


# -- who gets the channel -----------------------------------------------------------------------------


async def test_only_an_inspection_buyer_gets_the_channel(harness: Harness) -> None:
    buyer = await harness.join("buyer", Role.BUYER, av_tracks())
    inspector = await harness.join("inspector", Role.INSPECTOR, [AudioStreamTrack()])
    consult = Room(name="consult-1", kind=RoomKind.CONSULT, shop=SHOP)
    customer = await harness.join("customer", Role.BUYER, av_tracks(), room=consult)
    await harness.published(3)
    assert "m=application" in buyer.offers[0].sdp
    assert "m=application" not in inspector.offers[0].sdp and "m=application" not in customer.offers[0].sdp
    peers = {**harness.worker.rooms[ROOM.name].peers, **harness.worker.rooms["consult-1"].peers}
    assert [sid for sid, peer in peers.items() if peer.evidence is not None] == ["PA_buyer"]
    # Every later offer keeps the buyer's m=application, and the media m-lines negotiate as before.
    await wait_for(lambda: len(buyer.offers) >= 2, "the buyer's renegotiation for the inspector's audio")
    assert all("m=application" in offer.sdp for offer in buyer.offers)
    await Evidence.of(buyer)
    remote = [t.receiver.track.kind for t in buyer.pc.getTransceivers() if t.currentDirection == "recvonly"]
    assert remote == ["audio"]
    stats = harness.worker.media_stats()
    assert stats["published_tracks"] == 5 and stats["subscriptions"] == 3  # buyer <-> inspector; consult: alone


async def test_a_buyer_that_publishes_later_keeps_its_channel(harness: Harness) -> None:
    """No m-line but the channel's in the first offer: the media m-lines bundle onto its transport later."""
    buyer = await harness.join("buyer", Role.BUYER, [])
    assert [line.split()[0] for line in buyer.offers[0].sdp.splitlines() if line.startswith("m=")] == ["m=application"]
    evidence = await Evidence.of(buyer)
    buyer.tracks = av_tracks()
    requests = [TrackRequest(kind="video", source=TrackSource.CAMERA), TrackRequest(kind="audio")]
    reply = await harness.worker.handle(PublishCommand(room=ROOM.name, sid="PA_buyer", tracks=requests))
    await harness.answer(ROOM.name, "PA_buyer", expect(reply, Negotiated).offer)
    await harness.published(2)
    up = next(u for u in harness.worker.rooms[ROOM.name].ups.values() if u.is_video)
    await wait_for(lambda: up.counters.packets_in > 30, "the buyer's video")
    payload = photo(300_000)
    evidence.send_photo("later", payload, method="grabFrame")
    await assert_stored(harness, evidence, "later", payload)


async def test_the_python_client_answers_an_offer_with_the_evidence_channel(tmp_path: Path) -> None:
    """The join path through signaling: the WebSocket client answers an offer that carries the channel."""
    async with embedded_server(evidence_dir=str(tmp_path / "evidence")) as server:
        grants = ROLE_DEFAULT_GRANTS[Role.BUYER].model_copy(update={"room_create": True})
        token = mint_token(server.settings, room=ROOM.name, identity="buyer", role=Role.BUYER, grants=grants, shop=SHOP)
        channels: asyncio.Queue[RTCDataChannel] = asyncio.Queue()
        client = VitrineClient(server.url, token, tracks=[MovingPatternTrack(), AudioStreamTrack()])
        client.pc.on("datachannel", channels.put_nowait)
        try:
            await client.connect()
            channel = await asyncio.wait_for(channels.get(), TIMEOUT_S)
            assert channel.label == "evidence"
            await client.wait_connected(TIMEOUT_S)
            await wait_for(lambda: channel.readyState == "open", "the evidence channel to open")
            assert server.runtime is not None and server.runtime.media_worker is not None
            worker = server.runtime.media_worker
            await wait_for(lambda: len(worker.rooms[ROOM.name].ups) == 2, "the buyer's tracks")
        finally:
            await client.close()
