"""Domain records shared by signaling, media workers and state stores."""

from __future__ import annotations

import re
import time
from enum import StrEnum
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$")

RoomName = Annotated[str, StringConstraints(pattern=NAME_PATTERN.pattern)]
Identity = Annotated[str, StringConstraints(pattern=NAME_PATTERN.pattern)]
SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,46}[a-z0-9]$"  # 3-48 chars; no leading/trailing '-'
# A shop (tenant) id: it goes into Redis keys inside a ``{shop:<id>}`` hash tag and into URL paths.
ShopId = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=False)


def one_into_list(data: object, old: str, new: str) -> object:
    """A stored document from before a field became a list (``extra`` is forbidden): its one value under
    ``old``, or null, becomes the list ``new``. For a ``model_validator(mode="before")``."""
    if isinstance(data, dict) and old in data:
        data = dict(data)
        value = data.pop(old)
        data.setdefault(new, [] if value is None else [value])
    return data


class RoomKind(StrEnum):
    CONSULT = "consult"
    INSPECTION = "inspection"
    LIVE = "live"


class Role(StrEnum):
    CUSTOMER = "customer"
    AGENT = "agent"
    HOST = "host"
    VIEWER = "viewer"
    BUYER = "buyer"
    INSPECTOR = "inspector"


class TrackKind(StrEnum):
    AUDIO = "audio"
    VIDEO = "video"


class TrackSource(StrEnum):
    CAMERA = "camera"
    MICROPHONE = "microphone"
    SCREEN = "screen"
    SCREEN_AUDIO = "screen_audio"
    UNKNOWN = "unknown"


class Grants(Strict):
    """What a token allows. Everything defaults to deny."""

    can_publish: bool = False
    can_subscribe: bool = False
    can_chat: bool = False
    room_admin: bool = False
    hidden: bool = False
    room_create: bool = False
    needs_admit: bool = False  # knocks first: a room admin admits (or denies) it before it joins


# What each role may do unless the token says otherwise.
ROLE_DEFAULT_GRANTS: dict[Role, Grants] = {
    Role.CUSTOMER: Grants(can_publish=True, can_subscribe=True, can_chat=True),
    Role.AGENT: Grants(can_publish=True, can_subscribe=True, can_chat=True, room_admin=True),
    Role.HOST: Grants(can_publish=True, can_subscribe=True, can_chat=True, room_admin=True),
    Role.VIEWER: Grants(can_subscribe=True, can_chat=True, hidden=True),  # an audience is not announced
    Role.BUYER: Grants(can_publish=True, can_subscribe=True, can_chat=True),
    Role.INSPECTOR: Grants(can_publish=True, can_subscribe=True, can_chat=True, room_admin=True),
}


def now_ms() -> int:
    return int(time.time() * 1000)


class Room(Strict):
    name: RoomName
    kind: RoomKind = RoomKind.CONSULT
    max_participants: int = Field(default=2, ge=1, le=10_000)
    created_at_ms: int = Field(default_factory=now_ms)
    worker_id: str | None = None
    closed: bool = False
    shop: ShopId | None = None  # the tenant that owns it; only that shop's tokens can join
    recording_id: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")  # record it under this name
    # Created by a join token's first join, owned by no record: removed once empty for empty_room_grace_s.
    ephemeral: bool = False


class Participant(Strict):
    sid: str
    identity: Identity
    role: Role
    grants: Grants
    name: str | None = Field(default=None, max_length=128)
    node_id: str = ""
    joined_at_ms: int = Field(default_factory=now_ms)


class Track(Strict):
    sid: str
    participant_sid: str
    kind: TrackKind
    source: TrackSource = TrackSource.UNKNOWN
    codec: str | None = None


class ParticipantView(Strict):
    """A participant as other clients see it: no grants, no node placement."""

    sid: str
    identity: str
    role: Role
    name: str | None = None

    @classmethod
    def of(cls, participant: Participant) -> ParticipantView:
        return cls(sid=participant.sid, identity=participant.identity, role=participant.role, name=participant.name)
