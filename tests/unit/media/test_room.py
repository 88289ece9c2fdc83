"""media/room.py's bookkeeping: who subscribes to what, who is renegotiated, what a recording gets, which
errors a participant's command meets, and when the room says it is empty.

No sockets: peers and tracks are stand-ins with the attributes ``WorkerRoom`` reads, so each case states
the room's rules without aiortc (the real negotiation is covered by the suites that run real peers).
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest

from media.room import WorkerRoom
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Grants, Participant, Role, Track, TrackKind, TrackSource
from vitrine.core.wire.rpc import (
    AdmitCommand,
    AnswerCommand,
    LeaveCommand,
    Negotiated,
    PeerOffer,
    PublishCommand,
    UnpublishCommand,
    WorkerPush,
)
from vitrine.core.wire.rtc import ServerOfferMessage, TrackRequest

ROOM = "consult-1"


class FakeUp:
    def __init__(
        self, sid: str, publisher: str, kind: TrackKind = TrackKind.VIDEO, source: TrackSource = TrackSource.CAMERA
    ):
        self.track = Track(sid=sid, participant_sid=publisher, kind=kind, source=source)
        self.closed = False

    def close(self) -> None:
        self.closed = True


class FakePeer:
    """The part of ``PeerSession`` the room uses; an offer is made whenever asked."""

    def __init__(self, sid: str, identity: str, role: Role = Role.CUSTOMER, grants: Grants | None = None) -> None:
        self.participant = Participant(
            sid=sid, identity=identity, role=role, grants=grants or ROLE_DEFAULT_GRANTS[role], node_id="node-1"
        )
        self.published: dict[str, FakeUp] = {}
        self.subscriptions: dict[str, FakeUp] = {}
        self.ended = False
        self.closed = False
        self.evidence: Any = None

    @property
    def sid(self) -> str:
        return self.participant.sid

    def publish(self, *ups: FakeUp) -> list[FakeUp]:
        for up in ups:
            self.published[up.track.sid] = up
        return list(ups)

    def add_subscription(self, up: FakeUp) -> None:
        if up.track.sid not in self.subscriptions and not self.ended:
            self.subscriptions[up.track.sid] = up

    def remove_subscription(self, track_sid: str) -> bool:
        return self.subscriptions.pop(track_sid, None) is not None

    async def make_offer(self) -> ServerOfferMessage:
        return ServerOfferMessage(sdp=f"offer for {self.sid}")

    async def close(self) -> None:
        self.closed = True


class FakeRecording:
    def __init__(self, identity: str | None = None) -> None:
        self.identity = identity
        self.attached: list[str] = []

    def attach(self, up: FakeUp) -> None:
        self.attached.append(up.track.sid)

    def detach(self, up: FakeUp) -> None:
        self.attached.remove(up.track.sid)


class Setup:
    def __init__(self, recording: FakeRecording | None = None) -> None:
        self.pushes: list[WorkerPush] = []
        self.forgotten: list[WorkerRoom] = []
        self.recording = recording
        self.room = WorkerRoom(
            ROOM, push=self._push, recording=lambda: self.recording, max_tracks=4, on_empty=self.forgotten.append
        )

    async def _push(self, push: WorkerPush) -> None:
        self.pushes.append(push)

    def join(self, *peers: FakePeer, auto_subscribe: bool = True) -> None:
        for peer in peers:
            self.room.peers[peer.sid] = peer
            self.room.auto_subscribe[peer.sid] = auto_subscribe

    def offered_to(self) -> list[str]:
        return [p.sid for p in self.pushes]


async def published(setup: Setup, publisher: FakePeer, *ups: FakeUp) -> None:
    await setup.room.published(publisher, publisher.publish(*ups))


async def test_a_publication_reaches_everyone_allowed_but_its_publisher() -> None:
    s = Setup()
    alice, bob = FakePeer("PA_a", "alice"), FakePeer("PA_b", "bob")
    deaf = FakePeer("PA_d", "deaf", grants=Grants(can_publish=True))
    whep = FakePeer("PA_w", "whep")
    s.join(alice, bob, deaf)
    s.join(whep, auto_subscribe=False)  # cannot renegotiate: nothing is added after its offer
    up = FakeUp("TR_1", alice.sid)
    await published(s, alice, up)
    assert s.room.ups == {"TR_1": up}
    assert list(bob.subscriptions) == ["TR_1"]
    assert not alice.subscriptions and not deaf.subscriptions and not whep.subscriptions
    assert s.offered_to() == [bob.sid]
    assert isinstance(s.pushes[0], PeerOffer) and s.pushes[0].room == ROOM and s.pushes[0].node_id == "node-1"


async def test_an_unpublish_renegotiates_only_those_who_had_the_track() -> None:
    s = Setup()
    alice, bob = FakePeer("PA_a", "alice"), FakePeer("PA_b", "bob")
    s.join(alice, bob)
    up = FakeUp("TR_1", alice.sid)
    await published(s, alice, up)
    late = FakePeer("PA_l", "late", grants=Grants())  # joined after, subscribing to nothing
    s.join(late)
    s.pushes.clear()
    await s.room.unpublished([up])
    assert up.closed and s.room.ups == {} and not bob.subscriptions
    assert s.offered_to() == [bob.sid]


async def test_a_recording_kept_to_one_identity_gets_only_its_tracks() -> None:
    s = Setup(FakeRecording(identity="buyer"))
    buyer, inspector = FakePeer("PA_b", "buyer", Role.BUYER), FakePeer("PA_i", "inspector", Role.INSPECTOR)
    s.join(buyer, inspector)
    await published(s, buyer, FakeUp("TR_bv", buyer.sid), FakeUp("TR_ba", buyer.sid, TrackKind.AUDIO))
    await published(s, inspector, FakeUp("TR_ia", inspector.sid, TrackKind.AUDIO))
    assert s.recording is not None and s.recording.attached == ["TR_bv", "TR_ba"]
    await s.room.unpublished([s.room.ups["TR_bv"]])
    assert s.recording.attached == ["TR_ba"]

    everyone = FakeRecording()
    for up in s.room.ups.values():
        s.room.record(everyone, up)
    assert everyone.attached == ["TR_ba", "TR_ia"]


async def test_what_a_client_offer_may_bind() -> None:
    s = Setup()
    alice, bob, carol = FakePeer("PA_a", "alice"), FakePeer("PA_b", "bob"), FakePeer("PA_c", "carol")
    s.join(alice, bob, carol)
    await published(s, alice, FakeUp("TR_av", alice.sid), FakeUp("TR_aa", alice.sid, TrackKind.AUDIO))
    await published(s, bob, FakeUp("TR_bv", bob.sid))

    def sids(available: Callable[[str], list[Any]], kind: str) -> list[str]:
        return [u.track.sid for u in available(kind)]

    assert sids(s.room.playable(alice, None), "video") == ["TR_bv"]
    assert sids(s.room.playable(carol, None), "video") == ["TR_av", "TR_bv"]
    assert sids(s.room.playable(carol, "alice"), "audio") == ["TR_aa"]
    assert sids(s.room.playable(alice, "alice"), "video") == []  # never its own
    deaf = FakePeer("PA_d", "deaf", grants=Grants(can_publish=True))
    assert sids(s.room.playable(deaf, None), "video") == []


async def test_the_video_a_snapshot_decodes() -> None:
    s = Setup()
    buyer = FakePeer("PA_b", "buyer", Role.BUYER)
    s.join(buyer)
    buyer.publish(FakeUp("TR_a", buyer.sid, TrackKind.AUDIO))
    with pytest.raises(VitrineError) as refused:
        s.room.video_of("buyer")
    assert refused.value.code == ErrorCode.TRACK_NOT_FOUND
    buyer.publish(FakeUp("TR_screen", buyer.sid, source=TrackSource.SCREEN))
    assert s.room.video_of("buyer").track.sid == "TR_screen"  # no camera: the latest video
    buyer.publish(FakeUp("TR_cam", buyer.sid), FakeUp("TR_screen2", buyer.sid, source=TrackSource.SCREEN))
    assert s.room.video_of("buyer").track.sid == "TR_cam"
    with pytest.raises(VitrineError):
        s.room.video_of("nobody")


async def test_commands_of_who_is_not_in_the_room() -> None:
    s = Setup()
    assert await s.room.handle(LeaveCommand(room=ROOM, sid="PA_x")) == Negotiated()  # nothing left to do
    with pytest.raises(VitrineError) as refused:
        await s.room.handle(AnswerCommand(room=ROOM, sid="PA_x", sdp="v=0"))
    assert refused.value.code == ErrorCode.NOT_JOINED

    knocker = FakePeer("PA_k", "knocker")
    s.room.waiting[knocker.sid] = knocker
    for command in (
        PublishCommand(room=ROOM, sid=knocker.sid, tracks=[]),
        UnpublishCommand(room=ROOM, sid=knocker.sid, track_sid="TR_1"),
    ):
        with pytest.raises(VitrineError) as waiting:
            await s.room.handle(command)
        assert waiting.value.code == ErrorCode.NOT_JOINED and "admitted" in waiting.value.message
    assert s.forgotten == []
    await s.room.handle(LeaveCommand(room=ROOM, sid=knocker.sid))
    assert knocker.closed and s.room.waiting == {} and s.forgotten == [s.room]


async def test_a_participant_command_checks_grants_and_tracks() -> None:
    s = Setup()
    viewer, alice = FakePeer("PA_v", "viewer", Role.VIEWER), FakePeer("PA_a", "alice")
    s.join(viewer, alice)
    with pytest.raises(VitrineError) as denied:
        await s.room.handle(PublishCommand(room=ROOM, sid=viewer.sid, tracks=[TrackRequest(kind=TrackKind.AUDIO)]))
    assert denied.value.code == ErrorCode.PERMISSION_DENIED
    with pytest.raises(VitrineError) as missing:
        await s.room.handle(UnpublishCommand(room=ROOM, sid=alice.sid, track_sid="TR_none"))
    assert missing.value.code == ErrorCode.TRACK_NOT_FOUND
    assert await s.room.handle(AdmitCommand(room=ROOM, sid=alice.sid)) == Negotiated()  # already in

    up = FakeUp("TR_1", alice.sid)
    await published(s, alice, up)
    s.pushes.clear()
    reply = await s.room.handle(UnpublishCommand(room=ROOM, sid=alice.sid, track_sid="TR_1"))
    assert reply.unpublished == [up.track] and up.closed and s.offered_to() == [viewer.sid]


async def test_an_ended_peer_may_only_leave_and_the_last_leave_empties_the_room() -> None:
    s = Setup()
    alice, bob = FakePeer("PA_a", "alice"), FakePeer("PA_b", "bob")
    s.join(alice, bob)
    up = FakeUp("TR_1", alice.sid)
    await published(s, alice, up)
    alice.ended = True
    with pytest.raises(VitrineError) as ended:
        await s.room.handle(AnswerCommand(room=ROOM, sid=alice.sid, sdp="v=0"))
    assert ended.value.code == ErrorCode.NEGOTIATION_FAILED
    s.pushes.clear()
    reply = await s.room.handle(LeaveCommand(room=ROOM, sid=alice.sid))
    assert reply.unpublished == [up.track] and alice.closed and up.closed
    assert list(s.room.peers) == [bob.sid] and not bob.subscriptions and s.offered_to() == [bob.sid]
    assert s.forgotten == []
    await s.room.leave(bob)
    assert s.forgotten == [s.room] and s.room.empty


async def test_a_relay_keeps_its_room() -> None:
    s = Setup()
    s.room.relay = SimpleNamespace()
    knocker = FakePeer("PA_k", "knocker")
    s.room.waiting[knocker.sid] = knocker
    await s.room.handle(LeaveCommand(room=ROOM, sid=knocker.sid))
    assert not s.room.empty and s.forgotten == []


async def test_an_admitted_knocker_gets_the_room_and_the_room_gets_its_tracks() -> None:
    s = Setup(FakeRecording())
    host = FakePeer("PA_h", "host", Role.HOST)
    s.join(host)
    await published(s, host, FakeUp("TR_h", host.sid))
    knocker = FakePeer("PA_k", "guest")
    knocker.evidence = SimpleNamespace(accepting=False)
    mine = FakeUp("TR_k", knocker.sid)
    knocker.publish(mine)  # flowing in while it waited, forwarded to nobody
    s.room.waiting[knocker.sid] = knocker
    s.pushes.clear()
    reply = await s.room.handle(AdmitCommand(room=ROOM, sid=knocker.sid))
    assert s.room.waiting == {} and s.room.peers[knocker.sid] is knocker and s.room.auto_subscribe[knocker.sid]
    assert knocker.evidence.accepting
    assert list(knocker.subscriptions) == ["TR_h"] and list(host.subscriptions) == ["TR_k"]
    assert reply.published == [mine.track] and reply.offer is not None and s.offered_to() == [host.sid]
    assert s.recording is not None and s.recording.attached == ["TR_h", "TR_k"]


async def test_only_the_gone_peer_itself_is_freed() -> None:
    s = Setup()
    alice, knocker = FakePeer("PA_a", "alice"), FakePeer("PA_k", "guest")
    s.join(alice)
    s.room.waiting[knocker.sid] = knocker
    assert not await s.room.free_gone(FakePeer("PA_a", "alice"))  # joined again
    assert s.room.peers[alice.sid] is alice and not alice.closed
    assert not await s.room.free_gone(knocker)  # freed, nobody told
    assert knocker.closed and s.room.waiting == {}
    assert await s.room.free_gone(alice)
    assert alice.closed and s.room.peers == {} and s.forgotten == [s.room]
