"""The consult desk end to end over real sockets: queue, ring, accept, the call's record, rating."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable

import jwt
import pytest
import websockets

from loadtest.client import VitrineClient
from tests.desk_helpers import DeskClient, enter_shopper, login_agent, make_shop
from tests.media_helpers import av_tracks, receive_frames, remote_tracks
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


# -- the shopper connects while it rings (the accept only admits) -------------------------------------------


async def _until(condition: Callable[[], Awaitable[bool] | bool], what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = condition()
        if isinstance(result, Awaitable):
            result = await result
        if result:
            return
        assert asyncio.get_running_loop().time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def _ringing(server: RunningServer, console: DeskClient, shopper: DeskClient) -> tuple[dict, VitrineClient]:
    """The agent's console rings and joins the call's room; the shopper knocks at it: its connection comes up."""
    ring = await console.expect("ring")
    knock = (await shopper.expect("call_ringing", lambda m: m["setup"]["room"] == ring["setup"]["room"]))["setup"]
    claims = jwt.decode(knock["token"], options={"verify_signature": False})
    assert (claims["room"], claims["role"], claims["grants"]["needs_admit"]) == (knock["room"], "customer", True)
    rtc = VitrineClient(server.url, knock["token"], tracks=av_tracks(), origin="https://acme.example")  # its page
    return ring, rtc


async def _worker_counts(server: RunningServer) -> tuple[int, int, int]:
    stats = server.runtime.media_worker.media_stats()
    return stats["participants"], stats["waiting"], stats["subscriptions"]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def call_server(request: pytest.FixtureRequest) -> AsyncIterator[RunningServer]:
    overrides = {"redis_url": request.getfixturevalue("redis_db_url")} if request.param == "redis" else {}
    async with embedded_server(**overrides) as running:
        yield running


async def test_the_shopper_connects_unseen_while_it_rings_and_the_accept_only_admits(
    call_server: RunningServer,
) -> None:
    server = call_server
    await make_shop(server)
    console = await login_agent(server, "acme", "ann")
    shopper = await enter_shopper(server, name="Zoé")
    ticket = (await shopper.expect("ticket"))["ticket"]
    ring, shopper_rtc = await _ringing(server, console, shopper)
    agent_rtc = VitrineClient(server.url, ring["setup"]["token"], tracks=av_tracks())
    joining = None
    try:
        joined = await agent_rtc.connect()
        assert [p["identity"] for p in joined["participants"]] == ["agent-ann"] and joined["knocks"] == []
        joining = asyncio.create_task(shopper_rtc.connect(timeout=60))
        await shopper_rtc.wait_connected(timeout=30)  # ICE and DTLS done on the worker, before any accept
        assert await _worker_counts(server) == (1, 1, 0)  # the agent in the room; the shopper apart, not forwarded
        room = ring["setup"]["room"]
        assert [p.identity for p in await server.runtime.state.rooms.list_participants(room)] == ["agent-ann"]
        assert [t.participant_sid for t in await server.runtime.state.rooms.list_tracks(room)] == [
            joined["participant"]["sid"]
        ] * 2
        # Nothing of the shopper reached the agent: no knock, no participant, no track, no renegotiation for it.
        assert agent_rtc.knocks.empty() and agent_rtc.remote_tracks.empty()
        assert [e["event"] for e in agent_rtc.events] == ["track_published"] * 2  # its own two
        assert {e["track"]["participant_sid"] for e in agent_rtc.events} == {joined["participant"]["sid"]}
        assert not joining.done()
        negotiations = agent_rtc.negotiations

        await console.send({"type": "accept", "ticket": ring["ticket"]})
        started = (await shopper.expect("call_started"))["setup"]
        assert started["room"] == room
        assert not jwt.decode(started["token"], options={"verify_signature": False})["grants"]["needs_admit"]
        admitted = await joining
        assert admitted["participant"]["identity"] == f"shopper-{ticket[3:]}"
        await _until(lambda: any(e["event"] == "participant_joined" for e in agent_rtc.events), "the agent's news")
        for remote in (*(await remote_tracks(agent_rtc, 2)).values(), *(await remote_tracks(shopper_rtc, 2)).values()):
            assert len(await receive_frames(remote, 3)) == 3  # media both ways, on the connections made while it rang
        assert agent_rtc.negotiations > negotiations and await _worker_counts(server) == (2, 0, 4)

        await console.send({"type": "end_call"})
        await shopper.expect("call_ended")
        async with server.api() as api:
            record = (await api.get(f"/v1/shops/acme/calls/{ticket}")).json()
        assert (record["outcome"], record["agent"], record["room"]) == ("answered", "ann", room)
        assert record["wait_ms"] >= 0 and record["talk_ms"] >= 0 and record["answered_ms"] >= record["queued_ms"]
        await _until(lambda: server.runtime.media_worker.media_stats()["rooms"] == 0, "the call's room to close")
    finally:
        if joining is not None:
            joining.cancel()
        for client in (shopper_rtc, agent_rtc):
            await client.close()
        for desk in (shopper, console):
            await desk.close()


async def test_a_ring_that_times_out_hands_the_same_connection_to_the_next_agent() -> None:
    async with embedded_server(consult_ring_timeout_s=4.0, consult_sweep_s=0.1) as server:
        await make_shop(server, agents={"ann": ["en"], "bob": ["en"]})
        ann = await login_agent(server, "acme", "ann")
        bob = await login_agent(server, "acme", "bob")  # Ann has idled longer: she rings first
        shopper = await enter_shopper(server)
        first, shopper_rtc = await _ringing(server, ann, shopper)
        ann_rtc = VitrineClient(server.url, first["setup"]["token"], tracks=av_tracks())
        bob_rtc: VitrineClient | None = None
        joining = asyncio.create_task(shopper_rtc.connect(timeout=60))
        try:
            await ann_rtc.connect()
            await shopper_rtc.wait_connected(timeout=30)
            assert await _worker_counts(server) == (1, 1, 0)
            await ann.expect("ring_cancelled", lambda m: m["reason"] == "timeout", timeout=30)
            await ann_rtc.wait_closed(timeout=20)  # rang out: she is taken out of the room
            assert ann_rtc.leave_notice is not None and ann_rtc.remote_tracks.empty() and ann_rtc.knocks.empty()
            assert {e["event"] for e in ann_rtc.events} == {"track_published"}  # only her own

            second = await bob.expect("ring")
            assert second["setup"]["room"] == first["setup"]["room"]
            await shopper.expect("call_ringing", lambda m: m["setup"]["room"] == second["setup"]["room"], after=1)
            await _until(async_equal(lambda: _worker_counts(server), (0, 1, 0)), "only the shopper left waiting")
            bob_rtc = VitrineClient(server.url, second["setup"]["token"], tracks=av_tracks())
            await bob_rtc.connect()
            await bob.send({"type": "accept", "ticket": second["ticket"]})
            await shopper.expect("call_started")
            await joining
            assert shopper_rtc.pc.connectionState == "connected"  # the one connection, from the first ring on
            for remote in (
                *(await remote_tracks(bob_rtc, 2)).values(),
                *(await remote_tracks(shopper_rtc, 2)).values(),
            ):
                assert len(await receive_frames(remote, 3)) == 3
            assert await _worker_counts(server) == (2, 0, 4)
            # The agent who missed it cannot come back into the call.
            late = VitrineClient(server.url, first["setup"]["token"])
            with pytest.raises(ConnectionError, match="permission_denied"):
                await late.connect(timeout=10)
            await late.close()
            await bob.send({"type": "end_call"})
            await shopper.expect("call_ended")
            async with server.api() as api:
                record = (await api.get(f"/v1/shops/acme/calls/{second['ticket']}")).json()
            assert (record["outcome"], record["agent"]) == ("answered", "bob")
        finally:
            joining.cancel()
            for client in (shopper_rtc, ann_rtc, bob_rtc):
                if client is not None:
                    await client.close()
            for desk in (ann, bob, shopper):
                await desk.close()


async def test_a_shopper_who_leaves_while_it_rings_frees_everything(server: RunningServer) -> None:
    await make_shop(server)
    console = await login_agent(server, "acme", "ann")
    shopper = await enter_shopper(server)
    ticket = (await shopper.expect("ticket"))["ticket"]
    ring, shopper_rtc = await _ringing(server, console, shopper)
    agent_rtc = VitrineClient(server.url, ring["setup"]["token"], tracks=av_tracks())
    joining = asyncio.create_task(shopper_rtc.connect(timeout=60))
    try:
        await agent_rtc.connect()
        await shopper_rtc.wait_connected(timeout=30)
        assert await _worker_counts(server) == (1, 1, 0)
        await shopper_rtc.close()  # the page goes: its connection at the door goes with it
        await _until(async_equal(lambda: _worker_counts(server), (1, 0, 0)), "the shopper's connection freed")
        await shopper.send({"type": "cancel"})
        await console.expect("ring_cancelled", lambda m: m["reason"] == "abandoned")
        await agent_rtc.wait_closed(timeout=20)  # the call's room is closed
        await _until(lambda: server.runtime.media_worker.media_stats()["rooms"] == 0, "the worker's room to go")
        async with server.api() as api:
            assert (await api.get("/v1/rooms")).json() == []
            record = (await api.get(f"/v1/shops/acme/calls/{ticket}")).json()
        assert record["outcome"] == "abandoned" and record.get("agent") is None and record["wait_ms"] >= 0
        # Nothing of the shopper ever reached the agent.
        assert agent_rtc.knocks.empty() and agent_rtc.remote_tracks.empty()
        assert not [e for e in agent_rtc.events if e["event"] == "participant_joined"]
    finally:
        joining.cancel()
        for client in (shopper_rtc, agent_rtc):
            await client.close()
        for desk in (shopper, console):
            await desk.close()


async def test_a_declined_ring_takes_the_agent_out_and_keeps_the_shoppers_connection(server: RunningServer) -> None:
    await make_shop(server)
    console = await login_agent(server, "acme", "ann")
    shopper = await enter_shopper(server)
    ring, shopper_rtc = await _ringing(server, console, shopper)
    agent_rtc = VitrineClient(server.url, ring["setup"]["token"], tracks=av_tracks())
    joining = asyncio.create_task(shopper_rtc.connect(timeout=60))
    try:
        await agent_rtc.connect()
        await shopper_rtc.wait_connected(timeout=30)
        await console.send({"type": "decline", "ticket": ring["ticket"]})
        await console.expect("ring_cancelled", lambda m: m["reason"] == "declined")
        await agent_rtc.wait_closed(timeout=20)
        # The shopper waits on at the door, connected, for the next agent; the room knows only its empty self.
        await _until(async_equal(lambda: _worker_counts(server), (0, 1, 0)), "the agent gone, the shopper waiting")
        assert shopper_rtc.pc.connectionState == "connected" and not joining.done()
        assert await server.runtime.state.rooms.list_participants(ring["setup"]["room"]) == []
        assert agent_rtc.knocks.empty() and agent_rtc.remote_tracks.empty()
        await shopper.send({"type": "cancel"})
        await _until(lambda: server.runtime.media_worker.media_stats()["rooms"] == 0, "the worker's room to go")
        await shopper_rtc.wait_closed(timeout=20)  # turned away from a door that closed
        assert (shopper_rtc.leave_notice or {}).get("code") == "denied"
    finally:
        joining.cancel()
        for client in (shopper_rtc, agent_rtc):
            await client.close()
        for desk in (shopper, console):
            await desk.close()


def async_equal(read: Callable[[], Awaitable[object]], wanted: object) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return await read() == wanted

    return check
