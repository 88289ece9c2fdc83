"""A consult call's answers to the spine's questions (``signaling.policy``): a call is a plain room (anyone its
shop and grants allow, a call's length of chat, no messages of its own)."""

from __future__ import annotations

from signaling.policy import PlainPolicy
from vitrine.core.models import Role, RoomKind


class ConsultPolicy(PlainPolicy):
    kind = RoomKind.CONSULT
    roles = frozenset({Role.CUSTOMER, Role.AGENT})
    where = "a call"
