"""One client's WebSocket signaling session (/v1/rtc): where it stands with its room, and what it may say there.

The socket itself (the bounded outbox, the writer, the read loop and its timeouts, the close codes) is
``SocketSession``'s. This module is the protocol on top of it. A session is in one ``Phase`` at a time, and
``PHASES`` is the one table saying, for each phase, which message types it takes and which handler runs, what
anything else gets, and how long the session may stay silent (the idea of LiveKit's signalhandler.go). A joined
session also takes its room's product's own messages (``RoomPolicy.messages``), and asks that policy wherever
products differ, so nothing here names a product.

Messages are handled one at a time, in order (an answer must reach the worker before the candidates that follow
it); the join an admit lets through takes its turn the same way.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal, TypedDict

from fastapi import WebSocket

from signaling.admission import Admission
from signaling.frames import CLOSE_NORMAL
from signaling.hub import SessionHub
from signaling.metrics import METRICS
from signaling.rooms import Prejoin, RoomService
from signaling.socket_session import CLOSE_POLICY, CLOSE_TRY_AGAIN, SocketSession
from vitrine.core.auth import JoinClaims, verify_token
from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import ParticipantView, Room, Track
from vitrine.core.tasks import TaskSet
from vitrine.core.text import TokenBucket
from vitrine.core.turn import ice_servers_for
from vitrine.core.wire.live import LiveState
from vitrine.core.wire.rpc import (
    AnswerCommand,
    CandidateCommand,
    Kick,
    Negotiated,
    OfferCommand,
    PublishCommand,
    UnpublishCommand,
    WorkerCommand,
    expect,
)
from vitrine.core.wire.rtc import (
    PROTOCOL_VERSION,
    AdmitMessage,
    AnswerMessage,
    CandidateMessage,
    ChatSendMessage,
    HistoryMessage,
    HistoryRequest,
    JoinedMessage,
    JoinMessage,
    Knock,
    KnockPush,
    LeaveMessage,
    LeaveNotice,
    LogEntry,
    LogPush,
    OfferMessage,
    PingMessage,
    PongMessage,
    PublishMessage,
    QueuedMessage,
    ResyncMessage,
    ResyncRequest,
    RoomEvent,
    ServerMessage,
    ServerOfferMessage,
    UnpublishMessage,
    WaitingMessage,
    encode,
    parse_client_message,
)

logger = logging.getLogger(__name__)

CHAT_BURST, CHAT_PER_S = 5, 1.0  # a viewer may say five things at once, then one a second
RESYNC_BURST, RESYNC_PER_S = 3, 0.2  # a client that lost events may resync three times at once, then every 5 s
CHAT_REORDER_WAIT_S = 1.0


class RoomNow(TypedDict):
    """The room's state as ``joined`` and ``resync`` both carry it."""

    participants: list[ParticipantView]
    tracks: list[Track]
    seq: int
    log_seq: int
    live: LiveState | None
    knocks: list[Knock]


class Phase(StrEnum):
    AWAITING_JOIN = "awaiting_join"  # connected, nothing sent yet but maybe pings
    KNOCKING = "knocking"  # waiting at the room's door (``needs_admit``); its connection is set up on the worker
    ADMITTING = "admitting"  # an admin let it in: its join is under way
    JOINED = "joined"
    CLOSING = "closing"  # the socket is ending: nothing more is handled, nothing more goes out


Handler = Callable[["RtcSession", Any], Awaitable[None]]


@dataclass(frozen=True)
class PhaseRule:
    """What a phase takes, what anything else gets, and how long the session may stay silent in it."""

    handlers: Mapping[str, Handler]
    not_joined: str | None = None  # anything else: ``not_joined`` with this message (None: no answer at all)
    room_messages: bool = False  # anything else goes to the room's product (``RoomPolicy.messages``)
    silence: Literal["join", "idle"] = "idle"  # which timeout a read waits: join_timeout_s or idle_timeout_s
    silence_reason: str = "idle timeout"  # the leave notice's reason when it runs out


@dataclass
class Door:
    """A session waiting at a room's door: its knock, its join, and its connection on the worker."""

    knock: Knock
    claims: JoinClaims
    message: JoinMessage
    prejoin: Prejoin


