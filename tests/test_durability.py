"""Nothing acknowledged is lost: the real embedded server as a child process, stopped or killed and started
again on the same data, evidence and recordings directories.

1. A clean restart (SIGTERM) keeps every kind of record, read back through the API unchanged: the shop, its
   agent and products, a consult's call record with its chat, a message and a callback request, a closed
   inspection case (consent, note, verdict, artifacts) whose signed bundle still verifies, an erasure, an
   ended live show's log and analytics, and the webhook dead letters.
2. ``kill -9`` the moment an acknowledgement arrives (a 2xx, a chat line echoed to its sender, a
   ``request_saved``), once per kind of write, then start again: the acknowledged record is there.
3. The evidence retention sweep of a restarted server deletes nothing it has not proven expired: a case
   folder that no record names is moved to ``.quarantine`` (never deleted), a real case's files stay.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.desk_helpers import enter_shopper, login_agent, make_shop
from tests.durability_helpers import (
    ServerProcess,
    artifact_hashes,
    closed_case,
    files_under,
    get_json,
    message_desk,
    server_process,
    until,
    verified_bundle,
    without_nulls,
)
from tests.live_helpers import entries, go_live, join, viewer_token
from tests.servers import RunningServer, free_port
from tests.webhook_receiver import serve_receiver

# -- 1. a clean restart keeps every record ---------------------------------------------------------------


async def _consult_call(server: RunningServer) -> str:
    """An answered call (no media: the desk does not need it) with chat both ways, a product card, the end,
    a rating and the agent's wrap-up; the call's id."""
    console = await login_agent(server, "acme", "ann")
    shopper = await enter_shopper(server, name="Zoé", language="fr", sku="mug-1")
    ticket = (await shopper.expect("ticket"))["ticket"]
    ring = await console.expect("ring")
    assert ring["ticket"] == ticket
    await console.send({"type": "accept", "ticket": ticket})
    await shopper.expect("call_started")
    await shopper.send({"type": "chat", "text": "Is it dishwasher safe?"})
    await console.expect("chat", lambda m: m["line"]["text"] == "Is it dishwasher safe?")
    await console.send({"type": "chat", "text": "Yes!"})
    await shopper.expect("chat", lambda m: m["line"]["text"] == "Yes!")
    await console.send({"type": "show_product", "sku": "lamp-2"})
    await shopper.expect("product")
    await console.send({"type": "end_call"})
    await shopper.expect("call_ended")
    await shopper.send({"type": "rate", "stars": 4, "comment": "Merci"})
    await shopper.expect("rated")
    mark = console.mark()
    await console.send({"type": "wrap_up", "ticket": ticket, "notes": "follow up Friday"})
    await console.expect("status", lambda m: m["status"] == "available", after=mark)
    for client in (shopper, console):
        await client.close()
    return ticket


async def _requests(server: RunningServer) -> list[dict[str, Any]]:
    """A message and a callback booking left by one shopper who asked for no call."""
    visitor, offer = await message_desk(server, "acme")
    await visitor.send(
        {"type": "leave_message", "name": "Kim", "contact": "kim@example.com", "text": "Do you ship to Norway?"}
    )
    message = (await visitor.expect("request_saved"))["request"]
    mark = visitor.mark()
    await visitor.send(
        {"type": "book_callback", "name": "Kim", "contact": "+1 555 0100", "slot_utc_ms": offer["slots_utc_ms"][0]}
    )
    callback = (await visitor.expect("request_saved", after=mark))["request"]
    await visitor.close()
    assert (message["kind"], callback["kind"]) == ("message", "callback")
    return [message, callback]


async def _ended_show(server: RunningServer) -> dict[str, Any]:
    """A show that went live, had a pin, a click and two chat lines, and ended: the ended show."""
    async with server.api() as api:
        created = await api.post("/v1/shops/acme/shows", json={"title": "Spring drop", "products": ["mug-1", "lamp-2"]})
        assert created.status_code == 201, created.text
    show = created.json()
    console, host_token = await go_live(server, show)
    host = await join(server, host_token)
    viewer = await join(server, await viewer_token(server, show, "Ana"))
    await host.send({"type": "product", "action": "pin", "sku": "mug-1"})
    await viewer.expect("log", lambda m: m["entry"]["kind"] == "product")
    await viewer.send({"type": "click", "sku": "mug-1"})
    await viewer.send({"type": "chat", "text": "how big is it?"})  # handled after the click: one socket, in order
    await viewer.expect("log", lambda m: m["entry"].get("text") == "how big is it?")
    await host.send({"type": "chat", "text": "12 cm tall"})
    await viewer.expect("log", lambda m: m["entry"].get("text") == "12 cm tall")
    ended = await console.post("/v1/live/console/end")
    assert ended.status_code == 200, ended.text
    await viewer.expect("leave", lambda m: m["code"] == "show_ended")
    await console.aclose()
    for client in (host, viewer):
        await client.close()
    analytics = ended.json()["analytics"]
    assert (
        analytics["messages"],
        analytics["product_clicks"],
        analytics["clicks_by_sku"],
        analytics["viewer_sessions"],
    ) == (2, 1, {"mug-1": 1}, 1), analytics
    return ended.json()["show"]


def _record_paths(call: str, case: str, show: str) -> tuple[list[str], list[str]]:
    """What the shop's backend reads (API key), and what anyone reads."""
    backend = [
        "/v1/shops/acme",
        "/v1/shops/acme/agents",
        "/v1/shops/acme/agents/ann",
        "/v1/shops/acme/products",
        "/v1/shops/acme/products/mug-1",
        "/v1/shops/acme/webhook-key",
        "/v1/shops/acme/webhook-failures",
        "/v1/shops/acme/calls",
        f"/v1/shops/acme/calls/{call}",
        "/v1/shops/acme/requests",
        "/v1/shops/acme/cases",
        f"/v1/shops/acme/cases/{case}",
        "/v1/shops/acme/erasures",
        "/v1/shops/acme/shows",
        f"/v1/shops/acme/shows/{show}",
        f"/v1/shops/acme/shows/{show}/analytics",
    ]
    public = [f"/v1/live/acme/{show}", f"/v1/live/acme/{show}/log", "/v1/inspect/evidence-key"]
    return backend, public


