"""Live selling records: a show, what happens in it (the room log's entry bodies), and its numbers.

A show belongs to a shop and owns one live room (``live-<show id>``). While it is live, every
chat line, reaction burst, product pin, deal and moderation action is an entry of the room's
ordered log (``vitrine.core.records.roomlog``); ``LiveState`` is what a client that joins now needs to
draw the show without reading the whole log.
"""

from __future__ import annotations

import secrets
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, field_validator, model_validator
from pydantic.json_schema import JsonDict, SkipJsonSchema

from vitrine.core.models import Identity, Strict, now_ms, one_into_list
from vitrine.core.shops import Price, ProductCard, Sku

SHOW_ID_PATTERN = r"^sh_[A-Za-z0-9_-]{10,40}$"
ShowId = Annotated[str, StringConstraints(pattern=SHOW_ID_PATTERN)]
MAX_SHOW_PRODUCTS = 50
MAX_PINNED = 3
MAX_TITLE_CHARS = 120


def new_show_id() -> str:
    return "sh_" + secrets.token_urlsafe(9).replace("-", "x").replace("_", "y")


def show_room(show_id: str) -> str:
    """The live room of a show: one per show, never reused, so its log can outlive it for the replay."""
    return "live-" + show_id


class ShowState(StrEnum):
    SCHEDULED = "scheduled"
    LIVE = "live"
    ENDED = "ended"


class Reaction(StrEnum):
    LIKE = "like"
    LOVE = "love"
    FIRE = "fire"
    CLAP = "clap"
    WOW = "wow"
    LAUGH = "laugh"


class ShowSetup(Strict):
    """What the seller sets before going live (and may change until the show ends)."""

    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    scheduled_at_ms: int | None = Field(default=None, ge=0)
    products: list[Sku] = Field(default_factory=list, max_length=MAX_SHOW_PRODUCTS)

    @model_validator(mode="after")
    def _unique_products(self) -> ShowSetup:
        if len(set(self.products)) != len(self.products):
            raise ValueError("products: each SKU once")
        return self


def _no_default(schema: JsonDict) -> None:
    """Leave out a field's ``default: null`` where the schema does not allow null."""
    schema.pop("default", None)


class ShowPatch(Strict):
    """The fields to change; absent ones keep their value. ``null`` clears what may be empty (the schedule, the
    products, as JSON Merge Patch reads it); a show always has a title, so a null title is refused, and the schema
    says so (``SkipJsonSchema``) instead of promising a ``null`` it would not take."""

    title: str | SkipJsonSchema[None] = Field(
        default=None, min_length=1, max_length=MAX_TITLE_CHARS, json_schema_extra=_no_default
    )
    scheduled_at_ms: int | None = Field(default=None, ge=0, description="null: unscheduled")
    products: list[Sku] | None = Field(default=None, max_length=MAX_SHOW_PRODUCTS, description="null: no products")

    @field_validator("title", mode="before")
    @classmethod
    def _title_given(cls, value: object) -> object:
        if value is None:  # only an explicit null gets here: an absent title is not validated
            raise ValueError("a show needs a title: leave it out to keep it")
        return value

    @field_validator("products")
    @classmethod
    def _products(cls, value: list[str] | None) -> list[str]:
        products = value or []
        if len(set(products)) != len(products):
            raise ValueError("each SKU once")
        return products


class Recording(Strict):
    """One part of the show's recording as its worker finalized it: a file under ``VITRINE_RECORDINGS_DIR``.
    A show has one part per media worker that recorded it (``vitrine/core/recording_parts.py``)."""

    path: str
    container: Literal["webm", "mp4", "mkv"]
    started_at_ms: int
    duration_ms: int
    bytes: int


class Chapter(Strict):
    """A product pin in the replay: jump to ``offset_ms`` into part ``part`` (an index into ``Show.recordings``)
    to see the product shown."""

    part: int = 0
    offset_ms: int
    seq: int
    card: ProductCard


class Analytics(Strict):
    """A show's numbers: counted while it runs, frozen when it ends."""

    peak_viewers: int = 0
    average_viewers: float = 0.0
    watch_time_s: float = 0.0
    viewer_sessions: int = 0
    messages: int = 0
    likes: int = 0
    product_clicks: int = 0
    add_to_cart: int = 0
    clicks_by_sku: dict[str, int] = Field(default_factory=dict)
    duration_s: float = 0.0


class Show(ShowSetup):
    id: ShowId = Field(default_factory=new_show_id)
    shop: str
    state: ShowState = ShowState.SCHEDULED
    created_at_ms: int = Field(default_factory=now_ms)
    started_at_ms: int | None = None
    ended_at_ms: int | None = None
    stream_key_version: int = 1
    recordings: list[Recording] = Field(default_factory=list)  # set when the show ends: its parts, in start order
    chapters: list[Chapter] = Field(default_factory=list)  # set when the show ends, from its product pins
    analytics: Analytics | None = None  # set when the show ends; live numbers come from the stats counters

    @model_validator(mode="before")
    @classmethod
    def _one_recording(cls, data: object) -> object:
        """A show stored before recordings had parts holds one ``recording`` (or null): its only part."""
        return one_into_list(data, "recording", "recordings")

    @property
    def room(self) -> str:
        return show_room(self.id)