class RtcSession(SocketSession):
    label = "session"

    def __init__(
        self,
        ws: WebSocket,
        settings: Settings,
        rooms: RoomService,
        hub: SessionHub,
        foreign_origin: str | None = None,
    ) -> None:
        super().__init__(ws, settings)
        self.rooms = rooms
        self.hub = hub
        self.foreign_origin = foreign_origin  # not a server origin: only a token of a shop embedding it may join
        self.admission: Admission | None = None  # set on joining, kept until the socket is done
        self._phase = Phase.AWAITING_JOIN  # where the session stands with its room (``phase`` adds CLOSING)
        self._door: Door | None = None  # knocking and admitting: what the knock brought
        self._serial = asyncio.Lock()  # one message, or the join an admit lets through, at a time
        self._tasks = TaskSet()
        self._chat = TokenBucket(CHAT_BURST, CHAT_PER_S)
        self._resyncs = TokenBucket(RESYNC_BURST, RESYNC_PER_S)
        self._limits: dict[str, TokenBucket] = {}  # the room's own messages' rate limits, by message type
        self._snapshot_seq: int | None = None
        self._early_events: list[RoomEvent] = []
        self._log_seq: int | None = None  # the chat seq `joined` reported; older lines come by `history`
        self._early_log: list[LogEntry] = []
        self._ahead: dict[int, LogEntry] = {}  # chat lines that arrived before one they follow
        self._reorder_timer: asyncio.TimerHandle | None = None

    @property
    def phase(self) -> Phase:
        return Phase.CLOSING if self.ending else self._phase

    @property
    def worker_id(self) -> str | None:
        return self.admission.worker_id if self.admission else None

    @property
    def room_admin(self) -> bool:
        """Joined with ``room_admin`` in a room whose admins answer knocks: the hub tells it about them."""
        return bool(self.admission and self.admission.participant.grants.room_admin and self._knocks_shown)

    @property
    def _knocks_shown(self) -> bool:
        return self.admission is not None and self.rooms.policies.policy_for(self.admission.room.kind).knocks_shown

    @property
    def room_record(self) -> Room | None:
        return self.admission.room if self.admission else None

    @property
    def _joined(self) -> Admission:
        """The admission, for the handlers of the joined phase (which only run with one)."""
        assert self.admission is not None
        return self.admission

    # -- the socket ------------------------------------------------------------------------

    def send(self, message: ServerMessage) -> None:
        self.push_raw(encode(message))

    def _end(self, notice: LeaveNotice | None, *, drop_queued: bool, code: int | None = None) -> None:
        """Stop the socket with ``notice`` as its last word; unless ``code`` says otherwise, the close code says
        whether to come back (1013) or not (1000)."""
        if code is None:
            code = CLOSE_TRY_AGAIN if notice is not None and notice.reconnect else CLOSE_NORMAL
        self.stop(encode(notice) if notice is not None else None, code, drop_queued=drop_queued)

    def too_slow(self) -> None:
        self._end(LeaveNotice(reason="client too slow to receive", reconnect=True), drop_queued=True)

    def read_timeout(self) -> float:
        rule = PHASES[self.phase]
        return self.settings.join_timeout_s if rule.silence == "join" else self.settings.idle_timeout_s

    def on_idle(self) -> None:
        self._end(LeaveNotice(reason=PHASES[self.phase].silence_reason), drop_queued=True)

    def parse(self, raw: str | bytes) -> Any:
        return parse_client_message(raw)

    async def dispatch(self, message: Any) -> None:
        if self.foreign_origin is not None and self.admission is None and self._door is None and message.type != "join":
            self._refuse_origin(notice=False)
            return
        METRICS.signaling_messages.labels(type=message.type).inc()
        async with self._serial:
            await self._route(message)

    async def _route(self, message: Any) -> None:
        """Run what the session's phase says for this message (the phase as of its turn, not its arrival)."""
        rule = PHASES[self.phase]
        handler = rule.handlers.get(message.type)
        if handler is not None:
            await handler(self, message)
        elif rule.room_messages:
            await self._room_message(message)
        elif rule.not_joined is not None:
            raise VitrineError(ErrorCode.NOT_JOINED, rule.not_joined)

    async def _room_message(self, message: Any) -> None:
        admission = self._joined
        policies = self.rooms.policies
        accepted = policies.policy_for(admission.room.kind).messages.get(message.type)
        if accepted is None:
            raise policies.refuse_elsewhere(message.type)
        limit = accepted.limit
        if limit is not None:
            bucket = self._limits.get(message.type)
            if bucket is None:
                bucket = self._limits[message.type] = TokenBucket(limit.burst, limit.per_s)
            if not bucket.take():
                raise VitrineError(ErrorCode.RATE_LIMITED, limit.refusal)
        await accepted.handle(admission, message)

    async def closed(self) -> None:
        door = self._door
        if self._phase is Phase.KNOCKING and door is not None:  # left before an answer: the consoles drop the knock
            self._phase, self._door = Phase.AWAITING_JOIN, None
            await self.hub.leave_door(door.claims.room, door.knock.id)
            await self.rooms.cancel_knock(door.claims.room, door.knock.id)
            await self.rooms.drop_prejoin(door.claims.room, door.prejoin)
        admission, self.admission = self.admission, None
        if admission is not None:
            await self.hub.detach(admission.room.name, admission.participant.sid)
            await self.rooms.leave(admission)

    # -- hub callbacks ---------------------------------------------------------------

    async def on_event(self, event: RoomEvent) -> None:
        if self._snapshot_seq is None:
            self._early_events.append(event)
        elif event.seq > self._snapshot_seq:
            self.send(event)

    async def on_offer(self, offer: ServerOfferMessage) -> None:
        self.send(offer)

    async def on_log(self, entry: LogEntry) -> None:
        """Send chat in ``seq`` order: two writers' lines can cross on the bus, so a line that arrives
        ahead of a missing one waits for it, at most ``CHAT_REORDER_WAIT_S`` (then the client sees the
        gap and asks ``history``)."""
        if self._log_seq is None:
            self._early_log.append(entry)  # before `joined`: sent after it, if newer than its log_seq
            return
        if entry.seq > self._log_seq:
            self._ahead[entry.seq] = entry
            self._release_chat()
            if self._ahead and self._reorder_timer is None:
                self._reorder_timer = asyncio.get_running_loop().call_later(
                    CHAT_REORDER_WAIT_S, self._release_chat, True
                )

    def _release_chat(self, give_up: bool = False) -> None:
        assert self._log_seq is not None
        while self._ahead:
            following = self._log_seq + 1
            if following not in self._ahead and not give_up:
                break
            seq = following if following in self._ahead else min(self._ahead)
            self._log_seq = seq
            self.send(LogPush(entry=self._ahead.pop(seq)))
        if self._reorder_timer is not None and (give_up or not self._ahead):
            self._reorder_timer.cancel()
            self._reorder_timer = None

    async def on_kick(self, kick: Kick) -> None:
        if self._log_seq is not None and self._ahead:  # entries held for a missing one go before the leave
            self._release_chat(give_up=True)
        self._end(LeaveNotice(reason=kick.reason, reconnect=kick.reconnect, code=kick.code), drop_queued=False)

    async def on_knock_answered(self, push: KnockPush) -> None:
        door = self._door
        if self._phase is not Phase.KNOCKING or door is None or push.knock.id != door.knock.id:
            return
        admitted = push.ended == "admitted"
        self._phase = Phase.ADMITTING if admitted else Phase.AWAITING_JOIN
        if not admitted:
            self._door = None
        await self.hub.leave_door(door.claims.room, door.knock.id)
        if admitted:
            self._tasks.spawn(self._enter_admitted(door))
        else:
            await self.rooms.drop_prejoin(door.claims.room, door.prejoin)
            await self.on_kick(Kick(sid=door.knock.id, reason="the host did not let you in", code="denied"))

    # -- handlers (``PHASES`` says which runs when) -----------------------------------------

    async def _ping(self, message: PingMessage) -> None:
        self.send(PongMessage(ts=message.ts))

    async def _already_joined(self, message: JoinMessage) -> None:
        raise VitrineError(ErrorCode.ALREADY_JOINED, "this session has already joined (or knocked)")

    async def _join(self, message: JoinMessage) -> None:
        if message.v != PROTOCOL_VERSION:
            raise VitrineError(ErrorCode.UNSUPPORTED_VERSION, f"this server speaks protocol v{PROTOCOL_VERSION}")
        claims = verify_token(self.settings, message.token)
        if self.foreign_origin is not None and not await self._shop_allows_origin(claims.shop):
            self.error(VitrineError(ErrorCode.ORIGIN_NOT_ALLOWED, "this page's origin may not join"), "join")
            self._refuse_origin(notice=True)
            return
        if claims.grants.needs_admit:
            await self._knock_at_door(claims, message)
            return
        await self._enter(claims, message)

    async def _leave(self, message: LeaveMessage) -> None:
        self._end(LeaveNotice(reason="left"), drop_queued=True)

    async def _negotiate_at_door(self, message: AnswerMessage | CandidateMessage) -> None:
        """A knocker answers its prejoin's offer and trickles candidates; it can do nothing else. Between the
        admit and its join, the worker may have let it in already: then what its answer publishes is recorded."""
        assert self._door is not None
        prejoin, room = self._door.prejoin, self._door.claims.room
        command = _worker_command(message, room, prejoin.participant.sid)
        reply = expect(await self.rooms.link.call(prejoin.worker_id, command), Negotiated)
        await self.rooms.apply_tracks(room, reply)
        if reply.offer is not None:
            self.send(reply.offer)

    async def _to_worker(
        self, message: AnswerMessage | OfferMessage | CandidateMessage | PublishMessage | UnpublishMessage
    ) -> None:
        admission = self._joined
        command = _worker_command(message, admission.room.name, admission.participant.sid)
        reply = await self.rooms.run(admission, command)
        for outgoing in (reply.answer, reply.offer):  # an answer to the client's offer, or the next offer
            if outgoing is not None:
                self.send(outgoing)

    async def _chat_message(self, message: ChatSendMessage) -> None:
        if not self._chat.take():
            raise VitrineError(ErrorCode.RATE_LIMITED, "slow down: too many chat messages")
        admission = self._joined
        policy = self.rooms.policies.policy_for(admission.room.kind)
        await policy.may_chat(admission)
        stored = functools.partial(policy.chat_stored, admission.room.name)
        await self.rooms.chat(admission, message.text, keep=policy.log_keep, stored=stored)

    async def _history(self, request: HistoryRequest) -> None:
        room, log = self._joined.room.name, self.rooms.state.records.roomlog
        last = await log.last_seq(room)
        after = request.after if request.after is not None else max(0, last - request.limit)
        self.send(HistoryMessage(entries=await log.after(room, after, request.limit), last_seq=last))

    async def _resync(self, message: ResyncRequest) -> None:
        """The room as it is now, for a client that saw a gap in the events' ``seq``: it replaces what it knows
        with this, then applies the events after its ``seq`` (those this session sends from now on, and any it
        holds). Rate-limited: each answer reads the whole room."""
        if not self._resyncs.take():
            raise VitrineError(ErrorCode.RATE_LIMITED, "slow down: too many resyncs")
        self.send(ResyncMessage(**await self._room_now(self._joined.room)))

    async def _admit(self, message: AdmitMessage) -> None:
        admission = self._joined
        knock = await self.rooms.settle_knock(admission, message.knock, message.admit)
        await self.rooms.policies.policy_for(admission.room.kind).knock_settled(admission, knock, message.admit)

    # -- joining -----------------------------------------------------------------------------

    async def _knock_at_door(self, claims: JoinClaims, message: JoinMessage) -> None:
        """Wait outside: the room's admins see the knock. The knocker's connection is set up on the worker
        meanwhile (``RoomService.prejoin``), but nothing of it reaches the room until an admin admits it."""
        knock = await self.rooms.knock(claims, message.name)
        prejoin = await self.rooms.prejoin(
            claims, publish=message.publish, name=message.name, node_id=self.settings.node_id
        )
        self._door, self._phase = Door(knock, claims, message, prejoin), Phase.KNOCKING
        await self.hub.wait_at_door(claims.room, knock.id, self)  # listening before anyone can answer
        await self.rooms.announce_knock(claims.room, knock)
        self.send(WaitingMessage(knock=knock.id, ice_servers=ice_servers_for(self.settings, claims.sub)))
        if prejoin.offer is not None:
            self.send(prejoin.offer)

    async def _enter_admitted(self, door: Door) -> None:
        async with self._serial:
            try:
                await self._enter(door.claims, door.message, door.prejoin)
            except VitrineError as exc:
                self.error(exc, "join")
            except Exception:
                logger.exception("joining after an admit failed")
                self.error(VitrineError(ErrorCode.INTERNAL, "internal error"), "join")
            finally:
                self._door = None
                if self._phase is Phase.ADMITTING:  # it could not join: it may send join again
                    self._phase = Phase.AWAITING_JOIN
            if self.admission is None:  # it could not join: its connection on the worker goes
                await self.rooms.drop_prejoin(door.claims.room, door.prejoin)

    async def _enter(self, claims: JoinClaims, message: JoinMessage, prejoin: Prejoin | None = None) -> None:
        admission = await self.rooms.admit(
            claims,
            publish=message.publish,
            name=message.name,
            node_id=self.settings.node_id,
            prejoined=prejoin,
            on_queued=self._queued,
        )
        self.admission, self._phase = admission, Phase.JOINED
        room, participant = admission.room, admission.participant
        policy = self.rooms.policies.policy_for(room.kind)
        await self.hub.attach(room.name, participant.sid, self)
        now = await self._room_now(room)
        self.send(
            JoinedMessage(
                room=room,
                participant=ParticipantView.of(participant),
                grants=participant.grants,
                ice_servers=ice_servers_for(self.settings, participant.identity),
                **now,
            )
        )
        self._snapshot_seq, self._log_seq = now["seq"], now["log_seq"]
        for event in self._early_events:
            await self.on_event(event)
        self._early_events.clear()
        for entry in self._early_log:
            await self.on_log(entry)
        self._early_log.clear()
        if admission.reply.offer is not None:
            self.send(admission.reply.offer)
        METRICS.joins.inc()
        await policy.joined(admission, knocked=prejoin is not None)

    async def _room_now(self, room: Room) -> RoomNow:
        """What ``joined`` and ``resync`` say of the room, read now: one reading for both, so they never differ."""
        participants, tracks, seq = await self.rooms.snapshot(room.name)
        extras = await self.rooms.policies.policy_for(room.kind).joined_extras(room.name)
        return RoomNow(
            participants=[ParticipantView.of(p) for p in participants],
            tracks=tracks,
            seq=seq,
            log_seq=await self.rooms.state.records.roomlog.last_seq(room.name),
            live=extras.live,
            knocks=await self.rooms.knocks(room.name) if self.room_admin else [],  # not where the product answers
        )

    async def _queued(self, position: int) -> None:
        """The room's worker is busy with other joins' handshakes: this one waits its turn (``joined`` follows)."""
        self.send(QueuedMessage(position=position))

    async def _shop_allows_origin(self, shop_id: str | None) -> bool:
        shop = await self.rooms.state.records.shops.get_shop(shop_id) if shop_id else None
        return shop is not None and self.origin_allowed_by(shop)

    def _refuse_origin(self, notice: bool) -> None:
        """Close with 1008: a foreign page may send a shop's join, and nothing else, first.

        With ``notice``, what is queued (the typed error) is still sent, then a ``leave``.
        """
        last_word = LeaveNotice(reason="origin not allowed") if notice else None
        self._end(last_word, drop_queued=not notice, code=CLOSE_POLICY)


