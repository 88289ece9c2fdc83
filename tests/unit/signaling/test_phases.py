"""The /v1/rtc session's phase table (``signaling.session.PHASES``), row by row: which message types each phase
takes, what anything else gets (the typed errors clients have always got), how long each phase may stay silent,
and how a joined session's product messages go through the room's policy.

No socket, worker or database: a session is built on stubs and fed frames through its own ``_handle``; what it
would send is read off its outbox. The end-to-end tests (tests/test_knock.py, tests/hardening/) run the same
paths over real sockets.
"""

from __future__ import annotations

import json
from types import SimpleNamespace
from typing import Any

import pytest

from signaling.admission import Admission
from signaling.consult.policy import ConsultPolicy
from signaling.inspect.policy import InspectionPolicy
from signaling.live.policy import LivePolicy
from signaling.policy import PlainPolicy, Policies, RateLimit, RoomMessage
from signaling.session import PHASES, Phase, RtcSession
from vitrine.core.config import Settings
from vitrine.core.models import Grants, Participant, Role, Room, RoomKind

SPINE_JOINED = {
    "ping",
    "join",
    "leave",
    "offer",
    "answer",
    "candidate",
    "publish",
    "unpublish",
    "chat",
    "history",
    "resync",
}
EXPECTED = {
    Phase.AWAITING_JOIN: {"ping", "join"},
    Phase.KNOCKING: {"ping", "join", "answer", "candidate", "leave"},
    Phase.ADMITTING: {"ping", "join", "answer", "candidate"},
    Phase.JOINED: SPINE_JOINED | {"admit"},
    Phase.CLOSING: set(),
}

CHAT = {"type": "chat", "text": "hello?"}
LEAVE = {"type": "leave"}
JOIN = {"type": "join", "v": 1, "token": "x"}
REACT = {"type": "react", "reaction": "love"}
INSPECT = {"type": "inspect", "body": {"action": "prompt", "text": "show the label"}}


class Recorder:
    """A product's message handler that notes what it was handed."""

    def __init__(self) -> None:
        self.calls: list[tuple[Admission, Any]] = []

    async def __call__(self, admission: Admission, message: Any) -> None:
        self.calls.append((admission, message))


class FakeLive(PlainPolicy):
    kind = RoomKind.LIVE
    roles = frozenset({Role.HOST, Role.VIEWER})
    where = "a live show"

    def __init__(self) -> None:
        self.react = Recorder()
        self.messages = {"react": RoomMessage(self.react, RateLimit(2, 0.001, "slow down: too many reactions"))}


class FakeInspection(PlainPolicy):
    kind = RoomKind.INSPECTION
    roles = frozenset({Role.BUYER, Role.INSPECTOR})
    where = "an inspection"

    def __init__(self) -> None:
        self.messages = {"inspect": RoomMessage(Recorder())}


def session_in(phase: Phase, kind: RoomKind = RoomKind.CONSULT) -> tuple[RtcSession, FakeLive]:
    live = FakeLive()
    policies = Policies()
    for policy in (ConsultPolicy(), live, FakeInspection()):
        policies.register(policy)
    ws: Any = SimpleNamespace(headers={})
    rooms: Any = SimpleNamespace(policies=policies)
    session = RtcSession(ws, Settings(), rooms, SimpleNamespace(), foreign_origin=None)  # type: ignore[arg-type]
    if phase is Phase.CLOSING:
        session.stop()
    elif phase is not Phase.AWAITING_JOIN:
        session._phase = phase
    if phase is Phase.JOINED:
        participant = Participant(sid="PA_1", identity="someone", role=Role.VIEWER, grants=Grants())
        session.admission = Admission(room=Room(name="r", kind=kind), participant=participant, worker_id="w")
    return session, live


def sent(session: RtcSession) -> list[dict[str, Any]]:
    frames = []
    while not session._outbox.empty():
        raw = session._outbox.get_nowait()
        if raw is not None:
            frames.append(json.loads(raw))
    return frames


@pytest.mark.parametrize("phase", list(Phase))
def test_each_phase_takes_these_messages(phase: Phase) -> None:
    assert set(PHASES[phase].handlers) == EXPECTED[phase]
    assert PHASES[phase].room_messages is (phase is Phase.JOINED)  # a product's messages: only once joined


def test_join_is_taken_only_before_a_join_and_refused_as_already_joined_after() -> None:
    joins = {phase: PHASES[phase].handlers.get("join") for phase in Phase}
    assert joins.pop(Phase.AWAITING_JOIN) is RtcSession._join
    assert joins.pop(Phase.CLOSING) is None
    assert set(joins.values()) == {RtcSession._already_joined}


