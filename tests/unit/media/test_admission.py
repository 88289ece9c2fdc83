"""media/admission.py: the handshake gate lets ``limit`` joins through at once, queues the rest in arrival order,
tells each queued join its place (again while it waits, never a larger one), hands a freed slot to the head of the
line (never to a later arrival), and refuses (``worker_busy``) a join only when the line is full."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest

from media.admission import HandshakeGate, Slot, WorkerBusy
from vitrine.core.errors import ErrorCode

LONG_S = 60.0  # longer than any test: nothing here may expire by time unless the test asks for it


def gate(
    limit: int = 2, *, max_waiting: int = 100, timeout_s: float = LONG_S, notice_s: float = LONG_S
) -> HandshakeGate:
    return HandshakeGate(limit, max_waiting=max_waiting, timeout_s=timeout_s, notice_s=notice_s)


async def until(condition: object, limit_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + limit_s
    while not condition():  # type: ignore[operator]
        assert asyncio.get_running_loop().time() < deadline, "condition not reached"
        await asyncio.sleep(0.001)


async def test_joins_beyond_the_limit_wait_and_enter_in_arrival_order() -> None:
    g = gate(limit=2)
    first, second = await g.enter(), await g.enter()
    order: list[int] = []
    places: dict[int, list[int]] = {}

    async def join(i: int) -> Slot:
        async def told(position: int) -> None:
            places.setdefault(i, []).append(position)

        slot = await g.enter(told)
        order.append(i)
        return slot

    waiting = []
    for i in range(5):
        waiting.append(asyncio.create_task(join(i)))
        await until(lambda i=i: g.waiting == i + 1)
    assert g.in_flight == 2 and order == []
    assert places == {i: [i + 1] for i in range(5)}  # each told its place once, as it entered the line

    first.release()
    first.release()  # idempotent: one release frees one slot
    await until(lambda: order == [0])
    assert g.in_flight == 2 and g.waiting == 4
    late = asyncio.create_task(g.enter())  # a later arrival never overtakes the line
    await until(lambda: g.waiting == 5)
    second.release()
    await until(lambda: order == [0, 1])
    slots = [await t for t in waiting[:2]]
    for slot in slots:
        slot.release()
    await until(lambda: order == [0, 1, 2, 3])
    assert not late.done()
    for t in waiting[2:4]:
        (await t).release()
    await until(lambda: order == [0, 1, 2, 3, 4] and late.done())
    (await waiting[4]).release()
    (await late).release()
    assert g.in_flight == 0 and g.waiting == 0
    assert g.queued == 6 and g.refused == 0 and g.peak == 2


async def test_only_a_full_line_is_refused_and_a_long_wait_is_told_again_with_places_that_only_shrink() -> None:
    g = gate(limit=1, max_waiting=2, notice_s=0.01)
    held = await g.enter()
    places: dict[str, list[int]] = {"first": [], "second": []}

    def listener(name: str) -> Callable[[int], Awaitable[None]]:
        async def told(position: int) -> None:
            places[name].append(position)

        return told

    first = asyncio.create_task(g.enter(listener("first")))
    await until(lambda: g.waiting == 1)
    second = asyncio.create_task(g.enter(listener("second")))
    await until(lambda: g.waiting == 2)
    with pytest.raises(WorkerBusy) as full:
        await g.enter()
    assert full.value.code is ErrorCode.WORKER_BUSY and g.refused == 1
    await until(lambda: len(places["first"]) >= 3 and len(places["second"]) >= 3)  # told again while waiting
    held.release()
    first_slot = await first
    await until(lambda: places["second"][-1] == 1)  # moved up once the first had its turn
    first_slot.release()
    (await second).release()
    assert set(places["first"]) == {1}
    assert places["second"] == sorted(places["second"], reverse=True) and places["second"][0] == 2
    assert g.in_flight == 0 and g.waiting == 0 and g.refused == 1


async def test_a_cancelled_waiter_leaves_the_line_and_a_slot_it_was_just_given_goes_on() -> None:
    g = gate(limit=1)
    held = await g.enter()
    gone = asyncio.create_task(g.enter())
    after = asyncio.create_task(g.enter())
    await until(lambda: g.waiting == 2)
    held.release()  # the slot is handed to ``gone``...
    gone.cancel()  # ...which is cancelled before it runs: the slot must reach ``after``
    with pytest.raises(asyncio.CancelledError):
        await gone
    slot = await asyncio.wait_for(after, 10)
    assert g.in_flight == 1 and g.waiting == 0
    slot.release()
    assert g.in_flight == 0


async def test_a_handshake_that_never_ends_gives_its_slot_up_after_the_timeout() -> None:
    g = gate(limit=1, timeout_s=0.05)
    stuck = await g.enter()
    nxt = await asyncio.wait_for(g.enter(), 10)  # entered once the stuck one's slot expired
    assert stuck.released and g.expired == 1 and g.in_flight == 1
    stuck.release()  # its late end frees nothing more
    assert g.in_flight == 1
    nxt.release()
    assert g.in_flight == 0


async def test_a_listener_that_fails_costs_no_place() -> None:
    g = gate(limit=1)
    held = await g.enter()

    async def broken(position: int) -> None:
        raise RuntimeError("signaling unreachable")

    waiter = asyncio.create_task(g.enter(broken))
    await until(lambda: g.waiting == 1)
    held.release()
    (await asyncio.wait_for(waiter, 10)).release()
    assert g.in_flight == 0
