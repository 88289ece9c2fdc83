"""A live show's answers to the spine's questions (``signaling.policy``).

A show bans people, counts its viewers' sessions and watch time, gates chat (bans, mutes, slow mode), keeps a
long log (it is the show's replay), tells each joiner the show's state (pins, deal, slow mode, counts), and
takes its shoppers' and hosts' own messages: react, click, product, deal and moderate.
"""

from __future__ import annotations

from signaling.admission import Admission
from signaling.live.actions import LiveActions
from signaling.policy import JoinedExtras, PlainPolicy, RateLimit, RoomMessage
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Participant, Role, Room, RoomKind, now_ms
from vitrine.core.records.roomlog import SHOW_MAX_ENTRIES
from vitrine.core.wire.live import ReactMessage
from vitrine.core.wire.rtc import LogEntry

REACT_BURST, REACT_PER_S = 10, 4.0  # taps on a heart come in bursts


class LivePolicy(PlainPolicy):
    kind = RoomKind.LIVE
    roles = frozenset({Role.HOST, Role.VIEWER})
    where = "a live show"
    log_keep = SHOW_MAX_ENTRIES
    default_capacity = 1000
    relays = True

    def __init__(self, live: LiveActions) -> None:
        self.live = live
        self.messages = {
            "react": RoomMessage(self._react, RateLimit(REACT_BURST, REACT_PER_S, "slow down: too many reactions")),
            "click": RoomMessage(live.click),
            "product": RoomMessage(live.product),
            "deal": RoomMessage(live.deal),
            "moderate": RoomMessage(live.moderate),
        }

    def relayed(self, participant: Participant) -> bool:
        """A viewer who only watches may be served from a relay; the host and anyone who publishes stay on the
        origin, where the tracks are."""
        return participant.role == Role.VIEWER and not participant.grants.can_publish

    async def may_enter(self, room: Room, identity: str) -> None:
        if await self.live.store.is_banned(room.name, identity):
            raise VitrineError(ErrorCode.BANNED, "you are banned from this show")

    async def admitted(self, room: Room, participant: Participant, *, replaced: bool) -> None:
        if participant.role == Role.VIEWER and not replaced:  # a reconnect is the same session
            await self.live.store.count(room.name, "viewer_sessions")

    async def left(self, room: Room, participant: Participant) -> None:
        if participant.role == Role.VIEWER:  # the show's watch time
            watched_ms = max(0, now_ms() - participant.joined_at_ms)
            await self.live.store.count(room.name, "watch_ms", watched_ms)

    async def may_chat(self, admission: Admission) -> None:
        await self.live.may_chat(admission)

    async def chat_stored(self, room: str, entry: LogEntry) -> None:
        """Counted before the echo: a crash after it must not lose the count."""
        await self.live.store.count(room, "messages")

    async def joined_extras(self, room: str) -> JoinedExtras:
        return JoinedExtras(live=await self.live.state_for(room))

    async def _react(self, admission: Admission, message: ReactMessage) -> None:
        self.live.react(admission, message.reaction)
