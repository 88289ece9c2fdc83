"""``ShowService``: a show's life (scheduled, live, ended), its tokens, its stream key and its numbers.

Going live creates the show's room (kind ``live``, owned by the shop, recorded under the show
id) and its ``LiveState``; ending it writes ``show: ended`` to the log, stops the recording,
closes the room (everyone is told the show has ended), and freezes the analytics. The log and
the recording stay for the replay until the show is deleted. The recording has one part per media
worker the room was on: the end takes the part it stops and every part an earlier worker finalized.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import secrets
from collections.abc import AsyncIterator

from signaling.live.actions import LiveActions
from signaling.live.store import ShowStore
from signaling.recordings import RecordingFiles
from signaling.rooms import RoomService
from signaling.state import State
from vitrine.core.auth import JoinClaims, mint_token
from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Grants, Role, Room, RoomKind, now_ms
from vitrine.core.records.roomlog import whole_log
from vitrine.core.records.shops import require_shop
from vitrine.core.shops import ProductCard, Shop, url_allowed
from vitrine.core.wire.live import (
    Analytics,
    Chapter,
    LiveState,
    Recording,
    Show,
    ShowPatch,
    ShowSetup,
    ShowState,
)
from vitrine.core.wire.rpc import RecordCommand, Recorded, RecordingInfo, expect
from vitrine.core.wire.rtc import LogEntry

logger = logging.getLogger(__name__)

STREAM_KEY_PREFIX = "sk_"
LIVE_ROOM_CAPACITY = 10_000
HOST_IDENTITY = "host"
OBS_IDENTITY = "obs"
VIEWER_GRANTS = Grants(can_subscribe=True, can_chat=True, hidden=True)  # hidden: joins are not announced


class ShowService:
    def __init__(
        self,
        settings: Settings,
        state: State,
        rooms: RoomService,
        actions: LiveActions,
        store: ShowStore,
        recordings: RecordingFiles,
    ) -> None:
        self.settings = settings
        self.state = state
        self.rooms = rooms
        self.actions = actions
        self.store = store
        self.recordings = recordings

    # -- records ---------------------------------------------------------------------

    async def create(self, shop_id: str, setup: ShowSetup) -> Show:
        shop = await require_shop(self.state.records.shops, shop_id)
        await self._check_products(shop, setup.products)
        show = Show(shop=shop.id, **setup.model_dump())
        await self.store.put_show(show)
        return show

    async def get(self, shop_id: str, show_id: str) -> Show:
        show = await self.store.get_show(shop_id, show_id)
        if show is None:
            raise VitrineError(ErrorCode.SHOW_NOT_FOUND, "no such show")
        return show

    async def update(self, show: Show, patch: ShowPatch) -> Show:
        if show.state == ShowState.ENDED:
            raise VitrineError(ErrorCode.SHOW_ENDED, "the show has ended")
        changes = patch.model_dump(exclude_unset=True)
        if "products" in changes:
            await self._check_products(await require_shop(self.state.records.shops, show.shop), changes["products"])
        updated = Show.model_validate({**show.model_dump(), **changes})
        await self.store.put_show(updated)
        if show.state == ShowState.LIVE and "title" in changes:
            await self.actions.retitle(show.room, updated.title)
        return updated

    async def delete(self, show: Show) -> None:
        if show.state == ShowState.LIVE:
            await self.end(show)
        await self.store.delete_show(show.shop, show.id)  # with its log, in one transaction

    async def _check_products(self, shop: Shop, skus: list[str]) -> None:
        for sku in skus:
            if await self.state.records.shops.get_product(shop.id, sku) is None:
                raise VitrineError(ErrorCode.PRODUCT_NOT_FOUND, f"no product {sku!r} in the shop's catalog")

    async def cards(self, show: Show) -> list[ProductCard]:
        """The show's products as viewers see them, in the seller's order; links re-checked against the
        shop's link hosts (a narrowed allow-list takes effect at once), missing products left out."""
        shop = await require_shop(self.state.records.shops, show.shop)
        cards = []
        for sku in show.products:
            product = await self.state.records.shops.get_product(shop.id, sku)
            if (
                product is not None
                and url_allowed(product.url, shop.link_hosts)
                and (product.image_url is None or url_allowed(product.image_url, shop.link_hosts))
            ):
                cards.append(ProductCard.of(product))
        return cards

    # -- going live and ending -------------------------------------------------------------

    async def start(self, show: Show) -> Show:
        """Go live (idempotent while live). The room exists from here until the show ends."""
        if show.state == ShowState.ENDED:
            raise VitrineError(ErrorCode.SHOW_ENDED, "the show has ended")
        if show.state == ShowState.LIVE:
            return show
        room = live_room(show)
        if not await self.state.rooms.create_room(room):
            existing = await self.state.rooms.get_room(show.room)
            if existing is None or existing.closed:
                raise VitrineError(ErrorCode.SHOW_ENDED, "the show's room was closed")
        live = LiveState(show_id=show.id, title=show.title, state=ShowState.LIVE)
        await self.store.put_state(show.room, live)
        show = show.model_copy(update={"state": ShowState.LIVE, "started_at_ms": now_ms()})
        await self.store.put_show(show)
        await self.actions.announce(show.room, LogEntry(seq=0, kind="show", show=ShowState.LIVE, at_ms=now_ms()))
        return show

    async def room_record(self, name: str) -> Room | None:
        """A live show's room, for ``RoomService.find_room``: the show is live until it ends, whatever its room."""
        show = await self.store.by_room(name) if name.startswith("live-") else None
        return live_room(show) if show is not None and show.state == ShowState.LIVE else None

    async def end(self, show: Show) -> Show:
        if show.state != ShowState.LIVE:
            raise VitrineError(ErrorCode.SHOW_NOT_LIVE, "the show is not live")
        ended_at = now_ms()
        await self.actions.announce(show.room, LogEntry(seq=0, kind="show", show=ShowState.ENDED, at_ms=ended_at))
        recordings = await self._recordings(show, await self._stop_recording(show))
        state = await self.store.get_state(show.room)
        if state is not None:
            await self.store.put_state(show.room, state.model_copy(update={"state": ShowState.ENDED}))
        show = show.model_copy(update={"state": ShowState.ENDED, "ended_at_ms": ended_at, "recordings": recordings})
        # Chapters with the first record of the ended show: its players load the replay as soon as they see the
        # end, and one that came before a later write had none (no pin can come now: the state is ended).
        show.chapters = await self._chapters(show)
        await self.store.put_show(show)  # ended before its room closes: no rejoin puts it back
        try:
            await self.rooms.close_room(show.room, reason="the show has ended", code="show_ended", keep_log=True)
        except VitrineError as exc:
            if exc.code != ErrorCode.ROOM_NOT_FOUND:
                raise
        show.analytics = await self.analytics(show)
        await self.store.put_show(show)
        return show

    async def _stop_recording(self, show: Show) -> RecordingInfo | None:
        """Stop the part the room's worker records now; None if it records none (or nothing usable)."""
        room = await self.state.rooms.get_room(show.room)
        if room is None or room.worker_id is None:
            return None
        try:
            reply = expect(
                await self.rooms.link.call(
                    room.worker_id, RecordCommand(room=show.room, action="stop", recording_id=show.id)
                ),
                Recorded,
            )
        except VitrineError as exc:
            logger.warning("the show %s ended without the current worker's part: %s", show.id, exc.message)
            return None
        return reply.recording

    async def _recordings(self, show: Show, stopped: RecordingInfo | None) -> list[Recording]:
        """The part just stopped and every part earlier workers finalized (nobody stopped those), in order."""
        parts = await asyncio.to_thread(self.recordings.finished, show.id, stopped, show.started_at_ms or 0)
        return [
            Recording(
                path=part.path,
                container=part.container,
                started_at_ms=part.started_at_ms,
                duration_ms=part.duration_ms,
                bytes=part.bytes,
            )
            for part in parts
        ]

    async def entries(self, show: Show) -> AsyncIterator[LogEntry]:
        """The show's whole log, oldest first."""
        async for entry in whole_log(self.state.records.roomlog, show.room):
            yield entry

    async def _chapters(self, show: Show) -> list[Chapter]:
        """Each product pin, as an offset into the recording's part that shows it (or into the show, without
        a recording). A pin between two parts (while the room changed worker) opens the later one."""
        return [
            _chapter(show, entry.at_ms, entry.seq, entry.product.card)
            async for entry in self.entries(show)
            if entry.kind == "product" and entry.product is not None and entry.product.action == "pin"
        ]

    # -- credentials ----------------------------------------------------------------------

    def stream_key(self, show: Show) -> str:
        """The OBS stream key: derived from the server secret, the show and a version, so none is stored
        and rotating it (a new version) turns the old key away at once."""
        message = f"vitrine-stream:{show.shop}:{show.id}:{show.stream_key_version}".encode()
        digest = hmac.new(self.settings.secret_bytes, message, hashlib.sha256).digest()
        return STREAM_KEY_PREFIX + base64.urlsafe_b64encode(digest[:24]).decode()

    def check_stream_key(self, show: Show, key: str) -> None:
        if not hmac.compare_digest(key.encode(), self.stream_key(show).encode()):
            raise VitrineError(ErrorCode.INVALID_TOKEN, "wrong stream key")

    async def rotate_stream_key(self, show: Show) -> Show:
        show = show.model_copy(update={"stream_key_version": show.stream_key_version + 1})
        await self.store.put_show(show)
        return show

    def host_claims(self, show: Show, identity: str = HOST_IDENTITY) -> JoinClaims:
        """What OBS (as ``obs``) acts with in the show's room once its stream key checked out."""
        now = int(now_ms() / 1000)
        return JoinClaims(
            iss=self.settings.api_key,
            sub=identity,
            room=show.room,
            role=Role.HOST,
            grants=ROLE_DEFAULT_GRANTS[Role.HOST],
            exp=now + 12 * 3600,
            iat=now,
            shop=show.shop,
        )

    async def host_token(self, show: Show) -> str:
        """The console's join token: the host, named after the shop in the chat."""
        shop = await require_shop(self.state.records.shops, show.shop)
        return mint_token(
            self.settings,
            room=show.room,
            identity=HOST_IDENTITY,
            role=Role.HOST,
            grants=ROLE_DEFAULT_GRANTS[Role.HOST],
            name=shop.name,
            shop=show.shop,
            ttl_s=12 * 3600,
        )

    def viewer_token(self, show: Show, name: str | None) -> tuple[str, str]:
        """A join token for an anonymous viewer, and its identity."""
        identity = "v-" + secrets.token_urlsafe(9)
        token = mint_token(
            self.settings,
            room=show.room,
            identity=identity,
            role=Role.VIEWER,
            grants=VIEWER_GRANTS,
            name=name,
            shop=show.shop,
            ttl_s=12 * 3600,
        )
        return token, identity

    # -- numbers ------------------------------------------------------------------------------

    async def analytics(self, show: Show) -> Analytics:
        """Frozen once the show has ended; computed from the live counters until then."""
        if show.analytics is not None:
            return show.analytics
        stats = await self.store.stats(show.room)
        start = show.started_at_ms or now_ms()
        duration_s = max(0.0, ((show.ended_at_ms or now_ms()) - start) / 1000)
        watch_s = stats.get("watch_ms", 0) / 1000 + await self.actions.open_watch_s(show.room)
        return Analytics(
            peak_viewers=stats.get("peak_viewers", 0),
            average_viewers=round(watch_s / duration_s, 2) if duration_s else 0.0,
            watch_time_s=round(watch_s, 1),
            viewer_sessions=stats.get("viewer_sessions", 0),
            messages=stats.get("messages", 0),
            likes=stats.get("likes", 0),
            product_clicks=stats.get("clicks", 0),
            add_to_cart=stats.get("add_to_cart", 0),
            clicks_by_sku={k.removeprefix("click:"): v for k, v in stats.items() if k.startswith("click:")},
            duration_s=round(duration_s, 1),
        )


def _chapter(show: Show, at_ms: int, seq: int, card: ProductCard) -> Chapter:
    """A pin's moment in the replay: in the last part started by then (or, if that part had ended, at the start
    of the next one), else in the show itself when it has no recording."""
    parts = show.recordings
    if not parts:
        return Chapter(offset_ms=max(0, at_ms - (show.started_at_ms or 0)), seq=seq, card=card)
    index = max([i for i, part in enumerate(parts) if part.started_at_ms <= at_ms], default=0)
    part = parts[index]
    if at_ms > part.started_at_ms + part.duration_ms and index + 1 < len(parts):
        return Chapter(part=index + 1, offset_ms=0, seq=seq, card=card)
    return Chapter(part=index, offset_ms=max(0, at_ms - part.started_at_ms), seq=seq, card=card)


def live_room(show: Show) -> Room:
    return Room(
        name=show.room, kind=RoomKind.LIVE, shop=show.shop, max_participants=LIVE_ROOM_CAPACITY, recording_id=show.id
    )
