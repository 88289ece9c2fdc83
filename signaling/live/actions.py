"""``LiveActions``: what happens inside a live show's room, from any node.

Viewers chat (within bans, mutes and slow mode), react and click product cards; hosts (the
``room_admin`` grant) pin products, run deals and moderate. Every visible change is a log entry
(``RoomService.append_log``), so it reaches every session in seq order and stays for the replay.
A host's change of the ``LiveState`` happens under the show's lock, so two hosts never lose each
other's pins. Reactions are summed per node for ``REACTION_FLUSH_S`` and logged as one entry:
a heart tapped by 300 viewers costs one message per viewer, not 300.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Awaitable, Callable

from signaling.admission import Admission
from signaling.hub import SessionHub
from signaling.live.store import ShowStore
from signaling.rooms import RoomService
from signaling.state import State
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import ParticipantView, Role, now_ms
from vitrine.core.records.roomlog import SHOW_MAX_ENTRIES
from vitrine.core.shops import ProductCard, url_allowed
from vitrine.core.state.locks import NamedLocks
from vitrine.core.tasks import TaskSet
from vitrine.core.wire.live import (
    MAX_PINNED,
    ClickMessage,
    Deal,
    DealChange,
    DealMessage,
    LiveState,
    LiveStats,
    ModerateMessage,
    Moderation,
    ModerationAction,
    ProductAction,
    ProductChange,
    ProductMessage,
    Reaction,
    Show,
    ShowState,
)
from vitrine.core.wire.rtc import LogEntry

logger = logging.getLogger(__name__)

REACTION_FLUSH_S = 0.25
STATS_EVERY_S = 2.0
DEFAULT_MUTE_S = 600


async def checked_card(state: State, shop_id: str, sku: str) -> ProductCard:
    """A catalog product as a card, only while its links are on the shop's link hosts."""
    shop = await state.records.shops.get_shop(shop_id)
    product = await state.records.shops.get_product(shop_id, sku)
    if shop is None or product is None:
        raise VitrineError(ErrorCode.PRODUCT_NOT_FOUND, f"no product {sku!r} in the shop's catalog")
    for url in (product.url, product.image_url):
        if url is not None and not url_allowed(url, shop.link_hosts):
            raise VitrineError(ErrorCode.URL_NOT_ALLOWED, f"product {sku!r} links outside the shop's link hosts")
    return ProductCard.of(product)


