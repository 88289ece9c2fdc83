"""Webhook events, their per-shop keys and their signatures (pure: no I/O).

Vitrine POSTs each event as JSON to the shop's ``webhook_url`` with the header
``Vitrine-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(key, "<t>." + body)>``. The key
(``GET /v1/shops/{shop}/webhook-key``) is derived from the server secret, never stored, and
changes with ``POST .../webhook-key/rotate``. A shop's backend checks each request with ``verify``
on the raw body bytes; the timestamp bounds replays, ``Vitrine-Delivery`` (the event id) dedupes
retries, and ``seq`` orders the events of one ``room``::

    from vitrine.core.webhooks import WebhookSignatureError, verify
    async def receive(request):                        # any framework: the raw body and one header
        try: verify(WEBHOOK_KEY, await request.body(), request.headers["Vitrine-Signature"])
        except WebhookSignatureError as exc: return Response(status_code=400, content=exc.reason)
        event = json.loads(await request.body())       # then dedupe on event["id"], order by event["seq"]
        return Response(status_code=204)               # any 2xx acknowledges; anything else is retried
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pydantic import Field

from vitrine.core.models import ShopId, Strict, now_ms

if TYPE_CHECKING:
    from vitrine.core.config import Settings

KEY_PREFIX = "whsec_"
SIGNATURE_HEADER = "Vitrine-Signature"
DEFAULT_TOLERANCE_S = 300
MAX_FAILURES = 200  # the most dead letters one request lists (all are kept, as records)


class WebhookType(StrEnum):
    QUEUED = "consult.queued"
    ANSWERED = "consult.answered"
    MISSED = "consult.missed"
    ABANDONED = "consult.abandoned"
    ENDED = "consult.ended"
    PRODUCT_SHOWN = "consult.product_shown"
    ADD_TO_CART = "consult.add_to_cart"
    RATING = "consult.rating"
    REQUEST_CREATED = "consult.request_created"


def _event_id() -> str:
    return "evt_" + secrets.token_urlsafe(16)


class WebhookEvent(Strict):
    """One notification to a shop. ``id`` is stable across retries, so receivers can dedupe on it."""

    id: str = Field(default_factory=_event_id, min_length=1, max_length=64)
    type: WebhookType
    shop: ShopId
    room: str = Field(min_length=1, max_length=256)  # the consult/call id: the ordering key
    seq: int = Field(default=0, ge=0)  # 1, 2, ... per (shop, room); assigned by the outbox
    created_ms: int = Field(default_factory=now_ms)
    data: dict[str, Any] = Field(default_factory=dict)


class WebhookFailure(Strict):
    """A dead-lettered event: every attempt failed, ``reason`` is the last one."""

    event: WebhookEvent
    reason: str
    failed_ms: int = Field(default_factory=now_ms)


class SignatureFailure(StrEnum):
    MALFORMED = "malformed_header"
    OUTSIDE_TOLERANCE = "timestamp_outside_tolerance"
    MISMATCH = "signature_mismatch"


class WebhookSignatureError(ValueError):
    def __init__(self, reason: SignatureFailure) -> None:
        super().__init__(reason.value)
        self.reason = reason


def webhook_key(settings: Settings, shop_id: str, version: int) -> str:
    """The shop's signing key: a function of the server secret, so nothing secret is persisted.

    The shop id and version are both in the HMAC input: shops cannot derive each other's keys,
    and bumping the version yields an unrelated key (rotation).
    """
    digest = hmac.new(settings.secret_bytes, f"vitrine-webhook:{shop_id}:{version}".encode(), hashlib.sha256).digest()
    return KEY_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _mac(key: str, body: bytes, timestamp: int) -> str:
    return hmac.new(key.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def sign(key: str, body: bytes, timestamp: int) -> str:
    """The ``Vitrine-Signature`` header value; the timestamp is signed too, so it cannot be replaced."""
    return f"t={timestamp},v1={_mac(key, body, timestamp)}"


def verify(
    key: str, body: bytes, header: str, *, tolerance_s: int = DEFAULT_TOLERANCE_S, now: float | None = None
) -> None:
    """Raise ``WebhookSignatureError`` unless ``header`` signs ``body`` with ``key`` within ``tolerance_s``.

    Several ``v1=`` entries are accepted (any one may match), so a sender can sign with an old
    and a new key during a rotation.
    """
    timestamp, candidates = None, []
    for item in header.split(","):
        name, sep, value = item.strip().partition("=")
        if not sep or not value:
            raise WebhookSignatureError(SignatureFailure.MALFORMED)
        if name == "t":
            if timestamp is not None or not value.isascii() or not value.isdigit() or len(value) > 12:
                raise WebhookSignatureError(SignatureFailure.MALFORMED)
            timestamp = int(value)
        elif name == "v1":
            candidates.append(value)
    if timestamp is None or not candidates:
        raise WebhookSignatureError(SignatureFailure.MALFORMED)
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        raise WebhookSignatureError(SignatureFailure.OUTSIDE_TOLERANCE)
    expected = _mac(key, body, timestamp).encode()
    # Compare against every candidate (no early exit), each in constant time.
    matched = [hmac.compare_digest(expected, candidate.encode()) for candidate in candidates]
    if not any(matched):
        raise WebhookSignatureError(SignatureFailure.MISMATCH)
