"""Bad input on the real WebSocket ``/v1/rtc``: a typed error, a socket that lives on, a room that keeps its media.

Every test runs a real embedded server with a well-behaved agent and customer
exchanging audio and video through the media worker. A third participant
("mallory") then sends something broken. Each case must get an ``error``
message with the stable ``code`` for it; afterwards mallory's socket still
answers ``ping`` with ``pong``, and both well-behaved participants keep
decoding fresh video frames. Nothing a test sends or mints may show up in a
log record (see ``leak_guard``).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcconfiguration import RTCBundlePolicy

from loadtest.client import VitrineClient
from tests.hardening.support import (
    WAIT_S,
    FrameCounter,
    LeakGuard,
    Probe,
    publisher_offer,
)
from tests.media_helpers import av_tracks, remote_tracks
from tests.servers import RunningServer
from vitrine.core.models import Role
from vitrine.core.wire.rtc import PROTOCOL_VERSION

ROOM = "shop-1"
SDP_FIXTURES = Path(__file__).parent.parent / "fixtures" / "sdp"


@dataclass
class Room:
    name: str
    agent: VitrineClient
    customer: VitrineClient
    counters: list[FrameCounter] = field(default_factory=list)

    async def still_flowing(self, frames: int = 10) -> None:
        """Both well-behaved participants decode fresh video (and the customer audio)."""
        await asyncio.gather(*(counter.more(frames) for counter in self.counters))

    def sid(self, identity: str) -> str:
        client = {"agent": self.agent, "customer": self.customer}[identity]
        assert client.joined is not None
        return client.joined["participant"]["sid"]


@pytest.fixture
async def room(server: RunningServer, leak_guard: LeakGuard) -> AsyncIterator[Room]:
    agent = VitrineClient(server.url, leak_guard.watch(server.token(ROOM, "agent", Role.AGENT)), tracks=av_tracks())
    customer = VitrineClient(
        server.url, leak_guard.watch(server.token(ROOM, "customer", Role.CUSTOMER, create=False)), tracks=av_tracks()
    )
    state = Room(ROOM, agent, customer)
    try:
        await agent.connect()
        await customer.connect()
        at_agent = await remote_tracks(agent, 2, timeout=WAIT_S)
        at_customer = await remote_tracks(customer, 2, timeout=WAIT_S)
        state.counters = [
            FrameCounter(at_agent["video"]),
            FrameCounter(at_customer["video"]),
            FrameCounter(at_customer["audio"]),
        ]
        await state.still_flowing(5)
        yield state
    finally:
        for counter in state.counters:
            counter.stop()
        await customer.close()
        await agent.close()


async def room_detail(server: RunningServer, name: str = ROOM) -> dict[str, Any]:
    async with server.api() as api:
        response = await api.get(f"/v1/rooms/{name}")
    assert response.status_code == 200, response.text
    return response.json()


def media_stats(server: RunningServer) -> dict[str, int]:
    assert server.runtime is not None and server.runtime.media_worker is not None
    return server.runtime.media_worker.media_stats()


# -- a participant that keeps every server message ----------------------------------------------


@pytest.fixture
def mallory(server: RunningServer, leak_guard: LeakGuard, probes: list[Probe]):  # noqa: ANN201
    """Make a misbehaving participant's probe (not yet connected)."""

    def make(
        identity: str = "mallory", role: Role = Role.CUSTOMER, *, auto_answer: bool = True, room: str = ROOM
    ) -> Probe:
        token = leak_guard.watch(server.token(room, identity, role, create=False))
        probe = Probe(server, token, auto_answer=auto_answer)
        probes.append(probe)
        return probe

    return make


def sdp_fixture(name: str) -> str:
    return (SDP_FIXTURES / name).read_bytes().decode("latin-1")


# -- frames that are not a valid message --------------------------------------------------------

MAX = 64 * 1024  # Settings.max_message_bytes; checked against server.settings below


def _padded_ping(total: int) -> str:
    """A ping with an unknown ``pad`` field, exactly ``total`` ASCII bytes long."""
    head, tail = '{"type":"ping","pad":"', '"}'
    return head + "x" * (total - len(head) - len(tail)) + tail


