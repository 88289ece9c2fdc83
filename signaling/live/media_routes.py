"""A show's WHIP ingest (OBS and any WHIP encoder) and WHEP playback (any WHEP player).

``POST /v1/live/{shop}/{show}/whip`` with ``Authorization: Bearer <stream key>`` (the key the
console shows) publishes as the show's host, ``obs``; a scheduled show goes live when it does,
as it would on any streaming platform. A wrong key is ``401 invalid_token``, and rotating the
key turns the old one away. ``POST /v1/live/{shop}/{show}/whep`` needs no credentials, like the
viewer page: it plays the live show as an anonymous, hidden viewer. Both reuse the room WHIP
and WHEP path (``signaling/routes/whip.py``); ``PATCH``/``DELETE`` on the returned
``Location`` trickle and stop, with the stream key for WHIP and the unguessable resource URL
for WHEP. ``OPTIONS`` answers as on the room endpoints (RFC 9725 section 4.2), and a browser player on
one of the shop's ``allowed_origins`` gets its preflights answered (``shop_embed_cors``, signaling/app.py).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from signaling.admission import Admission
from signaling.deps import RoomsDep, SettingsDep, StateDep
from signaling.live.anonymous import WHEP_PREFIX, anonymous_identity
from signaling.live.deps import ShowsDep
from signaling.live.shows import OBS_IDENTITY, VIEWER_GRANTS
from signaling.rooms import RoomService
from signaling.routes.whip import (
    ENDPOINT_METHODS,
    QUEUE_NOTE,
    RESOURCE_METHODS,
    ice_links,
    options_response,
    read_offer,
    session_of,
    start_session,
    trickle_session,
)
from vitrine.core.auth import JoinClaims
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Role, now_ms
from vitrine.core.sdp_guard import parse_sdp, sends_media
from vitrine.core.wire.live import Show, ShowState

router = APIRouter(prefix="/v1/live/{shop}/{show}", tags=["whip-whep"])

_stream_key = HTTPBearer(
    auto_error=False, scheme_name="StreamKey", description="The show's stream key, as the console shows it"
)


async def _keyed_show(
    shop: str,
    show: str,
    shows: ShowsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_stream_key)],
) -> Show:
    if credentials is None:
        raise VitrineError(ErrorCode.INVALID_TOKEN, "Authorization: Bearer <stream key> required")
    record = await shows.get(shop, show)
    shows.check_stream_key(record, credentials.credentials)
    return record


KeyedShow = Annotated[Show, Depends(_keyed_show)]


def _location(show: Show, kind: str) -> str:
    return f"/v1/live/{show.shop}/{show.id}/{kind}"


@router.options("/whip", summary="What the show's WHIP endpoint accepts, and its ICE servers")
async def show_whip_options(
    shop: str,
    show: str,
    request: Request,
    shows: ShowsDep,
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_stream_key)],
) -> Response:
    """The ICE servers only for the show's stream key, and never for a CORS preflight (RFC 9725 section 4.6)."""
    links: list[str] = []
    if credentials is not None and "access-control-request-method" not in request.headers:
        try:
            shows.check_stream_key(await shows.get(shop, show), credentials.credentials)
            links = ice_links(settings, OBS_IDENTITY)
        except VitrineError:
            pass  # no ICE servers for a wrong key, as for none
    return options_response(ENDPOINT_METHODS, links)


@router.options("/whep", summary="What the show's WHEP endpoint accepts")
async def show_whep_options() -> Response:
    return options_response(ENDPOINT_METHODS)


@router.options("/whip/{sid}", summary="What the encoder's session takes")
@router.options("/whep/{sid}", summary="What a player's session takes")
async def show_session_options() -> Response:
    return options_response(RESOURCE_METHODS)


