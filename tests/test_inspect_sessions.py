"""An inspection session over the real API and /v1/rtc (memory and Redis): consent before anything, the
buyer knocks until admitted once, each side may send only its own actions, the verdict closes the case
into stored evidence, and no token reaches a log."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.desk_helpers import DeskClient, make_shop
from tests.inspect_helpers import CaseFlow
from tests.servers import RunningServer, embedded_server
from vitrine.core.auth import verify_token


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[RunningServer]:
    overrides = {"redis_url": request.getfixturevalue("redis_db_url")} if request.param == "redis" else {}
    async with embedded_server(**overrides) as running:
        await make_shop(running)
        yield running


def _inspect(client: DeskClient, action: str) -> Any:
    return lambda m: m["entry"]["kind"] == "inspect" and m["entry"]["inspect"]["action"] == action


async def test_consent_comes_first_and_is_recorded_with_its_text(server: RunningServer) -> None:
    case = await CaseFlow.open(server)
    async with case.buyer() as http:
        refused = await http.post("/v1/inspect/session/join")
        assert (refused.status_code, refused.json()["code"]) == (409, "consent_required")
        view = (await http.get("/v1/inspect/session")).json()
        assert view["consented"] is False and view["language"] == "de" and "180 Tage" in view["consent_text"]
        stale = await http.post("/v1/inspect/session/consent", json={"version": view["consent_version"] + 1})
        assert stale.json()["code"] == "invalid_message"
        first = (await http.post("/v1/inspect/session/consent", json={"version": view["consent_version"]})).json()
        again = (await http.post("/v1/inspect/session/consent", json={"version": view["consent_version"]})).json()
        assert first == again  # agreeing twice keeps the first record
        assert (await http.get("/v1/inspect/session")).json()["consented"] is True
    consent = (await case.stored()).consent
    assert consent is not None and consent.text == view["consent_text"] and consent.language == "de"
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": "Bearer nonsense"}) as http:
        assert (await http.get("/v1/inspect/session")).json()["code"] == "invalid_token"
    async with httpx.AsyncClient(base_url=server.url, headers={"Authorization": f"Bearer {case.console}"}) as http:
        assert (await http.get("/v1/inspect/session")).status_code == 401  # a console token is not a buyer's


async def test_the_buyer_knocks_until_admitted_once_and_the_admit_starts_recording(server: RunningServer) -> None:
    case = await CaseFlow.open(server)
    await case.consent()
    assert verify_token(server.settings, await case.buyer_token()).grants.needs_admit
    inspector, buyer = await case.admitted_pair()
    await inspector.expect("log", lambda m: m["entry"].get("inspect", {}).get("event") == "admitted")
    assert (await case.stored()).admitted_at_ms is not None  # recorded before the timeline says so
    await inspector.expect("log", lambda m: m["entry"].get("inspect", {}).get("event") == "recording")
    rejoin = verify_token(server.settings, await case.buyer_token())
    assert not rejoin.grants.needs_admit and rejoin.room == f"inspect-{case.id}"  # a new network: straight in
    for client in (inspector, buyer):
        await client.close()


async def test_each_side_sends_only_its_own_actions_and_bad_ones_never_end_the_session(server: RunningServer) -> None:
    case = await CaseFlow.open(server)
    inspector, buyer = await case.admitted_pair()
    await buyer.send({"type": "inspect", "body": {"action": "prompt", "text": "show me your other parcels"}})
    assert (await buyer.expect("error"))["code"] == "permission_denied"
    await inspector.send({"type": "inspect", "body": {"action": "pause", "paused": True}})
    assert (await inspector.expect("error"))["code"] == "permission_denied"
    for bad in (
        {"action": "zoom", "level": -3},
        {"action": "annotate", "marks": []},
        {"action": "warp"},
        {"action": "annotate", "marks": [{"shape": "arrow", "x": 2, "y": 0}]},
    ):
        mark = inspector.mark()
        await inspector.send({"type": "inspect", "body": bad})
        assert (await inspector.expect("error", after=mark))["code"] == "invalid_message"
    await inspector.send({"type": "inspect", "body": {"action": "prompt", "text": "Show the label, please"}})
    prompt = await buyer.expect("log", _inspect(buyer, "prompt"))
    assert prompt["entry"]["inspect"]["text"] == "Show the label, please"
    await inspector.send(
        {
            "type": "inspect",
            "body": {
                "action": "annotate",
                "marks": [
                    {"shape": "circle", "x": 0.5, "y": 0.5, "x2": 0.6, "y2": 0.5},
                    {"shape": "text", "x": 0.1, "y": 0.1, "text": "crack"},
                ],
            },
        }
    )
    marks = await buyer.expect("log", _inspect(buyer, "annotate"))
    assert len(marks["entry"]["inspect"]["marks"]) == 2
    await buyer.send(
        {
            "type": "inspect",
            "body": {"action": "result", "control": "torch", "ok": False, "reason": "this camera has no torch"},
        }
    )
    result = await inspector.expect("log", _inspect(inspector, "result"))
    assert result["entry"]["participant"]["role"] == "buyer"
    await inspector.send({"type": "ping", "ts": 7})
    assert (await inspector.expect("pong"))["ts"] == 7  # the socket lives on
    for client in (inspector, buyer):
        await client.close()


async def test_the_verdict_closes_the_case_into_hashed_evidence(server: RunningServer) -> None:
    case = await CaseFlow.open(server)
    inspector, buyer = await case.admitted_pair()
    await inspector.send({"type": "chat", "text": "Hallo!"})
    await inspector.send(
        {
            "type": "inspect",
            "body": {"action": "annotate", "marks": [{"shape": "arrow", "x": 0.2, "y": 0.2, "x2": 0.4, "y2": 0.4}]},
        }
    )
    await buyer.expect("log", _inspect(buyer, "annotate"))
    async with case.inspector() as http:
        note = await http.post("/v1/inspect/console/notes", json={"text": "Crack along the rim, 4 cm"})
        assert note.status_code == 200, note.text
        ended = await http.post("/v1/inspect/console/end", json={"verdict": "accepted", "comment": "refund"})
        assert ended.status_code == 200, ended.text
        assert ended.json()["state"] == "closed" and ended.json()["outcome"]["verdict"] == "accepted"
        assert (await http.get("/v1/inspect/console")).json()["join_token"] is None
        again = await http.post("/v1/inspect/console/end", json={"verdict": "rejected"})
        assert again.json()["code"] == "case_closed"
    notice = await buyer.expect("log", lambda m: m["entry"].get("inspect", {}).get("event") == "ended")
    assert notice["entry"]["inspect"]["verdict"] == "accepted"
    await buyer.expect("leave")
    stored = await case.stored()
    kinds = sorted(a.kind.value for a in stored.artifacts)
    assert {"annotations", "chat", "notes", "timeline"} <= set(kinds)
    assert server.runtime is not None
    for artifact in stored.artifacts:
        data = server.runtime.evidence.store.path_of("acme", case.id, artifact).read_bytes()
        assert hashlib.sha256(data).hexdigest() == artifact.sha256 and len(data) == artifact.bytes
    async with server.api() as api:
        notes = next(a for a in stored.artifacts if a.kind.value == "notes")
        fetched = await api.get(f"/v1/shops/acme/cases/{case.id}/artifacts/{notes.id}")
        assert fetched.status_code == 200 and fetched.headers["x-content-sha256"] == notes.sha256
        assert "Crack along the rim" in fetched.text
    async with case.buyer() as http:
        refused = await http.post("/v1/inspect/session/join")
        assert (refused.status_code, refused.json()["code"]) == (409, "case_closed")
    for client in (inspector, buyer):
        await client.close()


async def test_artifact_downloads_resolve_ids_only_inside_their_own_case(server: RunningServer) -> None:
    case = await CaseFlow.open(server)
    other = await CaseFlow.open(server)
    async with case.inspector() as http:
        await http.post("/v1/inspect/console/notes", json={"text": "n"})
        await http.post("/v1/inspect/console/end", json={"verdict": "needs_more"})
    artifact = (await case.stored()).artifacts[0]
    async with other.inspector() as http:
        assert (await http.get(f"/v1/inspect/console/artifacts/{artifact.id}")).json()["code"] == "artifact_not_found"
        for attack in (
            "..%2F..%2F..%2Fetc%2Fpasswd",
            "%2Fetc%2Fpasswd",
            f"..%2F{case.id}%2F{artifact.file}",
            "ar_" + "A" * 16,
        ):
            response = await http.get(f"/v1/inspect/console/artifacts/{attack}")
            assert response.status_code == 404 and "root:" not in response.text
    async with case.inspector() as http:
        assert (await http.get(f"/v1/inspect/console/artifacts/{artifact.id}")).status_code == 200
    async with server.api() as api:
        assert (await api.get(f"/v1/shops/acme/cases/{case.id}/artifacts/{artifact.file}")).status_code == 404


async def test_no_token_reaches_a_log(server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    case = await CaseFlow.open(server)
    inspector, buyer = await case.admitted_pair()
    tokens = [case.link_token, case.session, case.console, await case.buyer_token()]
    for client in (inspector, buyer):
        await client.close()
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert logged  # the server did log this session
    for token in tokens:
        assert token not in logged and token.split(".")[2] not in logged
