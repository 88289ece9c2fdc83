"""One client's WebSocket signaling session: a read loop that survives any message.

Messages are handled one at a time, in order (an answer must reach the worker
before the candidates that follow it). Outgoing messages go through a bounded
queue; a client too slow to drain it is disconnected rather than buffered
without limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from fastapi import WebSocket, WebSocketDisconnect

from signaling.frames import CLOSE_NORMAL, Idle, receive_frame
from signaling.hub import SessionHub
from signaling.inspect.sessions import InspectionService
from signaling.live.actions import LiveActions
from signaling.metrics import METRICS
from signaling.rooms import Admission, Prejoin, RoomService
from vitrine.core.auth import JoinClaims, verify_token
from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import ParticipantView, Room, RoomKind
from vitrine.core.records.roomlog import INSPECTION_MAX_ENTRIES, MAX_ENTRIES
from vitrine.core.tasks import TaskSet
from vitrine.core.text import TokenBucket
from vitrine.core.turn import ice_servers_for
from vitrine.core.wire.inspect_actions import InspectMessage
from vitrine.core.wire.live import ClickMessage, DealMessage, ModerateMessage, ProductMessage, ReactMessage
from vitrine.core.wire.rpc import (
    AnswerCommand,
    CandidateCommand,
    Kick,
    OfferCommand,
    PublishCommand,
    UnpublishCommand,
    WorkerCommand,
)
from vitrine.core.wire.rtc import (
    PROTOCOL_VERSION,
    AdmitMessage,
    AnswerMessage,
    CandidateMessage,
    ChatSendMessage,
    ErrorMessage,
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
    RoomEvent,
    ServerMessage,
    ServerOfferMessage,
    UnpublishMessage,
    WaitingMessage,
    encode,
    parse_client_message,
)

logger = logging.getLogger(__name__)

LiveMessage = ReactMessage | ClickMessage | ModerateMessage | ProductMessage | DealMessage
LIVE_MESSAGES = (ReactMessage, ClickMessage, ModerateMessage, ProductMessage, DealMessage)

CLOSE_POLICY = 1008
CHAT_BURST, CHAT_PER_S = 5, 1.0  # a viewer may say five things at once, then one a second
REACT_BURST, REACT_PER_S = 10, 4.0  # taps on a heart come in bursts
INSPECT_BURST, INSPECT_PER_S = 20, 5.0  # an inspector drags a zoom slider, draws marks
CHAT_REORDER_WAIT_S = 1.0
CLOSE_TRY_AGAIN = 1013


@dataclass
class Door:
    """A session waiting at a room's door: its knock, its join, and its connection on the worker."""

    knock: Knock
    claims: JoinClaims
    message: JoinMessage
    prejoin: Prejoin


