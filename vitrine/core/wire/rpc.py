"""Commands from signaling to a media worker, and what the worker sends back.

The same models travel over a direct call (embedded) and over Redis (scaled).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Annotated, Literal, TypeVar

from pydantic import Field, TypeAdapter

from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Identity, Participant, Room, ShopId, Strict, Track
from vitrine.core.wire.inspect import Artifact
from vitrine.core.wire.rtc import (
    IceCandidate,
    KnockPush,
    LeaveCode,
    LogPush,
    MidInfo,
    RoomEvent,
    Sdp,
    ServerAnswerMessage,
    ServerOfferMessage,
    TrackRequest,
)

CASE_ID_PATTERN = r"^cs_[A-Za-z0-9]{12}$"  # an inspection case's id, as ``Case.id`` (vitrine/core/wire/inspect.py)


class EvidenceFolder(Strict):
    """Where a participant's evidence files go: ``<evidence dir>/<shop>/<case_id>/`` (vitrine/core/artifacts.py).

    Signaling decides who collects evidence (a product's policy: an inspection's buyer) and says so in the
    join; the worker only opens the evidence channel and writes into the folder it was given, so it never
    works out products from a room's kind or name."""

    shop: ShopId
    case_id: str = Field(pattern=CASE_ID_PATTERN)


class JoinCommand(Strict):
    op: Literal["join"] = "join"
    room: Room
    participant: Participant
    publish: list[TrackRequest] = Field(default_factory=list)
    auto_subscribe: bool = True  # False for WHIP/WHEP sessions, which cannot renegotiate
    # False: a knocker waiting to be admitted. Its connection is set up (ICE, DTLS, its publications received),
    # but it subscribes to nothing and nothing of it is forwarded or recorded until ``AdmitCommand``.
    admitted: bool = True
    # Set: the participant gets the ``evidence`` data channel (photos) and its files, and the room's snapshots,
    # go in this folder. None: no evidence channel.
    evidence: EvidenceFolder | None = None


class OfferCommand(Strict):
    op: Literal["offer"] = "offer"
    room: str
    sid: str
    sdp: Sdp
    publisher: Identity | None = None  # WHEP ?participant=: bind only this identity's tracks


class AnswerCommand(Strict):
    op: Literal["answer"] = "answer"
    room: str
    sid: str
    sdp: Sdp


class CandidateCommand(Strict):
    op: Literal["candidate"] = "candidate"
    room: str
    sid: str
    candidate: IceCandidate | None


class PublishCommand(Strict):
    op: Literal["publish"] = "publish"
    room: str
    sid: str
    tracks: list[TrackRequest]


class UnpublishCommand(Strict):
    op: Literal["unpublish"] = "unpublish"
    room: str
    sid: str
    track_sid: str


class AdmitCommand(Strict):
    """Let a participant that joined with ``admitted: false`` into the room: its publications are forwarded
    (and recorded) from now on, and it subscribes to the room's tracks. The reply carries its tracks and its
    next offer."""

    op: Literal["admit"] = "admit"
    room: str
    sid: str


class LeaveCommand(Strict):
    op: Literal["leave"] = "leave"
    room: str
    sid: str


class CloseRoomCommand(Strict):
    op: Literal["close_room"] = "close_room"
    room: str


RECORDING_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"  # a file stem: no dots, no slashes (same as Room.recording_id)


class RecordCommand(Strict):
    """Start or stop recording the room's published media (remuxed, never transcoded; media/recorder.py).

    ``start`` again with the same id is a no-op; with another id it is ``recording_exists``. An id recorded
    before (the room was on another worker) gets its next part, never over an earlier one
    (``vitrine/core/recording_parts.py``). ``stop`` of a recording the room does not have is ``recording_not_found``.
    """

    op: Literal["record"] = "record"
    room: str
    action: Literal["start", "stop"]
    recording_id: str = Field(pattern=RECORDING_ID_PATTERN)  # the file's stem under recordings_dir
    identity: Identity | None = None  # record only this participant's tracks (an inspection: the buyer's)


class RecordingInfo(Strict):
    """A recording as the worker reports it: a snapshot while it runs, the final file once ``finished``."""

    path: str  # relative to the recordings directory; provisional until the first frame is written
    part: int = 0  # the part of the recording this file is: 0 is <id>.<ext>, n is <id>.<n>.<ext>
    container: Literal["webm", "mp4", "mkv"]
    started_at_ms: int  # wall clock of the file's time zero (its first keyframe), for aligning the room's log
    duration_ms: int
    video_frames: int = 0
    audio_frames: int = 0
    bytes: int = 0
    finished: bool = False
    dropped_packets: int = 0  # the recorder's queue was full: forwarding never waits for the disk
    dropped_frames: int = 0  # waiting for a keyframe, out of order, or a kind/codec the file has no stream for
    error: str | None = None  # the muxer failed; what was written before is kept


