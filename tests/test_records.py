"""Contract tests of the record stores (``vitrine.core.records``), on the embedded SQLite and on PostgreSQL.

Every test runs twice through the ``records`` fixture (tests/conftest.py): an opened ``Records`` on a
fresh database at the head revision. Concurrency is real: many operations in flight at once through
one engine's pool, and, where the code promises an order across nodes, through two engines (two
"nodes") on the same database.
"""

from __future__ import annotations

import asyncio
import random
from decimal import Decimal

import pytest
import sqlalchemy as sa

from signaling.consult.models import (
    CallOutcome,
    CallRecord,
    ContactRequest,
    RequestKind,
    ShopperContext,
    TicketState,
)
from signaling.records import Records
from tests.records_helpers import a_call, a_shop, a_ticket, another_node
from vitrine.core.models import ParticipantView, Role
from vitrine.core.records import roomlog as roomlog_module
from vitrine.core.records import tables
from vitrine.core.records.database import ForeignRecord
from vitrine.core.records.roomlog import whole_log
from vitrine.core.shops import Agent, Product
from vitrine.core.webhooks import MAX_FAILURES, WebhookEvent, WebhookType
from vitrine.core.wire.inspect import Artifact, ArtifactKind, Case, CaseState, Erasure, Note
from vitrine.core.wire.live import LiveState, Moderation, ModerationAction, Reaction, Show, ShowState
from vitrine.core.wire.rtc import LogEntry

# -- builders -------------------------------------------------------------------------


def an_agent(shop: str, agent_id: str, name: str = "Agent") -> Agent:
    return Agent(id=agent_id, shop=shop, display_name=name, languages=["en", "fr"])


def a_product(sku: str, price: str = "12.50") -> Product:
    return Product(
        sku=sku, title=f"Product {sku}", price=Decimal(price), currency="EUR", url=f"https://acme.example/p/{sku}"
    )


def a_request(shop: str, n: int, created_ms: int, resolved_ms: int | None = None) -> ContactRequest:
    return ContactRequest(
        id=f"rq_request{n:0>4}",
        shop=shop,
        kind=RequestKind.CALLBACK,
        context=ShopperContext(),
        name=f"Shopper {n}",
        contact="shopper@example.com",
        created_ms=created_ms,
        resolved_ms=resolved_ms,
        resolved_by="alice" if resolved_ms else None,
    )


def a_case(shop: str, created_at_ms: int, order_ref: str, buyer_ref: str | None = None) -> Case:
    return Case(
        shop=shop, created_at_ms=created_at_ms, order_ref=order_ref, claim="arrived scratched", buyer_ref=buyer_ref
    )


def a_show(shop: str, created_at_ms: int, scheduled_at_ms: int | None = None, title: str = "Show") -> Show:
    return Show(
        shop=shop, title=title, created_at_ms=created_at_ms, scheduled_at_ms=scheduled_at_ms, products=["SKU-1"]
    )


def an_event(shop: str, room: str, type_: WebhookType = WebhookType.QUEUED, **data: object) -> WebhookEvent:
    return WebhookEvent(type=type_, shop=shop, room=room, data=dict(data))


def chat(text: str, at_ms: int = 1_000) -> LogEntry:
    who = ParticipantView(sid="PA_1", identity="ann", role=Role.VIEWER, name="Ann")
    return LogEntry(seq=0, kind="chat", participant=who, at_ms=at_ms, text=text)


async def rows_of(records: Records, table: sa.Table, shop_id: str) -> int:
    async with records.db.transaction() as conn:
        return int(await conn.scalar(sa.select(sa.func.count()).select_from(table).where(table.c.shop_id == shop_id)))


# -- shops -----------------------------------------------------------------------------


async def test_shops_create_get_update_list(records: Records) -> None:
    shops = records.shops
    assert await shops.create_shop(a_shop("globex", created_at_ms=2_000))
    assert await shops.create_shop(a_shop("acme", created_at_ms=3_000))
    assert await shops.create_shop(a_shop("initech", created_at_ms=1_000))

    # An id that exists is refused, and the stored shop is untouched.
    assert not await shops.create_shop(a_shop("acme", created_at_ms=9_000, name="Impostor"))
    stored = await shops.get_shop("acme")
    assert stored == a_shop("acme", created_at_ms=3_000)
    assert await shops.get_shop("nobody") is None

    # Oldest first, by creation time (not by id).
    assert [s.id for s in await shops.list_shops()] == ["initech", "globex", "acme"]

    renamed = stored.model_copy(update={"name": "Acme Corp", "max_wait_s": 300})
    assert await shops.update_shop(renamed)
    assert await shops.get_shop("acme") == renamed
    assert [s.id for s in await shops.list_shops()] == ["initech", "globex", "acme"]

    # Updating a shop that does not exist writes nothing.
    assert not await shops.update_shop(a_shop("nobody"))
    assert await shops.get_shop("nobody") is None
    assert len(await shops.list_shops()) == 3


