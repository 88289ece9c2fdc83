"""A closed case's evidence over the real API (memory and Redis): the signed bundle verifies offline and
refuses evidence changed at rest, a reviewer's short-lived URL opens only its bundle, retention deletes
expired cases everywhere, and erasing one buyer leaves every other buyer's evidence alone."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from signaling.inspect.bundle import verify_bundle
from tests.desk_helpers import make_shop
from tests.inspect_helpers import CaseFlow
from tests.servers import RunningServer, embedded_server
from vitrine.core.wire.inspect import inspect_room

DAY_MS = 24 * 3600 * 1000


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def server(request: pytest.FixtureRequest) -> AsyncIterator[RunningServer]:
    overrides = {"redis_url": request.getfixturevalue("redis_db_url")} if request.param == "redis" else {}
    async with embedded_server(**overrides) as running:
        await make_shop(running)
        yield running


async def _closed(server: RunningServer, **setup: str) -> CaseFlow:
    case = await CaseFlow.open(server, **setup)
    await case.consent()
    async with case.inspector() as http:
        await http.post("/v1/inspect/console/notes", json={"text": "Scratch on the lid"})
        ended = await http.post("/v1/inspect/console/end", json={"verdict": "rejected", "comment": "no damage"})
        assert ended.status_code == 200, ended.text
    return case


async def test_the_bundle_verifies_with_the_published_key(server: RunningServer, tmp_path: Path) -> None:
    case = await _closed(server)
    async with server.api() as api:
        response = await api.get(f"/v1/shops/acme/cases/{case.id}/bundle")
        assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    async with httpx.AsyncClient(base_url=server.url) as http:
        key = (await http.get("/v1/inspect/evidence-key")).json()
    bundle = tmp_path / "bundle.zip"
    bundle.write_bytes(response.content)
    result = verify_bundle(bundle, public_key_pem=key["public_key_pem"])
    assert result.ok, result.problems
    assert result.key_id == key["key_id"]
    async with case.inspector() as http:  # the console downloads the same evidence
        console = await http.get("/v1/inspect/console/bundle")
        assert console.status_code == 200 and console.content[:2] == b"PK"


async def test_evidence_changed_at_rest_is_refused_not_exported(server: RunningServer) -> None:
    case = await _closed(server)
    assert server.runtime is not None
    notes = next(a for a in (await case.stored()).artifacts if a.kind.value == "notes")
    path = server.runtime.evidence.store.path_of("acme", case.id, notes)
    path.write_bytes(path.read_bytes().replace(b"Scratch", b"Smooth!"))
    async with server.api() as api:
        response = await api.get(f"/v1/shops/acme/cases/{case.id}/bundle")
    assert (response.status_code, response.json()["code"]) == (409, "evidence_corrupt")
    assert notes.id in response.json()["message"]


async def test_a_signed_bundle_url_opens_only_its_bundle_until_it_expires(server: RunningServer) -> None:
    case = await _closed(server)
    other = await _closed(server)
    async with server.api() as api:
        url = (await api.post(f"/v1/shops/acme/cases/{case.id}/bundle-url", params={"ttl_s": 60})).json()["url"]
    async with httpx.AsyncClient() as http:  # no credentials: the URL is the permission
        assert (await http.get(url)).content[:2] == b"PK"
        assert (await http.get(url.replace(case.id, other.id))).json()["code"] == "invalid_token"
        assert (await http.get(url[:-4] + "0000")).json()["code"] == "invalid_token"
        expired = url.split("?")[0] + "?exp=1000&sig=" + url.rsplit("sig=", 1)[1]
        assert (await http.get(expired)).json()["code"] == "invalid_token"  # a changed expiry breaks the signature
    assert server.runtime is not None
    from signaling.inspect.links import bundle_signature

    past = 1000
    stale = f"{server.url}/v1/evidence/acme/{case.id}/bundle.zip?exp={past}&sig=" + bundle_signature(
        server.settings, "acme", case.id, past
    )
    async with httpx.AsyncClient() as http:
        gone = await http.get(stale)
        assert (gone.status_code, gone.json()["code"]) == (410, "link_expired")


async def test_retention_deletes_expired_cases_from_storage_and_state(server: RunningServer) -> None:
    old = await _closed(server)
    fresh = await CaseFlow.open(server)
    assert server.runtime is not None
    evidence = server.runtime.evidence
    folder = evidence.store.case_dir("acme", old.id)
    assert any(folder.iterdir())
    assert await server.runtime.state.records.roomlog.last_seq(inspect_room(old.id)) > 0
    assert await evidence.sweep() == 0  # nothing is old enough yet
    stored = await old.stored()
    assert stored.closed_at_ms is not None
    newer = (await fresh.stored()).model_copy(update={"created_at_ms": stored.closed_at_ms + DAY_MS})
    await server.runtime.state.records.cases.save(newer)
    assert await evidence.sweep(now=stored.closed_at_ms + 180 * DAY_MS + 1) == 1  # the old one only
    assert (await fresh.stored()).id == fresh.id
    assert not folder.exists()
    assert await server.runtime.state.records.cases.get("acme", old.id) is None
    assert await server.runtime.state.records.roomlog.last_seq(inspect_room(old.id)) == 0
    async with old.inspector() as http:
        assert (await http.get("/v1/inspect/console")).json()["code"] == "case_not_found"


async def test_a_shorter_retention_only_reaches_cases_past_it(server: RunningServer) -> None:
    assert server.runtime is not None
    async with server.api() as api:
        assert (await api.patch("/v1/shops/acme", json={"evidence_retention_days": 7})).status_code == 200
    case = await _closed(server)
    closed_at = (await case.stored()).closed_at_ms
    assert closed_at is not None
    assert await server.runtime.evidence.sweep(now=closed_at + 7 * DAY_MS) == 0
    assert await server.runtime.evidence.sweep(now=closed_at + 7 * DAY_MS + 1) == 1
    assert await server.runtime.state.records.cases.get("acme", case.id) is None


async def test_erasing_one_buyer_leaves_the_others_intact(server: RunningServer) -> None:
    assert server.runtime is not None
    first = await _closed(server, buyer_ref="cust-1")
    second = await _closed(server, buyer_ref="cust-1")
    kept = await _closed(server, buyer_ref="cust-2")
    kept_files = {a.id for a in (await kept.stored()).artifacts}
    async with server.api() as api:
        erased = (await api.delete("/v1/shops/acme/buyers/cust-1")).json()
        assert erased["cases"] == 2 and erased["artifacts"] >= 8
        assert set(erased) == {"id", "at_ms", "cases", "artifacts"}  # counts only: nothing of the buyer is kept
        assert (await api.get("/v1/shops/acme/erasures")).json()[0]["id"] == erased["id"]
        assert (await api.delete("/v1/shops/acme/buyers/not%20a%20ref%3F")).status_code == 422
        for case in (first, second):
            assert (await api.get(f"/v1/shops/acme/cases/{case.id}")).json()["code"] == "case_not_found"
            assert not server.runtime.evidence.store.case_dir("acme", case.id).exists()
        assert {a.id for a in (await kept.stored()).artifacts} == kept_files
        bundle = await api.get(f"/v1/shops/acme/cases/{kept.id}/bundle")
        assert bundle.status_code == 200


async def test_deleting_a_shop_deletes_its_inspection_evidence(server: RunningServer) -> None:
    assert server.runtime is not None
    case = await _closed(server)
    folder = server.runtime.evidence.store.case_dir("acme", case.id)
    assert folder.exists()
    async with server.api() as api:
        assert (await api.delete("/v1/shops/acme")).status_code == 200
    assert not folder.exists()
    assert await server.runtime.state.records.cases.get("acme", case.id) is None


@pytest.mark.redis
async def test_a_second_node_on_an_empty_redis_deletes_nothing(redis_db_url: str, tmp_path: Path) -> None:
    """The fault that deleted 13 of 13 evidence files: a node joining with an empty coordination store sweeps
    at start. Records are in the database it shares, so every case folder is still proven by its record."""
    folders = {"data_dir": str(tmp_path / "data"), "evidence_dir": str(tmp_path / "evidence")}
    async with embedded_server(**folders) as first:
        await make_shop(first)
        case = await _closed(first)
        assert first.runtime is not None
        files = sorted(p.name for p in first.runtime.evidence.store.case_dir("acme", case.id).iterdir())
        assert files
        async with embedded_server(redis_url=redis_db_url, **folders) as second:
            assert second.runtime is not None
            assert await second.runtime.evidence.sweep() == 0
            assert sorted(p.name for p in second.runtime.evidence.store.case_dir("acme", case.id).iterdir()) == files
            assert not (tmp_path / "evidence" / ".quarantine").exists()
