"""The WebSocket signaling protocol at ``/v1/rtc``: every message, defined once.

Clients send a ``join`` carrying their token first. Afterwards either side may
send ``offer``/``answer``/``candidate``; the server sends ``event`` messages
with a per-room sequence number. Unknown types, missing or extra fields and
duplicate JSON keys are rejected with a typed ``error``.
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError, model_validator

from vitrine.core.config import IceServer
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Grants, ParticipantView, Room, Strict, Track, TrackKind, TrackSource
from vitrine.core.wire.inspect_actions import InspectBody, InspectMessage
from vitrine.core.wire.live import (
    ClickMessage,
    DealChange,
    DealMessage,
    LiveState,
    LiveStats,
    LogKind,
    ModerateMessage,
    Moderation,
    ProductChange,
    ProductMessage,
    Reaction,
    ReactMessage,
    ShowState,
    check_entry_body,
)

PROTOCOL_VERSION = 1

Sdp = Annotated[str, Field(min_length=1, max_length=256 * 1024)]


class IceCandidate(Strict):
    """A trickled candidate in the browser's ``RTCIceCandidateInit`` shape."""

    candidate: str = Field(max_length=1024)
    sdpMid: str | None = Field(default=None, max_length=64)
    sdpMLineIndex: int | None = Field(default=None, ge=0, le=1024)
    usernameFragment: str | None = Field(default=None, max_length=256)


class TrackRequest(Strict):
    kind: TrackKind
    source: TrackSource = TrackSource.UNKNOWN


class MidInfo(Strict):
    """What one m-line of a server offer carries."""

    track_sid: str | None = None
    participant_sid: str | None = None
    kind: TrackKind
    direction: Literal["send", "recv"]  # seen from the client


# Client -> server -----------------------------------------------------------


class JoinMessage(Strict):
    type: Literal["join"]
    v: int = PROTOCOL_VERSION
    token: str = Field(max_length=8192)
    publish: list[TrackRequest] = Field(default_factory=list, max_length=8)
    name: str | None = Field(default=None, max_length=128)


class OfferMessage(Strict):
    type: Literal["offer"]
    sdp: Sdp


class AnswerMessage(Strict):
    type: Literal["answer"]
    sdp: Sdp


class CandidateMessage(Strict):
    type: Literal["candidate"]
    candidate: IceCandidate | None  # None: end of candidates


class PublishMessage(Strict):
    type: Literal["publish"]
    tracks: list[TrackRequest] = Field(min_length=1, max_length=8)


class UnpublishMessage(Strict):
    type: Literal["unpublish"]
    track_sid: str = Field(max_length=64)


class LeaveMessage(Strict):
    type: Literal["leave"]


class PingMessage(Strict):
    type: Literal["ping"]
    ts: int | None = None


class AdmitMessage(Strict):
    """A room admin admits (``admit: true``) or denies a knock."""

    type: Literal["admit"]
    knock: str = Field(max_length=64)
    admit: bool = True


MAX_ROOM_CHAT_CHARS = 500


class ChatSendMessage(Strict):
    """Say something in the room's chat (needs the ``can_chat`` grant); everyone gets it as ``chat``."""

    type: Literal["chat"]
    text: str = Field(min_length=1, max_length=MAX_ROOM_CHAT_CHARS)


class HistoryRequest(Strict):
    """The room's log after ``after`` (a reconnect resumes from the last seq it saw), or the
    newest ``limit`` entries when ``after`` is absent (a late joiner)."""

    type: Literal["history"]
    after: int | None = Field(default=None, ge=0)
    limit: int = Field(default=50, ge=1, le=200)


class ResyncRequest(Strict):
    """The client saw a gap in the room events' ``seq`` (an event lost on the way), or ``seq`` going back (the
    numbering restarted): it asks for the room as it is now, ``resync``, instead of guessing what it missed."""

    type: Literal["resync"]


ClientMessage = Annotated[
    JoinMessage
    | OfferMessage
    | AnswerMessage
    | CandidateMessage
    | PublishMessage
    | UnpublishMessage
    | LeaveMessage
    | PingMessage
    | ChatSendMessage
    | HistoryRequest
    | ResyncRequest
    | ReactMessage
    | ModerateMessage
    | ProductMessage
    | DealMessage
    | ClickMessage
    | AdmitMessage
    | InspectMessage,
    Field(discriminator="type"),
]