async def test_agents_and_products_are_scoped_by_shop(records: Records) -> None:
    shops = records.shops
    assert await shops.create_shop(a_shop("acme"))
    assert await shops.create_shop(a_shop("globex"))

    assert await shops.put_agent(an_agent("acme", "zoe"))
    assert await shops.put_agent(an_agent("acme", "alice"))
    assert await shops.put_agent(an_agent("globex", "alice", name="Other Alice"))
    assert [a.id for a in await shops.list_agents("acme")] == ["alice", "zoe"]  # by id
    assert (await shops.get_agent("globex", "alice")).display_name == "Other Alice"

    # Put replaces.
    assert await shops.put_agent(an_agent("acme", "alice", name="Alice B."))
    assert (await shops.get_agent("acme", "alice")).display_name == "Alice B."
    assert (await shops.get_agent("globex", "alice")).display_name == "Other Alice"
    assert len(await shops.list_agents("acme")) == 2

    # Under a shop that does not exist: refused, nothing written.
    assert not await shops.put_agent(an_agent("nobody", "alice"))
    assert await shops.get_agent("nobody", "alice") is None
    assert await shops.list_agents("nobody") == []
    assert not await shops.put_product("nobody", a_product("SKU-1"))
    assert await shops.list_products("nobody") == []

    assert await shops.put_product("acme", a_product("SKU-2"))
    assert await shops.put_product("acme", a_product("SKU-1", price="1000.0001"))
    assert await shops.put_product("globex", a_product("SKU-1", price="3"))
    assert [p.sku for p in await shops.list_products("acme")] == ["SKU-1", "SKU-2"]
    product = await shops.get_product("acme", "SKU-1")
    assert product == a_product("SKU-1", price="1000.0001") and product.price == Decimal("1000.0001")
    assert (await shops.get_product("globex", "SKU-1")).price == Decimal("3")
    assert await shops.put_product("acme", a_product("SKU-1", price="9.99"))
    assert (await shops.get_product("acme", "SKU-1")).price == Decimal("9.99")

    # Deletes return what they removed, only in the named shop.
    assert await shops.delete_agent("globex", "zoe") is None
    assert (await shops.delete_agent("acme", "zoe")).id == "zoe"
    assert await shops.delete_agent("acme", "zoe") is None
    assert (await shops.delete_product("acme", "SKU-1")).price == Decimal("9.99")
    assert await shops.get_product("acme", "SKU-1") is None
    assert await shops.get_product("globex", "SKU-1") is not None


async def test_delete_shop_cascades_to_everything_it_owns(records: Records) -> None:
    for n, shop_id in enumerate(("acme", "globex")):  # ids are unique across shops, as the server makes them
        assert await records.shops.create_shop(a_shop(shop_id))
        assert await records.shops.put_agent(an_agent(shop_id, "alice"))
        assert await records.shops.put_product(shop_id, a_product("SKU-1"))
        await records.consult.save_ticket(a_ticket(shop_id, 10 + n, 100))
        await records.consult.save_call(a_call(shop_id, 20 + n, 100))
        await records.consult.save_request(a_request(shop_id, 30 + n, 100))
        await records.cases.save(a_case(shop_id, 100, "O-1", "b-1"))
        await records.cases.add_erasure(shop_id, Erasure(id=f"er_{shop_id}", at_ms=100, cases=1, artifacts=2))
        await records.shows.put_show(a_show(shop_id, 100))
        event = await records.outbox.append(an_event(shop_id, "tk_ticket0001"))
        await records.outbox.dead_letter(shop_id, event, "HTTP 500")

    owned = [table for table in tables.metadata.sorted_tables if "shop_id" in table.c]
    assert {table.name for table in owned} == {
        "agents",
        "products",
        "tickets",
        "call_records",
        "contact_requests",
        "cases",
        "erasures",
        "shows",
        "webhook_events",
        "webhook_seqs",
        "webhook_failures",
    }
    for table in owned:
        assert await rows_of(records, table, "acme") == 1, table.name

    deleted = await records.shops.delete_shop("acme")
    assert deleted == a_shop("acme")
    assert await records.shops.delete_shop("acme") is None
    assert await records.shops.get_shop("acme") is None

    for table in owned:
        assert await rows_of(records, table, "acme") == 0, f"{table.name} kept rows of a deleted shop"
        assert await rows_of(records, table, "globex") == 1, f"{table.name} lost another shop's rows"
    assert await records.shops.list_agents("acme") == []
    assert await records.consult.tickets("acme") == []
    assert await records.cases.recent("acme", None) == []
    assert await records.shows.list_shows("acme") == []
    assert await records.outbox.pending_shops() == ["globex"]

    # A new shop of the same id starts empty: its webhook seqs start again at 1.
    assert await records.shops.create_shop(a_shop("acme"))
    assert (await records.outbox.append(an_event("acme", "tk_ticket0001"))).seq == 1
    assert await records.outbox.failures("acme", 10) == []


