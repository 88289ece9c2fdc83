"""A case's story in order, for people: what happened, when, and who did it.

Built from the case record (opened, link used, consent, verdict) and the room's log (every action of the
session), it is the timeline of the report and, with the raw log, of the bundle's ``timeline`` artifact.
The chat, annotations and notes exports are cut from the same log, so every artifact tells one story.
"""

from __future__ import annotations

from typing import Any

from vitrine.core.models import Role, Strict
from vitrine.core.wire.inspect import Case
from vitrine.core.wire.inspect_actions import (
    Annotate,
    ArtifactNotice,
    CameraSwitch,
    Capabilities,
    CaseNotice,
    ClearMarks,
    ControlResult,
    Pause,
    PhotoRequest,
    Prompt,
    SnapshotRequest,
    Torch,
    Zoom,
)
from vitrine.core.wire.rtc import LogEntry

SYSTEM = "Vitrine"
CASE_EVENTS = {
    "consented": "the buyer agreed to the recording",
    "admitted": "let the buyer in",
    "denied": "did not let the buyer in",
    "recording": "recording of the buyer's camera started",
    "ended": "ended the session",
}
FACING = {"environment": "rear", "user": "front"}


class TimelineRow(Strict):
    """One event of the case, as the report lists it."""

    at_ms: int
    who: str
    what: str


def _who(entry: LogEntry) -> str:
    if entry.participant is None:
        return SYSTEM
    role = "buyer" if entry.participant.role == Role.BUYER else "seller"
    return f"{entry.participant.name} ({role})" if entry.participant.name else role.capitalize()


def _capabilities(body: Capabilities) -> str:
    zoom = f"zoom {body.zoom.min:g}-{body.zoom.max:g}" if body.zoom else "no zoom"
    photo = f"photos up to {body.photo_width}x{body.photo_height}" if body.photo_width else "no native photos"
    facing = FACING.get(body.facing or "", "unknown")
    return f"camera: {facing}, {body.cameras} camera(s), {'torch' if body.torch else 'no torch'}, {zoom}, {photo}"


def describe(body: object) -> str:
    """One inspection action in words."""
    match body:
        case Prompt(text=text):
            return f"asked: \u201c{text}\u201d"
        case CameraSwitch(facing=facing):
            return f"asked for the {FACING[facing]} camera"
        case Torch(on=on):
            return f"turned the torch {'on' if on else 'off'}"
        case Zoom(level=level):
            return f"set the zoom to {level:g}"
        case PhotoRequest(request=request):
            return f"asked for a full-resolution photo ({request})"
        case SnapshotRequest(request=request):
            return f"took a snapshot of the video ({request})"
        case Annotate(marks=marks, frame=frame):
            return f"marked the frozen frame ({len(marks)} mark(s){', on ' + frame if frame else ''})"
        case ClearMarks():
            return "cleared the marks"
        case Capabilities():
            return _capabilities(body)
        case ControlResult(control=control, ok=ok, reason=reason):
            return f"{control}: done" if ok else f"{control}: not done ({reason or 'no reason given'})"
        case Pause(paused=paused):
            return "paused the camera" if paused else "resumed the camera"
        case ArtifactNotice(artifact=artifact):
            size = f"{artifact.width}x{artifact.height}, " if artifact.width else ""
            kind = artifact.kind.value
            return f"stored {kind} {artifact.id} ({size}{artifact.bytes} bytes, sha256 {artifact.sha256})"
        case CaseNotice(event=event, verdict=verdict):
            return CASE_EVENTS[event] + (f": {verdict.value}" if verdict else "")
    return "did something"


def timeline(case: Case, entries: list[LogEntry]) -> list[TimelineRow]:
    rows = [TimelineRow(at_ms=case.created_at_ms, who="Seller", what=f"opened the case for order {case.order_ref}")]
    if case.link_used_at_ms:
        rows.append(TimelineRow(at_ms=case.link_used_at_ms, who="Buyer", what="opened the inspection link"))
    for entry in entries:
        if entry.kind == "chat" and entry.text is not None:
            rows.append(TimelineRow(at_ms=entry.at_ms, who=_who(entry), what=f"said: \u201c{entry.text}\u201d"))
        elif entry.kind == "inspect" and entry.inspect is not None:
            rows.append(TimelineRow(at_ms=entry.at_ms, who=_who(entry), what=describe(entry.inspect)))
    rows.extend(TimelineRow(at_ms=note.at_ms, who=note.author, what="wrote a case note") for note in case.notes)
    if case.outcome is not None:
        verdict = f"verdict: {case.outcome.verdict.value}" + (
            f" \u2014 {case.outcome.comment}" if case.outcome.comment else ""
        )
        rows.append(TimelineRow(at_ms=case.outcome.at_ms, who=case.outcome.by, what=verdict))
    return sorted(rows, key=lambda row: row.at_ms)


def exports(case: Case, entries: list[LogEntry]) -> dict[str, Any]:
    """The JSON documents a closed case keeps as artifacts: chat (with prompts), annotations, notes, timeline."""

    def dump(entry: LogEntry) -> dict[str, Any]:
        return entry.model_dump(mode="json", exclude_none=True)

    return {
        "chat": [dump(e) for e in entries if e.kind == "chat" or isinstance(e.inspect, Prompt)],
        "annotations": [dump(e) for e in entries if isinstance(e.inspect, Annotate | ClearMarks)],
        "notes": [note.model_dump(mode="json") for note in case.notes],
        "timeline": {
            "rows": [row.model_dump(mode="json") for row in timeline(case, entries)],
            "log": [dump(e) for e in entries],
        },
    }
