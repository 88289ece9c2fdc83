"""The consult desk's WebSocket protocol, defined once for the widget, the agent console and tests.

Two sockets, one message family:

- ``/v1/consult/shopper``: the widget. First ``enter`` (or ``resume`` with the ticket token it was
  given); then it is pushed ``position`` while it waits, ``call_ringing`` with a knocking join token
  for ``/v1/rtc`` while an agent is rung, ``call_started`` once an agent accepts, ``chat`` and
  ``product`` cards during the call, and ``call_ended``, after which it may ``rate``. When the shop
  is closed or nobody answers it gets ``closed``/``no_answer`` with callback slots, and may
  ``leave_message`` or ``book_callback``.
- ``/v1/consult/agent``: the console. First ``login`` with an agent token; then ``set_status``,
  ``accept``/``decline`` a ``ring``, in-call ``chat``/``show_product``/``note``/``end_call``,
  ``wrap_up`` afterwards, ``resolve_request`` for messages and callbacks.

Every client message is parsed against the whole family, so a shopper sending an agent's message
gets ``permission_denied`` (not a confusing "unknown type"), and the socket lives on.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Field, TypeAdapter, ValidationError

from signaling.consult.models import (
    MAX_CHAT_CHARS,
    MAX_NOTE_CHARS,
    CallRecord,
    ChatLine,
    ContactRequest,
    DisplayName,
    ShopperContext,
)
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import ShopId, Strict
from vitrine.core.shops import AgentId, ProductCard, Sku
from vitrine.core.state.presence import AgentStatus, TicketId
from vitrine.core.wire.rtc import ErrorMessage, PingMessage, PongMessage, decode_json_object, first_problem

ChatText = Annotated[str, Field(min_length=1, max_length=MAX_CHAT_CHARS)]
NoteText = Annotated[str, Field(max_length=MAX_NOTE_CHARS)]
Contact = Annotated[str, Field(min_length=3, max_length=200)]

# Shopper -> server ------------------------------------------------------------------------


class EnterMessage(Strict):
    type: Literal["enter"]
    shop: ShopId
    context: ShopperContext = Field(default_factory=ShopperContext)
    # "message": the shopper only wants to leave a message or book a callback, so they are not
    # queued (and no agent is rung); the answer is ``message`` with the callback slots.
    intent: Literal["call", "message"] = "call"


class ResumeMessage(Strict):
    """Reconnect to a ticket (a phone changed network): the queue place or call is kept."""

    type: Literal["resume"]
    token: str = Field(max_length=4096)


class CancelMessage(Strict):
    type: Literal["cancel"]  # leave the queue


class AddToCartMessage(Strict):
    type: Literal["add_to_cart"]
    sku: Sku


class RateMessage(Strict):
    type: Literal["rate"]
    stars: int = Field(ge=1, le=5)
    comment: str | None = Field(default=None, max_length=MAX_CHAT_CHARS)


class LeaveMessageMessage(Strict):
    type: Literal["leave_message"]
    name: DisplayName
    contact: Contact
    text: ChatText


class BookCallbackMessage(Strict):
    type: Literal["book_callback"]
    name: DisplayName
    contact: Contact
    slot_utc_ms: int  # one of the offered slots
    text: str | None = Field(default=None, max_length=MAX_CHAT_CHARS)


class PerfMessage(Strict):
    """The widget's measurement for the call just started: from ``call_started`` to the first remote frame."""

    type: Literal["perf"]
    accept_to_first_frame_ms: float = Field(ge=0, le=600_000)


# Agent -> server ---------------------------------------------------------------------------


class LoginMessage(Strict):
    type: Literal["login"]
    token: str = Field(max_length=4096)


class SetStatusMessage(Strict):
    type: Literal["set_status"]
    status: Literal[AgentStatus.AVAILABLE, AgentStatus.AWAY]


class AcceptMessage(Strict):
    type: Literal["accept"]
    ticket: TicketId