class RelayCommand(Strict):
    """Pull a live room's tracks from its origin worker onto this one (``media/relay.py``).

    ``open`` offers to receive ``tracks`` (dropping any earlier pull; no tracks: nothing to pull yet),
    and the reply carries the offer; ``answer`` applies the origin's answer and its ``mids`` table.
    """

    op: Literal["relay"] = "relay"
    room: Room  # the relay's copy: it records nothing
    action: Literal["open", "answer"]
    tracks: list[Track] = Field(default_factory=list, max_length=16)
    sdp: Sdp | None = None
    mids: dict[str, MidInfo] = Field(default_factory=dict)


class SnapshotCommand(Strict):
    """Decode one frame of a participant's published video into a JPEG artifact of the room's case: the
    fallback when the buyer's camera cannot take a photo. The worker asks the publisher for a keyframe and
    decodes that frame only; forwarding never decodes. The JPEG goes in the ``EvidenceFolder`` the room's
    evidence participant joined with (``case_not_found`` when none did)."""

    op: Literal["snapshot"] = "snapshot"
    room: str
    identity: Identity  # whose video (the buyer's)


class DrainCommand(Strict):
    """Drain the worker (``media/drain.py``), as its SIGTERM would: the operator's ``POST
    /v1/workers/{id}/drain``. The reply comes at once; the drain runs on."""

    op: Literal["drain"] = "drain"


WorkerCommand = Annotated[
    JoinCommand
    | OfferCommand
    | AnswerCommand
    | CandidateCommand
    | PublishCommand
    | UnpublishCommand
    | LeaveCommand
    | CloseRoomCommand
    | RecordCommand
    | RelayCommand
    | SnapshotCommand
    | AdmitCommand
    | DrainCommand,
    Field(discriminator="op"),
]
command_adapter: TypeAdapter[WorkerCommand] = TypeAdapter(WorkerCommand)


class Refused(Strict):
    """Any command that failed: the typed reason, and nothing else."""

    type: Literal["refused"] = "refused"
    error: ErrorCode
    message: str = ""  # why it failed, for people


class Negotiated(Strict):
    """A participant's command (join, offer, answer, candidate, publish, unpublish, admit, leave) or a relay's
    (open, answer): what the client is to be sent and what the room's tracks became. ``offer``: join, admit,
    publish, relay open, and answer (the next offer); ``answer``: offer; ``published``: answer, offer, admit;
    ``unpublished``: unpublish, leave. Any may be empty: a candidate and a relay's answer fill none.

    One variant for all of them, because their readers take it for several at once: a session sends on
    ``answer`` then ``offer`` whichever of five commands it ran, and ``RoomService.apply_tracks`` applies
    ``published`` and ``unpublished`` whichever command produced them."""

    type: Literal["negotiated"] = "negotiated"
    offer: ServerOfferMessage | None = None
    answer: ServerAnswerMessage | None = None
    published: list[Track] = Field(default_factory=list)
    unpublished: list[Track] = Field(default_factory=list)


class Recorded(Strict):
    """A record command, or a close_room (which finishes the room's recording): the recording as it is now.
    None: there was none to close, or it could not be finalized (what was written is kept). A close_room's
    tracks are not in it: signaling forgets them with the room."""

    type: Literal["recorded"] = "recorded"
    recording: RecordingInfo | None


class Snapped(Strict):
    """A snapshot command: the JPEG, stored under the room's case."""

    type: Literal["snapped"] = "snapped"
    artifact: Artifact


class Done(Strict):
    """A command that gives nothing back but its success (a drain, which runs on after the reply)."""

    type: Literal["done"] = "done"


# What a worker answers to a command: a refusal, or the one result that command gives (each command gives one
# variant, whatever happened). Readers take the one they expect with ``expect``, or ``match`` to look at a
# refusal without raising.
WorkerReply = Annotated[Refused | Negotiated | Recorded | Snapped | Done, Field(discriminator="type")]

Result = TypeVar("Result", Negotiated, Recorded, Snapped, Done)


def expect(reply: WorkerReply, variant: type[Result]) -> Result:
    """The reply's result, as the variant its command gives; a refusal raises its ``VitrineError``, for the
    client or operator to hear. Another variant is a ``TypeError``: the caller asked for the wrong one, a
    programming error no client causes."""
    if isinstance(reply, Refused):
        raise VitrineError(reply.error, reply.message)
    if not isinstance(reply, variant):
        raise TypeError(f"expected a {variant.__name__} reply, got {type(reply).__name__}")
    return reply


