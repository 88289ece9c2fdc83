"""A show's anonymous WHEP players: bounded per client address, so nobody can flood a show or its numbers.

``POST /v1/live/{shop}/{show}/whep`` needs no credentials, like the viewer page. One client address holds at
most ``whep_max_per_client`` players at once: each plays under the identity of a slot of its own,
``whep-<digest>-<k>``, where the digest is an HMAC of the show and the address (the address itself is never
stored). A new player takes the first free slot, and over the cap it is ``429 rate_limited``. An address
starts at most one new player per ``whep_new_every_s`` (an expiring lock, as slow mode is), so a script
cannot churn sessions to inflate the show's viewer sessions. A player whose peer is gone is freed by its
worker (``peer_silence_s``), and its slot comes back. With the cap off (0) a player gets an identity of its
own, and nothing is looked up.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.state import Coordination
from vitrine.core.wire.live import Show

WHEP_PREFIX = "whep-"


def client_digest(settings: Settings, show: Show, address: str) -> str:
    """Who the address is, for this show only, in a form that cannot be turned back into the address."""
    message = f"vitrine-whep:{show.id}:{address}".encode()
    return hmac.new(settings.secret_bytes, message, hashlib.sha256).hexdigest()[:16]


async def anonymous_identity(settings: Settings, coordination: Coordination, show: Show, address: str) -> str:
    """The identity a new anonymous player from ``address`` plays under, or ``rate_limited``."""
    digest = client_digest(settings, show, address)
    identity = (
        await _free_slot(settings.whep_max_per_client, coordination, show, digest)
        if settings.whep_max_per_client
        else f"{WHEP_PREFIX}{digest}-{secrets.token_hex(6)}"
    )  # no cap: no slots
    if (
        settings.whep_new_every_s
        and await coordination.locks.acquire(f"whep-new:{show.room}:{digest}", int(settings.whep_new_every_s * 1000))
        is None
    ):
        raise VitrineError(
            ErrorCode.RATE_LIMITED, f"one new player per {settings.whep_new_every_s:g} s from one address; try again"
        )
    return identity


async def _free_slot(slots: int, coordination: Coordination, show: Show, digest: str) -> str:
    """The identity of the address's first slot nobody plays under, or ``rate_limited`` when all are taken."""
    for slot in range(slots):
        identity = f"{WHEP_PREFIX}{digest}-{slot}"
        if not await coordination.rooms.has_identity(show.room, identity):
            return identity
    raise VitrineError(
        ErrorCode.RATE_LIMITED,
        f"at most {slots} players of this show from one address; stop one (DELETE its resource) to start another",
    )