FRAME_CASES = [
    # (frame, code)
    pytest.param("{not json", "invalid_json", id="non_json"),
    pytest.param('{"type":"ping"', "invalid_json", id="truncated_json"),
    pytest.param("", "invalid_json", id="empty_text"),
    pytest.param(b"\x00\xff\xfe\x80junk\xc3", "invalid_json", id="binary_junk"),
    pytest.param('{"type":"ping"}\x00', "invalid_json", id="trailing_nul"),
    pytest.param("[" * 30_000 + "]" * 30_000, "invalid_json", id="deeply_nested"),
    pytest.param('[{"type":"ping"}]', "invalid_message", id="json_array"),
    pytest.param("42", "invalid_message", id="json_number"),
    pytest.param("null", "invalid_message", id="json_null"),
    pytest.param('"ping"', "invalid_message", id="json_string"),
    pytest.param('{"type":"shout","text":"hi"}', "invalid_message", id="unknown_type"),
    pytest.param('{"type":7}', "invalid_message", id="type_not_a_string"),
    pytest.param('{"ts":1}', "invalid_message", id="missing_type"),
    pytest.param('{"type":"offer"}', "invalid_message", id="missing_sdp"),
    pytest.param('{"type":"offer","sdp":""}', "invalid_message", id="empty_sdp"),
    pytest.param('{"type":"candidate"}', "invalid_message", id="missing_candidate"),
    pytest.param('{"type":"unpublish"}', "invalid_message", id="missing_track_sid"),
    pytest.param('{"type":"publish","tracks":[]}', "invalid_message", id="publish_no_tracks"),
    pytest.param('{"type":"publish","tracks":[{"kind":"smell"}]}', "invalid_message", id="unknown_track_kind"),
    pytest.param('{"type":"ping","ts":"soon"}', "invalid_message", id="wrong_field_type"),
    pytest.param('{"type":"ping","ts":1,"admin":true}', "invalid_message", id="extra_field"),
    pytest.param('{"type":"ping","ts":1,"ts":2}', "invalid_json", id="duplicate_keys"),
    pytest.param('{"type":"ping","type":"leave"}', "invalid_json", id="duplicate_type"),
    pytest.param(
        '{"type":"publish","tracks":[{"kind":"video","kind":"audio"}]}', "invalid_json", id="nested_duplicate_keys"
    ),
    pytest.param(_padded_ping(MAX + 1), "message_too_large", id="text_over_limit"),
    pytest.param(_padded_ping(MAX + 1).encode(), "message_too_large", id="binary_over_limit"),
    pytest.param(_padded_ping(4 * MAX), "message_too_large", id="text_far_over_limit"),
    pytest.param(_padded_ping(MAX), "invalid_message", id="text_at_limit"),  # at the limit: parsed, then refused
]


@pytest.mark.parametrize(("frame", "code"), FRAME_CASES)
async def test_malformed_frame_gets_a_typed_error(
    server: RunningServer, room: Room, mallory, frame: str | bytes, code: str
) -> None:
    assert server.settings.max_message_bytes == MAX
    probe = mallory()
    await probe.connect()
    await probe.send_raw(frame)
    await probe.expect_error(code)  # no ``ref``: nothing was parsed, so nothing was acted on
    await probe.assert_alive()
    await room.still_flowing()
    identities = [p["identity"] for p in (await room_detail(server))["participants"]]
    assert sorted(identities) == ["agent", "customer", "mallory"]


