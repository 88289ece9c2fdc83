"""Who to ring, how long a shopper will wait, and which callback slots to offer. Pure functions."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from statistics import median

from signaling.consult.models import CallOutcome, CallRecord, Ticket
from vitrine.core.shops import Agent, ShopFields, is_open, local_time
from vitrine.core.state.presence import AgentStatus, Presence

DEFAULT_TALK_S = 180.0
RING_WAIT_S = 15  # the estimate while an agent is free: about one ring
ONLINE = frozenset({AgentStatus.AVAILABLE, AgentStatus.BUSY, AgentStatus.WRAP_UP})


def is_free(presence: Presence | None) -> bool:
    return presence is not None and presence.status == AgentStatus.AVAILABLE and presence.ticket is None


def accepting(agents: list[Agent], presence: dict[str, Presence]) -> bool:
    """Someone is at the desk (a console is open, even if away for a moment): a shopper may queue.

    With nobody logged in at all, queueing would only make the shopper wait for ``max_wait_s``
    before being offered a message; they are offered it at once instead.
    """
    return any(a.id in presence and presence[a.id].consoles > 0 for a in agents)


def pick_agent(ticket: Ticket, agents: list[Agent], presence: dict[str, Presence]) -> Agent | None:
    """The longest-idle free agent for ``ticket``, or None to keep it waiting.

    Language first: while any agent who speaks the shopper's language is online (free, busy or in
    wrap-up), only those are rung, so a French shopper waits for a French speaker rather than
    getting the first agent. When nobody online speaks it, any free agent is better than none.
    Agents who declined or let this ticket ring out are skipped.
    """
    language = ticket.context.language
    candidates = [a for a in agents if a.id not in ticket.passed_by and is_free(presence.get(a.id))]
    speakers_online = any(
        language in a.languages
        and presence.get(a.id)
        and presence[a.id].status in ONLINE
        and a.id not in ticket.passed_by
        for a in agents
    )
    if speakers_online:
        candidates = [a for a in candidates if language in a.languages]
    if not candidates:
        return None
    return min(candidates, key=lambda a: (presence[a.id].idle_since_ms, a.id))


def typical_talk_s(calls: list[CallRecord]) -> float:
    """The median talk time of recent answered calls (a few outliers do not swing it)."""
    talks = [c.talk_ms / 1000 for c in calls if c.outcome == CallOutcome.ANSWERED and c.talk_ms]
    return median(talks) if talks else DEFAULT_TALK_S


def estimate_wait_s(position: int, free_agents: int, online_agents: int, talk_s: float) -> int | None:
    """Seconds until the shopper at ``position`` (1 = next) is answered; None when nobody is online.

    Free agents take the first shoppers at once; the rest wait for calls to end, ``online_agents``
    at a time, each lasting about ``talk_s``.
    """
    if online_agents <= 0:
        return None
    if position <= free_agents:
        return RING_WAIT_S
    waves = math.ceil((position - free_agents) / online_agents)
    return int(RING_WAIT_S + waves * talk_s)


def callback_slots(
    shop: ShopFields,
    now: datetime,
    *,
    minutes: int = 30,
    days: int = 7,
    limit: int = 48,
    lead: timedelta = timedelta(minutes=30),
) -> list[datetime]:
    """Slot starts (UTC) inside the shop's opening hours over the next ``days``, on its wall-clock grid.

    A slot is offered only if the shop is open for its whole length and it starts at least ``lead``
    from now. Computed in the shop's zone, so DST days get the right number of slots; the widget
    shows each in the shopper's own zone.
    """
    step = timedelta(minutes=minutes)
    start = local_time(shop, now + lead)
    first = start.replace(minute=start.minute - start.minute % minutes, second=0, microsecond=0)
    if first < start:
        first += step
    slots: list[datetime] = []
    slot, end = first.astimezone(UTC), (now + timedelta(days=days)).astimezone(UTC)
    while slot < end and len(slots) < limit:
        if is_open(shop, slot) and is_open(shop, slot + step - timedelta(seconds=1)):
            slots.append(slot)
        slot += step
    return slots
