"""Live shows over HTTP: the shop's backend, the seller's console and the public viewer page.

- ``/v1/shops/{shop}/shows`` (API key): create, schedule and list shows, mint the console login,
  read analytics and export the chat as CSV.
- ``/v1/live/console`` (the console's token, ``Authorization: Bearer``): what the seller's page
  does: set up, go live, end, rotate the OBS stream key.
- ``/v1/live/{shop}/{show}`` (public, CORS for the shop's embed origins): the show, a viewer's
  join token, the replay's log and recording.
"""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path as FilePath
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from fastapi import Path as FastPath
from fastapi.responses import FileResponse
from pydantic import Field

from signaling.deps import ApiKeyDep, PageTokenDep, PublicBaseDep, SettingsDep, ShopDep, StateDep
from signaling.live.actions import checked_card
from signaling.live.deps import LiveActionsDep, ShowsDep
from signaling.live.shows import ShowService
from signaling.openapi import media_response
from vitrine.core.desk_tokens import mint_desk_token, verify_desk_token
from vitrine.core.errors import ErrorCode, VitrineError, error_responses
from vitrine.core.models import Strict
from vitrine.core.shops import ProductCard
from vitrine.core.wire.live import Analytics, Chapter, LiveState, Show, ShowPatch, ShowSetup, ShowState
from vitrine.core.wire.rtc import LogEntry

backend = APIRouter(prefix="/v1/shops/{shop}/shows", tags=["live"], dependencies=[ApiKeyDep])
console = APIRouter(prefix="/v1/live/console", tags=["live"])
public = APIRouter(prefix="/v1/live/{shop}/{show}", tags=["live"])
RECORDING = media_response("The recording, as its worker wrote it", "video/webm", "video/mp4", "video/mkv")


class ReplayPart(Strict):
    """One part of the recording (one per media worker the show was on), played after the one before."""

    url: str
    container: str
    started_at_ms: int  # the wall clock of the part's time zero: a log entry plays at (at_ms - started_at_ms)
    duration_ms: int


class Replay(Strict):
    media_url: str | None  # the first part (None: the show has no recording), for pages that play one file
    container: str | None = None  # the first part's
    duration_ms: int = 0  # every part together
    started_at_ms: int  # the first part's start: chat entries play at (entry.at_ms - started_at_ms) into it
    parts: list[ReplayPart] = Field(default_factory=list)
    chapters: list[Chapter]  # each in one part (``Chapter.part`` indexes ``parts``)


class ShowView(Strict):
    """A show as its viewers see it."""

    id: str
    shop: str
    title: str
    state: ShowState
    scheduled_at_ms: int | None
    started_at_ms: int | None
    ended_at_ms: int | None
    products: list[ProductCard]
    live: LiveState | None = None
    replay: Replay | None = None


class ConsoleView(Strict):
    """What the seller's console draws: the show, the catalog to pick from, OBS settings, the numbers."""

    show: Show
    products: list[ProductCard]
    catalog: list[ProductCard]
    whip_url: str
    stream_key: str
    viewer_url: str
    analytics: Analytics


class ConsoleLogin(Strict):
    token: str
    console_url: str = Field(description="The console; the token goes in the fragment, never to a server log")


class HostJoin(Strict):
    show: Show
    token: str = Field(description="A host join token for /v1/rtc")


class ViewerJoin(Strict):
    token: str
    identity: str


class LogPage(Strict):
    entries: list[LogEntry]
    last_seq: int


async def _console_show(settings: SettingsDep, shows: ShowsDep, token: PageTokenDep) -> Show:
    """The show of the console token from POST /v1/shops/{shop}/shows/{id}/console."""
    claims = verify_desk_token(settings, token, "host")
    return await shows.get(claims.shop, claims.sub)


ConsoleShow = Annotated[Show, Depends(_console_show)]


async def _console_view(shows: ShowService, base: str, show: Show) -> ConsoleView:
    catalog = []
    for product in await shows.state.records.shops.list_products(show.shop):
        try:
            catalog.append(await checked_card(shows.state, show.shop, product.sku))
        except VitrineError:
            continue  # links outside the shop's link hosts: not offered
    return ConsoleView(
        show=show,
        products=await shows.cards(show),
        catalog=catalog,
        whip_url=f"{base}/v1/live/{show.shop}/{show.id}/whip",
        stream_key=shows.stream_key(show),
        viewer_url=f"{base}/watch.html?shop={show.shop}&show={show.id}",
        analytics=await shows.analytics(show),
    )


