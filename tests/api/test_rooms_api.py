"""The REST API and room lifecycle, seen from real clients."""

from __future__ import annotations

import asyncio

from loadtest.client import VitrineClient
from tests.media_helpers import av_tracks, remote_tracks
from tests.servers import RunningServer, embedded_server
from vitrine.core.auth import verify_token
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Role


async def _until(predicate, timeout: float = 20.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        assert asyncio.get_running_loop().time() < deadline, "condition not reached in time"
        await asyncio.sleep(0.05)


async def test_room_crud(server: RunningServer) -> None:
    async with server.api() as api:
        created = await api.post("/v1/rooms", json={"name": "inspect-42", "kind": "inspection", "max_participants": 3})
        assert created.status_code == 201
        assert created.json()["kind"] == "inspection" and created.json()["max_participants"] == 3
        again = await api.post("/v1/rooms", json={"name": "inspect-42"})
        assert again.status_code == 409 and again.json()["code"] == "room_exists"
        bad = await api.post("/v1/rooms", json={"name": "../etc", "kind": "party"})
        assert bad.status_code == 422 and bad.json()["code"] == "invalid_message"
        assert [r["name"] for r in (await api.get("/v1/rooms")).json()] == ["inspect-42"]
        detail = (await api.get("/v1/rooms/inspect-42")).json()
        assert detail["participants"] == [] and detail["tracks"] == []
        assert (await api.delete("/v1/rooms/inspect-42")).status_code == 200
        missing = await api.get("/v1/rooms/inspect-42")
        assert missing.status_code == 404 and missing.json()["code"] == "room_not_found"


async def test_minted_tokens_join(server: RunningServer) -> None:
    async with server.api() as api:
        await api.post("/v1/rooms", json={"name": "consult-api"})
        minted = await api.post(
            "/v1/tokens", json={"room": "consult-api", "identity": "ana", "role": "customer", "ttl_s": 120}
        )
    assert minted.status_code == 200
    body = minted.json()
    assert body["ws_url"] == server.ws_url
    claims = verify_token(server.settings, body["token"])
    assert claims.grants == ROLE_DEFAULT_GRANTS[Role.CUSTOMER] and not claims.grants.room_create
    client = VitrineClient(server.url, body["token"])
    try:
        joined = await client.connect()
        assert joined["participant"]["identity"] == "ana"
    finally:
        await client.close()


async def test_participant_cap(server: RunningServer) -> None:
    async with server.api() as api:
        await api.post("/v1/rooms", json={"name": "one-to-one", "max_participants": 2})
    clients = [VitrineClient(server.url, server.token("one-to-one", f"p{i}", create=False)) for i in range(3)]
    try:
        await clients[0].connect()
        await clients[1].connect()
        try:
            await clients[2].connect()
        except ConnectionError as exc:
            assert "room_full" in str(exc)
        else:
            raise AssertionError("a third participant joined a room capped at 2")
    finally:
        for client in clients:
            await client.close()


async def test_same_identity_replaces_the_older_session(server: RunningServer) -> None:
    first = VitrineClient(server.url, server.token("dup", "agent-1", Role.AGENT))
    second = VitrineClient(server.url, server.token("dup", "agent-1", Role.AGENT))
    try:
        await first.connect()
        await second.connect()
        await first.wait_closed(timeout=20)
        assert first.leave_notice and "identity" in first.leave_notice["reason"]
        async with server.api() as api:
            participants = (await api.get("/v1/rooms/dup")).json()["participants"]
        assert [p["sid"] for p in participants] == [second.joined["participant"]["sid"]]
    finally:
        await first.close()
        await second.close()


async def test_closing_a_room_disconnects_everyone(server: RunningServer) -> None:
    host = VitrineClient(server.url, server.token("closing", "host", Role.HOST), tracks=av_tracks())
    viewer = VitrineClient(server.url, server.token("closing", "viewer", Role.VIEWER, create=False))
    try:
        await host.connect()
        await viewer.connect()
        await remote_tracks(viewer, 2)
        async with server.api() as api:
            assert (await api.delete("/v1/rooms/closing")).status_code == 200
        await host.wait_closed(timeout=20)
        await viewer.wait_closed(timeout=20)
        assert viewer.leave_notice and viewer.leave_notice["reason"] == "the room was closed"
        assert any(e["event"] == "room_closed" for e in viewer.events)
        await _until(lambda: server.runtime.media_worker.media_stats()["rooms"] == 0)
    finally:
        await host.close()
        await viewer.close()


async def test_hidden_participants_are_not_announced(server: RunningServer) -> None:
    agent = VitrineClient(server.url, server.token("supervised", "agent", Role.AGENT), tracks=av_tracks())
    supervisor_grants = ROLE_DEFAULT_GRANTS[Role.AGENT].model_copy(update={"hidden": True, "can_publish": False})
    supervisor = VitrineClient(server.url, server.token("supervised", "qa", Role.AGENT, grants=supervisor_grants))
    customer = VitrineClient(server.url, server.token("supervised", "shopper"))
    try:
        await agent.connect()
        await supervisor.connect()
        await remote_tracks(supervisor, 2)  # the hidden supervisor still watches
        joined = await customer.connect()
        assert "qa" not in [p["identity"] for p in joined["participants"]]
        assert all(e.get("participant", {}).get("identity") != "qa" for e in agent.events)
    finally:
        for client in (customer, supervisor, agent):
            await client.close()


async def test_idle_and_join_timeouts_close_the_socket() -> None:
    async with embedded_server(idle_timeout_s=1.0, join_timeout_s=1.0) as server:
        silent = VitrineClient(server.url, server.token("quiet", "someone"))
        try:
            await silent.connect()
            await silent.wait_closed(timeout=20)
            assert silent.leave_notice == {"type": "leave", "reason": "idle timeout", "reconnect": False}
        finally:
            await silent.close()
        import websockets

        async with websockets.connect(server.ws_url) as ws:  # never sends join
            message = await asyncio.wait_for(ws.recv(), 20)
            assert '"join timeout"' in message


async def test_the_client_keeps_its_session_alive(monkeypatch) -> None:
    import loadtest.client
    from signaling.metrics import METRICS

    monkeypatch.setattr(loadtest.client, "PING_INTERVAL_S", 0.2)
    async with embedded_server(idle_timeout_s=1.0) as server:
        client = VitrineClient(server.url, server.token("kept", "alive"))
        pings = METRICS.signaling_messages.labels(type="ping")
        try:
            await client.connect()
            start = pings._value.get()
            await _until(lambda: pings._value.get() >= start + 10)  # well past the 1 s idle timeout
            assert client.leave_notice is None and not client._closed.is_set()
        finally:
            await client.close()