# -- log entry bodies ---------------------------------------------------------------


class ModerationAction(StrEnum):
    DELETE = "delete"  # seq: the chat line to remove
    MUTE = "mute"  # identity, seconds
    UNMUTE = "unmute"  # identity
    BAN = "ban"  # identity: kicked now, refused on every later join
    UNBAN = "unban"  # identity
    SLOW_MODE = "slow_mode"  # seconds between one viewer's lines; 0 turns it off
    PIN_MESSAGE = "pin_message"  # seq
    UNPIN_MESSAGE = "unpin_message"


class Moderation(Strict):
    action: ModerationAction
    seq: int | None = Field(default=None, ge=1)
    identity: Identity | None = None
    seconds: int | None = Field(default=None, ge=0, le=24 * 3600)

    @model_validator(mode="after")
    def _has_target(self) -> Moderation:
        needs = {
            ModerationAction.DELETE: "seq",
            ModerationAction.PIN_MESSAGE: "seq",
            ModerationAction.MUTE: "identity",
            ModerationAction.UNMUTE: "identity",
            ModerationAction.BAN: "identity",
            ModerationAction.UNBAN: "identity",
            ModerationAction.SLOW_MODE: "seconds",
        }.get(self.action)
        if needs is not None and getattr(self, needs) is None:
            raise ValueError(f"{self.action.value} needs {needs}")
        return self


class ProductAction(StrEnum):
    PIN = "pin"
    UNPIN = "unpin"
    SOLD_OUT = "sold_out"
    IN_STOCK = "in_stock"


class ProductChange(Strict):
    action: ProductAction
    card: ProductCard


class Deal(Strict):
    """A countdown deal on one product: ``price`` until ``ends_at_ms`` or until ``stock`` runs out."""

    card: ProductCard
    price: str  # exact decimal as text, in the card's currency
    stock: int | None = None
    ends_at_ms: int


class DealChange(Strict):
    action: Literal["start", "update", "end"]  # update: its stock went down (an add to cart)
    deal: Deal


LogKind = Literal["chat", "reactions", "moderation", "product", "deal", "show", "inspect"]
_BODY_FOR_KIND = {
    "chat": "text",
    "reactions": "reactions",
    "moderation": "moderation",
    "product": "product",
    "deal": "deal",
    "show": "show",
    "inspect": "inspect",
}


def check_entry_body(kind: str, values: dict[str, object]) -> None:
    """Exactly the body that belongs to ``kind`` is set: a log entry is one thing."""
    for field_kind, name in _BODY_FOR_KIND.items():
        present = values.get(name) is not None
        if present != (field_kind == kind):
            raise ValueError(f"a {kind} entry {'needs' if field_kind == kind else 'cannot have'} {name}")


class LiveState(Strict):
    """The show as a client that joins now must draw it; log entries then keep it current."""

    show_id: ShowId
    title: str
    state: ShowState
    pinned: list[ProductCard] = Field(default_factory=list, max_length=MAX_PINNED)
    sold_out: list[str] = Field(default_factory=list)
    deal: Deal | None = None
    pinned_message: int | None = None  # seq of a chat line
    slow_mode_s: int = 0
    viewers: int = 0
    likes: int = 0


class LiveStats(Strict):
    """Pushed every few seconds to everyone in a live room (``type: "live"``)."""

    type: Literal["live"] = "live"
    viewers: int
    likes: int


class ReactMessage(Strict):
    type: Literal["react"]
    reaction: Reaction = Reaction.LIKE


class ModerateMessage(Moderation):
    """A host's moderation (needs ``room_admin``)."""

    type: Literal["moderate"]


class ProductMessage(Strict):
    """A host pins, unpins or marks sold out one of the show's products (needs ``room_admin``)."""

    type: Literal["product"]
    action: ProductAction
    sku: Sku


class DealMessage(Strict):
    """A host starts a countdown deal on a show product, or ends the running one (needs ``room_admin``)."""

    type: Literal["deal"]
    action: Literal["start", "end"]
    sku: Sku | None = None
    price: Price | None = None
    stock: int | None = Field(default=None, ge=1, le=1_000_000)
    duration_s: int | None = Field(default=None, ge=10, le=6 * 3600)

    @model_validator(mode="after")
    def _complete(self) -> DealMessage:
        if self.action == "start" and (self.sku is None or self.price is None or self.duration_s is None):
            raise ValueError("start needs sku, price and duration_s")
        return self


class ClickMessage(Strict):
    """A viewer opened a product card's link or added it to the cart: counted for the show's analytics."""

    type: Literal["click"]
    sku: Sku
    action: Literal["open", "add_to_cart"] = "open"