async def test_frame_over_the_byte_limit_in_multibyte_characters(server: RunningServer, room: Room, mallory) -> None:
    probe = mallory()
    await probe.connect()
    frame = '{"type":"ping","pad":"' + "\u00e9" * (MAX * 5 // 8) + '"}'  # < MAX characters, > MAX bytes
    assert len(frame) < MAX < len(frame.encode())
    await probe.send_raw(frame)
    try:
        await probe.expect_error("message_too_large")
    finally:
        await probe.assert_alive()
        await room.still_flowing()


async def test_frame_over_the_transport_cap_closes_only_that_socket(server: RunningServer, room: Room, mallory) -> None:
    """Past the WebSocket transport's hard cap (1 MiB, as ``vitrine serve`` sets it) the socket is closed with
    1009 (message too big) instead of answered; nobody else notices."""
    probe = mallory()
    await probe.connect()
    await probe.send_raw(_padded_ping(1024 * 1024 + 1))
    await probe.wait_closed(WAIT_S)
    assert probe._ws.close_code == 1009
    await room.still_flowing()
    identities = [p["identity"] for p in (await room_detail(server))["participants"]]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_S
    while "mallory" in identities:  # its session ended: it leaves the room
        assert loop.time() < deadline, identities
        await asyncio.sleep(0.05)
        identities = [p["identity"] for p in (await room_detail(server))["participants"]]
    assert sorted(identities) == ["agent", "customer"]


# -- forged senders ------------------------------------------------------------------------------

FORGED = [
    pytest.param({"type": "publish", "tracks": [{"kind": "video"}], "participant_sid": "{agent}"}, id="publish_as"),
    pytest.param({"type": "publish", "tracks": [{"kind": "video", "participant_sid": "{agent}"}]}, id="track_owned_by"),
    pytest.param({"type": "publish", "tracks": [{"kind": "audio", "sid": "TR_forged"}]}, id="track_sid_chosen"),
    pytest.param({"type": "unpublish", "track_sid": "{agent_track}", "participant_sid": "{agent}"}, id="unpublish_as"),
    pytest.param({"type": "offer", "sdp": "{offer}", "sid": "{agent}"}, id="offer_as"),
    pytest.param({"type": "candidate", "candidate": None, "participant_sid": "{agent}"}, id="candidate_as"),
    pytest.param({"type": "leave", "participant_sid": "{agent}"}, id="leave_as"),
    pytest.param({"type": "ping", "from": "{agent}"}, id="ping_from"),
    pytest.param({"type": "join", "token": "{token}", "identity": "agent", "role": "agent"}, id="join_as"),
    pytest.param({"type": "join", "token": "{token}", "room": "other-room"}, id="join_room_field"),
    pytest.param(
        {"type": "join", "token": "{token}", "grants": {"can_publish": True, "room_admin": True}},
        id="join_grants_field",
    ),
]


@pytest.mark.parametrize("message", FORGED)
async def test_forged_sender_fields_are_refused(
    server: RunningServer, room: Room, mallory, message: dict[str, Any]
) -> None:
    """Who sends a message comes from the socket's token alone: a sender field is an invalid message."""
    probe = mallory()
    await probe.connect()
    detail = await room_detail(server)
    agent_track = next(t["sid"] for t in detail["tracks"] if t["participant_sid"] == room.sid("agent"))
    values = {
        "{agent}": room.sid("agent"),
        "{agent_track}": agent_track,
        "{token}": probe.token,
        "{offer}": await publisher_offer(),
    }
    forged = {key: values.get(value, value) if isinstance(value, str) else value for key, value in message.items()}
    await probe.send_json(forged)
    await probe.expect_error("invalid_message")
    await probe.assert_alive()
    await room.still_flowing()
    after = await room_detail(server)
    assert after["tracks"] == detail["tracks"]  # nothing published, unpublished or re-owned
    assert sorted(p["identity"] for p in after["participants"]) == ["agent", "customer", "mallory"]


async def test_unpublishing_someone_elses_track_is_refused(server: RunningServer, room: Room, mallory) -> None:
    probe = mallory()
    await probe.connect()
    before = await room_detail(server)
    agent_tracks = [t["sid"] for t in before["tracks"] if t["participant_sid"] == room.sid("agent")]
    assert len(agent_tracks) == 2
    for track_sid in agent_tracks + ["TR_does-not-exist"]:
        await probe.send_json({"type": "unpublish", "track_sid": track_sid})
        await probe.expect_error("track_not_found", ref="unpublish")
    await probe.assert_alive()
    await room.still_flowing()
    assert (await room_detail(server))["tracks"] == before["tracks"]


# -- the join state machine ----------------------------------------------------------------------

BEFORE_JOIN = [
    pytest.param({"type": "publish", "tracks": [{"kind": "video"}]}, id="publish"),
    pytest.param({"type": "unpublish", "track_sid": "TR_x"}, id="unpublish"),
    pytest.param({"type": "offer", "sdp": "{offer}"}, id="offer"),
    pytest.param({"type": "answer", "sdp": "{offer}"}, id="answer"),
    pytest.param(
        {"type": "candidate", "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0"}},
        id="candidate",
    ),
    pytest.param({"type": "candidate", "candidate": None}, id="end_of_candidates"),
    pytest.param({"type": "leave"}, id="leave"),
]


