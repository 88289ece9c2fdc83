"""Tenant isolation and bad input on the consult desk: nothing crosses shops, nothing kills a socket."""

from __future__ import annotations

import json

import websockets

from tests.desk_helpers import DeskClient, agent_token, enter_shopper, login_agent, make_shop
from tests.servers import RunningServer, embedded_server


async def _in_call(server: RunningServer) -> tuple[DeskClient, DeskClient, str]:
    console = await login_agent(server, "acme", "ann")
    shopper = await enter_shopper(server)
    ring = await console.expect("ring")
    await console.send({"type": "accept", "ticket": ring["ticket"]})
    await shopper.expect("call_started")
    return console, shopper, ring["ticket"]


async def test_an_agent_of_one_shop_never_sees_or_takes_anothers_shoppers(server: RunningServer) -> None:
    await make_shop(server, "acme")
    await make_shop(server, "bravo")
    acme_agent = await login_agent(server, "acme", "ann")
    bravo_agent = await login_agent(server, "bravo", "ann")  # same agent id, other shop
    shopper = await enter_shopper(server, "bravo")
    ticket = await shopper.expect("ticket")
    await bravo_agent.expect("ring", lambda m: m["ticket"] == ticket["ticket"])
    await acme_agent.send({"type": "accept", "ticket": ticket["ticket"]})
    refused = await acme_agent.expect("error", lambda m: m["ref"] == "accept")
    assert refused["code"] == "ticket_not_found"
    assert all(m.get("total", 0) == 0 for m in acme_agent.received if m["type"] == "queue")
    assert not [m for m in acme_agent.received if m["type"] == "ring"]
    # A shop's API credentials are the server's, but a token minted for acme's agent is acme's only.
    async with server.api() as api:
        assert (await api.post("/v1/shops/acme/agents/nobody/token")).json()["code"] == "agent_not_found"
    for client in (acme_agent, bravo_agent, shopper):
        await client.close()


async def test_a_deleted_agents_token_no_longer_logs_in(server: RunningServer) -> None:
    await make_shop(server)
    token = await agent_token(server, "acme", "ann")
    async with server.api() as api:
        (await api.delete("/v1/shops/acme/agents/ann")).raise_for_status()
    console = await DeskClient.open(server, "agent")
    await console.send({"type": "login", "token": token})
    assert (await console.expect("error"))["code"] == "agent_not_found"
    await console.close()


async def test_the_widget_works_only_from_the_shops_own_origins(server: RunningServer) -> None:
    await make_shop(server, "acme")
    await make_shop(server, "bravo")
    await login_agent(server, "bravo", "ann")
    elsewhere = await DeskClient.open(server, "shopper", origin="https://acme.example")
    await elsewhere.send({"type": "enter", "shop": "bravo"})
    assert (await elsewhere.expect("error"))["code"] == "origin_not_allowed"
    async with server.api() as api:
        foreign = await api.get("/v1/consult/bravo/status", headers={"Origin": "https://acme.example"})
        own = await api.get("/v1/consult/bravo/status", headers={"Origin": "https://bravo.example"})
    assert "access-control-allow-origin" not in foreign.headers
    assert own.headers["access-control-allow-origin"] == "https://bravo.example"
    await elsewhere.close()


async def test_a_shops_embed_origin_may_join_only_its_own_calls(server: RunningServer) -> None:
    await make_shop(server, "acme")
    await make_shop(server, "bravo")
    console, shopper, _ = await _in_call(server)
    setup = (await shopper.expect("call_started"))["setup"]
    for origin, expected in (("https://bravo.example", "origin_not_allowed"), ("https://acme.example", "joined")):
        async with websockets.connect(server.ws_url, additional_headers={"Origin": origin}) as rtc:
            await rtc.send(json.dumps({"type": "join", "token": setup["token"]}))
            reply = json.loads(await rtc.recv())
            assert expected in (reply["type"], reply.get("code")), reply
    for client in (console, shopper):
        await client.close()


async def test_a_shopper_cannot_send_an_agents_messages(server: RunningServer) -> None:
    await make_shop(server)
    console, shopper, ticket = await _in_call(server)
    for forged in (
        {"type": "show_product", "sku": "mug-1"},
        {"type": "accept", "ticket": ticket},
        {"type": "set_status", "status": "available"},
        {"type": "login", "token": "x"},
    ):
        mark = shopper.mark()
        await shopper.send(forged)
        error = await shopper.expect("error", after=mark)
        assert (error["code"], error["ref"]) == ("permission_denied", forged["type"]), error
    # A product never shown cannot be "added to cart" into the shop's webhooks.
    await shopper.send({"type": "add_to_cart", "sku": "mug-1"})
    assert (await shopper.expect("error", lambda m: m["ref"] == "add_to_cart"))["code"] == "permission_denied"
    assert not [m for m in shopper.received if m["type"] == "product"]
    for client in (console, shopper):
        await client.close()


