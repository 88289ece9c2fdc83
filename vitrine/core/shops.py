"""Shops (tenants): embed origins, opening hours, agents and the product catalog.

Models and pure logic only; storage is ``vitrine.core.records.shops.ShopStore``, the REST API
``signaling.routes.shops``. Everything here is operator input that ends up in a
customer's browser (the embed, product cards), so every string is length-limited and
every URL is checked against the shop's own allow-list before it is stored.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Annotated
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, field_validator, model_validator

from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import SLUG_PATTERN, ShopId, Strict, now_ms

SKU_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"

AgentId = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
Sku = Annotated[str, StringConstraints(pattern=SKU_PATTERN)]


def _lower(value: object) -> object:
    return value.lower() if isinstance(value, str) else value


def _dedupe(values: list[str]) -> list[str]:
    return list(dict.fromkeys(values))


# BCP 47 primary language subtag ("en", "zh"); regions and scripts are not needed to route a call.
LanguageTag = Annotated[str, BeforeValidator(_lower), StringConstraints(pattern=r"^[a-z]{2,3}$")]
Languages = Annotated[list[LanguageTag], Field(min_length=1, max_length=16), AfterValidator(_dedupe)]

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_HOSTNAME = re.compile(rf"^(?=.{{1,253}}$){_LABEL}(?:\.{_LABEL})*$")
_DEV_HOSTS = {"localhost", "127.0.0.1"}
# Browsers read '\' as '/' and strip tabs and newlines, so "https://evil.example\@shop.example" goes to
# evil.example while urlsplit reports shop.example. Such URLs are refused outright, never parsed.
_UNSAFE_URL_CHARS = re.compile(r"[\x00-\x20\x7f\\]")
MAX_URL_LENGTH = 2048


def normalize_origin(value: str) -> str:
    """An exact web origin ``scheme://host[:port]``, lowercased: what browsers send as ``Origin``.

    https only, except http on localhost and 127.0.0.1 so a shop can develop its embed locally.
    """
    if len(value) > 300 or _UNSAFE_URL_CHARS.search(value):
        raise ValueError(f"not an origin: {value!r}")
    parts = urlsplit(value.lower())
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"bad port in origin {value!r}") from exc
    host = parts.hostname or ""
    if parts.path or parts.query or parts.fragment or "@" in parts.netloc or not _HOSTNAME.match(host):
        raise ValueError(f"an origin is scheme://host[:port] with no path, query or user: {value!r}")
    if not _secure_scheme(parts.scheme, host):
        raise ValueError(f"origins must be https (http only for localhost): {value!r}")
    return f"{parts.scheme}://{host}" + (f":{port}" if port is not None else "")


def _secure_scheme(scheme: str, host: str) -> bool:
    """https, or http on localhost/127.0.0.1 only: plain http elsewhere would expose the traffic."""
    return scheme == "https" or (scheme == "http" and host in _DEV_HOSTS)


def normalize_webhook_url(value: str) -> str:
    """An absolute https URL (http on localhost for development) without credentials or fragment.

    Same scheme rule as origins: event bodies carry customer activity, so they never travel in clear
    text to a public host. Scheme and host are lowercased; path and query are kept as given.
    """
    if len(value) > MAX_URL_LENGTH or _UNSAFE_URL_CHARS.search(value):
        raise ValueError("webhook_url: too long, or contains spaces, control characters or backslashes")
    parts = urlsplit(value)
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError("webhook_url: bad port") from exc
    scheme, host = parts.scheme.lower(), parts.hostname or ""
    if "@" in parts.netloc or parts.fragment or not _HOSTNAME.match(host):
        raise ValueError("webhook_url: needs a valid host, and no user:password@ or #fragment")
    if not _secure_scheme(scheme, host):
        raise ValueError("webhook_url: must be https (http only for localhost)")
    netloc = host + (f":{port}" if port is not None else "")
    return f"{scheme}://{netloc}{parts.path}" + (f"?{parts.query}" if parts.query else "")


def normalize_link_host(value: str) -> str:
    """A hostname, or ``*.domain`` for any subdomain of domain (not the domain itself)."""
    host = value.lower()
    bare = host[2:] if host.startswith("*.") else host
    if not _HOSTNAME.match(bare) or (host.startswith("*.") and "." not in bare):
        raise ValueError(f"not a hostname or *.domain: {value!r}")
    return host


def host_allowed(host: str, link_hosts: list[str]) -> bool:
    return any(host.endswith(p[1:]) if p.startswith("*.") else host == p for p in link_hosts)


def url_allowed(url: str, link_hosts: list[str]) -> bool:
    """True for an https URL, without credentials, whose host is in ``link_hosts``."""
    if len(url) > MAX_URL_LENGTH or _UNSAFE_URL_CHARS.search(url):
        return False
    parts = urlsplit(url)
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    host = parts.hostname or ""
    return (
        parts.scheme.lower() == "https"
        and "@" not in parts.netloc
        and bool(_HOSTNAME.match(host))
        and host_allowed(host, link_hosts)
    )


def _known_zone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown IANA time zone: {value!r}") from exc
    return value


TimeZoneName = Annotated[str, StringConstraints(max_length=64), AfterValidator(_known_zone)]


class Weekday(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


WEEKDAYS = list(Weekday)  # index == date.weekday()
HourMinute = Annotated[str, StringConstraints(pattern=r"^(?:[01]\d|2[0-3]):[0-5]\d$|^24:00$")]


def _minutes(hhmm: str) -> int:
    hours, minutes = hhmm.split(":")
    return int(hours) * 60 + int(minutes)


class OpeningSpan(Strict):
    """Open from ``opens`` (inclusive) to ``closes`` (exclusive), local wall time of the shop.

    Spans stay within one day; a night opening is two spans, e.g. fri 20:00-24:00 and sat 00:00-02:00.
    """

    day: Weekday
    opens: HourMinute
    closes: HourMinute

    @model_validator(mode="after")
    def _ordered(self) -> OpeningSpan:
        if _minutes(self.closes) <= _minutes(self.opens):
            raise ValueError(f"{self.day}: closes ({self.closes}) must be after opens ({self.opens})")
        return self


class ShopFields(Strict):
    """What an operator sets on a shop; ``PATCH`` merges into these and re-validates the whole."""

    name: str = Field(min_length=1, max_length=128)
    allowed_origins: list[str] = Field(default_factory=list, max_length=32)
    # Empty means "the hosts of allowed_origins", filled in at validation and then stored as is.
    link_hosts: list[str] = Field(default_factory=list, max_length=32)
    timezone: TimeZoneName = "UTC"
    opening_hours: list[OpeningSpan] = Field(default_factory=list, max_length=70)  # empty: never open
    languages: Languages = Field(default_factory=lambda: ["en"])
    max_wait_s: int = Field(default=120, ge=10, le=3600)  # queue limit before leave-a-message
    webhook_url: str | None = Field(default=None, max_length=MAX_URL_LENGTH)  # None: no webhooks
    # Signing key generation (``vitrine.core.webhooks.webhook_key``): PATCH cannot change it, the rotate endpoint
    # bumps it.
    webhook_key_version: int = Field(default=1, ge=1)
    # After-sales inspection: a case's evidence is deleted this many days after the case closes (or after it
    # was opened, for a case that never closed).
    evidence_retention_days: int = Field(default=180, ge=1, le=3650)

    @field_validator("webhook_url")
    @classmethod
    def _webhook_url(cls, value: str | None) -> str | None:
        return None if value is None else normalize_webhook_url(value)

    @field_validator("allowed_origins")
    @classmethod
    def _origins(cls, values: list[str]) -> list[str]:
        return _dedupe([normalize_origin(v) for v in values])

    @field_validator("link_hosts")
    @classmethod
    def _link_hosts(cls, values: list[str]) -> list[str]:
        return _dedupe([normalize_link_host(v) for v in values])

    @field_validator("opening_hours")
    @classmethod
    def _no_overlap(cls, spans: list[OpeningSpan]) -> list[OpeningSpan]:
        ordered = sorted(spans, key=lambda s: (WEEKDAYS.index(s.day), _minutes(s.opens)))
        for before, after in zip(ordered, ordered[1:]):
            if before.day == after.day and _minutes(after.opens) < _minutes(before.closes):
                raise ValueError(f"{after.day}: {before.opens}-{before.closes} overlaps {after.opens}-{after.closes}")
        return ordered

    @model_validator(mode="after")
    def _default_link_hosts(self) -> ShopFields:
        if not self.link_hosts:
            self.link_hosts = _dedupe([urlsplit(o).hostname or "" for o in self.allowed_origins])
        return self


class NewShop(ShopFields):
    id: ShopId


class Shop(NewShop):
    created_at_ms: int = Field(default_factory=now_ms)  # set by the server, never by the POST body


def local_time(shop: ShopFields, at: datetime) -> datetime:
    """``at`` on the shop's wall clock."""
    if at.tzinfo is None or at.utcoffset() is None:
        raise ValueError("an aware datetime is required: naive times are ambiguous across zones")
    return at.astimezone(ZoneInfo(shop.timezone))


