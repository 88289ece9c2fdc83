"""The bus messages between signaling nodes and media workers (vitrine/core/wire/rpc.py) are tagged unions:
each JSON form names its one body with ``type``, parses to its own class, and anything else (two bodies, an
unknown or missing tag, the untagged bags of optionals they replaced) is a validation error, never a message
with its fields quietly left empty.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.wire.rpc import (
    AckRequest,
    ArtifactStored,
    Done,
    GoneReason,
    Kick,
    Negotiated,
    PeerGone,
    PeerOffer,
    Recorded,
    Refused,
    RpcResponse,
    Snapped,
    WorkerReply,
    expect,
    node_message_adapter,
    room_bus_adapter,
)
from vitrine.core.wire.rtc import KnockPush, LogPush, RoomEvent

TO = {"room": "consult-1", "sid": "PA_buyer", "node_id": "node-1"}
OFFER = {"type": "offer", "sdp": "v=0\r\n", "mids": {}}
ARTIFACT = {
    "id": "ar_0123456789abcdef",
    "kind": "photo",
    "file": "ar_0123456789abcdef.jpg",
    "content_type": "image/jpeg",
    "bytes": 3,
    "sha256": "0" * 64,
    "captured_at_ms": 1,
    "source": "the buyer's camera",
}
PERSON = {"sid": "PA_ana", "identity": "ana", "role": "customer"}

NODE_MESSAGES: list[tuple[dict[str, Any], type[BaseModel]]] = [
    ({"type": "offer", **TO, "offer": OFFER}, PeerOffer),
    ({"type": "artifact", **TO, "artifact": ARTIFACT}, ArtifactStored),
    ({"type": "artifact", **TO, "artifact": ARTIFACT, "ack": {"id": "a1", "reply_to": "acks"}}, ArtifactStored),
    ({"type": "gone", **TO, "reason": "silent"}, PeerGone),
    ({"type": "response", "id": "r1", "reply": {"type": "negotiated", "offer": OFFER}}, RpcResponse),
    (
        {"type": "response", "id": "r1", "reply": {"type": "refused", "error": "room_not_found", "message": "x"}},
        RpcResponse,
    ),
]

TRACK = {"sid": "TR_1", "participant_sid": "PA_a", "kind": "audio"}
RECORDING = {"path": "show-1.webm", "container": "webm", "started_at_ms": 1, "duration_ms": 2}

reply_adapter: TypeAdapter[WorkerReply] = TypeAdapter(WorkerReply)

REPLIES: list[tuple[dict[str, Any], type[BaseModel]]] = [
    ({"type": "refused", "error": "room_not_found", "message": "not here"}, Refused),
    ({"type": "negotiated", "offer": OFFER, "published": [TRACK]}, Negotiated),
    ({"type": "negotiated", "answer": {**OFFER, "type": "answer"}}, Negotiated),
    ({"type": "negotiated", "unpublished": [TRACK]}, Negotiated),
    ({"type": "negotiated"}, Negotiated),  # a candidate: nothing to send, no track changed
    ({"type": "recorded", "recording": RECORDING}, Recorded),
    ({"type": "recorded", "recording": None}, Recorded),  # a close_room of a room that recorded nothing
    ({"type": "snapped", "artifact": ARTIFACT}, Snapped),
    ({"type": "done"}, Done),
]

ROOM_MESSAGES: list[tuple[dict[str, Any], type[BaseModel]]] = [
    ({"type": "event", "seq": 3, "event": "participant_joined", "participant": PERSON}, RoomEvent),
    ({"type": "log", "entry": {"seq": 1, "kind": "chat", "at_ms": 5, "text": "hello"}}, LogPush),
    ({"type": "knock", "knock": {"id": "kn_1", "participant": PERSON, "at_ms": 5}}, KnockPush),
    ({"type": "kick", "sid": "PA_ana", "reason": "banned from the show", "code": "banned"}, Kick),
]


@pytest.mark.parametrize(("raw", "kind"), NODE_MESSAGES)
def test_a_node_inbox_message_parses_to_its_own_type_and_back(raw: dict[str, Any], kind: type[BaseModel]) -> None:
    message = node_message_adapter.validate_json(json.dumps(raw))
    assert type(message) is kind
    assert node_message_adapter.validate_json(node_message_adapter.dump_json(message)) == message


@pytest.mark.parametrize(("raw", "kind"), ROOM_MESSAGES)
def test_a_room_channel_message_parses_to_its_own_type_and_back(raw: dict[str, Any], kind: type[BaseModel]) -> None:
    message = room_bus_adapter.validate_json(json.dumps(raw))
    assert type(message) is kind
    assert room_bus_adapter.validate_json(room_bus_adapter.dump_json(message)) == message


def test_what_the_worker_builds_goes_out_tagged() -> None:
    gone = PeerGone(**TO, reason=GoneReason.DRAINING)
    assert json.loads(gone.model_dump_json()) == {**TO, "type": "gone", "reason": "draining"}
    stored = ArtifactStored.model_validate({**TO, "artifact": ARTIFACT})
    asked = stored.model_copy(update={"ack": AckRequest(id="a1", reply_to="acks")})
    assert node_message_adapter.validate_json(asked.model_dump_json()) == asked
    kick = Kick(sid="PA_ana", reason="replaced", code="replaced")
    assert json.loads(kick.model_dump_json())["type"] == "kick"


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "offer", **TO, "offer": OFFER, "artifact": ARTIFACT},  # two bodies
        {"type": "gone", **TO, "reason": "silent", "offer": OFFER},
        {"type": "response", "id": "r1", "reply": {"type": "done"}, **TO, "reason": "silent"},
        {"type": "offer", **TO},  # its body missing
        {"type": "gone", **TO, "reason": "bored"},
        {"type": "hello", **TO},  # an unknown tag
        {**TO, "offer": OFFER},  # no tag
        {"push": {**TO, "offer": OFFER}},  # the untagged envelope of before
        {"response": {"id": "r1", "reply": {}}},
        {
            "type": "response",
            "id": "r1",
            "reply": {"error": "internal", "offer": OFFER},
        },  # the untagged reply of before
    ],
)
def test_a_malformed_node_inbox_message_is_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        node_message_adapter.validate_json(json.dumps(raw))


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "kick", "sid": "PA_ana", "reason": "x", "seq": 3, "event": "participant_joined"},  # two bodies
        {"type": "log", "entry": {"seq": 1, "kind": "chat", "at_ms": 5, "text": "hi"}, "knock": {}},
        {"type": "event", "seq": 3},  # its body missing
        {"type": "chat", "text": "hello"},  # an unknown tag
        {"sid": "PA_ana", "reason": "x"},  # no tag
        {"kick": {"sid": "PA_ana", "reason": "x"}},  # the untagged envelope of before
        {"event": {"type": "event", "seq": 3, "event": "room_closed"}, "kick": None, "log": None, "knock": None},
    ],
)
def test_a_malformed_room_channel_message_is_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        room_bus_adapter.validate_json(json.dumps(raw))


@pytest.mark.parametrize(("raw", "kind"), REPLIES)
def test_a_worker_reply_parses_to_its_own_type_and_back(raw: dict[str, Any], kind: type[BaseModel]) -> None:
    reply = reply_adapter.validate_json(json.dumps(raw))
    assert type(reply) is kind
    assert reply_adapter.validate_json(reply_adapter.dump_json(reply)) == reply


def test_what_the_worker_replies_goes_out_tagged() -> None:
    assert json.loads(Done().model_dump_json()) == {"type": "done"}
    refused = Refused(error=ErrorCode.ROOM_NOT_FOUND, message="not here")
    assert json.loads(refused.model_dump_json()) == {
        "type": "refused",
        "error": "room_not_found",
        "message": "not here",
    }


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "refused", "error": "internal", "offer": OFFER},  # a failure with a result
        {"type": "snapped", "artifact": ARTIFACT, "recording": RECORDING},  # two bodies
        {"type": "negotiated", "artifact": ARTIFACT},
        {"type": "done", "unpublished": [TRACK]},
        {"type": "refused", "message": "no code"},  # a refusal without its error code
        {"type": "refused", "error": "bored"},
        {"type": "snapped"},  # its body missing
        {"type": "stopped", "recording": RECORDING},  # an unknown tag
        {"offer": OFFER, "published": []},  # no tag: the bag of optionals of before
        {"error": "internal", "message": "x"},
    ],
)
def test_a_malformed_worker_reply_is_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        reply_adapter.validate_json(json.dumps(raw))


def test_expect_gives_the_variant_raises_a_refusal_and_rejects_another_variant() -> None:
    negotiated = Negotiated(published=[])
    assert expect(negotiated, Negotiated) is negotiated
    with pytest.raises(VitrineError) as refused:
        expect(Refused(error=ErrorCode.RECORDING_NOT_FOUND, message="no such recording"), Recorded)
    assert (refused.value.code, refused.value.message) == (ErrorCode.RECORDING_NOT_FOUND, "no such recording")
    with pytest.raises(TypeError, match="expected a Recorded reply, got Done"):
        expect(Done(), Recorded)
