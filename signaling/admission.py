"""``Admission``: a participant let into a room, and the worker that holds its media.

It has a module of its own, below ``rooms.py`` (which admits) and ``policy.py`` (whose questions about a
participant take one), so that neither has to import the other for it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from vitrine.core.models import Participant, Room
from vitrine.core.wire.rpc import Negotiated


@dataclass
class Admission:
    room: Room
    participant: Participant
    worker_id: str
    reply: Negotiated = field(default_factory=Negotiated)