# -- consult ---------------------------------------------------------------------------


async def test_tickets_in_queue_order(records: Records) -> None:
    consult = records.consult
    await records.shops.create_shop(a_shop("acme"))
    await records.shops.create_shop(a_shop("globex"))
    await consult.save_ticket(a_ticket("acme", 3, 300))
    await consult.save_ticket(a_ticket("acme", "b", 200))
    await consult.save_ticket(a_ticket("acme", "a", 200))  # same entry time: by id
    await consult.save_ticket(a_ticket("acme", 1, 100))
    await consult.save_ticket(a_ticket("globex", 9, 50))
    assert [t.id for t in await consult.tickets("acme")] == [
        "tk_ticket0001",
        "tk_ticket000a",
        "tk_ticket000b",
        "tk_ticket0003",
    ]

    # Saving again replaces the ticket; the queue order follows its entry time.
    ringing = a_ticket("acme", 1, 400).model_copy(update={"state": TicketState.RINGING, "ringing_agent": "alice"})
    await consult.save_ticket(ringing)
    assert await consult.ticket("acme", "tk_ticket0001") == ringing
    assert [t.id for t in await consult.tickets("acme")][-1] == "tk_ticket0001"
    assert len(await consult.tickets("acme")) == 4

    assert await consult.ticket("globex", "tk_ticket0001") is None  # scoped by shop
    assert [t.id for t in await consult.tickets("globex")] == ["tk_ticket0009"]


async def test_an_id_of_another_shop_is_never_overwritten(records: Records) -> None:
    """Ids are random, but a write naming another shop's record must fail, not move it across shops."""
    for shop in ("acme", "globex"):
        await records.shops.create_shop(a_shop(shop))
    await records.consult.save_ticket(a_ticket("acme", 1, 100))
    await records.consult.save_call(a_call("acme", 1, 100))
    case = a_case("acme", 100, "A-1")
    await records.cases.save(case)
    show = a_show("acme", 100)
    await records.shows.put_show(show)
    for write in (
        records.consult.save_ticket(a_ticket("globex", 1, 200)),
        records.consult.save_call(a_call("globex", 1, 200)),
        records.cases.save(case.model_copy(update={"shop": "globex"})),
        records.shows.put_show(show.model_copy(update={"shop": "globex", "title": "Taken"})),
    ):
        with pytest.raises(ForeignRecord):
            await write
    assert (await records.consult.ticket("acme", "tk_ticket0001")).entered_ms == 100
    assert (await records.consult.call("acme", "tk_ticket0001")).queued_ms == 100
    assert await records.cases.get("acme", case.id) == case
    assert (await records.shows.get_show("acme", show.id)).title == show.title
    assert await records.consult.tickets("globex") == [] and await records.cases.recent("globex", None) == []


async def test_finish_stores_the_call_and_drops_the_ticket(records: Records) -> None:
    consult = records.consult
    await records.shops.create_shop(a_shop("acme"))
    await consult.save_ticket(a_ticket("acme", 1, 100))
    await consult.save_ticket(a_ticket("acme", 2, 200))

    record = a_call("acme", 1, 100)
    await consult.finish(record)
    assert await consult.ticket("acme", "tk_ticket0001") is None
    assert await consult.call("acme", "tk_ticket0001") == record
    assert [t.id for t in await consult.tickets("acme")] == ["tk_ticket0002"]

    # Finishing again (a retry) leaves one record, the latest.
    rated = record.model_copy(update={"rating": 5, "comment": "great"})
    await consult.finish(rated)
    assert await consult.calls("acme", 10) == [rated]


async def test_finish_is_one_transaction(records: Records, monkeypatch: pytest.MonkeyPatch) -> None:
    """If dropping the ticket fails, the call record written just before it is rolled back too."""
    consult = records.consult
    await records.shops.create_shop(a_shop("acme"))
    await consult.save_ticket(a_ticket("acme", 1, 100))

    def failing_delete() -> sa.Delete:
        return sa.delete(tables.tickets).where(sa.text("no_such_column = 1"))

    monkeypatch.setattr(tables.tickets, "delete", failing_delete)
    with pytest.raises(sa.exc.DBAPIError):
        await consult.finish(a_call("acme", 1, 100))
    monkeypatch.undo()

    assert await consult.call("acme", "tk_ticket0001") is None
    assert await consult.calls("acme", 10) == []
    assert await consult.ticket("acme", "tk_ticket0001") is not None


