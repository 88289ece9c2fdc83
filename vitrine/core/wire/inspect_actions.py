"""What an inspection's two sides say to each other over ``/v1/rtc``, defined once.

A client sends ``inspect`` {body}; the server checks who may send which body (the inspector steers the
buyer's camera and marks the video, the buyer reports what its camera can do), then appends it to the
room's ordered log as an ``inspect`` entry. Both pages act on log entries, so a reconnecting page catches
up with ``history`` and the log is the session's timeline in the evidence bundle. ``artifact`` and
``case`` bodies come only from the server: a photo or snapshot was stored, the case moved on.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from vitrine.core.models import Strict
from vitrine.core.wire.inspect import Artifact, Verdict

RequestId = Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
Facing = Literal["user", "environment"]
Unit = Annotated[float, Field(ge=0.0, le=1.0)]  # a coordinate as a fraction of the video's width or height
MAX_MARKS = 50


class Prompt(Strict):
    """Guidance for the buyer: "show the label", "move closer"."""

    action: Literal["prompt"]
    text: str = Field(min_length=1, max_length=300)


class CameraSwitch(Strict):
    action: Literal["camera"]
    facing: Facing


class Torch(Strict):
    action: Literal["torch"]
    on: bool


class Zoom(Strict):
    action: Literal["zoom"]
    level: float = Field(gt=0, le=100)


class PhotoRequest(Strict):
    """Take a full-resolution still with the buyer's camera; it arrives as an ``artifact`` with this ``request``."""

    action: Literal["photo"]
    request: RequestId


class SnapshotRequest(Strict):
    """Decode a frame of the live video on the media worker (the fallback when the phone cannot take photos)."""

    action: Literal["snapshot"]
    request: RequestId


class Mark(Strict):
    """An arrow from (x, y) to (x2, y2), a circle centred on (x, y) through (x2, y2), or text at (x, y)."""

    shape: Literal["arrow", "circle", "text"]
    x: Unit
    y: Unit
    x2: Unit | None = None
    y2: Unit | None = None
    text: str | None = Field(default=None, max_length=120)
    color: str = Field(default="#ff3b30", pattern=r"^#[0-9a-fA-F]{6}$")


class Annotate(Strict):
    """Marks on the frozen frame; ``frame`` names the snapshot or photo frozen, when one was stored for it."""

    action: Literal["annotate"]
    marks: list[Mark] = Field(min_length=1, max_length=MAX_MARKS)
    frame: str | None = Field(default=None, max_length=64)


class ClearMarks(Strict):
    """Unfreeze: both sides drop the marks and go back to the live video."""

    action: Literal["clear"]


class ZoomRange(Strict):
    min: float
    max: float
    step: float = 0.0


class Capabilities(Strict):
    """The buyer's camera as its page finds it: what the inspector's controls can do, and what they can't."""

    action: Literal["capabilities"]
    facing: Facing | None = None
    cameras: int = Field(default=1, ge=0, le=16)
    torch: bool = False
    zoom: ZoomRange | None = None
    photo_width: int | None = Field(default=None, ge=1, le=20_000)  # the largest still takePhoto gives
    photo_height: int | None = Field(default=None, ge=1, le=20_000)
    video_width: int | None = Field(default=None, ge=1, le=20_000)
    video_height: int | None = Field(default=None, ge=1, le=20_000)


class ControlResult(Strict):
    """The buyer's page did (``ok``) or could not do what the inspector asked, and why."""

    action: Literal["result"]
    control: Literal["camera", "torch", "zoom", "photo"]
    ok: bool
    request: RequestId | None = None
    reason: str | None = Field(default=None, max_length=200)


class Pause(Strict):
    """The buyer paused (camera and microphone off) or resumed."""

    action: Literal["pause"]
    paused: bool


class ArtifactNotice(Strict):
    """Server only: a photo or snapshot is stored; the console fetches it by id."""

    action: Literal["artifact"]
    artifact: Artifact


class CaseNotice(Strict):
    """Server only: the case moved on (for the timeline, and so both pages can react)."""

    action: Literal["case"]
    event: Literal["consented", "admitted", "denied", "recording", "ended"]
    verdict: Verdict | None = None


INSPECTOR_ACTIONS = frozenset({"prompt", "camera", "torch", "zoom", "photo", "snapshot", "annotate", "clear"})
BUYER_ACTIONS = frozenset({"capabilities", "result", "pause"})

InspectClientBody = Annotated[
    Prompt
    | CameraSwitch
    | Torch
    | Zoom
    | PhotoRequest
    | SnapshotRequest
    | Annotate
    | ClearMarks
    | Capabilities
    | ControlResult
    | Pause,
    Field(discriminator="action"),
]
InspectBody = Annotated[
    Prompt
    | CameraSwitch
    | Torch
    | Zoom
    | PhotoRequest
    | SnapshotRequest
    | Annotate
    | ClearMarks
    | Capabilities
    | ControlResult
    | Pause
    | ArtifactNotice
    | CaseNotice,
    Field(discriminator="action"),
]


class InspectMessage(Strict):
    """Client -> server: one inspection action, for the room's log."""

    type: Literal["inspect"]
    body: InspectClientBody