@pytest.mark.parametrize("message", BEFORE_JOIN)
async def test_message_before_join_is_not_joined(
    server: RunningServer, room: Room, mallory, message: dict[str, Any]
) -> None:
    probe = mallory()
    await probe.open()
    if message.get("sdp") == "{offer}":
        message = {**message, "sdp": await publisher_offer()}
    await probe.send_json(message)
    await probe.expect_error("not_joined", ref=message["type"])
    await probe.assert_alive()
    # The socket is still usable for what it is for: joining.
    joined = await probe.join(probe.token)
    assert joined["type"] == "joined", joined
    await room.still_flowing()


async def test_second_join_is_already_joined(server: RunningServer, room: Room, mallory, leak_guard: LeakGuard) -> None:
    probe = mallory()
    await probe.connect()
    other = leak_guard.watch(server.token(ROOM, "mallory-2", Role.AGENT, create=False))
    for token in (probe.token, other, "not-even-a-token"):
        await probe.send_json({"type": "join", "v": PROTOCOL_VERSION, "token": token})
        await probe.expect_error("already_joined", ref="join")
    await probe.assert_alive()
    await room.still_flowing()
    identities = [p["identity"] for p in (await room_detail(server))["participants"]]
    assert sorted(identities) == ["agent", "customer", "mallory"]


@pytest.mark.parametrize("version", [0, 2, -1, 2**40])
async def test_wrong_protocol_version_is_unsupported(server: RunningServer, room: Room, mallory, version: int) -> None:
    probe = mallory()
    await probe.open()
    await probe.send_json({"type": "join", "v": version, "token": probe.token})
    await probe.expect_error("unsupported_version", ref="join")
    await probe.assert_alive()
    assert "mallory" not in [p["identity"] for p in (await room_detail(server))["participants"]]
    joined = await probe.join(probe.token)  # the right version on the same socket
    assert joined["type"] == "joined", joined
    await room.still_flowing()


async def test_join_to_a_missing_room_without_the_create_grant(server: RunningServer, room: Room, mallory) -> None:
    probe = mallory(room="no-such-room")
    await probe.open()
    refused = await probe.join(probe.token)
    assert refused["type"] == "error" and refused["code"] == "room_not_found", refused
    assert refused.get("ref") == "join"
    await probe.assert_alive()
    async with server.api() as api:
        missing = await api.get("/v1/rooms/no-such-room")
        assert missing.status_code == 404
        assert missing.json()["code"] == "room_not_found"
        assert [r["name"] for r in (await api.get("/v1/rooms")).json()] == [ROOM]
    assert media_stats(server)["rooms"] == 1
    await room.still_flowing()


# -- a viewer that tries to publish ----------------------------------------------------------------


async def test_viewer_join_with_publish_is_refused_and_nothing_joins(
    server: RunningServer, room: Room, mallory
) -> None:
    before = media_stats(server)
    viewer = mallory("viewer", Role.VIEWER)
    await viewer.open()
    refused = await viewer.join(viewer.token, publish=[{"kind": "video", "source": "camera"}])
    assert refused["type"] == "error", refused
    assert (refused["code"], refused.get("ref")) == ("permission_denied", "join")
    # The join was refused as a whole: the socket is not joined, the room and the worker are unchanged.
    await viewer.assert_alive()
    await viewer.send_json({"type": "publish", "tracks": [{"kind": "video"}]})
    await viewer.expect_error("not_joined", ref="publish")
    detail = await room_detail(server)
    assert sorted(p["identity"] for p in detail["participants"]) == ["agent", "customer"]
    assert len(detail["tracks"]) == 4
    after = media_stats(server)
    assert (
        (after["participants"], after["published_tracks"], after["subscriptions"])
        == (before["participants"], before["published_tracks"], before["subscriptions"])
        == (2, 4, 4)
    )
    await room.still_flowing()

    # Joining as what it is still works on the same socket, and the room sees exactly that one join.
    joined = await viewer.join(viewer.token)
    assert joined["type"] == "joined" and joined["grants"]["can_publish"] is False, joined
    detail = await room_detail(server)  # viewers are hidden (not announced): the room's records tell
    assert sorted(p["identity"] for p in detail["participants"]) == ["agent", "customer", "viewer"]
    assert [p["sid"] for p in detail["participants"] if p["identity"] == "viewer"] == [joined["participant"]["sid"]]
    assert not [e for e in room.agent.events if e.get("participant", {}).get("identity") == "viewer"]