_door = RtcSession._negotiate_at_door
_worker = RtcSession._to_worker

PHASES: dict[Phase, PhaseRule] = {
    Phase.AWAITING_JOIN: PhaseRule(
        {"ping": RtcSession._ping, "join": RtcSession._join},
        not_joined="send join first",
        silence="join",
        silence_reason="join timeout",
    ),
    Phase.KNOCKING: PhaseRule(
        {
            "ping": RtcSession._ping,
            "join": RtcSession._already_joined,
            "answer": _door,
            "candidate": _door,
            "leave": RtcSession._leave,
        },
        not_joined="waiting to be admitted",
        silence_reason="join timeout",
    ),
    Phase.ADMITTING: PhaseRule(
        {"ping": RtcSession._ping, "join": RtcSession._already_joined, "answer": _door, "candidate": _door},
        not_joined="send join first",
        silence="join",
        silence_reason="join timeout",
    ),
    Phase.JOINED: PhaseRule(
        {
            "ping": RtcSession._ping,
            "join": RtcSession._already_joined,
            "leave": RtcSession._leave,
            "offer": _worker,
            "answer": _worker,
            "candidate": _worker,
            "publish": _worker,
            "unpublish": _worker,
            "chat": RtcSession._chat_message,
            "history": RtcSession._history,
            "resync": RtcSession._resync,
            "admit": RtcSession._admit,
        },
        room_messages=True,
    ),
    Phase.CLOSING: PhaseRule({}),  # nothing more is read: this only covers a message read as the end came
}


def _worker_command(message: object, room: str, sid: str) -> WorkerCommand:
    """The worker command a client's message becomes; the sender is always the socket's own."""
    if isinstance(message, AnswerMessage):
        return AnswerCommand(room=room, sid=sid, sdp=message.sdp)
    if isinstance(message, OfferMessage):
        return OfferCommand(room=room, sid=sid, sdp=message.sdp)
    if isinstance(message, CandidateMessage):
        return CandidateCommand(room=room, sid=sid, candidate=message.candidate)
    if isinstance(message, PublishMessage):
        return PublishCommand(room=room, sid=sid, tracks=message.tracks)
    if isinstance(message, UnpublishMessage):
        return UnpublishCommand(room=room, sid=sid, track_sid=message.track_sid)
    raise VitrineError(ErrorCode.INVALID_MESSAGE, "unexpected message")