async def test_calls_newest_first_with_filters(records: Records) -> None:
    consult = records.consult
    await records.shops.create_shop(a_shop("acme"))
    await records.shops.create_shop(a_shop("globex"))
    calls = [
        a_call("acme", 1, 100, "alice"),
        a_call("acme", 2, 200, "bob"),
        a_call("acme", 3, 300, None, CallOutcome.MISSED),
        a_call("acme", 4, 400, "alice"),
        a_call("acme", 5, 500, "alice"),
        a_call("acme", 6, 400, "bob"),
    ]
    for record in random.Random(7).sample(calls, len(calls)):
        await consult.save_call(record)
    await consult.save_call(a_call("globex", 7, 450, "alice"))

    def ids(found: list[CallRecord]) -> list[int]:
        return [int(record.id[-4:]) for record in found]

    assert ids(await consult.calls("acme", 100)) == [5, 6, 4, 3, 2, 1]  # same time: by id, newest id first
    assert ids(await consult.calls("acme", 2)) == [5, 6]
    assert ids(await consult.calls("acme", 100, agent="alice")) == [5, 4, 1]
    assert ids(await consult.calls("acme", 100, since_ms=300)) == [5, 6, 4, 3]  # inclusive
    assert ids(await consult.calls("acme", 100, until_ms=400)) == [3, 2, 1]  # exclusive
    assert ids(await consult.calls("acme", 100, agent="bob", since_ms=200, until_ms=401)) == [6, 2]
    assert await consult.calls("acme", 100, agent="nobody") == []
    assert ids(await consult.calls("globex", 100)) == [7]
    assert await consult.call("globex", "tk_ticket0001") is None

    # An update moves the record under its new agent.
    await consult.save_call(calls[0].model_copy(update={"agent": "bob", "notes": "handed over"}))
    assert ids(await consult.calls("acme", 100, agent="alice")) == [5, 4]
    assert ids(await consult.calls("acme", 100, agent="bob")) == [6, 2, 1]
    assert (await consult.call("acme", "tk_ticket0001")).notes == "handed over"


async def test_contact_requests_newest_first_and_open_only(records: Records) -> None:
    consult = records.consult
    await records.shops.create_shop(a_shop("acme"))
    await records.shops.create_shop(a_shop("globex"))
    await consult.save_request(a_request("acme", 1, 100))
    await consult.save_request(a_request("acme", 2, 200, resolved_ms=250))
    await consult.save_request(a_request("acme", 3, 300))
    await consult.save_request(a_request("globex", 4, 400))

    def ids(found: list[ContactRequest]) -> list[int]:
        return [int(r.id[-4:]) for r in found]

    assert ids(await consult.requests("acme", 10, open_only=False)) == [3, 2, 1]
    assert ids(await consult.requests("acme", 10, open_only=True)) == [3, 1]
    assert ids(await consult.requests("acme", 1, open_only=True)) == [3]

    resolved = a_request("acme", 3, 300, resolved_ms=900)
    await consult.save_request(resolved)
    assert await consult.request("acme", resolved.id) == resolved
    assert ids(await consult.requests("acme", 10, open_only=True)) == [1]
    assert ids(await consult.requests("acme", 10, open_only=False)) == [3, 2, 1]
    assert await consult.request("globex", resolved.id) is None
    assert ids(await consult.requests("globex", 10, open_only=True)) == [4]


# -- cases -----------------------------------------------------------------------------