async def test_bad_chat_is_refused_and_the_call_goes_on(server: RunningServer) -> None:
    await make_shop(server)
    console, shopper, ticket = await _in_call(server)
    await shopper.send({"type": "chat", "text": "x" * 1001})
    assert (await shopper.expect("error", lambda m: m["ref"] == "chat"))["code"] == "message_too_large"
    await shopper.ws.send("{not json")
    assert await shopper.expect("error", lambda m: m["code"] == "invalid_json")
    await shopper.send({"type": "chat", "text": "   \u202e\x00  "})
    assert await shopper.expect("error", lambda m: m["message"] == "text: empty")
    injection = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
    await shopper.send({"type": "chat", "text": injection})
    line = (await console.expect("chat"))["line"]
    assert line["text"] == injection  # kept verbatim as text; the clients render it with textContent
    async with server.api() as api:
        record = (await api.get(f"/v1/shops/acme/calls/{ticket}")).json()
    assert [c["text"] for c in record["chat"]] == [injection]
    for client in (console, shopper):
        await client.close()


async def test_chat_floods_are_rate_limited(server: RunningServer) -> None:
    await make_shop(server)
    console, shopper, _ = await _in_call(server)
    for n in range(30):
        await shopper.send({"type": "chat", "text": f"spam {n}"})
    await shopper.expect("error", lambda m: m["code"] == "rate_limited")
    delivered = [m for m in console.received if m["type"] == "chat"]
    assert len(delivered) < 30
    for client in (console, shopper):
        await client.close()


async def test_a_product_whose_link_left_the_allow_list_is_not_shown(server: RunningServer) -> None:
    await make_shop(server)
    console, shopper, _ = await _in_call(server)
    async with server.api() as api:
        narrowed = await api.patch("/v1/shops/acme", json={"link_hosts": ["shop.acme.example"]})
        assert narrowed.status_code == 200
    await console.send({"type": "show_product", "sku": "mug-1"})
    error = await console.expect("error", lambda m: m["ref"] == "show_product")
    assert error["code"] == "url_not_allowed"
    await console.send({"type": "ping"})
    await console.expect("pong")
    assert not [m for m in shopper.received if m["type"] == "product"]
    for client in (console, shopper):
        await client.close()


async def test_a_phone_that_changes_network_resumes_its_place_in_the_queue() -> None:
    async with embedded_server() as server:
        await make_shop(server)
        # With nobody logged in, a shopper is offered a message and does not queue; an away agent makes a queue.
        nobody = await enter_shopper(server)
        await nobody.expect("no_answer")
        await nobody.close()
        agent = await login_agent(server, "acme", "ann", available=False)
        # Each shopper's ticket before the next one enters: two sockets' enters race, and the queue keeps the
        # order the desk saw them in.
        first = await enter_shopper(server)
        await first.expect("ticket")
        second = await enter_shopper(server)
        ticket = await second.expect("ticket")
        await second.ws.close()
        resumed = await DeskClient.open(server, "shopper", origin="https://acme.example")
        await resumed.send({"type": "resume", "token": ticket["token"]})
        position = await resumed.expect("position")
        assert position["position"] == 2
        async with server.api() as api:
            assert (await api.get("/v1/consult/acme/status")).json()["queue_length"] == 2
        for client in (resumed, first, agent):  # closed by the client: a server's shutdown waits on desk sockets
            await client.close()


async def test_deleting_a_shop_forgets_its_calls_and_requests(server: RunningServer) -> None:
    await make_shop(server)
    console, shopper, ticket = await _in_call(server)
    await console.send({"type": "end_call"})
    await shopper.expect("call_ended")
    async with server.api() as api:
        assert len((await api.get("/v1/shops/acme/calls")).json()) == 1
        (await api.delete("/v1/shops/acme")).raise_for_status()
    await make_shop(server)  # the same id again: a new tenant, with nothing of the old one
    async with server.api() as api:
        assert (await api.get("/v1/shops/acme/calls")).json() == []
        assert (await api.get(f"/v1/shops/acme/calls/{ticket}")).json()["code"] == "call_not_found"
    for client in (console, shopper):
        await client.close()
