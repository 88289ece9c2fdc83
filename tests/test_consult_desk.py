"""The consult desk end to end over real sockets: queue, ring, accept, the call's record, rating."""

from __future__ import annotations

import json

import jwt
import websockets

from tests.desk_helpers import DeskClient, enter_shopper, login_agent, make_shop
from tests.servers import RunningServer, embedded_server
from tests.webhook_receiver import serve_receiver
from vitrine.core.webhooks import verify


async def test_a_call_from_queue_to_rating_leaves_a_full_record(server: RunningServer) -> None:
    await make_shop(server)
    console = await login_agent(server, "acme", "ann")
    shopper = await enter_shopper(
        server,
        name="Zoé",
        language="fr",
        timezone="Europe/Paris",
        sku="mug-1",
        page_url="https://acme.example/p/mug-1",
        page_title="Mug",
    )
    ticket = await shopper.expect("ticket")
    assert ticket["position"] == 1 and ticket["token"]
    queue = await console.expect("queue", lambda m: m["total"] == 1)
    assert queue["entries"][0]["context"]["sku"] == "mug-1"
    ring = await console.expect("ring")
    assert ring["ticket"] == ticket["ticket"] and ring["context"]["name"] == "Zoé"

    await console.send({"type": "accept", "ticket": ring["ticket"]})
    agent_call = await console.expect("call_started")
    shopper_call = await shopper.expect("call_started")
    # The room the console could join while it rang is the call's room.
    assert agent_call["setup"]["room"] == shopper_call["setup"]["room"] == ring["setup"]["room"]
    assert shopper_call["setup"]["peer_name"] == "Ann"
    claims = jwt.decode(shopper_call["setup"]["token"], options={"verify_signature": False})
    assert (claims["room"], claims["shop"], claims["role"]) == (shopper_call["setup"]["room"], "acme", "customer")
    await console.expect("status", lambda m: m["status"] == "busy")

    await shopper.send({"type": "chat", "text": "Is it dishwasher safe?"})
    await console.expect("chat", lambda m: m["line"]["text"] == "Is it dishwasher safe?")
    await console.send({"type": "chat", "text": "Yes!"})
    await shopper.expect("chat", lambda m: m["line"]["sender"] == "agent" and m["line"]["name"] == "Ann")
    await console.send({"type": "show_product", "sku": "lamp-2"})
    card = await shopper.expect("product")
    assert card["card"] == {
        "sku": "lamp-2",
        "title": "Lamp 2",
        "price": "89.00",
        "currency": "EUR",
        "url": "https://acme.example/p/lamp-2",
        "image_url": "https://acme.example/i/lamp-2.jpg",
    }
    mark = console.mark()
    await shopper.send({"type": "add_to_cart", "sku": "lamp-2"})
    await console.send({"type": "note", "text": "wants the blue one"})
    await console.send({"type": "end_call"})
    ended = await shopper.expect("call_ended")
    assert ended["ended_by"] == "agent"
    await console.expect("status", lambda m: m["status"] == "wrap_up", after=mark)
    await shopper.send({"type": "rate", "stars": 5, "comment": "Très bien"})
    await shopper.expect("rated")
    mark = console.mark()  # the wrap-up's own answers, not the "available" of the login
    await console.send({"type": "wrap_up", "ticket": ticket["ticket"], "notes": "follow up Friday"})
    await console.expect("status", lambda m: m["status"] == "available", after=mark)
    history = await console.expect("history", lambda m: m["calls"] and m["calls"][0].get("rating") == 5, after=mark)
    assert history["calls"][0]["id"] == ticket["ticket"]

    async with server.api() as api:
        record = (await api.get(f"/v1/shops/acme/calls/{ticket['ticket']}")).json()
    assert record["outcome"] == "answered" and record["agent"] == "ann"
    assert [line["text"] for line in record["chat"]] == ["Is it dishwasher safe?", "Yes!"]
    assert [p["sku"] for p in record["products_shown"]] == ["lamp-2"]
    assert record["added_to_cart"] == ["lamp-2"]
    assert (record["rating"], record["comment"]) == (5, "Très bien")
    assert (record["notes"], record["wrap_up"]) == ("wants the blue one", "follow up Friday")
    assert record["wait_ms"] >= 0 and record["talk_ms"] >= 0 and record["ended_by"] == "agent"
    assert record["context"]["timezone"] == "Europe/Paris"
    for client in (shopper, console):
        await client.close()


async def test_desk_and_join_tokens_are_not_interchangeable(server: RunningServer) -> None:
    await make_shop(server)
    console = await login_agent(server, "acme", "ann")
    shopper = await enter_shopper(server)
    ticket = await shopper.expect("ticket")
    # A shopper's ticket token cannot log into the console, and an agent token cannot join a room.
    intruder = await DeskClient.open(server, "agent")
    await intruder.send({"type": "login", "token": ticket["token"]})
    refused = await intruder.expect("error")
    assert refused["code"] == "permission_denied" and ticket["token"] not in json.dumps(refused)
    async with websockets.connect(server.ws_url) as rtc:
        await rtc.send(json.dumps({"type": "join", "token": ticket["token"]}))
        reply = json.loads(await rtc.recv())
        assert reply["type"] == "error" and reply["code"] == "invalid_token"
    for client in (shopper, console, intruder):
        await client.close()


async def test_a_calls_webhooks_reach_the_shop_signed_and_in_order() -> None:
    async with serve_receiver() as receiver, embedded_server(webhook_retry_base_s=0.05) as server:
        await make_shop(server, webhook_url=receiver.url)
        async with server.api() as api:
            key = (await api.get("/v1/shops/acme/webhook-key")).json()["key"]
        attempts = 0

        def flaky(event: dict) -> int:  # every third attempt fails: retries must not reorder a call's events
            nonlocal attempts
            attempts += 1
            return 503 if attempts % 3 == 0 else 200

        receiver.respond = flaky
        console = await login_agent(server, "acme", "ann")
        shopper = await enter_shopper(server)
        ticket = (await shopper.expect("ticket"))["ticket"]
        ring = await console.expect("ring")
        await console.send({"type": "accept", "ticket": ring["ticket"]})
        await shopper.expect("call_started")
        await console.send({"type": "show_product", "sku": "mug-1"})
        await shopper.expect("product")
        await shopper.send({"type": "add_to_cart", "sku": "mug-1"})
        await console.send({"type": "end_call"})
        await shopper.expect("call_ended")
        await shopper.send({"type": "rate", "stars": 3})
        await shopper.expect("rated")
        expected = [
            "consult.queued",
            "consult.answered",
            "consult.product_shown",
            "consult.add_to_cart",
            "consult.ended",
            "consult.rating",
        ]
        await receiver.wait_for(lambda: len(receiver.delivered()) == len(expected), "the call's six events")
        events = receiver.delivered()
        assert [e["type"] for e in events] == expected
        assert [e["seq"] for e in events] == list(range(1, 7)) and {e["room"] for e in events} == {ticket}
        assert events[3]["data"]["sku"] == "mug-1" and events[5]["data"]["stars"] == 3
        for hit in receiver.hits:
            verify(key, hit.body, hit.headers["vitrine-signature"])
        assert any(hit.status == 503 for hit in receiver.hits)  # the retry path was taken
        for client in (console, shopper):
            await client.close()
