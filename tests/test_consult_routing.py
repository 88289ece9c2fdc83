"""Routing: who is rung, what happens when nobody answers, and what a shopper can do instead."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import websockets

from signaling.consult.models import ShopperContext, Ticket
from signaling.consult.routing import callback_slots, estimate_wait_s, pick_agent
from tests.desk_helpers import DeskClient, enter_shopper, login_agent, make_shop
from tests.servers import embedded_server
from vitrine.core.shops import Agent, ShopFields
from vitrine.core.state.presence import AgentStatus, Presence

# -- pure routing --------------------------------------------------------------------------------


def _agent(agent_id: str, *languages: str) -> Agent:
    return Agent(id=agent_id, shop="acme", display_name=agent_id, languages=list(languages))


def _free(agent_id: str, idle_since_ms: int) -> Presence:
    return Presence(agent=agent_id, status=AgentStatus.AVAILABLE, idle_since_ms=idle_since_ms, consoles=1)


def _ticket(language: str = "en", passed_by: tuple[str, ...] = ()) -> Ticket:
    return Ticket(id="tk_abcdefgh12", shop="acme", context=ShopperContext(language=language), passed_by=list(passed_by))


def test_the_longest_idle_free_agent_is_rung() -> None:
    agents = [_agent("ann", "en"), _agent("bob", "en"), _agent("cyd", "en")]
    presence = {"ann": _free("ann", 3000), "bob": _free("bob", 1000), "cyd": _free("cyd", 2000)}
    assert pick_agent(_ticket(), agents, presence).id == "bob"
    presence["bob"].ticket = "tk_otherticket1"  # ringing for someone else
    assert pick_agent(_ticket(), agents, presence).id == "cyd"
    assert pick_agent(_ticket(passed_by=("cyd",)), agents, presence).id == "ann"


def test_a_speaker_of_the_shoppers_language_is_waited_for_while_one_is_online() -> None:
    agents = [_agent("ann", "en"), _agent("luc", "fr", "en")]
    presence = {"ann": _free("ann", 1000), "luc": _free("luc", 2000)}
    assert pick_agent(_ticket("fr"), agents, presence).id == "luc"
    presence["luc"].status = AgentStatus.BUSY  # in a call: the French shopper waits for Luc
    assert pick_agent(_ticket("fr"), agents, presence) is None
    presence["luc"].status = AgentStatus.OFFLINE  # nobody French online: anyone is better than no one
    assert pick_agent(_ticket("fr"), agents, presence).id == "ann"
    assert pick_agent(_ticket("fr", passed_by=("ann",)), agents, presence) is None


def test_the_wait_estimate_grows_with_the_queue_and_shrinks_with_agents() -> None:
    assert estimate_wait_s(1, free_agents=1, online_agents=1, talk_s=120) == 15
    assert estimate_wait_s(3, free_agents=1, online_agents=1, talk_s=120) == 15 + 2 * 120
    assert estimate_wait_s(3, free_agents=1, online_agents=2, talk_s=120) == 15 + 120
    assert estimate_wait_s(1, free_agents=0, online_agents=0, talk_s=120) is None


def test_callback_slots_follow_the_shops_wall_clock_across_zones_and_dst() -> None:
    shanghai = ShopFields(
        name="S", timezone="Asia/Shanghai", opening_hours=[{"day": "mon", "opens": "09:00", "closes": "11:00"}]
    )
    now = datetime(2026, 3, 28, 12, 0, tzinfo=UTC)  # a Saturday; Paris springs forward on Sunday night
    slots = callback_slots(shanghai, now)
    assert [s.astimezone(ZoneInfo("Asia/Shanghai")).strftime("%a %H:%M") for s in slots] == [
        "Mon 09:00",
        "Mon 09:30",
        "Mon 10:00",
        "Mon 10:30",
    ]
    # The same instants for a shopper in Paris: 02:00 on Monday after the change to CEST (UTC+2).
    assert slots[0].astimezone(ZoneInfo("Europe/Paris")).strftime("%a %H:%M %Z") == "Mon 03:00 CEST"
    paris = ShopFields(
        name="P", timezone="Europe/Paris", opening_hours=[{"day": "sun", "opens": "01:00", "closes": "04:00"}]
    )
    local = [s.astimezone(ZoneInfo("Europe/Paris")).strftime("%H:%M") for s in callback_slots(paris, now)]
    assert local == ["01:00", "01:30", "03:00", "03:30"]  # 02:00-03:00 does not exist that night
    assert callback_slots(ShopFields(name="N"), now) == []  # never open: nothing to book


# -- through the desk ------------------------------------------------------------------------------


async def test_a_ring_that_times_out_moves_on_and_sets_the_agent_away() -> None:
    async with embedded_server(consult_ring_timeout_s=1.0, consult_sweep_s=0.1) as server:
        await make_shop(server, agents={"ann": ["en"], "bob": ["en"]})
        ann = await login_agent(server, "acme", "ann")
        bob = await login_agent(server, "acme", "bob")  # available after Ann: Ann has idled longer
        shopper = await enter_shopper(server)
        first = await ann.expect("ring")
        rang = ann.mark()
        await ann.expect("ring_cancelled", lambda m: (m["ticket"], m["reason"]) == (first["ticket"], "timeout"))
        away = await ann.expect("status", lambda m: m["status"] == "away", after=rang)
        assert away["reason"] == "missed a call"
        second = await bob.expect("ring")
        assert second["ticket"] == first["ticket"]
        await bob.send({"type": "decline", "ticket": second["ticket"]})
        await bob.expect("ring_cancelled", lambda m: m["reason"] == "declined")
        # Both passed: the shopper waits, and Ann coming back gets it again only as a new agent would not.
        mark = ann.mark()
        await ann.send({"type": "set_status", "status": "available"})
        await ann.expect("status", lambda m: m["status"] == "available", after=mark)
        queue = await bob.expect(
            "queue", lambda m: m["total"] == 1 and not m["entries"][0].get("ringing_agent"), after=bob.mark() - 1
        )
        assert queue["entries"][0]["ticket"] == first["ticket"]
        assert not [m for m in ann.received[mark:] if m["type"] == "ring"]
        # The call's room is the ticket's, from ring to ring (the shopper's connection waits at its door for the
        # next agent); an agent whose ring passed on is not in it, and may not come back into it.
        assert first["setup"]["room"] == second["setup"]["room"]
        async with server.api() as api:
            assert [r["name"] for r in (await api.get("/v1/rooms")).json()] == [first["setup"]["room"]]
        assert await server.runtime.state.rooms.list_participants(first["setup"]["room"]) == []
        async with websockets.connect(server.ws_url) as rtc:
            await rtc.send(json.dumps({"type": "join", "v": 1, "token": first["setup"]["token"]}))
            assert json.loads(await rtc.recv())["code"] == "permission_denied"
        for client in (ann, bob, shopper):
            await client.close()


async def test_language_routes_the_call_to_a_speaker() -> None:
    async with embedded_server() as server:
        await make_shop(server, agents={"ann": ["en"], "luc": ["fr", "en"]})
        ann = await login_agent(server, "acme", "ann")
        luc = await login_agent(server, "acme", "luc")
        shopper = await enter_shopper(server, language="fr")
        ring = await luc.expect("ring")
        assert ring["context"]["language"] == "fr"
        assert not [m for m in ann.received if m["type"] == "ring"]
        english = await enter_shopper(server, language="en")
        await ann.expect("ring")
        for client in (ann, luc, shopper, english):
            await client.close()


async def test_nobody_answering_within_the_shops_limit_offers_a_message_or_a_callback() -> None:
    async with embedded_server(consult_sweep_s=0.1) as server:
        await make_shop(server, max_wait_s=10)
        ann = await login_agent(server, "acme", "ann", available=False)  # online but away
        shopper = await enter_shopper(server, timezone="America/New_York")
        ticket = await shopper.expect("ticket")
        no_answer = await shopper.expect("no_answer", timeout=40)
        assert no_answer["slots_utc_ms"], "an always-open shop offers slots"
        await shopper.send(
            {
                "type": "book_callback",
                "name": "Kim",
                "contact": "+1 555 0100",
                "slot_utc_ms": no_answer["slots_utc_ms"][1],
            }
        )
        saved = await shopper.expect("request_saved")
        assert saved["request"]["kind"] == "callback"
        listed = await ann.expect("requests", lambda m: m["requests"])
        assert listed["requests"][0]["context"]["timezone"] == "America/New_York"
        async with server.api() as api:
            calls = (await api.get("/v1/shops/acme/calls")).json()
            requests = (await api.get("/v1/shops/acme/requests")).json()
        assert [(c["id"], c["outcome"]) for c in calls] == [(ticket["ticket"], "missed")]
        assert requests[0]["slot_utc_ms"] == no_answer["slots_utc_ms"][1]
        for client in (ann, shopper):
            await client.close()


async def test_a_closed_shop_takes_messages_and_only_offered_callback_slots() -> None:
    async with embedded_server() as server:
        await make_shop(server, hours=[{"day": "mon", "opens": "09:00", "closes": "10:00"}], timezone="Asia/Tokyo")
        async with server.api() as api:
            status = (await api.get("/v1/consult/acme/status")).json()
        shopper = await enter_shopper(server)
        closed = await shopper.expect("closed")
        if status["open"]:  # this test ran during the shop's one open hour of the week
            pytest.skip("the shop happens to be open right now")
        assert closed["next_opening_utc_ms"] == status["next_opening_utc_ms"]
        tokyo = [
            datetime.fromtimestamp(ms / 1000, ZoneInfo("Asia/Tokyo")).strftime("%a %H:%M")
            for ms in closed["slots_utc_ms"]
        ]
        assert tokyo and set(tokyo) <= {"Mon 09:00", "Mon 09:30"}
        await shopper.send(
            {
                "type": "book_callback",
                "name": "Kim",
                "contact": "kim@example.com",
                "slot_utc_ms": closed["slots_utc_ms"][0] + 60_000,
            }
        )
        refused = await shopper.expect("error")
        assert refused["code"] == "invalid_message" and "slot" in refused["message"]
        await shopper.send(
            {"type": "leave_message", "name": "Kim", "contact": "kim@example.com", "text": "Do you ship to Norway?"}
        )
        saved = await shopper.expect("request_saved")
        assert saved["request"]["text"] == "Do you ship to Norway?"
        await shopper.close()


@pytest.mark.redis
@pytest.mark.parametrize("coordination", ["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def test_the_queue_order_survives_a_restart(
    coordination: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    """Tickets are records: a restart in the same data folder finds the queue as it was."""
    redis_url = request.getfixturevalue("redis_db_url") if coordination == "redis" else None
    async with embedded_server(redis_url=redis_url, data_dir=str(tmp_path)) as server:
        await make_shop(server)
        away = await login_agent(server, "acme", "ann", available=False)
        tickets, shoppers = [], []
        for name in ("first", "second", "third"):
            shoppers.append(await enter_shopper(server, name=name))
            tickets.append((await shoppers[-1].expect("ticket"))["token"])
        for client in (away, *shoppers):  # gone before the restart: the tickets wait for their shoppers
            await client.close()
    async with embedded_server(redis_url=redis_url, data_dir=str(tmp_path)) as restarted:
        positions, resumed = {}, []
        for name, token in reversed(list(zip(("first", "second", "third"), tickets, strict=True))):
            resumed.append(await DeskClient.open(restarted, "shopper", origin="https://acme.example"))
            await resumed[-1].send({"type": "resume", "token": token})
            positions[name] = (await resumed[-1].expect("position"))["position"]
        assert positions == {"first": 1, "second": 2, "third": 3}
        console = await login_agent(restarted, "acme", "ann", available=False)
        queue = await console.expect("queue", lambda m: m["total"] == 3)
        assert [e["context"]["name"] for e in queue["entries"]] == ["first", "second", "third"]
        for client in (console, *resumed):
            await client.close()
