"""Stripe's own webhook verifier accepts Vitrine's signatures: the scheme (``t=..,v1=..``) and the key format
(``whsec_...``, used as is) are Stripe's, so a backend that already checks Stripe webhooks can check Vitrine's
with the same code, only reading the ``Vitrine-Signature`` header instead of ``Stripe-Signature``.

The signatures are the server's own, on real deliveries to a receiver over loopback.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
import stripe

from tests.sdk_helpers import deliver_event
from tests.servers import RunningServer
from tests.webhook_receiver import Hit, Receiver, serve_receiver
from vitrine.core.webhooks import SIGNATURE_HEADER, sign

# Not ASCII, so the check covers Stripe decoding the body as UTF-8 before it signs it again.
DATA = {"sku": "THÉ-01", "title": "Théière en fonte 铸铁茶壶", "price": "49.00"}


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with serve_receiver() as running:
        yield running


async def _delivery(server: RunningServer, receiver: Receiver) -> tuple[Hit, str, str]:
    hit = await deliver_event(server, receiver, "acme", DATA)
    async with server.api() as api:
        key = (await api.get("/v1/shops/acme/webhook-key")).json()["key"]
    return hit, hit.headers[SIGNATURE_HEADER.lower()], key


async def test_stripe_accepts_a_real_vitrine_signature(server: RunningServer, receiver: Receiver) -> None:
    hit, header, key = await _delivery(server, receiver)
    assert key.startswith("whsec_") and b"\\u" not in hit.body and "铸铁".encode() in hit.body
    assert stripe.WebhookSignature.verify_header(hit.body, header, key, tolerance=300) is True
    event = stripe.Webhook.construct_event(hit.body, header, key)
    assert (event["id"], event["type"], event["shop"]) == (hit.event["id"], "consult.add_to_cart", "acme")
    assert event["data"].to_dict() == DATA


async def test_stripe_refuses_what_vitrine_refuses(server: RunningServer, receiver: Receiver) -> None:
    hit, header, key = await _delivery(server, receiver)
    stamp = int(header.split(",")[0].removeprefix("t="))
    tampered = hit.body.replace(b"49.00", b"0.49")
    assert tampered != hit.body
    old = int(time.time()) - 600
    mismatch = "No signatures found matching"
    forgeries = {
        "tampered body": (tampered, header, key, mismatch),
        "another shop's key": (hit.body, header, key[:-4] + "AAAA", mismatch),
        "signed ten minutes ago": (hit.body, sign(key, hit.body, old), key, "tolerance"),
        "timestamp swapped": (hit.body, header.replace(f"t={stamp}", f"t={stamp + 1}"), key, mismatch),
        "no v1 entry": (hit.body, f"t={stamp}", key, "expected scheme"),
    }
    for name, (body, value, secret, why) in forgeries.items():
        with pytest.raises(stripe.SignatureVerificationError) as info:
            stripe.Webhook.construct_event(body, value, secret, tolerance=300)
        assert why in str(info.value), (name, str(info.value))