async def test_cases_save_get_recent_and_filters(records: Records) -> None:
    cases = records.cases
    await records.shops.create_shop(a_shop("acme"))
    await records.shops.create_shop(a_shop("globex"))
    c1 = a_case("acme", 100, "O-1", "b-1")
    c2 = a_case("acme", 200, "O-2", "b-1")
    c3 = a_case("acme", 300, "O-1")
    c4 = a_case("acme", 300, "O-3", "b-2")
    other = a_case("globex", 400, "O-1", "b-1")
    for case in (c3, c1, other, c4, c2):
        await cases.save(case)

    def newest_first(*found: Case) -> list[str]:
        return [c.id for c in sorted(found, key=lambda c: (c.created_at_ms, c.id), reverse=True)]

    assert [c.id for c in await cases.recent("acme", None)] == newest_first(c1, c2, c3, c4)
    assert [c.id for c in await cases.recent("acme", 2)] == newest_first(c1, c2, c3, c4)[:2]
    assert [c.id for c in await cases.recent("acme", None, order_ref="O-1")] == [c3.id, c1.id]
    assert [c.id for c in await cases.recent("acme", None, buyer_ref="b-1")] == [c2.id, c1.id]
    assert [c.id for c in await cases.recent("acme", None, order_ref="O-1", buyer_ref="b-1")] == [c1.id]
    assert await cases.recent("acme", None, order_ref="O-404") == []
    assert [c.id for c in await cases.recent("globex", None, order_ref="O-1")] == [other.id]

    assert await cases.get("acme", c1.id) == c1
    assert await cases.get("globex", c1.id) is None
    assert await cases.exists("acme", c1.id)
    assert not await cases.exists("globex", c1.id)
    assert not await cases.exists("acme", "cs_000000000000")

    # A save replaces the whole case, and its query columns follow.
    artifact = Artifact(
        id="ar_0123456789abcdef",
        kind=ArtifactKind.PHOTO,
        file="ar_0123456789abcdef.jpg",
        content_type="image/jpeg",
        bytes=1234,
        sha256="a" * 64,
        captured_at_ms=350,
        source="buyer camera",
        width=1920,
        height=1080,
    )
    closed = c3.model_copy(
        update={
            "state": CaseState.CLOSED,
            "closed_at_ms": 500,
            "buyer_ref": "b-3",
            "artifacts": [artifact],
            "notes": [Note(at_ms=360, author="ins", text="dent")],
        }
    )
    await cases.save(closed)
    assert await cases.get("acme", c3.id) == closed
    assert [c.id for c in await cases.recent("acme", None, buyer_ref="b-3")] == [c3.id]
    assert len(await cases.recent("acme", None)) == 4

    await cases.delete("globex", c1.id)  # another shop's id: nothing happens
    assert await cases.exists("acme", c1.id)
    await cases.delete("acme", c1.id)
    assert await cases.get("acme", c1.id) is None
    assert not await cases.exists("acme", c1.id)
    assert [c.id for c in await cases.recent("acme", None, order_ref="O-1")] == [c3.id]


async def test_erasures_newest_first(records: Records) -> None:
    cases = records.cases
    await records.shops.create_shop(a_shop("acme"))
    await records.shops.create_shop(a_shop("globex"))
    for n, at in enumerate((100, 300, 200, 300)):
        await cases.add_erasure("acme", Erasure(id=f"er_{n}", at_ms=at, cases=n, artifacts=2 * n))
    await cases.add_erasure("globex", Erasure(id="er_x", at_ms=999, cases=1, artifacts=1))

    found = await cases.erasures("acme", 10)
    assert [(e.id, e.at_ms) for e in found] == [("er_3", 300), ("er_1", 300), ("er_2", 200), ("er_0", 100)]
    assert found[0] == Erasure(id="er_3", at_ms=300, cases=3, artifacts=6)
    assert [e.id for e in await cases.erasures("acme", 2)] == ["er_3", "er_1"]
    assert [e.id for e in await cases.erasures("globex", 10)] == ["er_x"]
    assert await cases.erasures("nobody", 10) == []


# -- shows -----------------------------------------------------------------------------


async def test_shows_list_window_on_scheduled_time(records: Records) -> None:
    shows = records.shows
    await records.shops.create_shop(a_shop("acme"))
    await records.shops.create_shop(a_shop("globex"))
    s1 = a_show("acme", created_at_ms=100, scheduled_at_ms=5_000)
    s2 = a_show("acme", created_at_ms=200)  # never scheduled: its creation time counts
    s3 = a_show("acme", created_at_ms=300, scheduled_at_ms=1_000)
    s4 = a_show("acme", created_at_ms=400, scheduled_at_ms=9_000)
    for show in (s3, s1, s4, s2):
        await shows.put_show(show)
    await shows.put_show(a_show("globex", created_at_ms=500, scheduled_at_ms=1_000))

    def ids(found: list[Show]) -> list[str]:
        return [s.id for s in found]

    assert ids(await shows.list_shows("acme")) == [s4.id, s3.id, s2.id, s1.id]  # newest creation first
    assert ids(await shows.list_shows("acme", 2)) == [s4.id, s3.id]
    assert ids(await shows.list_shows("acme", since_ms=1_000, until_ms=9_000)) == [s3.id, s1.id]
    assert ids(await shows.list_shows("acme", since_ms=1_001, until_ms=5_001)) == [s1.id]
    assert ids(await shows.list_shows("acme", since_ms=1_000, until_ms=5_000)) == [s3.id]  # until: exclusive
    assert ids(await shows.list_shows("acme", until_ms=1_000)) == [s2.id]
    assert ids(await shows.list_shows("acme", since_ms=9_000)) == [s4.id]  # since: inclusive

    assert await shows.get_show("acme", s1.id) == s1
    assert await shows.get_show("globex", s1.id) is None

    # Rescheduling moves the show in the window; the record follows.
    live = s1.model_copy(update={"scheduled_at_ms": 20_000, "state": ShowState.LIVE, "started_at_ms": 19_000})
    await shows.put_show(live)
    assert await shows.get_show("acme", s1.id) == live
    assert ids(await shows.list_shows("acme", since_ms=1_000, until_ms=9_000)) == [s3.id]
    assert ids(await shows.list_shows("acme", since_ms=10_000)) == [s1.id]