@pytest.mark.parametrize(
    ("identity", "role", "publish", "code"),
    [
        pytest.param("viewer", Role.VIEWER, [{"kind": "video"}], "permission_denied", id="viewer_publishes"),
        pytest.param("customer", Role.CUSTOMER, [{"kind": "video"}] * 5, "too_many_tracks", id="too_many_tracks"),
    ],
)
async def test_a_refused_join_leaves_the_same_identity_in_the_room(
    server: RunningServer, room: Room, mallory, identity: str, role: Role, publish: list[dict[str, str]], code: str
) -> None:
    if identity == "viewer":
        first = mallory(identity, role)
        await first.connect()
        await remote_tracks(first, 2, timeout=WAIT_S)
    else:
        first = None  # the room's own customer
    assert identity in [p["identity"] for p in (await room_detail(server))["participants"]]

    second = mallory(identity, role)
    await second.open()
    refused = await second.join(second.token, publish=publish)
    assert (refused["type"], refused.get("code"), refused.get("ref")) == ("error", code, "join"), refused
    await second.assert_alive()
    await room.still_flowing()  # the first session is untouched on the media side...
    if first is not None:
        await first.assert_alive()
    identities = [p["identity"] for p in (await room_detail(server))["participants"]]
    assert identity in identities, f"{identity} is connected but gone from the room: {identities}"


async def test_viewer_publish_message_is_refused(server: RunningServer, room: Room, mallory) -> None:
    viewer = mallory("viewer", Role.VIEWER)
    await viewer.connect()
    watching = await remote_tracks(viewer, 2, timeout=WAIT_S)
    await viewer.send_json({"type": "publish", "tracks": [{"kind": "video", "source": "camera"}]})
    await viewer.expect_error("permission_denied", ref="publish")
    await viewer.assert_alive()
    assert media_stats(server)["published_tracks"] == 4
    assert len((await room_detail(server))["tracks"]) == 4
    viewer_video = FrameCounter(watching["video"])  # the viewer still watches
    try:
        await asyncio.gather(room.still_flowing(), viewer_video.more(5))
    finally:
        viewer_video.stop()


async def test_viewer_sendonly_offer_is_refused(server: RunningServer, room: Room, mallory) -> None:
    viewer = mallory("viewer", Role.VIEWER)
    await viewer.connect()
    watching = await remote_tracks(viewer, 2, timeout=WAIT_S)
    await viewer.wait_negotiated()  # its subscription offer is answered: a new offer is no glare
    offer = await publisher_offer()
    assert offer.count("a=sendonly") == 2
    await viewer.send_json({"type": "offer", "sdp": offer})
    await viewer.expect_error("permission_denied", ref="offer")
    await viewer.assert_alive()
    assert media_stats(server)["published_tracks"] == 4
    viewer_video = FrameCounter(watching["video"])
    try:
        await asyncio.gather(room.still_flowing(), viewer_video.more(5))
    finally:
        viewer_video.stop()


# -- SDP -------------------------------------------------------------------------------------------

BROKEN_SDP_FIXTURES = sorted(p.name for p in SDP_FIXTURES.glob("*.sdp") if p.name != "valid.sdp")


def _broken_offers() -> list[Any]:
    cases = [pytest.param(name, "invalid_sdp", id=name.removesuffix(".sdp")) for name in BROKEN_SDP_FIXTURES]
    cases += [
        pytest.param("hello", "invalid_sdp", id="not_sdp"),
        pytest.param("v=0\r\n", "invalid_sdp", id="no_media"),
        pytest.param("100k_lines", "message_too_large", id="100k_lines"),  # > max_message_bytes
        pytest.param("no_common_codec", "negotiation_failed", id="no_common_codec"),  # parses, unusable
    ]
    return cases


