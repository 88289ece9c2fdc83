"""Webhooks end to end: signatures, retries, dead letters, per-room order, tenant isolation, restarts.

Every delivery goes over real HTTP to a receiver served by uvicorn on 127.0.0.1; the Redis
outbox runs against the real server of ``redis_db_url``.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

from signaling.metrics import METRICS
from signaling.records import open_records
from signaling.state import State, open_state
from signaling.webhooks import WebhookDispatcher
from tests.desk_helpers import enter_shopper, make_shop
from tests.servers import RunningServer, embedded_server, free_port, make_settings
from tests.webhook_receiver import DEADLINE_S, Receiver, serve_receiver
from vitrine.core.records.outbox import WebhookOutbox
from vitrine.core.shops import Shop
from vitrine.core.webhooks import (
    MAX_FAILURES,
    SignatureFailure,
    WebhookEvent,
    WebhookSignatureError,
    WebhookType,
    sign,
    verify,
    webhook_key,
)

FAST = {"webhook_retry_base_s": 0.05, "webhook_retry_max_s": 0.2, "webhook_sweep_s": 0.2}
ACME = {"id": "acme", "name": "Acme", "allowed_origins": ["https://www.acme.example"]}


async def eventually(check: Callable[[], Awaitable[bool]], what: str, deadline_s: float = DEADLINE_S) -> None:
    deadline = time.monotonic() + deadline_s
    while not await check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {deadline_s}s waiting for: {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve_receiver() as running:
        yield running


async def _create_shop(server: RunningServer, shop_id: str, url: str | None) -> Shop:
    async with server.api() as api:
        created = await api.post("/v1/shops", json=ACME | {"id": shop_id, "webhook_url": url})
        assert created.status_code == 201, created.text
    shop = await server.runtime.state.records.shops.get_shop(shop_id)
    assert shop is not None
    return shop


async def _api_key(server: RunningServer, shop_id: str) -> str:
    async with server.api() as api:
        response = await api.get(f"/v1/shops/{shop_id}/webhook-key")
        assert response.status_code == 200, response.text
        return response.json()["key"]


def _deliveries(result: str) -> float:
    return METRICS.registry.get_sample_value("vitrine_webhook_deliveries_total", {"result": result}) or 0.0


def _failing(reason: SignatureFailure, call: Callable[[], None]) -> None:
    with pytest.raises(WebhookSignatureError) as caught:
        call()
    assert caught.value.reason is reason


# -- signatures (pure) -----------------------------------------------------------------


def test_verify_accepts_genuine_signatures_and_names_each_forgery() -> None:
    settings = make_settings()
    key = webhook_key(settings, "acme", 1)
    others = [
        webhook_key(settings, "beta", 1),
        webhook_key(settings, "acme", 2),
        webhook_key(make_settings(api_secret="another-secret-" + "y" * 40), "acme", 1),
    ]
    assert key.startswith("whsec_") and key == webhook_key(settings, "acme", 1)  # derived, so stable
    assert len({key, *others}) == 4

    body, now = b'{"id":"evt_1","type":"consult.queued"}', 1_750_000_000
    header = sign(key, body, now)
    assert header.startswith(f"t={now},v1=") and len(header.split("v1=")[1]) == 64
    verify(key, body, header, now=now + 299)
    verify(key, body, f"t={now},v1={'0' * 64},v1={header.split('v1=')[1]}", now=now)  # rotation: any v1 matches

    _failing(SignatureFailure.MISMATCH, lambda: verify(key, body.replace(b"queued", b"ended"), header, now=now))
    for other in others:  # a wrong key, another shop's key, another server's key
        _failing(SignatureFailure.MISMATCH, lambda other=other: verify(other, body, header, now=now))
    replayed = header.replace(f"t={now}", f"t={now + 5}")  # the timestamp is signed: it cannot be refreshed
    _failing(SignatureFailure.MISMATCH, lambda: verify(key, body, replayed, now=now))
    _failing(SignatureFailure.OUTSIDE_TOLERANCE, lambda: verify(key, body, header, now=now + 301))
    _failing(SignatureFailure.OUTSIDE_TOLERANCE, lambda: verify(key, body, header, now=now - 301))
    for malformed in (
        "",
        "garbage",
        f"v1={header.split('v1=')[1]}",
        f"t={now}",
        f"t=soon,{header[13:]}",
        f"t={now},t={now},{header.split(',')[1]}",
        f"t=-{now},v1=ab",
    ):
        _failing(SignatureFailure.MALFORMED, lambda malformed=malformed: verify(key, body, malformed, now=now))


# -- the outbox (records on SQLite; tests/test_records.py runs it on PostgreSQL too) ----------------


@pytest.fixture
async def state() -> AsyncIterator[State]:
    settings = make_settings()
    opened = await open_state(settings, await open_records(settings))
    yield opened
    await opened.close()


def _event(shop: str = "acme", room: str = "consult-1", **data: Any) -> WebhookEvent:
    return WebhookEvent(type=WebhookType.QUEUED, shop=shop, room=room, data=data)


async def test_outbox_orders_per_room_and_acks_only_the_head(state: State) -> None:
    outbox: WebhookOutbox = state.records.outbox
    for shop in ("acme", "beta"):
        await state.records.shops.create_shop(Shop.model_validate(ACME | {"id": shop}))
    odd_room = 'room "seq":0, {x}'  # JSON-escaped in the record: cannot be mistaken for the seq field
    first = await outbox.append(_event(big=2**62 + 1, nested={"seq": 0, "f": 0.1}))
    assert first.seq == 1 and first.data == {"big": 2**62 + 1, "nested": {"seq": 0, "f": 0.1}}
    assert [(await outbox.append(_event(room=room))).seq for room in ("consult-1", odd_room, odd_room)] == [2, 1, 2]
    assert (await outbox.append(_event(shop="beta"))).seq == 1  # another shop counts on its own
    assert await outbox.pending_shops() == ["acme", "beta"]

    assert await outbox.peek("acme") == first  # exactly what was stored, large integers intact
    await outbox.ack("acme", "evt_not_the_head")
    assert await outbox.peek("acme") == first
    await outbox.ack("acme", first.id)
    second = await outbox.peek("acme")
    assert (second.room, second.seq) == ("consult-1", 2)
    await outbox.ack("acme", first.id)  # a late duplicate ack removes nothing
    assert await outbox.peek("acme") == second
    for _ in range(3):
        await outbox.ack("acme", (await outbox.peek("acme")).id)
    assert await outbox.peek("acme") is None and await outbox.pending_shops() == ["beta"]
    assert (await outbox.append(_event())).seq == 3  # the room's sequence continues

    for n in range(MAX_FAILURES + 5):
        await outbox.dead_letter("acme", _event(n=n), f"HTTP {n}")
    failures = await outbox.failures("acme", MAX_FAILURES + 50)
    assert len(failures) == MAX_FAILURES + 5 and failures[0].event.data == {"n": MAX_FAILURES + 4}  # newest first
    assert failures[-1].reason == "HTTP 0" and [f.reason for f in await outbox.failures("acme", 2)] == [
        f"HTTP {MAX_FAILURES + 4}",
        f"HTTP {MAX_FAILURES + 3}",
    ]
    assert await outbox.failures("beta", 10) == []


async def test_deleting_a_shop_drops_its_pending_events(state: State) -> None:
    outbox = state.records.outbox
    await state.records.shops.create_shop(Shop.model_validate(ACME))
    await outbox.append(_event())
    await outbox.dead_letter("acme", _event(), "HTTP 500")
    await state.records.shops.delete_shop("acme")
    assert await outbox.peek("acme") is None and await outbox.failures("acme", 10) == []
    assert await outbox.pending_shops() == []


# -- delivery through a running server -----------------------------------------------------


async def test_retries_until_a_2xx_then_delivers_exactly_once(receiver: Receiver) -> None:
    attempts = Counter[str]()

    def fail_twice(event: dict[str, Any]) -> int:
        attempts[event["id"]] += 1
        return 500 if event["room"] == "consult-1" and attempts[event["id"]] <= 2 else 200

    receiver.respond = fail_twice
    async with embedded_server(**FAST) as server:
        assert (
            await server.runtime.webhooks.emit(
                await _create_shop(server, "quiet", None), WebhookType.QUEUED, "consult-0", {}
            )
            is None
        )  # no webhook_url: nothing stored
        assert await server.runtime.state.records.outbox.pending_shops() == []
        shop = await _create_shop(server, "acme", receiver.url)
        key = await _api_key(server, "acme")
        before = {result: _deliveries(result) for result in ("delivered", "retried", "failed")}

        event = await server.runtime.webhooks.emit(shop, WebhookType.ANSWERED, "consult-1", {"agent": "ana"})
        assert event is not None and event.seq == 1 and event.id.startswith("evt_")
        await receiver.wait_for(lambda: len(receiver.delivered()) == 1, "the event to succeed")
        # Anything still in flight for the first event would arrive before a second one (FIFO).
        sentinel = await server.runtime.webhooks.emit(shop, WebhookType.ENDED, "consult-2", {})
        await receiver.wait_for(lambda: len(receiver.delivered()) == 2, "the sentinel")

        hits = receiver.attempts(event.id)
        assert [hit.status for hit in hits] == [500, 500, 200]
        assert [hit.event["id"] for hit in receiver.hits] == [event.id] * 3 + [sentinel.id]
        for hit in hits:
            assert hit.event == json.loads(event.model_dump_json())
            assert hit.headers["content-type"] == "application/json"
            assert hit.headers["vitrine-event"] == "consult.answered"
            assert hit.headers["user-agent"].startswith("Vitrine-Webhooks/")
            verify(key, hit.body, hit.headers["vitrine-signature"])
        await eventually(lambda: _empty(server.runtime.state.records.outbox), "the outbox to empty")  # acked: counted
        assert _deliveries("delivered") - before["delivered"] == 2
        assert _deliveries("retried") - before["retried"] == 2 and _deliveries("failed") == before["failed"]


async def _empty(outbox: WebhookOutbox) -> bool:
    return not await outbox.pending_shops()


async def test_a_dead_letter_is_listed_and_the_next_event_still_goes(receiver: Receiver) -> None:
    receiver.respond = lambda event: 503 if event["data"].get("doomed") else 204
    async with embedded_server(**FAST, webhook_max_attempts=3) as server:
        shop = await _create_shop(server, "acme", receiver.url)
        doomed = await server.runtime.webhooks.emit(shop, WebhookType.RATING, "consult-1", {"doomed": True})
        after = await server.runtime.webhooks.emit(shop, WebhookType.RATING, "consult-1", {"stars": 5})
        await receiver.wait_for(lambda: len(receiver.delivered()) == 1, "the event after the dead letter")

        assert [hit.status for hit in receiver.hits] == [503, 503, 503, 204]
        assert receiver.delivered()[0]["id"] == after.id and receiver.delivered()[0]["seq"] == 2
        async with server.api() as api:
            failures = (await api.get("/v1/shops/acme/webhook-failures")).json()
            assert [(f["event"]["id"], f["reason"]) for f in failures] == [(doomed.id, "HTTP 503")]
            assert failures[0]["event"]["data"] == {"doomed": True}
            await api.post("/v1/shops", json=ACME | {"id": "beta"})
            assert (await api.get("/v1/shops/beta/webhook-failures")).json() == []
            missing = await api.get("/v1/shops/nope/webhook-failures")
            assert missing.status_code == 404 and missing.json()["code"] == "shop_not_found"
            assert (await api.get("/v1/shops/acme/webhook-failures", params={"limit": 0})).status_code == 422


async def test_a_hanging_or_unreachable_receiver_is_a_failed_attempt(receiver: Receiver) -> None:
    async def hang(event: dict[str, Any]) -> int:
        await receiver.release.wait()
        return 200

    receiver.respond = hang
    async with embedded_server(**FAST, webhook_timeout_s=0.3, webhook_max_attempts=2) as server:
        shop = await _create_shop(server, "acme", receiver.url)
        stuck = await server.runtime.webhooks.emit(shop, WebhookType.QUEUED, "consult-1", {})
        await eventually(lambda: _failures(server, 1), "the hanging delivery to be dead-lettered")
        assert len(receiver.attempts(stuck.id)) == 0  # still hanging: none was answered
        failure = (await server.runtime.state.records.outbox.failures("acme", 1))[0]
        assert (failure.event.id, failure.reason) == (stuck.id, "timeout")

        async with server.api() as api:  # nothing listens there
            dead_url = f"http://127.0.0.1:{free_port()}/hooks"
            assert (await api.patch("/v1/shops/acme", json={"webhook_url": dead_url})).status_code == 200
        unreachable = await server.runtime.webhooks.emit(shop, WebhookType.QUEUED, "consult-2", {})
        await eventually(lambda: _failures(server, 2), "the unreachable delivery to be dead-lettered")
        failure = (await server.runtime.state.records.outbox.failures("acme", 1))[0]
        assert failure.event.id == unreachable.id and failure.reason.startswith("ConnectError")


async def test_a_fixed_url_takes_effect_on_the_next_attempt(receiver: Receiver) -> None:
    async with embedded_server(**FAST, webhook_max_attempts=1000) as server:
        shop = await _create_shop(server, "acme", f"http://127.0.0.1:{free_port()}/hooks")  # nothing listens
        retried = _deliveries("retried")
        event = await server.runtime.webhooks.emit(shop, WebhookType.MISSED, "consult-1", {})
        await eventually(lambda: _true(_deliveries("retried") >= retried + 2), "attempts at the wrong URL")
        async with server.api() as api:
            assert (await api.patch("/v1/shops/acme", json={"webhook_url": receiver.url})).status_code == 200
        await receiver.wait_for(lambda: len(receiver.delivered()) == 1, "the delivery at the fixed URL")
        assert receiver.delivered()[0]["id"] == event.id and receiver.hits[0].status == 200
        assert await server.runtime.state.records.outbox.failures("acme", 10) == []


async def _true(value: bool) -> bool:
    return value


async def _failures(server: RunningServer, count: int) -> bool:
    return len(await server.runtime.state.records.outbox.failures("acme", 10)) >= count


async def test_a_deleted_shops_events_are_dropped(receiver: Receiver) -> None:
    receiver.respond = lambda event: 500
    async with embedded_server(**FAST, webhook_max_attempts=1000) as server:
        shop = await _create_shop(server, "acme", receiver.url)
        await server.runtime.webhooks.emit(shop, WebhookType.QUEUED, "consult-1", {})
        await server.runtime.webhooks.emit(shop, WebhookType.QUEUED, "consult-1", {})
        await receiver.wait_for(lambda: len(receiver.hits) >= 2, "a few failed attempts")
        async with server.api() as api:
            assert (await api.delete("/v1/shops/acme")).status_code == 200
        await eventually(lambda: _empty(server.runtime.state.records.outbox), "the deleted shop's events to go")
        assert {hit.event["seq"] for hit in receiver.hits} == {1}  # the second never went out
        assert await server.runtime.state.records.outbox.failures("acme", 10) == []  # dropped, not dead-lettered


async def test_each_rooms_events_arrive_in_seq_order_despite_random_failures(receiver: Receiver) -> None:
    rng = random.Random(20250611)
    receiver.respond = lambda event: 500 if rng.random() < 0.35 else 200
    async with embedded_server(webhook_retry_base_s=0.01, webhook_retry_max_s=0.05, webhook_max_attempts=40) as server:
        shop = await _create_shop(server, "acme", receiver.url)
        key = await _api_key(server, "acme")
        rooms = [f"consult-{n}" for n in range(3)]
        emitted = await asyncio.gather(
            *[
                server.runtime.webhooks.emit(shop, WebhookType.PRODUCT_SHOWN, room, {"n": n})
                for n in range(10)
                for room in rooms
            ]
        )
        for room in rooms:
            assert sorted(e.seq for e in emitted if e.room == room) == list(range(1, 11))
        await receiver.wait_for(lambda: len(receiver.delivered()) == 30, "all 30 events")
        sentinel = await server.runtime.webhooks.emit(shop, WebhookType.ENDED, "consult-0", {})
        await receiver.wait_for(lambda: receiver.delivered()[-1]["id"] == sentinel.id, "the sentinel")

    assert any(hit.status == 500 for hit in receiver.hits)  # the failures did happen
    delivered = receiver.delivered()[:-1]
    assert Counter(e["id"] for e in delivered) == Counter(e.id for e in emitted)  # each exactly once
    by_room: dict[str, list[int]] = defaultdict(list)
    for event in delivered:
        by_room[event["room"]].append(event["seq"])
    assert by_room == {room: list(range(1, 11)) for room in rooms}
    seen_ok: set[str] = set()
    for hit in receiver.hits:  # nothing is ever sent again after its 2xx, and every attempt is signed
        assert hit.event["id"] not in seen_ok
        if hit.status == 200:
            seen_ok.add(hit.event["id"])
        verify(key, hit.body, hit.headers["vitrine-signature"])


async def test_a_shops_events_reach_only_its_url_signed_with_its_key() -> None:
    async with serve_receiver() as at_acme, serve_receiver() as at_beta, embedded_server(**FAST) as server:
        acme = await _create_shop(server, "acme", at_acme.url)
        beta = await _create_shop(server, "beta", at_beta.url)
        quiet = await _create_shop(server, "quiet", None)
        keys = {shop_id: await _api_key(server, shop_id) for shop_id in ("acme", "beta")}
        assert keys["acme"] != keys["beta"]
        sent = {"acme": [], "beta": []}
        for n in range(3):
            sent["acme"].append((await server.runtime.webhooks.emit(acme, WebhookType.QUEUED, "c-1", {"n": n})).id)
        assert await server.runtime.webhooks.emit(quiet, WebhookType.QUEUED, "c-1", {}) is None
        await at_acme.wait_for(lambda: len(at_acme.delivered()) == 3, "acme's events")
        assert at_beta.hits == []  # beta has a URL, yet gets nothing of acme's

        sent["beta"].append((await server.runtime.webhooks.emit(beta, WebhookType.QUEUED, "c-1", {})).id)
        await at_beta.wait_for(lambda: len(at_beta.delivered()) == 1, "beta's event")

    for receiver, mine, theirs in ((at_acme, "acme", "beta"), (at_beta, "beta", "acme")):
        assert [e["id"] for e in receiver.delivered()] == sent[mine]
        assert {hit.event["shop"] for hit in receiver.hits} == {mine}
        for hit in receiver.hits:
            verify(keys[mine], hit.body, hit.headers["vitrine-signature"])
            _failing(
                SignatureFailure.MISMATCH,
                lambda hit=hit, key=keys[theirs]: verify(key, hit.body, hit.headers["vitrine-signature"]),
            )


# -- Redis: restarts and several processes ------------------------------------------------


@pytest.mark.redis
async def test_the_outbox_survives_a_restart_and_is_delivered_in_order(redis_db_url: str, receiver: Receiver) -> None:
    settings = make_settings(redis_url=redis_db_url, **FAST, webhook_max_attempts=1000)
    receiver.respond = lambda event: 503  # the shop's server is down
    state = await open_state(settings, await open_records(settings))
    shop = Shop.model_validate(ACME | {"webhook_url": receiver.url})
    assert await state.records.shops.create_shop(shop)
    first = WebhookDispatcher(settings, state)
    await first.start()
    emitted = [
        await first.emit(shop, WebhookType.ADD_TO_CART, room, {"sku": f"sku-{n}"})
        for n in range(4)
        for room in ("consult-a", "consult-b")
    ]
    await receiver.wait_for(lambda: len(receiver.hits) >= 2, "attempts while the receiver is down")
    await first.stop()
    await state.close()
    assert {hit.event["id"] for hit in receiver.hits} == {emitted[0].id}  # only the head was tried

    state = await open_state(settings, await open_records(settings))  # a fresh process: new client, same database
    try:
        assert await state.records.outbox.pending_shops() == ["acme"]
        assert await state.records.outbox.peek("acme") == emitted[0]
        receiver.respond = lambda event: 200
        second = WebhookDispatcher(settings, state)
        await second.start()  # its first sweep finds the shop: no emit needed
        try:
            await receiver.wait_for(lambda: len(receiver.delivered()) == 8, "the stored events")
            assert [e["id"] for e in receiver.delivered()] == [e.id for e in emitted]
            assert [(e["room"], e["seq"]) for e in receiver.delivered()][:4] == [
                ("consult-a", 1),
                ("consult-b", 1),
                ("consult-a", 2),
                ("consult-b", 2),
            ]
            await eventually(lambda: _empty(state.records.outbox), "the outbox to empty")
        finally:
            await second.stop()
    finally:
        await state.close()


@pytest.mark.redis
async def test_two_processes_on_one_redis_deliver_each_event_once_in_order(
    redis_db_url: str, receiver: Receiver
) -> None:
    rng = random.Random(7)
    receiver.respond = lambda event: 500 if rng.random() < 0.3 else 200
    settings = make_settings(
        redis_url=redis_db_url,
        webhook_retry_base_s=0.01,
        webhook_retry_max_s=0.05,
        webhook_sweep_s=0.1,
        webhook_max_attempts=40,
    )
    states = [await open_state(settings, await open_records(settings)) for _ in range(2)]
    shop = Shop.model_validate(ACME | {"webhook_url": receiver.url})
    await states[0].records.shops.create_shop(shop)
    dispatchers = [WebhookDispatcher(settings, state) for state in states]
    try:
        for dispatcher in dispatchers:
            await dispatcher.start()
        emitted = await asyncio.gather(
            *[dispatchers[n % 2].emit(shop, WebhookType.QUEUED, "consult-1", {"n": n}) for n in range(20)]
        )
        assert sorted(e.seq for e in emitted) == list(range(1, 21))  # one counter across processes
        await receiver.wait_for(lambda: len(receiver.delivered()) == 20, "all events")
        sentinel = await dispatchers[1].emit(shop, WebhookType.ENDED, "consult-1", {})
        await receiver.wait_for(lambda: receiver.delivered()[-1]["id"] == sentinel.id, "the sentinel")
    finally:
        for dispatcher in dispatchers:
            await dispatcher.stop()
        for state in states:
            await state.close()
    assert [e["seq"] for e in receiver.delivered()] == list(range(1, 22))
    seen_ok: set[str] = set()
    for hit in receiver.hits:
        assert hit.event["id"] not in seen_ok  # no process sent an event again after its 2xx
        seen_ok |= {hit.event["id"]} if hit.status == 200 else set()


# -- the REST API ----------------------------------------------------------------------------


async def test_webhook_url_validation_key_endpoint_and_rotation(receiver: Receiver) -> None:
    async with embedded_server(**FAST) as server, server.api() as api:
        for bad in (
            "http://hooks.acme.example/in",
            "http://10.0.0.7/in",
            "https://user:pw@hooks.acme.example/in",
            "https://hooks.acme.example/in#frag",
            "ftp://hooks.acme.example/in",
            "https:///in",
            "https://hooks.acme.example/" + "a" * 2048,
            "https://hooks.acme.example\\@evil.example/",
        ):
            refused = await api.post("/v1/shops", json=ACME | {"webhook_url": bad})
            assert refused.status_code == 422 and refused.json()["code"] == "invalid_message", bad
        created = await api.post("/v1/shops", json=ACME | {"webhook_url": "HTTPS://Hooks.Acme.Example/In?x=1"})
        assert created.status_code == 201 and created.json()["webhook_url"] == "https://hooks.acme.example/In?x=1"
        assert created.json()["webhook_key_version"] == 1
        plain = await api.patch("/v1/shops/acme", json={"webhook_url": "http://hooks.acme.example/in"})
        assert plain.status_code == 422 and plain.json()["code"] == "invalid_message"
        assert (await api.patch("/v1/shops/acme", json={"webhook_url": None})).json()["webhook_url"] is None
        forged = await api.patch("/v1/shops/acme", json={"webhook_key_version": 1})
        assert forged.status_code == 422  # only the rotate endpoint changes the version
        assert (await api.patch("/v1/shops/acme", json={"webhook_url": receiver.url})).status_code == 200

        first = (await api.get("/v1/shops/acme/webhook-key")).json()
        assert first == {"key": webhook_key(server.settings, "acme", 1), "version": 1}
        rotated = (await api.post("/v1/shops/acme/webhook-key/rotate")).json()
        assert rotated["version"] == 2 and rotated["key"] not in (first["key"], None)
        assert (await api.get("/v1/shops/acme/webhook-key")).json() == rotated
        for path in ("/v1/shops/acme", "/v1/shops"):  # the key is never part of the shop's record
            text = (await api.get(path)).text
            assert "whsec_" not in text and first["key"] not in text and rotated["key"] not in text
        missing = await api.get("/v1/shops/nope/webhook-key")
        assert missing.status_code == 404 and missing.json()["code"] == "shop_not_found"
        assert (await api.post("/v1/shops/nope/webhook-key/rotate")).status_code == 404
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as anonymous:
            assert (await anonymous.get("/v1/shops/acme/webhook-key")).status_code == 401

        shop = await server.runtime.state.records.shops.get_shop("acme")
        await server.runtime.webhooks.emit(shop, WebhookType.REQUEST_CREATED, "request-1", {"phone": "+33"})
        await receiver.wait_for(lambda: len(receiver.delivered()) == 1, "the delivery after rotation")
        hit = receiver.hits[0]
        verify(rotated["key"], hit.body, hit.headers["vitrine-signature"])
        _failing(SignatureFailure.MISMATCH, lambda: verify(first["key"], hit.body, hit.headers["vitrine-signature"]))


async def test_a_change_and_its_event_commit_together_or_not_at_all(receiver: Receiver) -> None:
    """The outbox fails (its table is gone) after the request was written: the request is rolled back with it,
    the shopper hears an error instead of ``request_saved``, and the retry stores both, one event for one request.
    """
    async with embedded_server(**FAST) as server:
        await make_shop(server, webhook_url=receiver.url)
        shopper = await enter_shopper(server)
        await shopper.expect("no_answer")  # nobody is logged in: a message is offered
        db = server.runtime.state.records.db
        async with db.transaction() as conn:
            await conn.execute(sa.text("ALTER TABLE webhook_events RENAME TO webhook_events_away"))
        message = {"type": "leave_message", "name": "Kim", "contact": "kim@example.com", "text": "Do you ship?"}
        await shopper.send(message)
        refused = await shopper.expect("error")
        assert refused["code"] == "internal" and not shopper.of("request_saved")
        async with server.api() as api:
            assert (await api.get("/v1/shops/acme/requests")).json() == []

        async with db.transaction() as conn:
            await conn.execute(sa.text("ALTER TABLE webhook_events_away RENAME TO webhook_events"))
        await shopper.send(message)
        saved = (await shopper.expect("request_saved"))["request"]
        await receiver.wait_for(lambda: len(receiver.delivered()) == 1, "the request's event")
        async with server.api() as api:
            assert [r["id"] for r in (await api.get("/v1/shops/acme/requests")).json()] == [saved["id"]]
        [event] = receiver.delivered()
        assert event["type"] == "consult.request_created" and event["data"]["id"] == saved["id"]
        await shopper.close()