async def test_live_state_bans_and_mutes(records: Records) -> None:
    shows = records.shows
    room, other = "live-sh_aaaaaaaaaaaa", "live-sh_bbbbbbbbbbbb"
    assert await shows.get_state(room) is None
    state = LiveState(show_id="sh_aaaaaaaaaaaa", title="Spring drop", state=ShowState.LIVE, viewers=3)
    await shows.put_state(room, state)
    assert await shows.get_state(room) == state
    changed = state.model_copy(update={"slow_mode_s": 5, "pinned_message": 12, "sold_out": ["SKU-1"]})
    await shows.put_state(room, changed)
    assert await shows.get_state(room) == changed
    assert await shows.get_state(other) is None

    assert not await shows.is_banned(room, "troll")
    await shows.set_banned(room, "troll", True)
    await shows.set_banned(room, "troll", True)  # idempotent
    assert await shows.is_banned(room, "troll")
    assert not await shows.is_banned(other, "troll")
    await shows.set_banned(room, "troll", False)
    await shows.set_banned(room, "troll", False)
    assert not await shows.is_banned(room, "troll")

    assert await shows.muted_until(room, "loud") == 0
    await shows.mute_until(room, "loud", 5_000)
    assert await shows.muted_until(room, "loud") == 5_000
    await shows.mute_until(room, "loud", 7_000)
    assert await shows.muted_until(room, "loud") == 7_000
    assert await shows.muted_until(other, "loud") == 0
    await shows.mute_until(room, "loud", None)
    assert await shows.muted_until(room, "loud") == 0


async def test_counters_are_exact_under_concurrency(records: Records) -> None:
    room = "live-sh_counters0000"
    assert await records.shows.stats(room) == {}
    async with another_node(records) as node2:
        stores = [records.shows, node2.shows]
        await asyncio.gather(
            *(stores[i % 2].count(room, "likes") for i in range(120)),
            *(stores[i % 2].count(room, "messages", 3) for i in range(40)),
            *(stores[i % 2].count(room, "clicks:SKU-1", 2) for i in range(30)),
        )
        peaks = list(range(1, 61))
        random.Random(3).shuffle(peaks)
        await asyncio.gather(*(stores[i % 2].raise_to(room, "peak_viewers", value) for i, value in enumerate(peaks)))
        assert await node2.shows.stats(room) == {"likes": 120, "messages": 120, "clicks:SKU-1": 60, "peak_viewers": 60}

    await records.shows.raise_to(room, "peak_viewers", 10)  # lower: no change
    await records.shows.count(room, "likes", -5)
    await records.shows.count("live-sh_elsewhere000", "likes")
    assert await records.shows.stats(room) == {"likes": 115, "messages": 120, "clicks:SKU-1": 60, "peak_viewers": 60}
    assert await records.shows.stats("live-sh_elsewhere000") == {"likes": 1}


async def test_delete_show_removes_its_room_state(records: Records) -> None:
    shows, log = records.shows, records.roomlog
    await records.shops.create_shop(a_shop("acme"))
    gone, kept = a_show("acme", 100), a_show("acme", 200)
    for show in (gone, kept):
        await shows.put_show(show)
        await shows.put_state(show.room, LiveState(show_id=show.id, title=show.title, state=ShowState.LIVE))
        await shows.count(show.room, "likes", 4)
        await shows.set_banned(show.room, "troll", True)
        await shows.mute_until(show.room, "loud", 9_000)
        for n in range(3):
            await log.append(show.room, chat(f"hello {n}"), keep=roomlog_module.SHOW_MAX_ENTRIES)

    assert await shows.delete_show("globex", gone.id) is None  # another shop's id: nothing happens
    assert await shows.get_state(gone.room) is not None
    assert await shows.delete_show("acme", gone.id) == gone
    assert await shows.delete_show("acme", gone.id) is None

    assert await shows.get_show("acme", gone.id) is None
    assert await shows.get_state(gone.room) is None
    assert await shows.stats(gone.room) == {}
    assert not await shows.is_banned(gone.room, "troll")
    assert await shows.muted_until(gone.room, "loud") == 0
    assert await log.after(gone.room, 0, 100) == []
    assert await log.last_seq(gone.room) == 0

    assert [s.id for s in await shows.list_shows("acme")] == [kept.id]
    assert await shows.get_state(kept.room) is not None
    assert await shows.stats(kept.room) == {"likes": 4}
    assert await shows.is_banned(kept.room, "troll")
    assert await shows.muted_until(kept.room, "loud") == 9_000
    assert [e.seq for e in await log.after(kept.room, 0, 100)] == [1, 2, 3]


