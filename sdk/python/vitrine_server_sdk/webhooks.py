"""Webhook signatures: ``Vitrine-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>." + body)>``.

The scheme is Stripe's, key format (``whsec_...``, used as is) included, so Stripe's verifiers accept it too.
This is the SDK's own code, not the server's: a backend needs nothing of Vitrine installed to check a call.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

SIGNATURE_HEADER = "Vitrine-Signature"
DELIVERY_HEADER = "Vitrine-Delivery"  # the event id, stable across retries: dedupe on it
DEFAULT_TOLERANCE_S = 300


class WebhookSignatureError(ValueError):
    """The request is not a genuine, fresh delivery. ``reason`` is one of the three codes below."""

    MALFORMED = "malformed_header"
    OUTSIDE_TOLERANCE = "timestamp_outside_tolerance"
    MISMATCH = "signature_mismatch"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _mac(key: str, body: bytes, timestamp: int) -> str:
    return hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign_webhook(key: str, body: bytes, timestamp: int | None = None) -> str:
    """A ``Vitrine-Signature`` value, as the server makes it: for testing your own receiver."""
    stamp = int(time.time()) if timestamp is None else timestamp
    return f"t={stamp},v1={_mac(key, body, stamp)}"


def verify_webhook(
    key: str, body: bytes, header: str, *, tolerance_s: int = DEFAULT_TOLERANCE_S, now: float | None = None
) -> None:
    """Raise ``WebhookSignatureError`` unless ``header`` signs the raw ``body`` with ``key`` within ``tolerance_s``.

    Pass the bytes as received: re-serialized JSON does not match. Any of several ``v1`` entries may match
    (a rotation), and entries of other schemes are ignored, as Stripe's verifiers do.
    """
    if not isinstance(body, bytes | bytearray):
        raise TypeError("body must be the raw request bytes")
    timestamp, candidates = None, []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep or not value:
            raise WebhookSignatureError(WebhookSignatureError.MALFORMED)
        if name == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit() or len(value) > 12:
                raise WebhookSignatureError(WebhookSignatureError.MALFORMED)
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise WebhookSignatureError(WebhookSignatureError.MALFORMED)
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        raise WebhookSignatureError(WebhookSignatureError.OUTSIDE_TOLERANCE)
    expected = _mac(key, bytes(body), timestamp).encode()
    matched = [hmac.compare_digest(expected, candidate.encode()) for candidate in candidates]  # no early exit
    if not any(matched):
        raise WebhookSignatureError(WebhookSignatureError.MISMATCH)


def parse_webhook(
    key: str, body: bytes, header: str, *, tolerance_s: int = DEFAULT_TOLERANCE_S, now: float | None = None
) -> dict[str, Any]:
    """The verified event ``{id, type, shop, room, seq, created_ms, data}``; dedupe on ``id``."""
    verify_webhook(key, body, header, tolerance_s=tolerance_s, now=now)
    event = json.loads(body)
    if not isinstance(event, dict):
        raise ValueError("a genuine delivery whose body is not an event object")
    return event