class DeclineMessage(Strict):
    type: Literal["decline"]
    ticket: TicketId


class ShowProductMessage(Strict):
    type: Literal["show_product"]
    sku: Sku


class NoteMessage(Strict):
    type: Literal["note"]
    text: NoteText  # replaces the call's notes


class WrapUpMessage(Strict):
    type: Literal["wrap_up"]
    ticket: TicketId
    notes: NoteText = ""


class ResolveRequestMessage(Strict):
    type: Literal["resolve_request"]
    id: Annotated[str, Field(max_length=64)]


# Either side -----------------------------------------------------------------------------


class ChatMessage(Strict):
    type: Literal["chat"]
    text: ChatText


class EndCallMessage(Strict):
    type: Literal["end_call"]


DeskClientMessage = Annotated[
    EnterMessage
    | ResumeMessage
    | CancelMessage
    | AddToCartMessage
    | RateMessage
    | LeaveMessageMessage
    | BookCallbackMessage
    | PerfMessage
    | LoginMessage
    | SetStatusMessage
    | AcceptMessage
    | DeclineMessage
    | ShowProductMessage
    | NoteMessage
    | WrapUpMessage
    | ResolveRequestMessage
    | ChatMessage
    | EndCallMessage
    | PingMessage,
    Field(discriminator="type"),
]

SHOPPER_TYPES = frozenset(
    {
        "enter",
        "resume",
        "cancel",
        "add_to_cart",
        "rate",
        "leave_message",
        "book_callback",
        "perf",
        "chat",
        "end_call",
        "ping",
    }
)
AGENT_TYPES = frozenset(
    {
        "login",
        "set_status",
        "accept",
        "decline",
        "show_product",
        "note",
        "wrap_up",
        "resolve_request",
        "chat",
        "end_call",
        "ping",
    }
)

# Server -> either -----------------------------------------------------------------------------


class CallSetup(Strict):
    """How to join the call's room: open ``/v1/rtc`` and send ``join`` with ``token``."""

    call: TicketId
    room: str
    token: str
    peer_name: str | None = None
    audio_only: bool = False


class ChatPush(Strict):
    type: Literal["chat"] = "chat"
    line: ChatLine


class ProductPush(Strict):
    type: Literal["product"] = "product"
    card: ProductCard


class CallRinging(Strict):
    """To the shopper while an agent's console rings: connect to the call's room now. ``setup.token`` knocks
    (``needs_admit``): the connection is set up, muted to the room and subscribed to nothing, and the agent
    sees nothing of it; the accept admits it. It stays up from one ring to the next."""

    type: Literal["call_ringing"] = "call_ringing"
    setup: CallSetup


class CallStarted(Strict):
    type: Literal["call_started"] = "call_started"
    setup: CallSetup
    context: ShopperContext | None = None  # to the agent: who they are talking to


class CallEnded(Strict):
    type: Literal["call_ended"] = "call_ended"
    call: TicketId
    ended_by: str  # "shopper" | "agent" | "disconnect"
    talk_ms: int


# Server -> shopper


class ShopStatus(Strict):
    """What the button shows: open or closed, and how long a shopper entering now would wait."""

    shop: str
    name: str
    open: bool
    accepting: bool  # open, with at least one agent's console connected: ``enter`` queues
    agents_available: int
    queue_length: int
    wait_s: int | None  # estimate; None when closed or nobody is online
    next_opening_utc_ms: int | None = None
    languages: list[str]


class TicketIssued(Strict):
    type: Literal["ticket"] = "ticket"
    ticket: TicketId
    token: str  # resume credential for this ticket; keep it in memory or sessionStorage only
    position: int
    wait_s: int | None


class PositionPush(Strict):
    type: Literal["position"] = "position"
    position: int  # 1 = next
    wait_s: int | None
    ringing: bool = False