# -- room log --------------------------------------------------------------------------


async def test_room_log_append_after_last_seq(records: Records) -> None:
    log, room = records.roomlog, "consult-room-1"
    assert await log.last_seq(room) == 0
    assert await log.after(room, 0, 10) == []

    first = await log.append(room, chat("hi").model_copy(update={"seq": 99}))  # its own seq is ignored
    assert first == chat("hi").model_copy(update={"seq": 1})
    reactions = LogEntry(seq=0, kind="reactions", at_ms=2_000, reactions={Reaction.LIKE: 3, Reaction.FIRE: 1})
    mod = LogEntry(
        seq=0,
        kind="moderation",
        at_ms=3_000,
        moderation=Moderation(action=ModerationAction.MUTE, identity="ann", seconds=60),
    )
    assert (await log.append(room, reactions)).seq == 2
    assert (await log.append(room, mod)).seq == 3
    for n in range(4, 8):
        assert (await log.append(room, chat(f"line {n}"))).seq == n
    assert (await log.append("consult-room-2", chat("elsewhere"))).seq == 1

    entries = await log.after(room, 0, 100)
    assert [e.seq for e in entries] == list(range(1, 8))
    assert entries[0] == first
    assert entries[1] == reactions.model_copy(update={"seq": 2})
    assert entries[2] == mod.model_copy(update={"seq": 3})
    assert [e.seq for e in await log.after(room, 3, 2)] == [4, 5]
    assert await log.after(room, 7, 10) == []
    assert await log.last_seq(room) == 7
    assert [e.seq async for e in whole_log(log, room)] == list(range(1, 8))


async def test_room_log_remove_and_drop(records: Records) -> None:
    log, room = records.roomlog, "consult-room-1"
    for n in range(1, 6):
        await log.append(room, chat(f"line {n}"))

    removed = await log.remove(room, 3)
    assert removed == chat("line 3").model_copy(update={"seq": 3})
    assert await log.remove(room, 3) is None
    assert await log.remove("other-room", 2) is None
    assert [e.seq for e in await log.after(room, 0, 100)] == [1, 2, 4, 5]
    assert await log.last_seq(room) == 5
    assert (await log.append(room, chat("line 6"))).seq == 6  # a removed seq is never given again

    await log.append("other-room", chat("kept"))
    await log.drop(room)
    assert await log.after(room, 0, 100) == []
    assert await log.last_seq(room) == 0
    assert (await log.append(room, chat("again"))).seq == 1
    assert [e.text for e in await log.after("other-room", 0, 100)] == ["kept"]


async def test_room_log_is_one_total_order_across_nodes(records: Records) -> None:
    """Two nodes (two engines) append to one room at once: every seq 1..N exactly once, in commit order."""
    room, per_node = "live-sh_concurrent00", 60
    async with another_node(records) as node2:
        logs = [records.roomlog, node2.roomlog]
        appended = await asyncio.gather(
            *(logs[i % 2].append(room, chat(f"m{i}", at_ms=i)) for i in range(2 * per_node))
        )
        assert sorted(entry.seq for entry in appended) == list(range(1, 2 * per_node + 1))
        by_seq = {entry.seq: entry.text for entry in appended}
        for log in logs:
            stored = await log.after(room, 0, 1_000)
            assert [entry.seq for entry in stored] == list(range(1, 2 * per_node + 1))
            assert {entry.seq: entry.text for entry in stored} == by_seq
            assert await log.last_seq(room) == 2 * per_node


async def test_room_log_trim_keeps_about_keep(records: Records) -> None:
    log, room, keep, total = records.roomlog, "consult-room-trim", 10, 250
    every = roomlog_module.TRIM_EVERY
    for start in range(0, total, 50):  # batches of concurrent appends
        await asyncio.gather(*(log.append(room, chat(f"line {n}"), keep=keep) for n in range(start, start + 50)))
    entries = await log.after(room, 0, 10_000)
    seqs = [e.seq for e in entries]
    assert seqs == list(range(seqs[0], total + 1)), "the newest entries are kept, without gaps"
    assert keep <= len(entries) <= keep + every
    assert await log.last_seq(room) == total

    # Under ``keep`` nothing is ever cut.
    short = "consult-room-short"
    for n in range(every + 5):
        await log.append(short, chat(f"line {n}"), keep=every * 2)
    assert len(await log.after(short, 0, 10_000)) == every + 5