# Server -> client -----------------------------------------------------------


class JoinedMessage(Strict):
    type: Literal["joined"] = "joined"
    v: int = PROTOCOL_VERSION
    room: Room
    participant: ParticipantView
    grants: Grants
    participants: list[ParticipantView]
    tracks: list[Track]
    ice_servers: list[IceServer]
    seq: int
    log_seq: int = 0  # the room log's newest seq at join: ask ``history`` for what came before
    live: LiveState | None = None  # a live show's pins, deal, slow mode and counts as of the join
    knocks: list[Knock] = Field(default_factory=list)  # to room admins: who waits to be admitted


class Knock(Strict):
    """Someone holding a ``needs_admit`` token, waiting at the room's door: not in the room, not on a worker."""

    id: str
    participant: ParticipantView
    at_ms: int


class KnockPush(Strict):
    """To room admins: someone knocks (``ended``: absent), or a knock was settled (admitted or not, or the
    knocker left), so every admin's console clears it."""

    type: Literal["knock"] = "knock"
    knock: Knock
    ended: Literal["admitted", "denied", "left"] | None = None


class WaitingMessage(Strict):
    """To the knocker: the room's admins were told; ``joined`` follows an admit, ``leave`` a denial.

    An ``offer`` follows too: the knocker's connection is set up while it waits (``ice_servers`` are for it),
    but nothing of it reaches the room, and it receives nothing, until it is admitted."""

    type: Literal["waiting"] = "waiting"
    knock: str
    ice_servers: list[IceServer] = Field(default_factory=list)


class QueuedMessage(Strict):
    """To a joiner whose media worker is busy with other joins' handshakes (``media/admission.py``): the join
    waits its turn, first come first served, and ``joined`` follows. ``position`` is its place in the worker's
    line (1: next); it comes as the join enters the line and again every few seconds while it waits. The
    client's join timeout should count from ``joined``, when the worker starts the handshake, or from the last
    ``queued``."""

    type: Literal["queued"] = "queued"
    position: int = Field(ge=1)


class LogEntry(Strict):
    """One entry of a room's ordered log, numbered per room from 1 (``vitrine.core.records.roomlog``).

    ``kind`` says which one body is set: ``text`` (chat), ``reactions`` (a burst of reactions,
    counted per kind), ``moderation``, ``product`` (pin, unpin, sold out), ``deal`` or ``show``
    (the show went live or ended), ``inspect`` (an inspection's action, ``vitrine.core.wire.inspect_actions``).
    ``participant`` is who did it.
    """

    seq: int
    kind: LogKind = "chat"
    participant: ParticipantView | None = None
    at_ms: int
    text: str | None = None
    reactions: dict[Reaction, int] | None = None
    moderation: Moderation | None = None
    product: ProductChange | None = None
    deal: DealChange | None = None
    show: ShowState | None = None
    inspect: InspectBody | None = None

    @model_validator(mode="after")
    def _one_body(self) -> LogEntry:
        check_entry_body(self.kind, self.__dict__)
        return self


class LogPush(Strict):
    """A new log entry, to everyone in the room, in seq order."""

    type: Literal["log"] = "log"
    entry: LogEntry


class HistoryMessage(Strict):
    type: Literal["history"] = "history"
    entries: list[LogEntry]  # oldest first
    last_seq: int  # the newest seq in the room when this was read


class ServerOfferMessage(Strict):
    type: Literal["offer"] = "offer"
    sdp: str
    mids: dict[str, MidInfo] = Field(default_factory=dict)


class ServerAnswerMessage(Strict):
    type: Literal["answer"] = "answer"
    sdp: str
    mids: dict[str, MidInfo] = Field(default_factory=dict)


class ServerCandidateMessage(Strict):
    type: Literal["candidate"] = "candidate"
    candidate: IceCandidate | None


RoomEventKind = Literal["participant_joined", "participant_left", "track_published", "track_unpublished", "room_closed"]