@pytest.mark.parametrize(
    ("phase", "message", "code", "text"),
    [
        pytest.param(Phase.AWAITING_JOIN, CHAT, "not_joined", "send join first", id="awaiting-chat"),
        pytest.param(Phase.AWAITING_JOIN, LEAVE, "not_joined", "send join first", id="awaiting-leave"),
        pytest.param(Phase.AWAITING_JOIN, REACT, "not_joined", "send join first", id="awaiting-react"),
        pytest.param(Phase.KNOCKING, CHAT, "not_joined", "waiting to be admitted", id="knocking-chat"),
        pytest.param(Phase.KNOCKING, REACT, "not_joined", "waiting to be admitted", id="knocking-react"),
        pytest.param(Phase.KNOCKING, JOIN, "already_joined", None, id="knocking-join"),
        pytest.param(Phase.ADMITTING, LEAVE, "not_joined", "send join first", id="admitting-leave"),
        pytest.param(Phase.ADMITTING, JOIN, "already_joined", None, id="admitting-join"),
        pytest.param(Phase.JOINED, JOIN, "already_joined", None, id="joined-join"),
        pytest.param(Phase.JOINED, REACT, "invalid_message", "react: only in a live show", id="joined-react"),
        pytest.param(Phase.JOINED, INSPECT, "invalid_message", "inspect: only in an inspection", id="joined-inspect"),
    ],
)
async def test_what_a_phase_does_not_take_gets_a_typed_error(
    phase: Phase, message: dict[str, Any], code: str, text: str | None
) -> None:
    session, _ = session_in(phase)
    await session._handle(json.dumps(message))
    [error] = sent(session)
    assert (error["type"], error["code"], error["ref"]) == ("error", code, message["type"])
    assert text is None or error["message"] == text
    assert session.phase is phase  # a refusal changes nothing


@pytest.mark.parametrize("phase", [Phase.AWAITING_JOIN, Phase.KNOCKING, Phase.ADMITTING, Phase.JOINED])
async def test_ping_is_answered_in_every_phase_but_closing(phase: Phase) -> None:
    session, _ = session_in(phase)
    await session._handle(json.dumps({"type": "ping", "ts": 7}))
    assert sent(session) == [{"type": "pong", "ts": 7}]


async def test_a_closing_session_answers_nothing() -> None:
    session, _ = session_in(Phase.CLOSING)
    for message in ({"type": "ping", "ts": 1}, CHAT, JOIN, REACT):
        await session._handle(json.dumps(message))
    assert sent(session) == []


async def test_a_joined_sessions_product_messages_go_to_its_rooms_policy_within_its_rate_limit() -> None:
    session, live = session_in(Phase.JOINED, RoomKind.LIVE)
    for _ in range(3):
        await session._handle(json.dumps(REACT))
    assert [message.reaction for _, message in live.react.calls] == ["love", "love"]
    assert live.react.calls[0][0] is session.admission
    [refused] = sent(session)
    assert (refused["code"], refused["message"]) == ("rate_limited", "slow down: too many reactions")


@pytest.mark.parametrize(
    ("phase", "timeout", "reason"),
    [
        (Phase.AWAITING_JOIN, "join_timeout_s", "join timeout"),
        (Phase.KNOCKING, "idle_timeout_s", "join timeout"),
        (Phase.ADMITTING, "join_timeout_s", "join timeout"),
        (Phase.JOINED, "idle_timeout_s", "idle timeout"),
    ],
)
def test_how_long_each_phase_may_stay_silent(phase: Phase, timeout: str, reason: str) -> None:
    session, _ = session_in(phase)
    assert session.read_timeout() == getattr(Settings(), timeout)
    session.on_idle()
    assert session.phase is Phase.CLOSING
    assert json.loads(session._last_word or "") == {"type": "leave", "reason": reason, "reconnect": False}


def test_the_products_claim_their_own_messages_and_roles() -> None:
    live = LivePolicy(SimpleNamespace(click=None, product=None, deal=None, moderate=None))  # type: ignore[arg-type]
    inspection = InspectionPolicy(SimpleNamespace())  # type: ignore[arg-type]
    assert set(live.messages) == {"react", "click", "product", "deal", "moderate"}
    assert set(inspection.messages) == {"inspect"}
    assert set(ConsultPolicy().messages) == set()
    policies = Policies()
    for policy in (ConsultPolicy(), live, inspection):
        policies.register(policy)
    assert {role: policies.kind_for(role) for role in Role} == {
        Role.CUSTOMER: RoomKind.CONSULT,
        Role.AGENT: RoomKind.CONSULT,
        Role.HOST: RoomKind.LIVE,
        Role.VIEWER: RoomKind.LIVE,
        Role.BUYER: RoomKind.INSPECTION,
        Role.INSPECTOR: RoomKind.INSPECTION,
    }
    with pytest.raises(ValueError, match="already registered"):
        policies.register(ConsultPolicy())


def test_only_an_inspections_buyer_gets_an_evidence_folder() -> None:
    inspection = InspectionPolicy(SimpleNamespace())  # type: ignore[arg-type]
    room = Room(name="inspect-cs_abcdefghijkl", kind=RoomKind.INSPECTION, shop="shop-1")

    def folder(role: Role, in_room: Room = room) -> Any:
        return inspection.evidence(in_room, Participant(sid="PA_1", identity="x", role=role, grants=Grants()))

    found = folder(Role.BUYER)
    assert (found.shop, found.case_id) == ("shop-1", "cs_abcdefghijkl")
    assert folder(Role.INSPECTOR) is None
    assert folder(Role.BUYER, room.model_copy(update={"name": "inspect-not-a-case"})) is None
    assert (
        ConsultPolicy().evidence(room, Participant(sid="PA_1", identity="x", role=Role.BUYER, grants=Grants())) is None
    )