# -- webhook outbox --------------------------------------------------------------------


async def test_outbox_seq_per_shop_and_room_and_fifo(records: Records) -> None:
    outbox = records.outbox
    await records.shops.create_shop(a_shop("acme"))
    await records.shops.create_shop(a_shop("globex"))
    assert await outbox.pending_shops() == []
    assert await outbox.peek("acme") is None

    raw = an_event("acme", "tk_room1", n=1)
    a1 = await outbox.append(raw)
    assert a1.seq == 1 and raw.seq == 0  # what was stored; the caller's event is not changed
    assert a1 == raw.model_copy(update={"seq": 1})
    a2 = await outbox.append(an_event("acme", "tk_room1", WebhookType.ANSWERED, n=2))
    a3 = await outbox.append(an_event("acme", "tk_room2", n=3))
    g1 = await outbox.append(an_event("globex", "tk_room1", n=4))
    a4 = await outbox.append(an_event("acme", "tk_room1", WebhookType.ENDED, n=5))
    assert [a1.seq, a2.seq, a3.seq, g1.seq, a4.seq] == [1, 2, 1, 1, 3]
    assert await outbox.pending_shops() == ["acme", "globex"]

    assert await outbox.peek("acme") == a1
    assert await outbox.peek("acme") == a1  # peek does not remove
    await outbox.ack("acme", a2.id)  # not the head: nothing removed
    await outbox.ack("acme", "evt_unknown")
    await outbox.ack("acme", g1.id)  # another shop's event
    await outbox.ack("globex", a1.id)
    assert await outbox.peek("acme") == a1
    assert await outbox.peek("globex") == g1

    delivered = []
    while (head := await outbox.peek("acme")) is not None:
        delivered.append(head)
        await outbox.ack("acme", head.id)
        await outbox.ack("acme", head.id)  # a late duplicate ack removes nothing more
    assert delivered == [a1, a2, a3, a4]
    assert await outbox.pending_shops() == ["globex"]

    # Seqs go on after the queue drained: receivers order a room's events by them.
    assert (await outbox.append(an_event("acme", "tk_room1"))).seq == 4
    assert (await outbox.append(an_event("acme", "tk_room3"))).seq == 1


async def test_outbox_concurrent_appends_keep_room_order(records: Records) -> None:
    """Appends racing on two nodes: a room's events are queued in their seq order, 1..N."""
    await records.shops.create_shop(a_shop("acme"))
    async with another_node(records) as node2:
        outboxes = [records.outbox, node2.outbox]
        stored = await asyncio.gather(
            *(outboxes[i % 2].append(an_event("acme", f"tk_room{i % 3}", i=i)) for i in range(60))
        )
    for room in ("tk_room0", "tk_room1", "tk_room2"):
        assert sorted(e.seq for e in stored if e.room == room) == list(range(1, 21))
    delivered = []
    while (head := await records.outbox.peek("acme")) is not None:
        delivered.append(head)
        await records.outbox.ack("acme", head.id)
    assert sorted(e.id for e in delivered) == sorted(e.id for e in stored)
    for room in ("tk_room0", "tk_room1", "tk_room2"):
        assert [e.seq for e in delivered if e.room == room] == list(range(1, 21))


async def test_outbox_dead_letters_newest_first_and_all_kept(records: Records) -> None:
    outbox = records.outbox
    await records.shops.create_shop(a_shop("acme"))
    await records.shops.create_shop(a_shop("globex"))
    head = await outbox.append(an_event("acme", "tk_room1"))
    total = MAX_FAILURES + 5
    for n in range(total):
        await outbox.dead_letter("acme", an_event("acme", f"tk_dead{n}"), f"HTTP 500 #{n}")
    await outbox.dead_letter("globex", an_event("globex", "tk_g"), "timeout")

    failures = await outbox.failures("acme", total + 100)
    assert len(failures) == total  # records: none is dropped past MAX_FAILURES
    assert [f.reason for f in failures] == [f"HTTP 500 #{n}" for n in reversed(range(total))]
    assert failures[-1].event.room == "tk_dead0"
    assert [f.reason for f in await outbox.failures("acme", 2)] == [f"HTTP 500 #{total - 1}", f"HTTP 500 #{total - 2}"]
    assert await outbox.failures("acme", 0) == []
    assert [f.reason for f in await outbox.failures("globex", 10)] == ["timeout"]

    # Dead-lettering records the failure only: the queue is the caller's to ack.
    await outbox.dead_letter("acme", head, "gave up")
    assert await outbox.peek("acme") == head
    assert (await outbox.failures("acme", 1))[0].event == head
