"""Inspection cases and their one-time links over the real API (memory and Redis): a link works once,
expires, dies when replaced, opens only its own case, and never shows up in a log."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import httpx
import pytest

from signaling.inspect.links import mint_link_token
from tests.desk_helpers import make_shop
from tests.servers import RunningServer, embedded_server
from vitrine.core.desk_tokens import mint_desk_token
from vitrine.core.models import now_ms
from vitrine.core.wire.inspect import Case


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def case_server(request: pytest.FixtureRequest) -> AsyncIterator[RunningServer]:
    overrides = {"redis_url": request.getfixturevalue("redis_db_url")} if request.param == "redis" else {}
    async with embedded_server(**overrides) as running:
        await make_shop(running)
        yield running


async def _open(server: RunningServer, **setup: object) -> dict:
    async with server.api() as api:
        response = await api.post(
            "/v1/shops/acme/cases",
            json={"order_ref": "A-1042", "claim": "The lamp arrived with a cracked shade", "language": "fr", **setup},
        )
        assert response.status_code == 201, response.text
        return response.json()


def _token(opened: dict) -> str:
    return opened["link"].split("#t=", 1)[1]


async def _redeem(server: RunningServer, token: str) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.url) as http:
        return await http.post("/v1/inspect/redeem", json={"token": token})


async def _stored(server: RunningServer, case_id: str) -> Case:
    assert server.runtime is not None
    return await server.runtime.state.records.cases.get("acme", case_id)


async def test_a_link_opens_its_case_once(case_server: RunningServer) -> None:
    opened = await _open(case_server)
    case = opened["case"]
    assert case["state"] == "open" and case["link_used_at_ms"] is None and "link_nonce" not in case
    assert opened["link"].startswith(f"{case_server.url}/inspect.html#t=")  # the token only in the fragment
    assert opened["qr_svg"].lstrip().startswith("<?xml") and "<svg" in opened["qr_svg"]
    assert 0 < case["link_expires_at_ms"] - now_ms() <= 3600 * 1000

    first = await _redeem(case_server, _token(opened))
    assert first.status_code == 200, first.text
    session = first.json()
    assert (session["case_id"], session["order_ref"], session["language"], session["shop_name"]) == (
        case["id"],
        "A-1042",
        "fr",
        "Acme",
    )
    again = await _redeem(case_server, _token(opened))
    assert (again.status_code, again.json()["code"]) == (410, "link_used")
    async with case_server.api() as api:
        seen = (await api.get(f"/v1/shops/acme/cases/{case['id']}")).json()
        listed = (await api.get("/v1/shops/acme/cases")).json()
    assert seen["state"] == "in_progress" and seen["link_used_at_ms"] is not None
    assert [c["id"] for c in listed] == [case["id"]]


async def test_expired_replaced_and_foreign_links_are_refused(case_server: RunningServer) -> None:
    opened = await _open(case_server, link_ttl_s=120)
    stored = await _stored(case_server, opened["case"]["id"])
    expired = mint_link_token(case_server.settings, stored.model_copy(update={"link_expires_at_ms": now_ms() - 1000}))
    response = await _redeem(case_server, expired)
    assert (response.status_code, response.json()["code"]) == (410, "link_expired")

    async with case_server.api() as api:
        renewed = (await api.post(f"/v1/shops/acme/cases/{opened['case']['id']}/link")).json()
    old = await _redeem(case_server, _token(opened))
    assert (old.status_code, old.json()["code"]) == (401, "invalid_token")  # replaced by the new link
    other_shop = mint_link_token(case_server.settings, stored.model_copy(update={"shop": "beta"}))
    console = mint_desk_token(case_server.settings, shop="acme", subject=stored.id, role="host", ttl_s=60)
    for forged in (other_shop, console, case_server.token("room", "buyer"), _token(renewed)[:-4] + "AAAA", ""):
        refused = await _redeem(case_server, forged)
        assert (refused.status_code, refused.json()["code"]) in ((401, "invalid_token"), (422, "invalid_message"))
    assert (await _redeem(case_server, _token(renewed))).status_code == 200  # the new link still works once


async def test_two_phones_opening_one_link_get_one_session(case_server: RunningServer) -> None:
    token = _token(await _open(case_server))
    results = await asyncio.gather(*(_redeem(case_server, token) for _ in range(5)))
    assert sorted(r.status_code for r in results) == [200, 410, 410, 410, 410]


async def test_links_never_reach_a_log(case_server: RunningServer, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    opened = await _open(case_server)
    for _ in range(2):
        await _redeem(case_server, _token(opened))
    async with case_server.api() as api:
        missing = await api.get("/v1/shops/acme/cases/cs_doesnotexist")
        assert (missing.status_code, missing.json()["code"]) == (404, "case_not_found")
        assert (await api.post("/v1/shops/nope/cases", json={"order_ref": "x", "claim": "y"})).status_code == 404
    logged = "\n".join(record.getMessage() for record in caplog.records)
    assert _token(opened) not in logged and _token(opened)[-20:] not in logged
