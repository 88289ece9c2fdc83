"""Consult records: queue tickets, agent presence, calls and contact requests.

Tickets, calls and requests are records (``signaling.consult.store``); presence is coordination
(``vitrine.core.state.presence``). All are changed only under the shop's desk lock.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from typing import Annotated

from pydantic import Field, StringConstraints

from vitrine.core.models import Strict, now_ms
from vitrine.core.shops import AgentId, LanguageTag, Sku, TimeZoneName
from vitrine.core.state.presence import TicketId

MAX_CHAT_CHARS = 1000
MAX_NOTE_CHARS = 4000
DisplayName = Annotated[str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True)]


def new_ticket_id() -> str:
    return "tk_" + secrets.token_urlsafe(12)


def new_request_id() -> str:
    return "rq_" + secrets.token_urlsafe(12)


class ShopperContext(Strict):
    """What the widget knows about the shopper; shown to agents, never trusted for routing beyond language."""

    name: DisplayName | None = None
    language: LanguageTag = "en"
    timezone: TimeZoneName = "UTC"
    sku: Annotated[str, StringConstraints(max_length=64)] | None = None
    page_url: str | None = Field(default=None, max_length=2048)
    page_title: str | None = Field(default=None, max_length=200)
    audio_only: bool = False


class TicketState(StrEnum):
    WAITING = "waiting"  # in the queue, nobody ringing
    RINGING = "ringing"  # offered to one agent until ring_deadline_ms
    IN_CALL = "in_call"


class Ticket(Strict):
    """A shopper in the queue or in a call. Queue order is ``entered_ms`` (then id)."""

    id: TicketId
    shop: str
    context: ShopperContext
    entered_ms: int = Field(default_factory=now_ms)
    state: TicketState = TicketState.WAITING
    ringing_agent: AgentId | None = None
    ring_deadline_ms: int | None = None
    passed_by: list[AgentId] = Field(default_factory=list)  # agents who declined or let it ring out
    agent: AgentId | None = None
    room: str | None = None
    answered_ms: int | None = None
    connected: bool = True
    disconnected_ms: int | None = None  # when the shopper's socket went away; swept after a grace period


class ChatLine(Strict):
    sender: str  # "shopper" | "agent"
    name: str | None = None
    text: str
    at_ms: int


class ProductShown(Strict):
    sku: Sku
    title: str
    at_ms: int


class CallOutcome(StrEnum):
    ANSWERED = "answered"
    MISSED = "missed"  # nobody answered within the shop's max wait
    ABANDONED = "abandoned"  # the shopper left the queue (or vanished) before an answer


class CallRecord(Strict):
    """One consult, answered or not: who, when, how long, what was shown and said, and the rating."""

    id: TicketId  # the ticket id: one ticket, at most one call
    shop: str
    context: ShopperContext
    outcome: CallOutcome
    agent: AgentId | None = None
    room: str | None = None
    queued_ms: int
    answered_ms: int | None = None
    ended_ms: int | None = None
    wait_ms: int
    talk_ms: int | None = None
    ended_by: str | None = None
    products_shown: list[ProductShown] = Field(default_factory=list)
    added_to_cart: list[str] = Field(default_factory=list)
    chat: list[ChatLine] = Field(default_factory=list)
    notes: str | None = None  # the agent's private notes, during or after the call
    wrap_up: str | None = None
    rating: int | None = Field(default=None, ge=1, le=5)
    comment: str | None = None


class RequestKind(StrEnum):
    MESSAGE = "message"
    CALLBACK = "callback"


class ContactRequest(Strict):
    """Left by a shopper when the shop is closed or nobody answered; waits in the agents' consoles."""

    id: str
    shop: str
    kind: RequestKind
    context: ShopperContext
    name: DisplayName
    contact: Annotated[str, StringConstraints(min_length=3, max_length=200, strip_whitespace=True)]
    text: str | None = Field(default=None, max_length=MAX_CHAT_CHARS)
    slot_utc_ms: int | None = None  # a callback's booked slot start
    created_ms: int = Field(default_factory=now_ms)
    resolved_by: AgentId | None = None
    resolved_ms: int | None = None
