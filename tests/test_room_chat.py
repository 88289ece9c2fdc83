"""A room's chat over /v1/rtc: one ordered log per room, history for late joiners, resume after a reconnect."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.desk_helpers import DeskClient
from tests.servers import RunningServer, embedded_server
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Role


async def join(server: RunningServer, token: str) -> DeskClient:
    socket = await DeskClient.connect(server.ws_url)
    await socket.send({"type": "join", "token": token})
    await socket.expect("joined")
    return socket


def seqs(messages: list[dict[str, Any]]) -> list[int]:
    return [m["entry"]["seq"] for m in messages]


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def chat_server(request: pytest.FixtureRequest) -> AsyncIterator[RunningServer]:
    overrides = {"redis_url": request.getfixturevalue("redis_db_url")} if request.param == "redis" else {}
    async with embedded_server(**overrides) as running:
        yield running


async def test_a_late_joiner_gets_the_history_then_the_live_chat(chat_server: RunningServer) -> None:
    host = await join(chat_server, chat_server.token("show-1", "host", Role.HOST))
    for n in range(3):
        await host.send({"type": "chat", "text": f"welcome {n}"})
    await host.expect("log", count=3)
    late = await join(chat_server, chat_server.token("show-1", "late", Role.VIEWER, create=False))
    assert late.of("joined")[0]["log_seq"] == 3
    await late.send({"type": "history"})
    history = await late.expect("history")
    assert [e["text"] for e in history["entries"]] == ["welcome 0", "welcome 1", "welcome 2"]
    assert history["last_seq"] == 3 and [e["participant"]["identity"] for e in history["entries"]] == ["host"] * 3
    await late.send({"type": "chat", "text": "hi!"})
    live = await host.expect("log", count=4)
    assert (live["entry"]["seq"], live["entry"]["participant"]["identity"]) == (4, "late")
    assert seqs(late.of("log")) == [4]  # the late joiner got no live copy of what history gave it
    for socket in (host, late):
        await socket.close()


async def test_a_reconnect_resumes_without_a_gap_or_a_duplicate(chat_server: RunningServer) -> None:
    host = await join(chat_server, chat_server.token("show-2", "host", Role.HOST))
    token = chat_server.token("show-2", "phone", Role.VIEWER, create=False)
    phone = await join(chat_server, token)
    for n in range(2):
        await host.send({"type": "chat", "text": f"before {n}"})
    await phone.expect("log", count=2)
    last_seen = phone.of("log")[-1]["entry"]["seq"]
    await phone.close()
    for n in range(3):
        await host.send({"type": "chat", "text": f"while away {n}"})
    await host.expect("log", count=5)
    back = await join(chat_server, token)
    await back.send({"type": "history", "after": last_seen})
    missed = await back.expect("history")
    await back.send({"type": "chat", "text": "after"})  # (the host has used its burst of five)
    await back.expect("log")
    assert [e["seq"] for e in missed["entries"]] + seqs(back.of("log")) == [3, 4, 5, 6]
    for socket in (host, back):
        await socket.close()


async def test_concurrent_writers_get_one_order_everyone_sees(chat_server: RunningServer) -> None:
    roles = [Role.HOST] + [Role.VIEWER] * 4
    writers = [
        await join(chat_server, chat_server.token("show-3", f"w{i}", role, create=i == 0))
        for i, role in enumerate(roles)
    ]
    await asyncio.gather(
        *(w.send({"type": "chat", "text": f"{i}-{n}"}) for n in range(5) for i, w in enumerate(writers))
    )
    for writer in writers:
        await writer.expect("log", count=25)
        assert seqs(writer.of("log")) == list(range(1, 26))
    first = writers[0].of("log")
    assert all([m["entry"] for m in w.of("log")] == [m["entry"] for m in first] for w in writers)
    await writers[1].send({"type": "history", "after": 0, "limit": 200})
    history = await writers[1].expect("history")
    assert history["entries"] == [m["entry"] for m in first]
    for writer in writers:
        await writer.close()


async def test_chat_is_limited_and_needs_the_grant(server: RunningServer) -> None:
    host = await join(server, server.token("show-4", "host", Role.HOST))
    for n in range(12):
        await host.send({"type": "chat", "text": f"flood {n}"})
    limited = await host.expect("error")
    assert (limited["code"], limited["ref"]) == ("rate_limited", "chat")
    assert len(host.of("log")) < 12
    await host.send({"type": "chat", "text": "x" * 501})
    too_long = await host.expect("error", lambda m: m["code"] != "rate_limited")
    assert too_long["code"] == "invalid_message" and "500" in too_long["message"]
    silent = ROLE_DEFAULT_GRANTS[Role.VIEWER].model_copy(update={"can_chat": False})
    muted = await join(server, server.token("show-4", "muted", Role.VIEWER, create=False, grants=silent))
    await muted.send({"type": "chat", "text": "let me speak"})
    refused = await muted.expect("error")
    assert (refused["code"], refused["ref"]) == ("permission_denied", "chat")
    await muted.send({"type": "ping", "ts": 1})
    assert (await muted.expect("pong"))["ts"] == 1  # the socket lives on
    for socket in (host, muted):
        await socket.close()


async def test_closing_the_room_forgets_its_chat(server: RunningServer) -> None:
    host = await join(server, server.token("show-5", "host", Role.HOST))
    await host.send({"type": "chat", "text": "<img src=x onerror=alert(1)>"})
    assert (await host.expect("log"))["entry"]["text"] == "<img src=x onerror=alert(1)>"  # text, as typed
    async with server.api() as api:
        (await api.delete("/v1/rooms/show-5")).raise_for_status()
    again = await join(server, server.token("show-5", "host", Role.HOST))
    assert again.of("joined")[0]["log_seq"] == 0
    for socket in (host, again):
        await socket.close()