async def _records(server: RunningServer, call: str, case: str, show: str) -> dict[str, Any]:
    backend, public = _record_paths(call, case, show)
    found = {path: await get_json(server, path) for path in backend}
    found.update({path: await get_json(server, path, api=False) for path in public})
    async with server.api() as api:
        csv = await api.get(f"/v1/shops/acme/shows/{show}/chat.csv")
    assert csv.status_code == 200, csv.text
    found["chat.csv"] = csv.text
    return found


async def test_a_restart_keeps_every_kind_of_record(tmp_path: Path) -> None:
    closed_port = free_port()  # nobody listens: every webhook fails at once and, with one attempt, is dead-lettered
    async with server_process(tmp_path / "server", webhook_max_attempts=1) as process:
        server = await process.start()
        await make_shop(server, webhook_url=f"http://127.0.0.1:{closed_port}/hooks")
        call = await _consult_call(server)
        requests = await _requests(server)
        closed = await closed_case(server, "acme", note="Crack along the rim, 4 cm")
        case = closed["case"]
        erased = await closed_case(server, "acme", note="Wrong colour", verdict="rejected", buyer_ref="buyer-9")
        async with server.api() as api:
            erasure = await api.delete("/v1/shops/acme/buyers/buyer-9")
        assert erasure.status_code == 200, erasure.text
        assert (erasure.json()["cases"], erasure.json()["artifacts"]) == (1, len(erased["case"]["artifacts"]))
        show = await _ended_show(server)
        hooks = [
            "consult.answered",
            "consult.ended",
            "consult.product_shown",
            "consult.queued",
            "consult.rating",
            "consult.request_created",
            "consult.request_created",
        ]

        async def dead_letters() -> list[str]:
            return sorted(f["event"]["type"] for f in await get_json(server, "/v1/shops/acme/webhook-failures"))

        async def all_dead_lettered() -> bool:
            return await dead_letters() == hooks

        await until(all_dead_lettered, "every webhook event dead-lettered")
        before = await _records(server, call, case["id"], show["id"])
        hashes = await artifact_hashes(server, "acme", case)
        key_id = await verified_bundle(server, "acme", case["id"], tmp_path)

        # What was stored is what happened (so the comparison below compares something).
        record = before[f"/v1/shops/acme/calls/{call}"]
        assert (record["outcome"], record["agent"], record["rating"], record["comment"]) == (
            "answered",
            "ann",
            4,
            "Merci",
        )
        assert [line["text"] for line in record["chat"]] == ["Is it dishwasher safe?", "Yes!"]
        assert [p["sku"] for p in record["products_shown"]] == ["lamp-2"] and record["wrap_up"] == "follow up Friday"
        assert sorted(without_nulls(before["/v1/shops/acme/requests"]), key=lambda r: r["kind"]) == sorted(
            requests, key=lambda r: r["kind"]
        )
        stored_case = before[f"/v1/shops/acme/cases/{case['id']}"]
        assert stored_case == case and stored_case["outcome"]["verdict"] == "accepted"
        assert [n["text"] for n in stored_case["notes"]] == ["Crack along the rim, 4 cm"]
        assert {"chat", "annotations", "notes", "timeline"} <= {a["kind"] for a in stored_case["artifacts"]}
        assert [c["id"] for c in before["/v1/shops/acme/cases"]] == [case["id"]]  # the erased buyer's is gone
        assert [e["id"] for e in before["/v1/shops/acme/erasures"]] == [erasure.json()["id"]]
        assert before[f"/v1/shops/acme/shows/{show['id']}"] == show and show["state"] == "ended"
        assert [e["kind"] for e in before[f"/v1/live/acme/{show['id']}/log"]["entries"]] == [
            "show",
            "product",
            "chat",
            "chat",
            "show",
        ]
        assert [c["sku"] for c in before["/v1/shops/acme/products"]] == ["lamp-2", "mug-1"]

        await process.stop()
        assert process.db_file.is_file()
        restarted = await process.start()

        after = await _records(restarted, call, case["id"], show["id"])
        changed = [path for path in before if before[path] != after[path]]
        assert not changed, {path: (before[path], after[path]) for path in changed}
        assert await artifact_hashes(restarted, "acme", case) == hashes
        assert await verified_bundle(restarted, "acme", case["id"], tmp_path) == key_id
        # The restarted desk works from the stored records: the agent logs in and sees the shopper's requests.
        console = await login_agent(restarted, "acme", "ann", available=False)
        listed = await console.expect("requests")
        assert sorted(r["id"] for r in listed["requests"]) == sorted(r["id"] for r in requests)
        history = await console.expect("history")
        assert [c["id"] for c in history["calls"]] == [call]
        await console.close()