def is_open(shop: ShopFields, at: datetime) -> bool:
    """Whether ``at`` falls in an opening span, read on the shop's wall clock (so DST is the zone's)."""
    local = local_time(shop, at)
    seconds = local.hour * 3600 + local.minute * 60 + local.second
    day = WEEKDAYS[local.weekday()]
    return any(
        span.day == day and _minutes(span.opens) * 60 <= seconds < _minutes(span.closes) * 60
        for span in shop.opening_hours
    )


def next_opening(shop: ShopFields, at: datetime) -> datetime | None:
    """The first instant at or after ``at`` when the shop is open, in its zone; None if it never opens.

    Equals ``at`` while open, so a widget can show "back at ..." and a queue can schedule a
    callback with one call. An opening time that falls in a DST gap opens when the clock jumps
    over it (02:30 on the spring-forward night in Paris opens at 03:00 CEST); a span wholly
    inside the gap never happens and is skipped.
    """
    local = local_time(shop, at)
    if is_open(shop, at):
        return local
    zone = ZoneInfo(shop.timezone)
    candidates = []
    for offset in range(8):  # today through the same weekday next week
        day: date = local.date() + timedelta(days=offset)
        for span in shop.opening_hours:
            if span.day != WEEKDAYS[day.weekday()]:
                continue
            opens = _minutes(span.opens)
            wall = datetime.combine(day, time(opens // 60, opens % 60), tzinfo=zone)  # fold=0: earliest
            real = _first_instant_at(wall)
            if real > local and is_open(shop, real):
                candidates.append(real)
        if candidates:
            return min(candidates)
    return None


def _first_instant_at(wall: datetime) -> datetime:
    """The first real instant whose wall clock reads ``wall`` or later (differs only inside a DST gap)."""
    real = wall.astimezone(UTC).astimezone(wall.tzinfo)
    if real.replace(tzinfo=None) == wall.replace(tzinfo=None):
        return real
    # In a gap, fold=1 reads the wall time with the later offset: an instant just before the jump.
    naive, instant = wall.replace(tzinfo=None), wall.replace(fold=1).astimezone(UTC)
    while instant.astimezone(wall.tzinfo).replace(tzinfo=None) < naive:
        instant += timedelta(minutes=1)
    return instant.astimezone(wall.tzinfo)


class AgentFields(Strict):
    display_name: str = Field(min_length=1, max_length=64)
    languages: Languages


class Agent(AgentFields):
    """A shop's staff member who answers calls; ``languages`` routes customers to them."""

    id: AgentId
    shop: ShopId


def _plain_decimal(value: Decimal) -> Decimal:
    return Decimal(format(value, "f"))  # "1e3" is stored and shown as "1000", not "1E+3"


# Exact money: never a float. At most 4 decimals covers every ISO 4217 minor unit in use.
Price = Annotated[Decimal, Field(ge=0, max_digits=16, decimal_places=4), AfterValidator(_plain_decimal)]


class ProductFields(Strict):
    title: str = Field(min_length=1, max_length=200)
    price: Price
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    url: str = Field(min_length=1, max_length=MAX_URL_LENGTH)
    image_url: str | None = Field(default=None, min_length=1, max_length=MAX_URL_LENGTH)


class Product(ProductFields):
    """A catalog entry an agent can show in a call. ``url``/``image_url`` are checked by ``check_product``."""

    sku: Sku


def check_product(shop: ShopFields, product: Product) -> None:
    """Raise ``url_not_allowed`` naming the field unless every URL is https on the shop's link hosts.

    Clients render product links and images as given, so this is the only gate between an
    operator typo (or a compromised shop backend) and a customer clicking a foreign link.
    """
    for field in ("url", "image_url"):
        value = getattr(product, field)
        if value is not None and not url_allowed(value, shop.link_hosts):
            raise VitrineError(
                ErrorCode.URL_NOT_ALLOWED, f"{field}: must be https on one of the shop's link_hosts {shop.link_hosts}"
            )


class ProductCard(Strict):
    """A catalog product as a client renders it; its URLs were re-checked against the shop's link hosts."""

    sku: str
    title: str
    price: str  # exact decimal as text: "129.90"
    currency: str
    url: str
    image_url: str | None = None

    @classmethod
    def of(cls, product: Product) -> ProductCard:
        return cls(
            sku=product.sku,
            title=product.title,
            price=format(product.price, "f"),
            currency=product.currency,
            url=product.url,
            image_url=product.image_url,
        )
