"""``loadtest.client.RoomMirror``: the Python client's room state, kept in ``seq`` order and whole across lost
events. Pure: fed dicts shaped like the server's messages, no socket (tests/test_resync.py runs it over one)."""

from __future__ import annotations

from typing import Any

from loadtest.client import RoomMirror


def person(name: str) -> dict[str, Any]:
    return {"sid": f"PA_{name}", "identity": name, "role": "customer"}


def track(name: str, owner: str) -> dict[str, Any]:
    return {"sid": f"TR_{name}", "participant_sid": f"PA_{owner}", "kind": "video"}


def event(seq: int, kind: str, **body: Any) -> dict[str, Any]:
    return {"type": "event", "seq": seq, "event": kind, **body}


def mirror() -> RoomMirror:
    return RoomMirror({"seq": 2, "participants": [person("me"), person("ann")], "tracks": [track("ann", "ann")]})


def test_events_in_order_are_applied() -> None:
    room = mirror()
    applied, resync = room.take(event(3, "participant_joined", participant=person("bob")))
    assert [e["seq"] for e in applied] == [3] and not resync
    room.take(event(4, "track_unpublished", track=track("ann", "ann")))
    assert set(room.participants) == {"PA_me", "PA_ann", "PA_bob"} and room.tracks == {} and room.seq == 4


def test_an_event_ahead_waits_for_the_missing_one() -> None:
    room = mirror()
    assert room.take(event(4, "participant_left", participant=person("ann"))) == ([], False)
    assert list(room.held) == [4] and "PA_ann" in room.participants
    applied, resync = room.take(event(3, "participant_joined", participant=person("bob")))
    assert [e["seq"] for e in applied] == [3, 4] and not resync and room.held == {}
    assert set(room.participants) == {"PA_me", "PA_bob"}


def test_a_seq_at_or_before_the_last_asks_for_a_resync() -> None:
    room = mirror()
    assert room.take(event(2, "participant_joined", participant=person("ghost"))) == ([], True)
    assert room.take(event(1, "participant_joined", participant=person("ghost"))) == ([], True)
    assert "PA_ghost" not in room.participants and room.seq == 2


def test_a_resync_announces_what_the_gap_hid_then_the_events_after_it() -> None:
    room = mirror()
    room.take(event(6, "participant_joined", participant=person("dan")))  # 3..5 lost
    room.resyncing = True
    room.take(event(7, "participant_joined", participant=person("eve")))  # held while the answer comes
    room.take(event(5, "participant_joined", participant=person("cat")))  # covered by the snapshot
    snapshot = {
        "seq": 6,
        "participants": [person("me"), person("bob"), person("dan")],
        "tracks": [track("bob", "bob")],
    }
    hidden = room.resynced(snapshot)
    assert [(e["event"], e.get("resync", False), e["seq"]) for e in hidden] == [
        ("track_unpublished", True, 6),
        ("participant_left", True, 6),
        ("participant_joined", True, 6),
        ("participant_joined", True, 6),
        ("track_published", True, 6),
        ("participant_joined", False, 7),
    ]
    assert [e["participant"]["identity"] for e in hidden if e["event"] == "participant_joined"] == [
        "bob",
        "dan",
        "eve",
    ]
    assert set(room.participants) == {"PA_me", "PA_bob", "PA_dan", "PA_eve"}
    assert set(room.tracks) == {"TR_bob"} and room.seq == 7 and room.held == {} and not room.resyncing