class RoomEvent(Strict):
    """A change of room state, numbered per room so clients can spot gaps."""

    type: Literal["event"] = "event"
    seq: int
    event: RoomEventKind
    participant: ParticipantView | None = None
    track: Track | None = None


class ResyncMessage(Strict):
    """The answer to ``resync``: the room's state as ``joined`` reports it, read now. The client replaces what it
    knows with it (announcing the joins, leaves and track changes the gap hid), then applies the events after
    ``seq``; any event at or before ``seq`` is already in it. ``log_seq`` is the log's newest seq: ``history``
    fills a gap in the log, which ``live`` (a show's state now) has caught up with."""

    type: Literal["resync"] = "resync"
    participants: list[ParticipantView]
    tracks: list[Track]
    seq: int
    log_seq: int = 0
    live: LiveState | None = None
    knocks: list[Knock] = Field(default_factory=list)  # to room admins: who waits to be admitted


class PongMessage(Strict):
    type: Literal["pong"] = "pong"
    ts: int | None = None


class ErrorMessage(Strict):
    type: Literal["error"] = "error"
    code: ErrorCode
    message: str
    ref: str | None = None  # the type of the message that caused it


LeaveCode = Literal["banned", "show_ended", "replaced", "denied"]  # replaced: the same identity joined elsewhere


class LeaveNotice(Strict):
    """The server ends the session; ``reconnect`` tells the client to join again."""

    type: Literal["leave"] = "leave"
    reason: str  # for people
    reconnect: bool = False
    code: LeaveCode | None = None  # for programs: why, when it is one a client acts on


ServerMessage = (
    JoinedMessage
    | ServerOfferMessage
    | ServerAnswerMessage
    | ServerCandidateMessage
    | RoomEvent
    | ResyncMessage
    | PongMessage
    | ErrorMessage
    | LeaveNotice
    | LogPush
    | HistoryMessage
    | LiveStats
    | KnockPush
    | WaitingMessage
    | QueuedMessage
)

_client_adapter: TypeAdapter[Any] = TypeAdapter(ClientMessage)


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise VitrineError(ErrorCode.INVALID_JSON, f"duplicate key {key!r}")
        result[key] = value
    return result


# JSON may escape half of a surrogate pair on its own ("\ud800"): Python decodes it to a str that no
# UTF-8 encoder accepts, so echoing it (an error's ``ref``, a chat line, a record) raises far from here.
_ESCAPED_SURROGATE = re.compile(r"\\u[dD][89a-fA-F]")
_ESCAPED_SURROGATE_BYTES = re.compile(rb"\\u[dD][89a-fA-F]")


def decode_json_object(raw: str | bytes) -> dict[str, Any]:
    """Parse a JSON object strictly: no duplicate keys, no top-level arrays, no lone surrogates."""
    try:
        data = json.loads(raw, object_pairs_hook=_reject_duplicate_keys)
    except VitrineError:
        raise
    except (ValueError, RecursionError):
        raise VitrineError(ErrorCode.INVALID_JSON, "message is not valid JSON") from None
    if not isinstance(data, dict):
        raise VitrineError(ErrorCode.INVALID_MESSAGE, "message must be a JSON object")
    escaped = _ESCAPED_SURROGATE_BYTES.search(raw) if isinstance(raw, bytes) else _ESCAPED_SURROGATE.search(raw)
    if escaped:  # only then is the (rare) full check worth it; escaped pairs are fine
        try:
            json.dumps(data, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise VitrineError(ErrorCode.INVALID_JSON, "message has an unpaired surrogate escape") from None
    return data


def first_problem(exc: ValidationError) -> tuple[str, str]:
    """The first problem of a failed validation: its pydantic type, and "field.path: what is wrong"."""
    first = exc.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ())) or "message"
    return str(first.get("type", "")), f"{where}: {first.get('msg', 'invalid')}"


def parse_client_message(raw: str | bytes) -> Any:
    """Decode one client frame into its message model or raise a typed error."""
    data = decode_json_object(raw)
    try:
        return _client_adapter.validate_python(data)
    except ValidationError as exc:
        raise VitrineError(ErrorCode.INVALID_MESSAGE, first_problem(exc)[1]) from None


def encode(message: Strict) -> str:
    return message.model_dump_json(exclude_none=True)