def _offer_text(case: str) -> str:
    if case.endswith(".sdp"):
        return sdp_fixture(case)
    valid = sdp_fixture("valid.sdp")
    if case == "100k_lines":  # ~400 KB: over the protocol's limit, under the transport's 1 MiB cap
        return valid + "a=\r\n" * 100_000
    if case == "no_common_codec":
        lines = []
        for line in valid.split("\r\n"):
            if line.startswith("m=video"):
                line = " ".join(line.split(" ")[:3] + ["120"])
            elif (
                line.startswith(("a=rtpmap:", "a=rtcp-fb:", "a=fmtp:"))
                and " opus/" not in line
                and not line.startswith(("a=rtpmap:9 ", "a=rtpmap:0 ", "a=rtpmap:8 "))
            ):
                continue
            lines.append(line)
        text = "\r\n".join(lines)
        return text.replace("a=mid:0\r\n", "a=mid:0\r\na=rtpmap:120 X-NOPE/90000\r\n")
    return case


@pytest.mark.parametrize(("case", "code"), _broken_offers())
async def test_malformed_sdp_in_an_offer(server: RunningServer, room: Room, mallory, case: str, code: str) -> None:
    probe = mallory()
    await probe.connect()
    watching = await remote_tracks(probe, 2, timeout=WAIT_S)
    await probe.wait_negotiated()
    await probe.send_json({"type": "offer", "sdp": _offer_text(case)})
    await probe.expect_error(code, ref=None if code == "message_too_large" else "offer")
    await probe.assert_alive()
    assert media_stats(server)["published_tracks"] == 4
    # The refused offer did not disturb mallory's own session either.
    probe_video = FrameCounter(watching["video"])
    try:
        await asyncio.gather(room.still_flowing(), probe_video.more(5))
    finally:
        probe_video.stop()


async def test_malformed_sdp_in_an_answer(server: RunningServer, room: Room, mallory) -> None:
    """Garbage answers to the server's offer are refused without spending it; a real answer then works."""
    probe = mallory(auto_answer=False)
    await probe.connect()
    offer = await asyncio.wait_for(probe.offers.get(), WAIT_S)
    assert "a=sendonly" in offer["sdp"]

    for broken in (
        "hello",
        "v=0\r\nx=garbage\r\n",
        sdp_fixture("no_fingerprint.sdp"),
        sdp_fixture("no_ice_ufrag.sdp"),
        sdp_fixture("garbage_mlines.sdp"),
        sdp_fixture("binary_junk.sdp"),
    ):
        await probe.send_json({"type": "answer", "sdp": broken})
        await probe.expect_error("invalid_sdp", ref="answer")
    # Parses, but does not answer this offer (it is the offer itself).
    await probe.send_json({"type": "answer", "sdp": offer["sdp"]})
    await probe.expect_error("negotiation_failed", ref="answer")
    # While the server's offer waits, a client offer is glare, not a second negotiation.
    await probe.send_json({"type": "offer", "sdp": await publisher_offer(recvonly=True)})
    await probe.expect_error("negotiation_glare", ref="offer")
    await probe.assert_alive()

    probe.auto_answer = True
    await probe._answer(offer)  # the real answer, from mallory's own peer connection
    watching = await remote_tracks(probe, 2, timeout=WAIT_S)
    probe_video = FrameCounter(watching["video"])
    try:
        await asyncio.gather(room.still_flowing(), probe_video.more(5))
    finally:
        probe_video.stop()

    # With no offer outstanding any more, an answer is out of turn: negotiation_failed, whatever it holds.
    for answer in ("hello", sdp_fixture("valid.sdp")):
        await probe.send_json({"type": "answer", "sdp": answer})
        await probe.expect_error("negotiation_failed", ref="answer")
    await probe.assert_alive()
    await room.still_flowing()


# -- ICE candidates ----------------------------------------------------------------------------------

BAD_TRICKLE = [
    pytest.param("candidate:garbage", "invalid_candidate", id="garbage"),
    pytest.param("candidate:1 1 udp 2130706431 127.0.0.1 50000 typ", "invalid_candidate", id="too_few_fields"),
    pytest.param("candidate:1 1 udp 2130706431 127.0.0.1 0 typ host", "invalid_candidate", id="port_zero"),
    pytest.param("candidate:1 1 udp 2130706431 127.0.0.1 70000 typ host", "invalid_candidate", id="port_too_big"),
    pytest.param("candidate:1 1 udp high 127.0.0.1 50000 typ host", "invalid_candidate", id="priority_not_numeric"),
    pytest.param("candidate:1 1 sctp 2130706431 127.0.0.1 50000 typ host", "invalid_candidate", id="bad_protocol"),
    pytest.param(
        "candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host" + " x" * 600, "invalid_message", id="over_1024_chars"
    ),
]