class AckRequest(Strict):
    """A push that waits for its answer: the node publishes a ``PushAck`` with ``id`` to ``reply_to``."""

    id: str = Field(min_length=1, max_length=64)
    reply_to: str = Field(min_length=1, max_length=256)


class GoneReason(StrEnum):
    """Why the worker let a participant go on its own (``PeerGone``): its peer connection ended."""

    CLOSED = "closed"  # the peer closed it (DTLS close), and aiortc closed our side
    FAILED = "failed"  # ICE or DTLS failed, or ICE consent expired (RFC 7675)
    SILENT = "silent"  # nothing (STUN, DTLS, RTP or RTCP) arrived from the peer for ``peer_silence_s``
    DRAINING = "draining"  # the worker is draining for an upgrade (``media/drain.py``): rejoin, on another one
    PUBLISHER_LEFT = "publisher_left"  # a WHEP session's tracks went; it cannot renegotiate: POST again


class PushTo(Strict):
    """Where a worker's push goes: one participant of a room, at the signaling node holding its socket."""

    room: str
    sid: str
    node_id: str


class PeerOffer(PushTo):
    """An offer the worker starts itself (a track to subscribe to appeared or went), for the participant's
    session to send on; nobody waits for it."""

    type: Literal["offer"] = "offer"
    offer: ServerOfferMessage


class ArtifactStored(PushTo):
    """An evidence file the participant sent over its data channel, stored by the worker: signaling puts it
    in the case's record, even if the participant's socket has gone meanwhile.

    Over Redis it carries ``ack``: the worker tells the phone ``stored`` only once the node answered that the
    file is in the record (embedded, the call returns after that itself)."""

    type: Literal["artifact"] = "artifact"
    artifact: Artifact
    ack: AckRequest | None = None


class PeerGone(PushTo):
    """The participant's peer connection ended and the worker freed it: signaling announces its leave and
    closes its session, whatever its socket (or a WHIP/WHEP client that never says DELETE) does."""

    type: Literal["gone"] = "gone"
    reason: GoneReason


class JoinQueued(PushTo):
    """The participant's join waits in the worker's line for a handshake slot (``media/admission.py``), at
    ``position``; sent as it enters the line and again at least every ``again_s`` while it waits. The node's
    worker link tells the joiner's session (``queued``), and over Redis keeps waiting for the join's reply while
    these come."""

    type: Literal["queued"] = "queued"
    position: int = Field(ge=1)
    again_s: float = Field(gt=0)


# What a worker sends unasked, each kind with its one body; signaling ``match``es on the type.
WorkerPush = Annotated[PeerOffer | ArtifactStored | PeerGone | JoinQueued, Field(discriminator="type")]
# Who takes a worker's pushes: the worker sends through one, the node's worker link hands them to one.
PushHandler = Callable[[WorkerPush], Awaitable[None]]


class Unconfirmed(VitrineError):
    """A push with ``ack`` got no answer in time: it may or may not have been handled, so nothing it
    refers to may be removed (a stored file stays on disk)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.STORAGE_UNAVAILABLE, message)


class PushAck(Strict):
    """A node's answer to a push with ``ack``: handled (no error), or the typed reason it was refused."""

    id: str
    error: ErrorCode | None = None
    message: str = ""

    def raise_for_error(self) -> PushAck:
        if self.error is not None:
            raise VitrineError(self.error, self.message)
        return self


class RpcRequest(Strict):
    id: str
    reply_to: str
    command: WorkerCommand


class RpcResponse(Strict):
    """A worker's reply to the ``RpcRequest`` with the same ``id``, in the requesting node's inbox."""

    type: Literal["response"] = "response"
    id: str
    reply: WorkerReply


# What arrives in a signaling node's inbox (``keys.node_inbox_channel``): a reply it waits for, or a push.
NodeMessage = Annotated[RpcResponse | WorkerPush, Field(discriminator="type")]
node_message_adapter: TypeAdapter[NodeMessage] = TypeAdapter(NodeMessage)


class Kick(Strict):
    """Close one participant's session wherever it is connected: on a room's channel, the node holding it
    acts on it."""

    type: Literal["kick"] = "kick"
    sid: str
    reason: str
    reconnect: bool = False
    code: LeaveCode | None = None


# What travels on a room's channel (``keys.room_events_channel``), one message each: a room event, a new log
# entry, a knock or its end (for the room's admins and the knocker), each as the sessions send it on, or a kick
# for the node holding one session. They share the ``type`` tag of the client-facing messages.
RoomBusMessage = Annotated[RoomEvent | LogPush | KnockPush | Kick, Field(discriminator="type")]
room_bus_adapter: TypeAdapter[RoomBusMessage] = TypeAdapter(RoomBusMessage)