async def _chat_csv(shows: ShowService, show: Show) -> Response:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["seq", "time_utc", "offset_s", "identity", "name", "role", "text"])
    start = show.started_at_ms or 0
    async for entry in shows.entries(show):
        if entry.kind != "chat" or entry.participant is None:
            continue
        when = datetime.fromtimestamp(entry.at_ms / 1000, UTC).isoformat(timespec="milliseconds")
        writer.writerow(
            [
                entry.seq,
                when,
                round((entry.at_ms - start) / 1000, 1),
                entry.participant.identity,
                _inert(entry.participant.name or ""),
                entry.participant.role.value,
                _inert(entry.text or ""),
            ]
        )
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{show.id}-chat.csv"'},
    )


def _inert(cell: str) -> str:
    """A spreadsheet must not run what a viewer typed: cells that start a formula get a leading quote."""
    return "'" + cell if cell[:1] in ("=", "+", "-", "@", "\t", "\r") else cell


# -- the shop's backend ---------------------------------------------------------------------


@backend.post(
    "",
    status_code=201,
    response_model=Show,
    summary="Create (schedule) a show",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND, ErrorCode.PRODUCT_NOT_FOUND),
)
async def create_show(shop: str, body: ShowSetup, shows: ShowsDep) -> Show:
    return await shows.create(shop, body)


@backend.get(
    "",
    response_model=list[Show],
    summary="The shop's shows, newest first",
    responses=error_responses(ErrorCode.SHOP_NOT_FOUND),
)
async def list_shows(shop: ShopDep, shows: ShowsDep, limit: Annotated[int, Query(ge=1, le=500)] = 100) -> list[Show]:
    return await shows.store.list_shows(shop.id, limit)


@backend.get("/{show}", response_model=Show, summary="One show", responses=error_responses(ErrorCode.SHOW_NOT_FOUND))
async def get_show(shop: str, show: str, shows: ShowsDep) -> Show:
    return await shows.get(shop, show)


@backend.patch(
    "/{show}",
    response_model=Show,
    summary="Change the title, schedule or products",
    responses=error_responses(
        ErrorCode.SHOP_NOT_FOUND, ErrorCode.SHOW_NOT_FOUND, ErrorCode.PRODUCT_NOT_FOUND, ErrorCode.SHOW_ENDED
    ),
)
async def patch_show(shop: str, show: str, body: ShowPatch, shows: ShowsDep) -> Show:
    return await shows.update(await shows.get(shop, show), body)


@backend.delete(
    "/{show}",
    status_code=204,
    summary="Delete a show with its log (ends it first if live)",
    responses=error_responses(ErrorCode.SHOW_NOT_FOUND),
)
async def delete_show(shop: str, show: str, shows: ShowsDep) -> Response:
    await shows.delete(await shows.get(shop, show))
    return Response(status_code=204)


@backend.post(
    "/{show}/end",
    response_model=Show,
    summary="End a live show",
    responses=error_responses(ErrorCode.SHOW_NOT_FOUND, ErrorCode.SHOW_NOT_LIVE),
)
async def end_show(shop: str, show: str, shows: ShowsDep) -> Show:
    return await shows.end(await shows.get(shop, show))


@backend.post(
    "/{show}/console",
    response_model=ConsoleLogin,
    summary="Mint the seller's console login",
    responses=error_responses(ErrorCode.SHOW_NOT_FOUND),
)
async def console_login(
    shop: str,
    show: str,
    settings: SettingsDep,
    shows: ShowsDep,
    base: PublicBaseDep,
    ttl_s: Annotated[int, Query(ge=60, le=7 * 24 * 3600)] = 12 * 3600,
) -> ConsoleLogin:
    record = await shows.get(shop, show)
    token = mint_desk_token(settings, shop=shop, subject=record.id, role="host", ttl_s=ttl_s)
    return ConsoleLogin(token=token, console_url=f"{base}/live.html#token={token}")