# -- 2. kill -9 right after each kind of acknowledgement ------------------------------------------------

Check = Callable[[RunningServer], Awaitable[None]]


@pytest.fixture(scope="module")
def killed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the kill -9 tests: each kills it, and its restart serves the next test. A failed
    webhook is retried soon after a restart, and the evidence sweep runs five times a second."""
    process = ServerProcess(tmp_path_factory.mktemp("killed-server"), webhook_retry_base_s=0.2, evidence_sweep_s=0.2)
    yield process
    process.close()


async def _shop(server: RunningServer, shop: str, **fields: Any) -> None:
    await make_shop(server, shop, agents={"ann": ["en"]}, **fields)


async def kill_after_create_shop(server: RunningServer, process: ServerProcess) -> Check:
    async with server.api() as api:
        response = await api.post(
            "/v1/shops",
            json={
                "id": "kill-shop",
                "name": "Kill Shop",
                "allowed_origins": ["https://kill-shop.example"],
                "timezone": "Europe/Berlin",
                "max_wait_s": 90,
            },
        )
        process.kill()
    assert response.status_code == 201, response.text

    async def check(restarted: RunningServer) -> None:
        assert await get_json(restarted, "/v1/shops/kill-shop") == response.json()

    return check


async def kill_after_put_product(server: RunningServer, process: ServerProcess) -> Check:
    await _shop(server, "kill-product")
    async with server.api() as api:
        response = await api.put(
            "/v1/shops/kill-product/products/vase-9",
            json={
                "title": "Vase 9",
                "price": "49.90",
                "currency": "EUR",
                "url": "https://kill-product.example/p/vase-9",
            },
        )
        process.kill()
    assert response.status_code == 200, response.text

    async def check(restarted: RunningServer) -> None:
        assert await get_json(restarted, "/v1/shops/kill-product/products/vase-9") == response.json()
        skus = [p["sku"] for p in await get_json(restarted, "/v1/shops/kill-product/products")]
        assert skus == ["lamp-2", "mug-1", "vase-9"]

    return check


async def kill_after_open_case(server: RunningServer, process: ServerProcess) -> Check:
    await _shop(server, "kill-case")
    async with server.api() as api:
        response = await api.post(
            "/v1/shops/kill-case/cases",
            json={"order_ref": "B-1", "claim": "The lid is scratched", "buyer_ref": "buyer-1"},
        )
        process.kill()
    assert response.status_code == 201, response.text
    case = response.json()["case"]

    async def check(restarted: RunningServer) -> None:
        assert await get_json(restarted, f"/v1/shops/kill-case/cases/{case['id']}") == case
        # The link handed out with the acknowledgement still opens the case (its nonce was stored too).
        async with httpx.AsyncClient(base_url=restarted.url, timeout=30) as http:
            redeemed = await http.post("/v1/inspect/redeem", json={"token": response.json()["link"].split("#t=")[1]})
        assert redeemed.status_code == 200, redeemed.text
        assert redeemed.json()["case_id"] == case["id"]

    return check


async def kill_after_case_note(server: RunningServer, process: ServerProcess) -> Check:
    await _shop(server, "kill-note")
    async with server.api() as api:
        opened = await api.post("/v1/shops/kill-note/cases", json={"order_ref": "B-2", "claim": "Broken handle"})
        assert opened.status_code == 201, opened.text
        case_id = opened.json()["case"]["id"]
        console = (await api.post(f"/v1/shops/kill-note/cases/{case_id}/console")).json()["token"]
    async with httpx.AsyncClient(
        base_url=server.url, timeout=30, headers={"Authorization": f"Bearer {console}"}
    ) as http:
        first = await http.post("/v1/inspect/console/notes", json={"text": "Handle snapped at the base"})
        assert first.status_code == 200, first.text
        response = await http.post("/v1/inspect/console/notes", json={"text": "Packaging intact"})
        process.kill()
    assert response.status_code == 200, response.text

    async def check(restarted: RunningServer) -> None:
        case = await get_json(restarted, f"/v1/shops/kill-note/cases/{case_id}")
        assert case["notes"] == [first.json(), response.json()]

    return check


async def kill_after_live_chat(server: RunningServer, process: ServerProcess) -> Check:
    await _shop(server, "kill-live")
    async with server.api() as api:
        created = await api.post("/v1/shops/kill-live/shows", json={"title": "Flash sale", "products": ["mug-1"]})
        assert created.status_code == 201, created.text
    show = created.json()
    console, _ = await go_live(server, show)
    await console.aclose()
    viewer = await join(server, await viewer_token(server, show, "Ana"))
    await viewer.send({"type": "chat", "text": "first line"})
    await viewer.expect("log", lambda m: m["entry"].get("text") == "first line")
    await viewer.send({"type": "chat", "text": "is it still in stock?"})
    echo = await viewer.expect("log", lambda m: m["entry"].get("text") == "is it still in stock?")
    process.kill()
    await viewer.close()
    sent = entries(viewer, "chat")

    async def check(restarted: RunningServer) -> None:
        log = await get_json(restarted, f"/v1/live/kill-live/{show['id']}/log", api=False)
        chat = [without_nulls(entry) for entry in log["entries"] if entry["kind"] == "chat"]
        assert chat == sent and chat[-1] == echo["entry"], (chat, sent)
        # Its show ends after the restart: the analytics count every line the log holds.
        async with restarted.api() as api:
            ended = await api.post(f"/v1/shops/kill-live/shows/{show['id']}/end")
        assert ended.status_code == 200, ended.text
        analytics = ended.json()["analytics"]
        assert analytics["messages"] == len(chat), (
            f"the show's message counter says {analytics['messages']}, its log holds {len(chat)} acknowledged lines"
        )
        assert analytics["viewer_sessions"] == 1, analytics

    return check


async def kill_after_callback(server: RunningServer, process: ServerProcess) -> Check:
    await _shop(server, "kill-callback")
    visitor, offer = await message_desk(server, "kill-callback")
    await visitor.send(
        {
            "type": "book_callback",
            "name": "Kim",
            "contact": "+1 555 0101",
            "slot_utc_ms": offer["slots_utc_ms"][0],
            "text": "About the lamp",
        }
    )
    saved = await visitor.expect("request_saved")
    process.kill()
    await visitor.close()

    async def check(restarted: RunningServer) -> None:
        stored = await get_json(restarted, "/v1/shops/kill-callback/requests")
        assert without_nulls(stored) == [saved["request"]]

    return check


async def kill_after_webhook_queued(server: RunningServer, process: ServerProcess) -> Check:
    """A callback booked with a shop whose webhook endpoint is down: its ``consult.request_created`` stays in
    the outbox. After the restart the shop's endpoint is up (the webhook_url now names it), and the event,
    stored before the booking was acknowledged, is delivered."""
    await _shop(server, "kill-hook", webhook_url=f"http://127.0.0.1:{free_port()}/hooks")
    visitor, offer = await message_desk(server, "kill-hook")
    await visitor.send(
        {"type": "book_callback", "name": "Kim", "contact": "+1 555 0102", "slot_utc_ms": offer["slots_utc_ms"][0]}
    )
    saved = await visitor.expect("request_saved")
    process.kill()
    await visitor.close()
    request = saved["request"]

    async def check(restarted: RunningServer) -> None:
        assert without_nulls(await get_json(restarted, "/v1/shops/kill-hook/requests")) == [request]
        async with serve_receiver() as receiver:
            async with restarted.api() as api:
                patched = await api.patch("/v1/shops/kill-hook", json={"webhook_url": receiver.url})
            assert patched.status_code == 200, patched.text
            await until(
                lambda: bool(receiver.delivered()),
                "the consult.request_created of the acknowledged "
                "callback request, which should have been in the outbox before the acknowledgement",
                timeout=10,
            )
            (event,) = receiver.delivered()
        assert (event["type"], event["shop"], event["room"], event["seq"]) == (
            "consult.request_created",
            "kill-hook",
            request["id"],
            1,
        )
        assert without_nulls(event["data"]) == request
        assert await get_json(restarted, "/v1/shops/kill-hook/webhook-failures") == []

    return check


WRITES: dict[str, Callable[[RunningServer, ServerProcess], Awaitable[Check]]] = {
    "create_shop": kill_after_create_shop,
    "put_product": kill_after_put_product,
    "open_case": kill_after_open_case,
    "case_note": kill_after_case_note,
    "live_chat_echo": kill_after_live_chat,
    "webhook_queued": kill_after_webhook_queued,
    "callback_request": kill_after_callback,
}


@pytest.mark.parametrize("kind", list(WRITES))
async def test_an_acknowledged_write_survives_kill_9_right_after_the_acknowledgement(
    kind: str, killed_server: ServerProcess
) -> None:
    async with killed_server.reporting():
        server = await killed_server.ensure_started()
        check = await WRITES[kind](server, killed_server)
        assert not killed_server.running and killed_server.exits[-1] == -9
        restarted = await killed_server.start()
        await check(restarted)


# -- 3. the retention sweep after a restart ---------------------------------------------------------


def _orphan(evidence: Path, shop: str) -> tuple[Path, dict[str, bytes]]:
    """A case folder no record names, as a lost record or a photo landing after a deletion would leave.
    Written in a staging folder the sweep never reads (not a shop id) and renamed into place whole, so a
    running sweep never sees it half-written."""
    case = f"cs_{secrets.token_hex(6)}"
    staged = evidence / ".staging" / case
    staged.mkdir(parents=True)
    content = {"ar_photo.jpg": b"\xff\xd8\xff" + secrets.token_bytes(256), "ar_note.json": b'{"kept": true}'}
    for name, data in content.items():
        (staged / name).write_bytes(data)
    folder = evidence / shop / case
    folder.parent.mkdir(parents=True, exist_ok=True)
    staged.rename(folder)
    return folder, content


def _quarantined(evidence: Path, folder: Path) -> list[Path]:
    """Where the sweep moved ``folder``: ``.quarantine/<shop>/<case>-<ms>``."""
    parent = evidence / ".quarantine" / folder.parent.name
    return sorted(parent.glob(f"{folder.name}-*")) if parent.is_dir() else []


async def test_the_retention_sweep_after_a_restart_quarantines_orphans_and_keeps_real_evidence(
    tmp_path: Path, killed_server: ServerProcess
) -> None:
    process = killed_server  # killed and restarted like the others: its sweep runs every 0.2 s
    async with process.reporting():
        server = await process.ensure_started()
        await _shop(server, "retain")
        closed = await closed_case(server, "retain", note="Dent on the base")
        case = closed["case"]
        evidence = process.evidence_dir
        real = evidence / "retain" / case["id"]
        real_files = files_under(real)
        assert sorted(real_files) == sorted(a["file"] for a in case["artifacts"])
        keep = evidence / "retain" / "operator-notes"  # not a case folder: the sweep has no business there
        keep.mkdir()
        (keep / "readme.txt").write_text("left by an operator")
        process.kill()

        orphans = [_orphan(evidence, "retain"), _orphan(evidence, "ghost")]  # a shop with no record either
        server = await process.start()

        def moved(folder: Path) -> bool:
            return not folder.exists() and len(_quarantined(evidence, folder)) == 1

        await until(lambda: all(moved(folder) for folder, _ in orphans), "the orphan folders quarantined")
        late = _orphan(evidence, "retain")  # one more while it runs: proves later sweeps ran past the real case too
        orphans.append(late)
        await until(lambda: moved(late[0]), "the late orphan folder quarantined")

        for folder, content in orphans:  # moved whole, never deleted
            (target,) = _quarantined(evidence, folder)
            assert files_under(target) == content
        quarantine = evidence / ".quarantine"
        assert sum(1 for shop in quarantine.iterdir() for _ in shop.iterdir()) == len(orphans)
        assert files_under(real) == real_files, "a real case's evidence must stay where it is"
        assert files_under(keep) == {"readme.txt": b"left by an operator"}
        assert await get_json(server, f"/v1/shops/retain/cases/{case['id']}") == case
        assert len(await artifact_hashes(server, "retain", case)) == len(case["artifacts"])
        await verified_bundle(server, "retain", case["id"], tmp_path)