class Unavailable(Strict):
    """Closed, nobody online or answering in time, or asked for: leave a message or book a slot."""

    type: Literal["closed", "no_answer", "message"]
    next_opening_utc_ms: int | None = None
    slots_utc_ms: list[int] = Field(default_factory=list)
    slot_minutes: int = 30


class RequestSaved(Strict):
    type: Literal["request_saved"] = "request_saved"
    request: ContactRequest


class Rated(Strict):
    type: Literal["rated"] = "rated"
    call: TicketId
    stars: int


# Server -> agent


class QueueEntryView(Strict):
    ticket: TicketId
    position: int
    context: ShopperContext
    waited_ms: int
    ringing_agent: str | None = None


class AgentView(Strict):
    id: AgentId
    display_name: str
    languages: list[str]
    status: AgentStatus


class Welcome(Strict):
    type: Literal["welcome"] = "welcome"
    agent: AgentView
    shop: ShopStatus
    catalog: list[ProductCard]


class StatusPush(Strict):
    type: Literal["status"] = "status"
    status: AgentStatus
    reason: str | None = None
    ticket: TicketId | None = None  # the call being rung (busy), held (busy) or awaiting wrap-up (wrap_up)


class QueuePush(Strict):
    type: Literal["queue"] = "queue"
    entries: list[QueueEntryView]  # the first ``signaling.consult.records.QUEUE_VIEW_LIMIT``, in order
    total: int
    agents: list[AgentView]


class Ring(Strict):
    type: Literal["ring"] = "ring"
    ticket: TicketId
    context: ShopperContext
    waited_ms: int
    timeout_ms: int
    # The call's room, to join while it rings (the shopper is admitted only on accept), so that
    # accepting does not wait for the console's camera, ICE and DTLS.
    setup: CallSetup | None = None


class RingEnd(StrEnum):
    """Why a ring stopped without an answer."""

    DECLINED = "declined"
    TIMEOUT = "timeout"  # it rang out; the agent is set away
    AWAY = "away"  # the agent chose away while it rang
    CONSOLE_CLOSED = "console_closed"
    ABANDONED = "abandoned"  # the shopper left the queue
    MISSED = "missed"  # the shopper reached the shop's maximum wait


class RingCancelled(Strict):
    type: Literal["ring_cancelled"] = "ring_cancelled"
    ticket: TicketId
    reason: RingEnd


class RequestsPush(Strict):
    type: Literal["requests"] = "requests"
    requests: list[ContactRequest]


class HistoryPush(Strict):
    type: Literal["history"] = "history"
    calls: list[CallRecord]


ShopperPush = (
    TicketIssued
    | PositionPush
    | Unavailable
    | CallRinging
    | CallStarted
    | ChatPush
    | ProductPush
    | CallEnded
    | RequestSaved
    | Rated
    | ErrorMessage
    | PongMessage
)
AgentPush = (
    Welcome
    | StatusPush
    | QueuePush
    | Ring
    | RingCancelled
    | CallStarted
    | ChatPush
    | ProductPush
    | CallEnded
    | RequestsPush
    | HistoryPush
    | ErrorMessage
    | PongMessage
)

_adapter: TypeAdapter[Any] = TypeAdapter(DeskClientMessage)


def parse_desk_message(raw: str | bytes, allowed: frozenset[str]) -> Any:
    """Decode one frame; a well-formed message of the other side's family is ``permission_denied``."""
    data = decode_json_object(raw)
    kind = data.get("type")
    if isinstance(kind, str) and kind in SHOPPER_TYPES | AGENT_TYPES and kind not in allowed:
        raise VitrineError(ErrorCode.PERMISSION_DENIED, f"{kind!r} is not allowed on this socket", ref=kind)
    try:
        return _adapter.validate_python(data)
    except ValidationError as exc:
        problem, message = first_problem(exc)
        code = ErrorCode.MESSAGE_TOO_LARGE if problem == "string_too_long" else ErrorCode.INVALID_MESSAGE
        raise VitrineError(code, message, ref=kind if isinstance(kind, str) else None) from None