@backend.get(
    "/{show}/analytics",
    response_model=Analytics,
    summary="Viewers, watch time, messages, likes, clicks",
    responses=error_responses(ErrorCode.SHOW_NOT_FOUND),
)
async def show_analytics(shop: str, show: str, shows: ShowsDep) -> Analytics:
    return await shows.analytics(await shows.get(shop, show))


@backend.get(
    "/{show}/chat.csv",
    summary="The show's chat as CSV",
    response_class=Response,
    responses={
        **media_response("The chat, one line per message", "text/csv"),
        **error_responses(ErrorCode.SHOW_NOT_FOUND),
    },
)
async def show_chat_csv(shop: str, show: str, shows: ShowsDep) -> Response:
    return await _chat_csv(shows, await shows.get(shop, show))


# -- the seller's console ------------------------------------------------------------------------


@console.get(
    "",
    response_model=ConsoleView,
    summary="The console's show, catalog, OBS settings and numbers",
    responses=error_responses(ErrorCode.PERMISSION_DENIED, ErrorCode.SHOW_NOT_FOUND),
)
async def console_view(show: ConsoleShow, shows: ShowsDep, base: PublicBaseDep) -> ConsoleView:
    return await _console_view(shows, base, show)


@console.patch(
    "",
    response_model=ConsoleView,
    summary="Set the title, schedule and products",
    responses=error_responses(
        ErrorCode.PERMISSION_DENIED,
        ErrorCode.SHOP_NOT_FOUND,
        ErrorCode.SHOW_NOT_FOUND,
        ErrorCode.PRODUCT_NOT_FOUND,
        ErrorCode.SHOW_ENDED,
    ),
)
async def console_patch(show: ConsoleShow, body: ShowPatch, shows: ShowsDep, base: PublicBaseDep) -> ConsoleView:
    return await _console_view(shows, base, await shows.update(show, body))


@console.post(
    "/start",
    response_model=HostJoin,
    summary="Go live, and get the host's join token",
    responses=error_responses(ErrorCode.PERMISSION_DENIED, ErrorCode.SHOW_NOT_FOUND, ErrorCode.SHOW_ENDED),
)
async def console_start(show: ConsoleShow, shows: ShowsDep) -> HostJoin:
    show = await shows.start(show)
    return HostJoin(show=show, token=await shows.host_token(show))


@console.post(
    "/join",
    response_model=HostJoin,
    summary="The host's join token for a show already live (from OBS)",
    responses=error_responses(ErrorCode.PERMISSION_DENIED, ErrorCode.SHOW_NOT_FOUND, ErrorCode.SHOW_NOT_LIVE),
)
async def console_join(show: ConsoleShow, shows: ShowsDep) -> HostJoin:
    if show.state != ShowState.LIVE:
        raise VitrineError(ErrorCode.SHOW_NOT_LIVE, "the show is not live")
    return HostJoin(show=show, token=await shows.host_token(show))


@console.post(
    "/end",
    response_model=ConsoleView,
    summary="End the show",
    responses=error_responses(ErrorCode.PERMISSION_DENIED, ErrorCode.SHOW_NOT_FOUND, ErrorCode.SHOW_NOT_LIVE),
)
async def console_end(show: ConsoleShow, shows: ShowsDep, base: PublicBaseDep) -> ConsoleView:
    return await _console_view(shows, base, await shows.end(show))


@console.post(
    "/stream-key",
    response_model=ConsoleView,
    summary="Rotate the OBS stream key",
    responses=error_responses(ErrorCode.PERMISSION_DENIED, ErrorCode.SHOW_NOT_FOUND),
)
async def console_rotate(show: ConsoleShow, shows: ShowsDep, base: PublicBaseDep) -> ConsoleView:
    return await _console_view(shows, base, await shows.rotate_stream_key(show))


@console.get(
    "/chat.csv",
    summary="The show's chat as CSV",
    response_class=Response,
    responses={
        **media_response("The chat, one line per message", "text/csv"),
        **error_responses(ErrorCode.PERMISSION_DENIED, ErrorCode.SHOW_NOT_FOUND),
    },
)
async def console_chat_csv(show: ConsoleShow, shows: ShowsDep) -> Response:
    return await _chat_csv(shows, show)


# -- viewers -------------------------------------------------------------------------------------------


