"""The case's story for people (signaling/inspect/timeline.py): every action has words, rows come in time
order with the case's own facts, and the exports cut the same log into chat, marks, notes and timeline."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import TypeAdapter

from signaling.inspect.timeline import describe, exports, timeline
from vitrine.core.models import ParticipantView, Role
from vitrine.core.wire.inspect import Case, Note, Outcome, Verdict
from vitrine.core.wire.inspect_actions import InspectBody
from vitrine.core.wire.rtc import LogEntry

ARTIFACT = {
    "id": "ar_" + "a" * 16,
    "kind": "photo",
    "file": "ar_" + "a" * 16 + ".jpg",
    "content_type": "image/jpeg",
    "bytes": 4_200_000,
    "sha256": "0" * 64,
    "captured_at_ms": 5,
    "source": "buyer camera (takePhoto)",
    "width": 4000,
    "height": 3000,
    "request": "p1",
}
BODIES: list[dict[str, Any]] = [
    {"action": "prompt", "text": "Show the label"},
    {"action": "camera", "facing": "environment"},
    {"action": "torch", "on": True},
    {"action": "zoom", "level": 2.5},
    {"action": "photo", "request": "p1"},
    {"action": "snapshot", "request": "s1"},
    {"action": "annotate", "marks": [{"shape": "text", "x": 0.1, "y": 0.2, "text": "crack"}]},
    {"action": "clear"},
    {"action": "capabilities", "facing": "environment", "torch": False, "cameras": 2},
    {"action": "result", "control": "torch", "ok": False, "reason": "this camera has no torch"},
    {"action": "pause", "paused": True},
    {"action": "artifact", "artifact": ARTIFACT},
    {"action": "case", "event": "ended", "verdict": "accepted"},
]
BUYER = ParticipantView(sid="PA_b", identity="buyer-cs_x", role=Role.BUYER)
SELLER = ParticipantView(sid="PA_s", identity="inspector-cs_x", role=Role.INSPECTOR, name="Seller")


@pytest.mark.parametrize("raw", BODIES, ids=[b["action"] for b in BODIES])
def test_every_action_has_words(raw: dict[str, Any]) -> None:
    words = describe(TypeAdapter(InspectBody).validate_python(raw))
    assert words and words != "did something"


def test_the_words_carry_the_facts() -> None:
    body = TypeAdapter(InspectBody).validate_python
    assert "this camera has no torch" in describe(body(BODIES[9]))
    assert "4000x3000" in describe(body(BODIES[11])) and "0" * 64 in describe(body(BODIES[11]))
    assert describe(body(BODIES[12])) == "ended the session: accepted"


def _entry(seq: int, at_ms: int, participant: ParticipantView | None, **body: Any) -> LogEntry:
    return LogEntry(seq=seq, at_ms=at_ms, participant=participant, **body)


def test_rows_are_in_time_order_with_the_case_facts_and_exports_split_the_log() -> None:
    case = Case(
        shop="acme",
        order_ref="A-1",
        claim="broken",
        created_at_ms=1_000,
        link_used_at_ms=2_000,
        notes=[Note(at_ms=4_500, author="Seller", text="rim chipped")],
        outcome=Outcome(verdict=Verdict.ACCEPTED, comment="refund", at_ms=9_000, by="Seller"),
    )
    parse = TypeAdapter(InspectBody).validate_python
    entries = [
        _entry(1, 3_000, SELLER, kind="inspect", inspect=parse(BODIES[0])),
        _entry(2, 4_000, BUYER, kind="chat", text="ok!"),
        _entry(3, 5_000, SELLER, kind="inspect", inspect=parse(BODIES[6])),
        _entry(4, 6_000, SELLER, kind="inspect", inspect=parse(BODIES[7])),
        _entry(5, 7_000, None, kind="inspect", inspect=parse(BODIES[11])),
    ]
    rows = timeline(case, entries)
    assert [row.at_ms for row in rows] == sorted(row.at_ms for row in rows)
    assert rows[0].what == "opened the case for order A-1" and rows[1].who == "Buyer"
    assert ("Seller (seller)", "asked: \u201cShow the label\u201d") in [(r.who, r.what) for r in rows]
    assert ("buyer", "said: \u201cok!\u201d") in [(r.who.lower(), r.what) for r in rows]
    assert rows[-1].what == "verdict: accepted \u2014 refund"
    assert any(r.who == "Vitrine" and "stored photo" in r.what for r in rows)
    documents = exports(case, entries)
    assert [e["seq"] for e in documents["chat"]] == [1, 2]  # the prompt and the chat line
    assert [e["seq"] for e in documents["annotations"]] == [3, 4]  # the marks and their clearing
    assert documents["notes"] == [{"at_ms": 4_500, "author": "Seller", "text": "rim chipped"}]
    assert len(documents["timeline"]["log"]) == 5 and len(documents["timeline"]["rows"]) == len(rows)