@router.post(
    "/whip",
    status_code=201,
    summary="Go live from OBS: WHIP with the show's stream key",
    description=QUEUE_NOTE.strip(),
)
async def show_whip(
    show: KeyedShow, request: Request, settings: SettingsDep, shows: ShowsDep, rooms: RoomsDep
) -> Response:
    if show.state == ShowState.ENDED:
        raise VitrineError(ErrorCode.SHOW_ENDED, "the show has ended")
    sdp = await read_offer(request, settings)
    if not sends_media(parse_sdp(sdp, settings.max_sdp_bytes)):  # before the show goes live on it
        raise VitrineError(ErrorCode.NEGOTIATION_FAILED, "the offer publishes no audio or video")
    show = await shows.start(show)
    return await start_session(
        "whip",
        show.room,
        request,
        rooms,
        shows.host_claims(show, OBS_IDENTITY),
        location=_location(show, "whip"),
        sdp=sdp,
    )


@router.patch("/whip/{sid}", status_code=204, summary="Trickle the encoder's candidates")
async def show_whip_trickle(sid: str, show: KeyedShow, request: Request, rooms: RoomsDep) -> Response:
    return await trickle_session(await session_of(show.room, sid, rooms, OBS_IDENTITY), request, rooms)


@router.delete("/whip/{sid}", summary="Stop publishing (the show stays live until it is ended)")
async def show_whip_stop(sid: str, show: KeyedShow, rooms: RoomsDep) -> Response:
    await rooms.leave(await session_of(show.room, sid, rooms, OBS_IDENTITY))
    return Response(status_code=200)


async def _live_show(shop: str, show: str, shows: ShowsDep) -> Show:
    record = await shows.get(shop, show)
    if record.state != ShowState.LIVE:
        raise VitrineError(ErrorCode.SHOW_NOT_LIVE, f"the show is {record.state.value}")
    return record


LiveShow = Annotated[Show, Depends(_live_show)]


@router.post(
    "/whep",
    status_code=201,
    summary="Watch the live show with any WHEP player",
    description="No credentials. One client address may play a show with a few players at once "
    "(`VITRINE_WHEP_MAX_PER_CLIENT`) and start one per `VITRINE_WHEP_NEW_EVERY_S`: "
    "`429 rate_limited` beyond." + QUEUE_NOTE,
)
async def show_whep(
    show: LiveShow, request: Request, settings: SettingsDep, state: StateDep, rooms: RoomsDep
) -> Response:
    sdp = await read_offer(request, settings)  # a bad offer is a 400 before it takes a slot
    address = request.client.host if request.client else "unknown"
    identity = await anonymous_identity(settings, state.coordination, show, address)
    now = now_ms() // 1000
    claims = JoinClaims(
        iss=settings.api_key,
        sub=identity,
        room=show.room,
        role=Role.VIEWER,
        grants=VIEWER_GRANTS,
        exp=now + 12 * 3600,
        iat=now,
        shop=show.shop,
    )
    return await start_session("whep", show.room, request, rooms, claims, location=_location(show, "whep"), sdp=sdp)


async def _whep_session(show: Show, sid: str, rooms: RoomService) -> Admission:
    participant = await rooms.state.rooms.get_participant(show.room, sid)
    if participant is None or not participant.identity.startswith(WHEP_PREFIX):
        raise VitrineError(ErrorCode.NOT_JOINED, "no such session")
    return await session_of(show.room, sid, rooms, participant.identity)


@router.patch("/whep/{sid}", status_code=204, summary="Trickle the player's candidates")
async def show_whep_trickle(sid: str, show: LiveShow, request: Request, rooms: RoomsDep) -> Response:
    return await trickle_session(await _whep_session(show, sid, rooms), request, rooms)


@router.delete("/whep/{sid}", summary="Stop watching")
async def show_whep_stop(sid: str, shop: str, show: str, shows: ShowsDep, rooms: RoomsDep) -> Response:
    record = await shows.get(shop, show)
    await rooms.leave(await _whep_session(record, sid, rooms))
    return Response(status_code=200)