@public.get(
    "",
    response_model=ShowView,
    summary="The show: title, state, products; the replay once ended",
    responses=error_responses(ErrorCode.SHOW_NOT_FOUND),
)
async def show_view(shop: str, show: str, shows: ShowsDep, live: LiveActionsDep, response: Response) -> ShowView:
    record = await shows.get(shop, show)
    response.headers["Cache-Control"] = "no-store"
    view = ShowView(
        id=record.id,
        shop=record.shop,
        title=record.title,
        state=record.state,
        scheduled_at_ms=record.scheduled_at_ms,
        started_at_ms=record.started_at_ms,
        ended_at_ms=record.ended_at_ms,
        products=await shows.cards(record),
    )
    if record.state == ShowState.LIVE:
        view.live = await live.state_for(record.room)
    elif record.state == ShowState.ENDED:
        view.replay = _replay(record)
    return view


def _replay(show: Show) -> Replay:
    base = f"/v1/live/{show.shop}/{show.id}/recording"
    parts = [
        ReplayPart(
            url=f"{base}/{index}",
            container=part.container,
            started_at_ms=part.started_at_ms,
            duration_ms=part.duration_ms,
        )
        for index, part in enumerate(show.recordings)
    ]
    first = parts[0] if parts else None
    return Replay(
        media_url=base if first else None,
        container=first.container if first else None,
        duration_ms=sum(part.duration_ms for part in parts),
        started_at_ms=first.started_at_ms if first else (show.started_at_ms or 0),
        parts=parts,
        chapters=show.chapters,
    )


@public.get(
    "/viewer",
    response_model=ViewerJoin,
    summary="A viewer's join token (the show must be live)",
    responses=error_responses(ErrorCode.SHOW_NOT_FOUND, ErrorCode.SHOW_NOT_LIVE),
)
async def viewer_join(
    shop: str,
    show: str,
    shows: ShowsDep,
    response: Response,
    name: Annotated[str | None, Query(min_length=1, max_length=40)] = None,
) -> ViewerJoin:
    record = await shows.get(shop, show)
    response.headers["Cache-Control"] = "no-store"
    if record.state != ShowState.LIVE:
        raise VitrineError(ErrorCode.SHOW_NOT_LIVE, f"the show is {record.state.value}")
    token, identity = shows.viewer_token(record, name)
    return ViewerJoin(token=token, identity=identity)


@public.get(
    "/log",
    response_model=LogPage,
    summary="The show's log (chat, pins, deals), oldest first",
    responses=error_responses(ErrorCode.SHOW_NOT_FOUND),
)
async def show_log(
    shop: str,
    show: str,
    shows: ShowsDep,
    state: StateDep,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 500,
) -> LogPage:
    record = await shows.get(shop, show)
    return LogPage(
        entries=await state.records.roomlog.after(record.room, after, limit),
        last_seq=await state.records.roomlog.last_seq(record.room),
    )


@public.get(
    "/recording",
    summary="The first part of the show's recording (supports Range)",
    response_class=FileResponse,
    responses={**RECORDING, **error_responses(ErrorCode.SHOW_NOT_FOUND)},
)
async def show_recording(shop: str, show: str, shows: ShowsDep, settings: SettingsDep) -> FileResponse:
    return await show_recording_part(shop, show, 0, shows, settings)


@public.get(
    "/recording/{part}",
    summary="One part of the show's recording (supports Range)",
    response_class=FileResponse,
    responses={**RECORDING, **error_responses(ErrorCode.SHOW_NOT_FOUND)},
)
async def show_recording_part(
    shop: str, show: str, part: Annotated[int, FastPath(ge=0, le=9999)], shows: ShowsDep, settings: SettingsDep
) -> FileResponse:
    record = await shows.get(shop, show)
    if part >= len(record.recordings):
        raise VitrineError(ErrorCode.SHOW_NOT_FOUND, "the show has no such recording")
    recording = record.recordings[part]
    root = FilePath(settings.recordings_dir).resolve()
    path = (root / recording.path).resolve()
    if not path.is_relative_to(root) or not path.is_file():
        raise VitrineError(ErrorCode.SHOW_NOT_FOUND, "the recording is not on this server")
    media = "video/webm" if recording.container == "webm" else f"video/{recording.container}"
    return FileResponse(
        path,
        media_type=media,
        headers={"Access-Control-Allow-Origin": "*", "Cross-Origin-Resource-Policy": "cross-origin"},
    )
