"""Webhooks never reach loopback, private, link-local or metadata addresses unless the operator allows them:
not when the URL is set, and not when a public-looking name resolves to one at delivery (DNS rebinding)."""

from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import pytest

from tests.desk_helpers import make_shop
from tests.servers import embedded_server
from tests.webhook_receiver import serve_receiver
from vitrine.core.webhooks import WebhookType

REFUSED = [
    "http://localhost:8080/hooks",
    "http://127.0.0.1:9/hooks",
    "https://169.254.169.254/latest/meta-data",
    "https://10.1.2.3/hooks",
    "https://192.168.0.10/",
    "https://100.64.0.1/",
    "https://0.0.0.0/",
    "https://2130706433/hooks",
    "https://127.1/hooks",
    "https://224.0.0.1/",
    "https://app.localhost/",
]
ACME = {"id": "acme", "name": "Acme", "allowed_origins": ["https://acme.example"]}


async def test_a_default_server_refuses_non_public_webhook_targets_when_they_are_set() -> None:
    async with embedded_server(webhook_allowed_networks=[]) as server, server.api() as api:
        for url in REFUSED:
            created = await api.post("/v1/shops", json=ACME | {"webhook_url": url})
            assert (created.status_code, created.json()["code"]) == (422, "url_not_allowed"), url
            assert "VITRINE_WEBHOOK_ALLOWED_NETWORKS" in created.json()["message"]
        assert (
            await api.post("/v1/shops", json=ACME | {"webhook_url": "https://hooks.example.com/v"})
        ).status_code == 201  # a name is judged at delivery, by what it resolves to
        for url in REFUSED[:3]:
            patched = await api.patch("/v1/shops/acme", json={"webhook_url": url})
            assert (patched.status_code, patched.json()["code"]) == (422, "url_not_allowed"), url
        assert (await api.get("/v1/shops/acme")).json()["webhook_url"] == "https://hooks.example.com/v"


async def test_an_allowed_network_is_accepted() -> None:
    async with embedded_server(webhook_allowed_networks=["10.0.0.0/8"]) as server, server.api() as api:
        assert (await api.post("/v1/shops", json=ACME | {"webhook_url": "https://10.1.2.3/h"})).status_code == 201
        refused = await api.patch("/v1/shops/acme", json={"webhook_url": "https://192.168.0.10/h"})
        assert refused.status_code == 422


async def test_delivery_to_a_name_that_resolves_to_loopback_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    resolve = loop.getaddrinfo

    async def rebinding(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if host == "rebind.example":  # public when the URL was set; loopback when the webhook goes out
            return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port))]
        return await resolve(host, port, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", rebinding)
    async with (
        serve_receiver() as receiver,
        embedded_server(
            webhook_allowed_networks=[],
            webhook_retry_base_s=0.01,
            webhook_retry_max_s=0.02,
            webhook_max_attempts=2,
            webhook_sweep_s=0.1,
        ) as server,
        server.api() as api,
    ):
        port = int(receiver.url.split(":")[2].split("/")[0])
        await make_shop(server)
        url = f"https://rebind.example:{port}/hooks/vitrine"
        assert (await api.patch("/v1/shops/acme", json={"webhook_url": url})).status_code == 200
        shop = await server.runtime.state.records.shops.get_shop("acme")
        await server.runtime.webhooks.emit(shop, WebhookType.ENDED, "consult-1", {})
        deadline = time.monotonic() + 20
        while not (failures := (await api.get("/v1/shops/acme/webhook-failures")).json()):
            assert time.monotonic() < deadline, "the event was never dead-lettered"
            await asyncio.sleep(0.05)
    assert "non-public" in failures[0]["reason"] and "loopback" in failures[0]["reason"], failures
    assert receiver.hits == []  # not one connection reached it
