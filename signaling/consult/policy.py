"""A consult call's answers to the spine's questions (``signaling.policy``).

A call is a plain room (a call's length of chat, no messages of its own) with one door: the shopper knocks while
the agent's console rings, so their connection is up before the accept, and the desk's accept answers that knock
(``RoomService.answer_knock``). Nobody else answers it, and nothing of it is shown to the room: the agent being
rung sees no knock, no participant and no track of the shopper's before accepting. The desk also says who may be
in a call's room: its shopper, and the agent it rings or that answered it (an agent whose ring passed on holds a
token for the room, and must not come back into it).
"""

from __future__ import annotations

from typing import Protocol

from signaling.policy import PlainPolicy
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Role, Room, RoomKind
from vitrine.core.wire.rtc import Knock


class CallDoor(Protocol):
    """What the desk answers about a call's room (``ConsultDesk``)."""

    async def may_enter(self, room: str, identity: str) -> bool: ...

    async def accepted(self, room: str, identity: str) -> bool: ...


class ConsultPolicy(PlainPolicy):
    kind = RoomKind.CONSULT
    roles = frozenset({Role.CUSTOMER, Role.AGENT})
    where = "a call"
    knocks_shown = False  # the desk's accept admits the shopper; the agent never sees the knock

    def __init__(self) -> None:
        self.door: CallDoor | None = None  # the desk, once the consult service is built (``ConsultService``)

    async def may_enter(self, room: Room, identity: str) -> None:
        if self.door is not None and not await self.door.may_enter(room.name, identity):
            raise VitrineError(ErrorCode.PERMISSION_DENIED, "this call is not yours to join")

    async def admits_at_once(self, room: Room, knock: Knock) -> bool:
        """A shopper whose knock arrives after the accept (a slow page, a reconnect) goes straight in."""
        return self.door is not None and await self.door.accepted(room.name, knock.participant.identity)