@pytest.mark.parametrize(("candidate", "code"), BAD_TRICKLE)
async def test_malformed_trickle_candidate(
    server: RunningServer, room: Room, mallory, candidate: str, code: str
) -> None:
    probe = mallory()
    await probe.connect()
    watching = await remote_tracks(probe, 2, timeout=WAIT_S)
    await probe.wait_negotiated()
    await probe.send_json(
        {"type": "candidate", "candidate": {"candidate": candidate, "sdpMid": "0", "sdpMLineIndex": 0}}
    )
    await probe.expect_error(code, ref=None if code == "invalid_message" else "candidate")
    await probe.assert_alive()
    probe_video = FrameCounter(watching["video"])
    try:
        await asyncio.gather(room.still_flowing(), probe_video.more(5))
    finally:
        probe_video.stop()


async def _whip_session(server: RunningServer, token: str) -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[], bundlePolicy=RTCBundlePolicy.MAX_BUNDLE))
    for track in av_tracks():
        pc.addTransceiver(track, direction="sendonly")
    await pc.setLocalDescription(await pc.createOffer())
    async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_S) as http:
        response = await http.post(
            "/whip/live-1",
            content=pc.localDescription.sdp,
            headers={"Content-Type": "application/sdp", "Authorization": f"Bearer {token}"},
        )
    assert response.status_code == 201, response.text
    await pc.setRemoteDescription(RTCSessionDescription(sdp=response.text, type="answer"))
    return pc, response.headers["location"]


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("a=candidate:garbage", id="garbage"),
        pytest.param("a=candidate:1 1 udp 2130706431 127.0.0.1 0 typ host", id="port_zero"),
        pytest.param("a=candidate:1 1 udp 2130706431 127.0.0.1 50000 typ host" + " x" * 600, id="over_1024_chars"),
    ],
)
async def test_malformed_whip_trickle(server: RunningServer, room: Room, leak_guard: LeakGuard, line: str) -> None:
    """The same candidates over WHIP's PATCH get a 400 with a JSON code, and the session lives on."""
    token = leak_guard.watch(server.token("live-1", "obs", Role.HOST))
    pc, resource = await _whip_session(server, token)
    try:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/trickle-ice-sdpfrag"}
        async with httpx.AsyncClient(base_url=server.url, timeout=WAIT_S) as http:
            response = await http.patch(resource, content=f"{line}\r\n", headers=headers)
            assert response.status_code == 400, (response.status_code, response.text[:200])
            assert response.json()["code"] == "invalid_candidate"
            fine = await http.patch(resource, content="a=end-of-candidates\r\n", headers=headers)
            assert fine.status_code == 204, fine.text
        await room.still_flowing()
    finally:
        await pc.close()


# -- Origin ------------------------------------------------------------------------------------------


async def _handshake(server: RunningServer, origin: str | None) -> int | None:
    """Open ``/v1/rtc`` with ``origin``: None if it works (ping/pong), else the refusal's status or close code."""
    headers = {"Origin": origin} if origin is not None else None
    try:
        ws = await websockets.connect(server.ws_url, additional_headers=headers, open_timeout=WAIT_S)
    except websockets.InvalidStatus as refused:
        return refused.response.status_code
    try:
        await ws.send(json.dumps({"type": "ping", "ts": 7}))
        reply = json.loads(await asyncio.wait_for(ws.recv(), WAIT_S))
        assert reply == {"type": "pong", "ts": 7}, reply
        return None
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None
        return closed.rcvd.code
    finally:
        await ws.close()


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "http://127.0.0.1.evil.example", "http://evil.example/{host}"]
)
async def test_foreign_origin_is_refused(server: RunningServer, room: Room, origin: str) -> None:
    host = server.url.split("://", 1)[1]
    refused = await _handshake(server, origin.replace("{host}", host))
    # Starlette turns a close before accept into an HTTP 403; a close after it would be 1008.
    assert refused in (403, 1008), refused
    await room.still_flowing()


@pytest.mark.parametrize("origin", [None, "same"])
async def test_native_and_same_origin_clients_are_accepted(server: RunningServer, origin: str | None) -> None:
    header = server.url if origin == "same" else None
    assert await _handshake(server, header) is None
