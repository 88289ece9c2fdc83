"""An inspection case: a seller's request to see a buyer's item, reached through a one-time link.

The seller opens a case for an order and the issue the buyer claims. The case's link holds a
signed, expiring, single-use token (``signaling.inspect.links``): it goes in the URL fragment, so it
never reaches a server log, and using it once spends it. A new link replaces the old one.
"""

from __future__ import annotations

import secrets
from enum import StrEnum

from pydantic import Field, model_validator

from vitrine.core.models import Strict, now_ms, one_into_list
from vitrine.core.shops import LanguageTag

DEFAULT_LINK_TTL_S = 3600
MIN_LINK_TTL_S, MAX_LINK_TTL_S = 60, 7 * 24 * 3600


INSPECT_ROOM_PREFIX = "inspect-"


def inspect_room(case_id: str) -> str:
    """A case's room: one per case, so its log (the session's timeline) belongs to the case."""
    return INSPECT_ROOM_PREFIX + case_id


def case_of_room(name: str) -> str | None:
    """The case id of an inspection room's name, or None for any other room."""
    return name.removeprefix(INSPECT_ROOM_PREFIX) if name.startswith(INSPECT_ROOM_PREFIX) else None


def new_case_id() -> str:
    return "cs_" + secrets.token_urlsafe(9).replace("-", "x").replace("_", "y")


def new_link_nonce() -> str:
    return secrets.token_urlsafe(12)


ARTIFACT_ID_PATTERN = r"^ar_[A-Za-z0-9]{16}$"
ARTIFACT_FILE_PATTERN = r"^ar_[A-Za-z0-9]{16}\.[a-z0-9]{1,5}$"
BUYER_REF_PATTERN = r"^[A-Za-z0-9_.:@-]{1,128}$"
CONSENT_VERSION = 1  # bump when the consent text's meaning changes; the case records which one was shown


def new_artifact_id() -> str:
    return "ar_" + secrets.token_hex(8)


class ArtifactKind(StrEnum):
    RECORDING = "recording"  # the session's media, remuxed by the worker, never transcoded
    PHOTO = "photo"  # a still taken by the buyer's camera at full resolution, sent over the data channel
    SNAPSHOT = "snapshot"  # a frame of the live video, decoded on the worker (the fallback)
    ANNOTATIONS = "annotations"  # the inspector's marks on frozen frames (JSON)
    CHAT = "chat"  # the session's chat and guidance prompts (JSON)
    NOTES = "notes"  # the inspector's case notes (JSON)
    TIMELINE = "timeline"  # every event of the case, in order (JSON)


class Artifact(Strict):
    """One piece of evidence: a file stored under the case with the SHA-256 it had when it was captured."""

    id: str = Field(pattern=ARTIFACT_ID_PATTERN)
    kind: ArtifactKind
    file: str = Field(pattern=ARTIFACT_FILE_PATTERN, description="The file's name in the case's folder")
    content_type: str = Field(max_length=80)
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    captured_at_ms: int
    source: str = Field(max_length=200, description="Who made it, and how")
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    request: str | None = Field(default=None, max_length=64, description="The inspector's photo request it answers")


class Verdict(StrEnum):
    ACCEPTED = "accepted"
    REJECTED = "rejected"
    NEEDS_MORE = "needs_more"


class Consent(Strict):
    """The buyer agreed to be recorded: when, to which text, in which language."""

    at_ms: int
    version: int
    language: str
    text: str = Field(max_length=2000)


class Note(Strict):
    at_ms: int
    author: str = Field(max_length=128)
    text: str = Field(min_length=1, max_length=4000)


class Outcome(Strict):
    verdict: Verdict
    comment: str = Field(default="", max_length=4000)
    at_ms: int
    by: str = Field(max_length=128)


class CaseState(StrEnum):
    OPEN = "open"  # the link is out, not used yet
    IN_PROGRESS = "in_progress"  # the buyer opened the link
    CLOSED = "closed"


class CaseSetup(Strict):
    order_ref: str = Field(min_length=1, max_length=120, description="The shop's order reference")
    claim: str = Field(min_length=1, max_length=2000, description="The issue the buyer claims")
    language: LanguageTag = "en"
    link_ttl_s: int = Field(
        default=DEFAULT_LINK_TTL_S,
        ge=MIN_LINK_TTL_S,
        le=MAX_LINK_TTL_S,
        description="How long the buyer's link stays valid",
    )
    buyer_ref: str | None = Field(
        default=None, pattern=BUYER_REF_PATTERN, description="The shop's own id for the buyer: erasure requests name it"
    )


class CaseView(CaseSetup):
    """A case as the shop's backend sees it."""

    id: str = Field(default_factory=new_case_id, pattern=r"^cs_[A-Za-z0-9]{12}$")
    shop: str
    state: CaseState = CaseState.OPEN
    created_at_ms: int = Field(default_factory=now_ms)
    link_expires_at_ms: int = 0
    link_used_at_ms: int | None = None
    admitted_at_ms: int | None = None  # the inspector first let the buyer in: later joins need no knock
    consent: Consent | None = None
    artifacts: list[Artifact] = Field(default_factory=list)
    notes: list[Note] = Field(default_factory=list)
    outcome: Outcome | None = None
    closed_at_ms: int | None = None


class PendingRecording(Strict):
    """A finished part of the recording not yet moved into its case: kept on the case until it is, so an end
    that failed on a full or read-only disk finds it again when it is retried."""

    path: str  # relative to the recordings directory
    container: str
    started_at_ms: int
    duration_ms: int


class Case(CaseView):
    """The stored case: also the current link's nonce, which only the link itself carries, and the recording's
    parts on their way into the case (one per media worker the session was on), in order."""

    link_nonce: str = Field(default_factory=new_link_nonce)
    pending_recordings: list[PendingRecording] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _one_pending_recording(cls, data: object) -> object:
        """A case stored before recordings had parts holds one ``pending_recording`` (or null)."""
        return one_into_list(data, "pending_recording", "pending_recordings")

    def view(self) -> CaseView:
        return CaseView.model_validate(self.model_dump(exclude={"link_nonce", "pending_recordings"}))


class Erasure(Strict):
    """What an erasure request removed: counts only, so the log of erasures keeps no buyer's data."""

    id: str
    at_ms: int
    cases: int
    artifacts: int
