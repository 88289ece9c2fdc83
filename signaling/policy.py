"""What the spine asks a room's product, and the registry that answers by room kind.

The spine (``rooms.py``, ``session.py``) runs every room the same way. Where the products differ (who may enter
a show, what a show counts as viewers come and go, how much of an inspection's log is kept, which extra /v1/rtc
messages a room takes, what a media worker must know of an inspection's buyer), it asks the ``RoomPolicy``
registered for the room's kind, so it imports no product and never branches on a kind. The composition root
(``signaling/runtime.py``) registers one policy per kind; a product's policy lives in its own package
(``signaling/<product>/policy.py``). What a policy holds as plain data (its roles, its log limit, its messages)
is an attribute; what it does is an async method. ``PlainPolicy`` answers every question the way a room with
nothing special does, so a product's policy says only where it differs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Protocol

from signaling.admission import Admission
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Participant, Role, Room, RoomKind
from vitrine.core.records.roomlog import MAX_ENTRIES
from vitrine.core.wire.live import LiveState
from vitrine.core.wire.rpc import EvidenceFolder
from vitrine.core.wire.rtc import Knock, LogEntry


@dataclass(frozen=True)
class RateLimit:
    """``burst`` messages at once, then ``per_s`` a second, for each session; over it: ``rate_limited``."""

    burst: int
    per_s: float
    refusal: str  # the error's message


@dataclass(frozen=True)
class RoomMessage:
    """A product's own /v1/rtc message: what runs when a joined session sends it, and how often it may."""

    handle: Callable[[Admission, Any], Awaitable[None]]
    limit: RateLimit | None = None


@dataclass(frozen=True)
class JoinedExtras:
    """What a kind of room adds to a session's ``joined``."""

    live: LiveState | None = None  # a live show's pins, deal, slow mode and counts as of the join


class RoomPolicy(Protocol):
    """The spine's questions to the product a room belongs to."""

    kind: RoomKind
    roles: frozenset[Role]  # the roles whose join tokens make this kind of room when they create one
    where: str  # how a refusal of its messages in another kind of room names it: "react: only in a live show"
    log_keep: int  # how many entries of a room's log are kept (its chat, and what else the product logs)
    default_capacity: int  # participants, for a room made over REST without a size (the server's cap still applies)
    relays: bool  # whether some of its participants may be served from relay workers (``signaling/cascade.py``)
    messages: Mapping[str, RoomMessage]  # its own /v1/rtc messages by type, accepted once joined
    # Whether the room's admins see its knocks and answer them. False: the product answers them itself
    # (``RoomService.answer_knock``: a consult's accept), and nothing of a knocker reaches anyone before.
    knocks_shown: bool

    async def may_enter(self, room: Room, identity: str) -> None:
        """Raise a typed error when ``identity`` may not join or knock (a show's ban)."""

    async def admitted(self, room: Room, participant: Participant, *, replaced: bool) -> None:
        """A participant was let in (``replaced``: it took over its own older session, a reconnect)."""

    async def left(self, room: Room, participant: Participant) -> None:
        """A participant left, counted once however it left."""

    async def may_chat(self, admission: Admission) -> None:
        """Raise a typed error when this participant may not say anything now (a show's bans, mutes, slow mode)."""

    async def chat_stored(self, room: str, entry: LogEntry) -> None:
        """A chat line is stored: what must be durable before anyone hears of it."""

    async def joined_extras(self, room: str) -> JoinedExtras: ...

    async def joined(self, admission: Admission, *, knocked: bool) -> None:
        """A session has joined and heard ``joined`` (``knocked``: it was admitted at the door just now)."""

    async def knock_settled(self, admission: Admission, knock: Knock, admitted: bool) -> None:
        """A room admin let a knocker in, or not."""

    async def admits_at_once(self, room: Room, knock: Knock) -> bool:
        """Whether a knock is let in as it arrives, because the product already said yes (a consult's shopper
        whose call was accepted before its knock came)."""

    def evidence(self, room: Room, participant: Participant) -> EvidenceFolder | None:
        """Where the media worker keeps this participant's evidence files; None: it collects none."""

    def relayed(self, participant: Participant) -> bool:
        """Whether this participant may be served from a relay worker instead of the room's origin."""


class PlainPolicy:
    """A room with nothing special: anyone the room's shop and grants allow enters, nothing is counted, a call's
    chat length of log is kept, no extra messages."""

    kind: RoomKind
    roles: frozenset[Role]
    where: str
    log_keep = MAX_ENTRIES
    default_capacity = 4
    relays = False
    messages: Mapping[str, RoomMessage] = MappingProxyType({})
    knocks_shown = True

    async def may_enter(self, room: Room, identity: str) -> None:
        return None

    async def admitted(self, room: Room, participant: Participant, *, replaced: bool) -> None:
        return None

    async def left(self, room: Room, participant: Participant) -> None:
        return None

    async def may_chat(self, admission: Admission) -> None:
        return None

    async def chat_stored(self, room: str, entry: LogEntry) -> None:
        return None

    async def joined_extras(self, room: str) -> JoinedExtras:
        return JoinedExtras()

    async def joined(self, admission: Admission, *, knocked: bool) -> None:
        return None

    async def knock_settled(self, admission: Admission, knock: Knock, admitted: bool) -> None:
        return None

    async def admits_at_once(self, room: Room, knock: Knock) -> bool:
        return False

    def evidence(self, room: Room, participant: Participant) -> EvidenceFolder | None:
        return None

    def relayed(self, participant: Participant) -> bool:
        return False


class Policies:
    """Every kind of room's policy, registered once by the composition root, then only read."""

    def __init__(self) -> None:
        self._by_kind: dict[RoomKind, RoomPolicy] = {}
        self._by_role: dict[Role, RoomKind] = {}
        self._by_message: dict[str, RoomPolicy] = {}

    def register(self, policy: RoomPolicy) -> None:
        """Add a kind's policy; a kind, a role or a message type that two policies claim is a wiring mistake."""
        claimed = (
            {policy.kind} & self._by_kind.keys()
            or policy.roles & self._by_role.keys()
            or policy.messages.keys() & self._by_message.keys()
        )
        if claimed:
            raise ValueError(f"{policy.kind} policy: {sorted(claimed)} already registered")
        self._by_kind[policy.kind] = policy
        self._by_role.update(dict.fromkeys(policy.roles, policy.kind))
        self._by_message.update(dict.fromkeys(policy.messages, policy))

    def policy_for(self, kind: RoomKind) -> RoomPolicy:
        return self._by_kind[kind]

    def kind_for(self, role: Role) -> RoomKind:
        """The kind of room a token of ``role`` creates."""
        return self._by_role[role]

    def refuse_elsewhere(self, message_type: str) -> VitrineError:
        """The error for a product's message sent in a room of another kind."""
        owner = self._by_message[message_type]
        return VitrineError(ErrorCode.INVALID_MESSAGE, f"{message_type}: only in {owner.where}")