class LiveActions:
    def __init__(self, state: State, rooms: RoomService, hub: SessionHub, store: ShowStore) -> None:
        self.state = state
        self.rooms = rooms
        self.hub = hub
        self.store = store
        self._locks = NamedLocks(state.locks, "the show is busy; try again")
        self._reactions: dict[str, Counter[Reaction]] = {}
        self._loops = TaskSet()
        self._counted: dict[str, LiveStats] = {}  # each local show's counts, as the last stats step found them
        self._pushed: dict[str, LiveStats] = {}  # ... and as last pushed to its sessions

    async def start(self) -> None:
        self._loops.spawn(self._every(REACTION_FLUSH_S, self._flush_reactions))
        self._loops.spawn(self._every(STATS_EVERY_S, self._push_stats))

    async def stop(self) -> None:
        await self._loops.cancel()
        await self._flush_reactions()

    # -- the log ------------------------------------------------------------------------

    async def announce(self, room: str, entry: LogEntry) -> LogEntry:
        return await self.rooms.append_log(room, entry, keep=SHOW_MAX_ENTRIES)

    async def state_for(self, room: str) -> LiveState | None:
        """The show as of now for a joining client: counts filled in, an expired deal gone."""
        state = await self.store.get_state(room)
        if state is None:
            return None
        self._pushed.pop(room, None)  # this joiner's counts may be newer than the room's last push: push again
        if state.deal is not None and state.deal.ends_at_ms <= now_ms():
            state.deal = None
        # A join must not scan the whole audience (a ramp of joins would be quadratic): the last count serves.
        counted = self._counted.get(room) or await self._count(room)
        state.viewers, state.likes = counted.viewers, counted.likes
        return state

    async def retitle(self, room: str, title: str) -> None:
        async with self._locks.hold(f"live:{room}"):
            state = await self.store.get_state(room)
            if state is not None:
                await self.store.put_state(room, state.model_copy(update={"title": title}))

    # -- viewers --------------------------------------------------------------------------

    async def may_chat(self, admission: Admission) -> None:
        """A viewer's line is refused while it is banned or muted, or within slow mode's wait; hosts always speak."""
        if admission.participant.grants.room_admin:
            return
        room, identity = admission.room.name, admission.participant.identity
        if await self.store.is_banned(room, identity):
            raise VitrineError(ErrorCode.BANNED, "you are banned from this show")
        muted_ms = await self.store.muted_until(room, identity) - now_ms()
        if muted_ms > 0:
            raise VitrineError(ErrorCode.MUTED, f"you are muted for {muted_ms // 1000 + 1} more seconds")
        state = await self.store.get_state(room)
        if (
            state is not None
            and state.slow_mode_s
            and await self.state.locks.acquire(f"slow:{room}:{identity}", state.slow_mode_s * 1000) is None
        ):
            raise VitrineError(ErrorCode.RATE_LIMITED, f"slow mode: one message every {state.slow_mode_s} s")

    def react(self, admission: Admission, reaction: Reaction) -> None:
        self._reactions.setdefault(admission.room.name, Counter())[reaction] += 1

    async def click(self, admission: Admission, message: ClickMessage) -> None:
        room = admission.room.name
        await self.store.count(room, "clicks" if message.action == "open" else "add_to_cart")
        if message.action == "open":
            await self.store.count(room, f"click:{message.sku}")
            return
        state = await self.store.get_state(room)
        if (
            state is not None
            and state.deal is not None
            and state.deal.card.sku == message.sku
            and state.deal.stock is not None
        ):
            await self._take_deal_stock(admission)

    async def _take_deal_stock(self, admission: Admission) -> None:
        room = admission.room.name
        async with self._locks.hold(f"live:{room}"):
            state = await self.store.get_state(room)
            deal = state.deal if state else None
            if state is None or deal is None or deal.stock is None or deal.ends_at_ms <= now_ms():
                return
            deal.stock -= 1
            if deal.stock == 0:
                state.deal = None
                state.sold_out = sorted({*state.sold_out, deal.card.sku})
            await self.store.put_state(room, state)
        await self.announce(
            room,
            LogEntry(
                seq=0, kind="deal", at_ms=now_ms(), deal=DealChange(action="update" if deal.stock else "end", deal=deal)
            ),
        )
        if not deal.stock:
            await self.announce(
                room,
                LogEntry(
                    seq=0,
                    kind="product",
                    at_ms=now_ms(),
                    product=ProductChange(action=ProductAction.SOLD_OUT, card=deal.card),
                ),
            )

    async def open_watch_s(self, room: str) -> float:
        """Watch time of the viewers still in the room (counted into ``watch_ms`` when they leave)."""
        now = now_ms()
        return (
            sum(
                max(0, now - p.joined_at_ms)
                for p in await self.state.rooms.list_participants(room)
                if p.role == Role.VIEWER
            )
            / 1000
        )

    # -- hosts ----------------------------------------------------------------------------

    async def _host_show(self, admission: Admission) -> tuple[LiveState, Show]:
        if not admission.participant.grants.room_admin:
            raise VitrineError(ErrorCode.PERMISSION_DENIED, "only the show's host may do this")
        state = await self.store.get_state(admission.room.name)
        show = await self.store.get_show(admission.room.shop or "", state.show_id) if state else None
        if state is None or show is None:
            raise VitrineError(ErrorCode.SHOW_NOT_FOUND, "this room is not a show")
        if state.state == ShowState.ENDED:  # the end has cut the chapters: nothing may be pinned after it
            raise VitrineError(ErrorCode.SHOW_ENDED, "the show has ended")
        return state, show

    async def moderate(self, admission: Admission, message: ModerateMessage) -> None:
        await self._host_show(admission)
        room, action = admission.room.name, message.action
        moderation = Moderation.model_validate(message.model_dump(exclude={"type"}))
        if action in (ModerationAction.DELETE, ModerationAction.PIN_MESSAGE):
            await self._moderate_line(room, moderation)
        elif action in (ModerationAction.MUTE, ModerationAction.UNMUTE, ModerationAction.BAN, ModerationAction.UNBAN):
            await self._moderate_viewer(room, moderation)
        else:
            async with self._locks.hold(f"live:{room}"):
                state = await self.store.get_state(room)
                assert state is not None
                if action == ModerationAction.SLOW_MODE:
                    state.slow_mode_s = moderation.seconds or 0
                else:
                    state.pinned_message = None
                await self.store.put_state(room, state)
        await self.announce(
            room,
            LogEntry(
                seq=0,
                kind="moderation",
                moderation=moderation,
                at_ms=now_ms(),
                participant=ParticipantView.of(admission.participant),
            ),
        )

    async def _moderate_line(self, room: str, moderation: Moderation) -> None:
        assert moderation.seq is not None
        found = await self.state.records.roomlog.after(room, moderation.seq - 1, 1)
        if not found or found[0].seq != moderation.seq or found[0].kind != "chat":
            raise VitrineError(ErrorCode.INVALID_MESSAGE, f"seq: no chat line {moderation.seq}")
        async with self._locks.hold(f"live:{room}"):
            state = await self.store.get_state(room)
            assert state is not None
            if moderation.action == ModerationAction.PIN_MESSAGE:
                state.pinned_message = moderation.seq
            else:
                await self.state.records.roomlog.remove(room, moderation.seq)
                if state.pinned_message == moderation.seq:
                    state.pinned_message = None
            await self.store.put_state(room, state)

    async def _moderate_viewer(self, room: str, moderation: Moderation) -> None:
        identity, action = moderation.identity, moderation.action
        assert identity is not None
        present = [p for p in await self.state.rooms.list_participants(room) if p.identity == identity]
        if any(p.grants.room_admin for p in present):
            raise VitrineError(ErrorCode.PERMISSION_DENIED, "a host cannot be muted or banned")
        if action == ModerationAction.MUTE:
            seconds = moderation.seconds or DEFAULT_MUTE_S
            moderation.seconds = seconds
            await self.store.mute_until(room, identity, now_ms() + seconds * 1000)
        elif action == ModerationAction.UNMUTE:
            await self.store.mute_until(room, identity, None)
        else:
            await self.store.set_banned(room, identity, action == ModerationAction.BAN)
            if action == ModerationAction.BAN:
                for participant in present:
                    await self.rooms.kick(room, participant.sid, "banned from the show", code="banned")

    async def product(self, admission: Admission, message: ProductMessage) -> None:
        _, show = await self._host_show(admission)
        if message.sku not in show.products:
            raise VitrineError(ErrorCode.PRODUCT_NOT_FOUND, f"{message.sku!r} is not one of the show's products")
        card = await checked_card(self.state, show.shop, message.sku)
        room, action = admission.room.name, message.action
        async with self._locks.hold(f"live:{room}"):
            state = await self.store.get_state(room)
            assert state is not None
            pinned = [c for c in state.pinned if c.sku != card.sku]
            if action == ProductAction.PIN:
                if len(pinned) >= MAX_PINNED:
                    raise VitrineError(ErrorCode.INVALID_MESSAGE, f"at most {MAX_PINNED} pinned products: unpin one")
                pinned.append(card)
            elif action == ProductAction.UNPIN:
                if len(pinned) == len(state.pinned):
                    raise VitrineError(ErrorCode.INVALID_MESSAGE, f"{card.sku!r} is not pinned")
            else:
                pinned = state.pinned
                sold_out = set(state.sold_out)
                (sold_out.add if action == ProductAction.SOLD_OUT else sold_out.discard)(card.sku)
                state.sold_out = sorted(sold_out)
            state.pinned = pinned
            await self.store.put_state(room, state)
        await self.announce(
            room,
            LogEntry(
                seq=0,
                kind="product",
                at_ms=now_ms(),
                participant=ParticipantView.of(admission.participant),
                product=ProductChange(action=action, card=card),
            ),
        )

    async def deal(self, admission: Admission, message: DealMessage) -> None:
        _, show = await self._host_show(admission)
        room = admission.room.name
        async with self._locks.hold(f"live:{room}"):
            state = await self.store.get_state(room)
            assert state is not None
            if message.action == "end":
                if state.deal is None:
                    raise VitrineError(ErrorCode.INVALID_MESSAGE, "no deal is running")
                deal, state.deal = state.deal, None
            else:
                assert message.sku is not None and message.price is not None and message.duration_s is not None
                if message.sku not in show.products:
                    raise VitrineError(
                        ErrorCode.PRODUCT_NOT_FOUND, f"{message.sku!r} is not one of the show's products"
                    )
                card = await checked_card(self.state, show.shop, message.sku)
                deal = state.deal = Deal(
                    card=card,
                    price=format(message.price, "f"),
                    stock=message.stock,
                    ends_at_ms=now_ms() + message.duration_s * 1000,
                )
            await self.store.put_state(room, state)
        await self.announce(
            room,
            LogEntry(
                seq=0,
                kind="deal",
                at_ms=now_ms(),
                participant=ParticipantView.of(admission.participant),
                deal=DealChange(action=message.action, deal=deal),
            ),
        )

    # -- loops ------------------------------------------------------------------------------

    async def _every(self, period_s: float, step: Callable[[], Awaitable[None]]) -> None:
        while True:
            await asyncio.sleep(period_s)
            try:
                await step()
            except Exception:
                logger.exception("live loop step failed")

    async def _flush_reactions(self) -> None:
        pending, self._reactions = self._reactions, {}
        for room, counts in pending.items():
            with contextlib.suppress(VitrineError):
                await self.announce(room, LogEntry(seq=0, kind="reactions", reactions=dict(counts), at_ms=now_ms()))
                await self.store.count(room, "likes", sum(counts.values()))

    async def _count(self, room: str) -> LiveStats:
        """The show's viewers (every node's: the ``RoomStore`` holds them all) and likes, now."""
        viewers = sum(1 for p in await self.state.rooms.list_participants(room) if p.role == Role.VIEWER)
        return LiveStats(viewers=viewers, likes=(await self.store.stats(room)).get("likes", 0))

    async def _push_stats(self) -> None:
        """Every few seconds, the global viewer count and likes to this node's sessions of each show."""
        for room in self.hub.local_rooms():
            if await self.store.get_state(room) is None:
                continue
            stats = self._counted[room] = await self._count(room)
            await self.store.raise_to(room, "peak_viewers", stats.viewers)
            if self._pushed.get(room) != stats:
                self._pushed[room] = stats
                await self.hub.send_local(room, stats)
        for table in (self._counted, self._pushed):
            for room in set(table) - set(self.hub.local_rooms()):
                del table[room]
