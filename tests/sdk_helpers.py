"""What the server-SDK tests share: the SDKs' folders, the Python SDK itself, and one real webhook delivery.

The Python SDK is a package of its own (``sdk/python``, not installed with the server), so it is imported
from its folder here, as a shop backend that vendors it would. It imports nothing of the server
(tests/test_sdk_python.py checks that in a fresh interpreter).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tests.servers import RunningServer
from tests.webhook_receiver import Hit, Receiver
from vitrine.core.webhooks import WebhookType

ROOT = Path(__file__).resolve().parent.parent
SDK_PYTHON = ROOT / "sdk" / "python"
SDK_NODE = ROOT / "sdk" / "node"
if str(SDK_PYTHON) not in sys.path:
    sys.path.insert(0, str(SDK_PYTHON))

import vitrine_server_sdk as sdk  # noqa: E402 - needs the path above

__all__ = ["ROOT", "SDK_NODE", "SDK_PYTHON", "deliver_event", "sdk"]


async def deliver_event(
    server: RunningServer, receiver: Receiver, shop_id: str, data: dict[str, Any] | None = None
) -> Hit:
    """A real event, signed and POSTed by the server's own dispatcher to ``receiver`` as ``shop_id``'s webhook."""
    async with server.api() as api:
        created = await api.post(
            "/v1/shops",
            json={"id": shop_id, "name": shop_id.title(), "webhook_url": receiver.url},
        )
        assert created.status_code == 201, created.text
    assert server.runtime is not None
    shop = await server.runtime.state.records.shops.get_shop(shop_id)
    assert shop is not None
    event = await server.runtime.webhooks.emit(shop, WebhookType.ADD_TO_CART, "consult-9", data or {"sku": "mug-1"})
    assert event is not None
    await receiver.wait_for(lambda: any(hit.event["id"] == event.id for hit in receiver.hits), "the delivery")
    return next(hit for hit in receiver.hits if hit.event["id"] == event.id)