class RtcSession:
    def __init__(
        self,
        ws: WebSocket,
        settings: Settings,
        rooms: RoomService,
        hub: SessionHub,
        live: LiveActions,
        inspections: InspectionService,
        foreign_origin: str | None = None,
    ) -> None:
        self.ws = ws
        self.live = live
        self.inspections = inspections
        self.foreign_origin = foreign_origin  # not a server origin: only a token of a shop embedding it may join
        self.settings = settings
        self.rooms = rooms
        self.hub = hub
        self.admission: Admission | None = None
        self._outbox: asyncio.Queue[ServerMessage | None] = asyncio.Queue(maxsize=settings.send_queue_size)
        self._snapshot_seq: int | None = None
        self._early_events: list[RoomEvent] = []
        self._closing: LeaveNotice | None = None
        self._close_code: int | None = None  # overrides the normal/try-again close code
        self._stopping = False  # the outbox ends with its sentinel: let the writer finish it
        self._chat = TokenBucket(CHAT_BURST, CHAT_PER_S)
        self._reactions = TokenBucket(REACT_BURST, REACT_PER_S)
        self._inspect = TokenBucket(INSPECT_BURST, INSPECT_PER_S)
        self._log_seq: int | None = None  # the chat seq `joined` reported; older lines come by `history`
        self._early_log: list[LogEntry] = []
        self._ahead: dict[int, LogEntry] = {}  # chat lines that arrived before one they follow
        self._reorder_timer: asyncio.TimerHandle | None = None
        self._knock: Door | None = None  # waiting at the door (needs_admit)
        self._admitting: Door | None = None  # admitted, joining: its negotiation still goes to the prejoin
        self._serial = asyncio.Lock()  # one message, or the join an admit lets through, at a time
        self._tasks = TaskSet()

    @property
    def worker_id(self) -> str | None:
        return self.admission.worker_id if self.admission else None

    @property
    def room_admin(self) -> bool:
        return bool(self.admission and self.admission.participant.grants.room_admin)

    @property
    def room_record(self) -> Room | None:
        return self.admission.room if self.admission else None

    # -- outgoing -------------------------------------------------------------------

    def send(self, message: ServerMessage) -> None:
        try:
            self._outbox.put_nowait(message)
        except asyncio.QueueFull:
            logger.warning("closing a session whose send queue is full")
            self._closing = LeaveNotice(reason="client too slow to receive", reconnect=True)
            self._drain_and_stop()

    def _drain_and_stop(self) -> None:
        self._stopping = True
        while not self._outbox.empty():
            self._outbox.get_nowait()
        self._outbox.put_nowait(None)

    async def _writer(self) -> None:
        while (message := await self._outbox.get()) is not None:
            await self.ws.send_text(encode(message))
        if self._closing is not None:
            with contextlib.suppress(Exception):
                await self.ws.send_text(encode(self._closing))
        with contextlib.suppress(Exception):
            await self.ws.close(
                self._close_code or (CLOSE_TRY_AGAIN if self._closing and self._closing.reconnect else CLOSE_NORMAL)
            )

    def error(self, exc: VitrineError, ref: str | None = None) -> None:
        METRICS.signaling_errors.labels(code=exc.code.value).inc()
        self.send(ErrorMessage(code=exc.code, message=exc.message, ref=ref))

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
        self._closing = LeaveNotice(reason=kick.reason, reconnect=kick.reconnect, code=kick.code)
        if self._outbox.full():
            self._drain_and_stop()
        else:
            self._outbox.put_nowait(None)

    # -- the loop ----------------------------------------------------------------------

    async def run(self) -> None:
        writer = asyncio.create_task(self._writer())
        try:
            await self._read_loop(writer)
        except WebSocketDisconnect:
            pass
        finally:
            await self._leave()
            if not writer.done():
                if not self._stopping:
                    self._drain_and_stop()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer, 2)
            writer.cancel()

    async def _read_loop(self, writer: asyncio.Task[None]) -> None:
        while not writer.done():
            waiting = self.admission is None and self._knock is None
            timeout = self.settings.join_timeout_s if waiting else self.settings.idle_timeout_s
            try:
                raw = await receive_frame(self.ws, writer, timeout, self.settings.max_message_bytes)
            except Idle:
                if not writer.done():
                    self._closing = LeaveNotice(reason="idle timeout" if self.admission else "join timeout")
                    self._drain_and_stop()
                return
            except VitrineError as exc:
                self.error(exc)
                continue
            if raw is None:
                continue
            await self._handle(raw)
            if (self._closing is not None or self._close_code) and self.admission is None:
                return

    async def _handle(self, raw: str | bytes) -> None:
        ref = None
        try:
            message = parse_client_message(raw)
            ref = message.type
            if self.foreign_origin is not None and self.admission is None and not isinstance(message, JoinMessage):
                self._refuse_origin(notice=False)
                return
            METRICS.signaling_messages.labels(type=ref).inc()
            async with self._serial:
                await self._dispatch(message)
        except VitrineError as exc:
            self.error(exc, ref)
        except Exception:
            logger.exception("unexpected failure handling a %s message", ref or "client")
            self.error(VitrineError(ErrorCode.INTERNAL, "internal error"), ref)

    async def _dispatch(self, message: object) -> None:
        if isinstance(message, PingMessage):
            self.send(PongMessage(ts=message.ts))
            return
        if isinstance(message, JoinMessage):
            await self._join(message)
            return
        admission = self.admission
        if admission is None and self._knock is not None and isinstance(message, LeaveMessage):
            self._closing = LeaveNotice(reason="left")
            self._drain_and_stop()
            return
        door = self._knock or self._admitting
        if admission is None and door is not None and isinstance(message, AnswerMessage | CandidateMessage):
            await self._negotiate_at_door(door, message)
            return
        if admission is None:
            raise VitrineError(ErrorCode.NOT_JOINED, "waiting to be admitted" if self._knock else "send join first")
        if isinstance(message, AdmitMessage):
            knock = await self.rooms.settle_knock(admission, message.knock, message.admit)
            await self.inspections.knock_settled(admission, knock, message.admit)
            return
        if isinstance(message, InspectMessage):
            if not self._inspect.take():
                raise VitrineError(ErrorCode.RATE_LIMITED, "slow down: too many inspection actions")
            await self.inspections.act(admission, message.body)
            return
        if isinstance(message, LeaveMessage):
            self._closing = LeaveNotice(reason="left")
            self._drain_and_stop()
            return
        if isinstance(message, ChatSendMessage):
            if not self._chat.take():
                raise VitrineError(ErrorCode.RATE_LIMITED, "slow down: too many chat messages")
            if admission.room.kind == RoomKind.LIVE:
                await self.live.chat(admission, message.text)
            else:
                keep = INSPECTION_MAX_ENTRIES if admission.room.kind == RoomKind.INSPECTION else MAX_ENTRIES
                await self.rooms.chat(admission, message.text, keep)
            return
        if isinstance(message, HistoryRequest):
            await self._history(admission.room.name, message)
            return
        if isinstance(message, LIVE_MESSAGES):
            await self._live(admission, message)
            return
        command = _worker_command(message, admission.room.name, admission.participant.sid)
        reply = await self.rooms.run(admission, command)
        for outgoing in (reply.answer, reply.offer):  # an answer to the client's offer, or the next offer
            if outgoing is not None:
                self.send(outgoing)

    async def _live(self, admission: Admission, message: LiveMessage) -> None:
        if admission.room.kind != RoomKind.LIVE:
            raise VitrineError(ErrorCode.INVALID_MESSAGE, f"{message.type}: only in a live show")
        if isinstance(message, ReactMessage):
            if not self._reactions.take():
                raise VitrineError(ErrorCode.RATE_LIMITED, "slow down: too many reactions")
            self.live.react(admission, message.reaction)
        elif isinstance(message, ClickMessage):
            await self.live.click(admission, message)
        elif isinstance(message, ModerateMessage):
            await self.live.moderate(admission, message)
        elif isinstance(message, ProductMessage):
            await self.live.product(admission, message)
        else:
            await self.live.deal(admission, message)

    async def _join(self, message: JoinMessage) -> None:
        if self.admission is not None or self._knock is not None:
            raise VitrineError(ErrorCode.ALREADY_JOINED, "this session has already joined (or knocked)")
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

    async def _knock_at_door(self, claims: JoinClaims, message: JoinMessage) -> None:
        """Wait outside: the room's admins see the knock. The knocker's connection is set up on the worker
        meanwhile (``RoomService.prejoin``), but nothing of it reaches the room until an admin admits it."""
        knock = await self.rooms.knock(claims, message.name)
        prejoin = await self.rooms.prejoin(
            claims, publish=message.publish, name=message.name, node_id=self.settings.node_id
        )
        self._knock = Door(knock, claims, message, prejoin)
        await self.hub.wait_at_door(claims.room, knock.id, self)  # listening before anyone can answer
        await self.rooms.announce_knock(claims.room, knock)
        self.send(WaitingMessage(knock=knock.id, ice_servers=ice_servers_for(self.settings, claims.sub)))
        if prejoin.offer is not None:
            self.send(prejoin.offer)

    async def _negotiate_at_door(self, door: Door, message: AnswerMessage | CandidateMessage) -> None:
        """A knocker answers its prejoin's offer and trickles candidates; it can do nothing else. Between the
        admit and its join, the worker may have let it in already: then what its answer publishes is recorded."""
        prejoin, room = door.prejoin, door.claims.room
        command = _worker_command(message, room, prejoin.participant.sid)
        reply = (await self.rooms.link.call(prejoin.worker_id, command)).raise_for_error()
        await self.rooms.apply_tracks(room, reply)
        if reply.offer is not None:
            self.send(reply.offer)

    async def on_knock_answered(self, push: KnockPush) -> None:
        if self._knock is None or push.knock.id != self._knock.knock.id:
            return
        door, self._knock = self._knock, None
        await self.hub.leave_door(door.claims.room, door.knock.id)
        if push.ended == "admitted":
            self._admitting = door
            self._tasks.spawn(self._enter_admitted(door))
        else:
            await self.rooms.drop_prejoin(door.claims.room, door.prejoin)
            await self.on_kick(Kick(sid=door.knock.id, reason="the host did not let you in", code="denied"))

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
                self._admitting = None
            if self.admission is None:  # it could not join: its connection on the worker goes
                await self.rooms.drop_prejoin(door.claims.room, door.prejoin)

    async def _enter(self, claims: JoinClaims, message: JoinMessage, prejoin: Prejoin | None = None) -> None:
        admission = await self.rooms.admit(
            claims, publish=message.publish, name=message.name, node_id=self.settings.node_id, prejoined=prejoin
        )
        self.admission = admission
        room, participant = admission.room, admission.participant
        await self.hub.attach(room.name, participant.sid, self)
        participants, tracks, seq = await self.rooms.snapshot(room.name)
        log_seq = await self.rooms.state.records.roomlog.last_seq(room.name)
        live = await self.live.state_for(room.name) if room.kind == RoomKind.LIVE else None
        knocks = await self.rooms.knocks(room.name) if participant.grants.room_admin else []
        self.send(
            JoinedMessage(
                room=room,
                participant=ParticipantView.of(participant),
                grants=participant.grants,
                participants=[ParticipantView.of(p) for p in participants],
                tracks=tracks,
                ice_servers=ice_servers_for(self.settings, participant.identity),
                seq=seq,
                log_seq=log_seq,
                live=live,
                knocks=knocks,
            )
        )
        self._snapshot_seq, self._log_seq = seq, log_seq
        for event in self._early_events:
            await self.on_event(event)
        self._early_events.clear()
        for entry in self._early_log:
            await self.on_log(entry)
        self._early_log.clear()
        if admission.reply.offer is not None:
            self.send(admission.reply.offer)
        METRICS.joins.inc()
        if prejoin is None:  # no knock: an inspection's buyer admitted before keeps being recorded
            await self.inspections.rejoined(admission)

    async def _shop_allows_origin(self, shop_id: str | None) -> bool:
        shop = await self.rooms.state.records.shops.get_shop(shop_id) if shop_id else None
        return shop is not None and self.foreign_origin in shop.allowed_origins

    def _refuse_origin(self, notice: bool) -> None:
        """Close with 1008: a foreign page may send a shop's join, and nothing else, first.

        With ``notice``, what is queued (the typed error) is still sent, then a ``leave``.
        """
        self._closing = LeaveNotice(reason="origin not allowed") if notice else None
        self._close_code = CLOSE_POLICY
        if notice:
            self._stopping = True
            self._outbox.put_nowait(None)
        else:
            self._drain_and_stop()

    async def _history(self, room: str, request: HistoryRequest) -> None:
        log = self.rooms.state.records.roomlog
        last = await log.last_seq(room)
        after = request.after if request.after is not None else max(0, last - request.limit)
        self.send(HistoryMessage(entries=await log.after(room, after, request.limit), last_seq=last))

    async def _leave(self) -> None:
        if self._knock is not None:  # left before an answer: the admins' consoles drop the knock
            door, self._knock = self._knock, None
            await self.hub.leave_door(door.claims.room, door.knock.id)
            await self.rooms.cancel_knock(door.claims.room, door.knock.id)
            await self.rooms.drop_prejoin(door.claims.room, door.prejoin)
        admission, self.admission = self.admission, None
        if admission is None:
            return
        await self.hub.detach(admission.room.name, admission.participant.sid)
        try:
            await self.rooms.leave(admission)
        except Exception:
            logger.exception("cleanup after a session failed")


def _worker_command(message: object, room: str, sid: str) -> WorkerCommand:
    """The worker command a joined client's message becomes; the sender is always the socket's own."""
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


def origin_allowed(ws: WebSocket, allowed: list[str]) -> bool:
    """CORS middleware does not cover WebSockets, so check Origin by hand.

    No Origin header (a native client) is allowed. With no allow-list, only
    same-origin browsers are; ``*`` in the list allows any origin.
    """
    origin = ws.headers.get("origin")
    if origin is None:
        return True
    if allowed:
        return "*" in allowed or origin in allowed
    host = ws.headers.get("host", "")
    return origin.split("://", 1)[-1] == host
