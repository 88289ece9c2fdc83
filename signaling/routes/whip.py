"""WHIP (RFC 9725) publishing and WHEP playback over plain HTTP.

``POST /whip/{room}`` or ``/whep/{room}`` with ``Authorization: Bearer <join
token>`` and an SDP offer answers ``201 Created`` with the SDP answer and a
``Location``; ``PATCH`` on it trickles candidates, ``DELETE`` leaves. The
room in the path must match the token's room: the token decides.

WHEP binds each receive-only m-line to a track of its kind already published
in the room by someone else. ``POST /whep/{room}?participant=<identity>``
restricts that to one publisher: in a room of two publishers (a consult), a
client publishing over WHIP and watching over WHEP would otherwise get its own
video back. Nothing published (by that identity) yet is ``track_not_found``:
WHEP sessions cannot renegotiate, so the player retries once the publisher is in.

Browser clients on another origin (RFC 9725 section 4.2) need more than the POST: ``OPTIONS`` on the
endpoints answers with ``Accept-Post`` (and the ICE servers as ``Link``, for a token of the room: Eyevinn's
whip-web-client reads them there), and the ``201`` carries an ``ETag`` naming the session's ICE session. A
trickle ``PATCH`` whose ``If-Match`` names another one is ``412``; ``If-Match: *`` asks for an ICE restart,
which aiortc cannot do: ``422`` (trickle is supported, restarts are not). A ``PATCH`` with no ``If-Match``
is still applied: the RFC would answer ``428``, but encoders written before it send none.

A burst of sessions is connected a few at a time by the media worker (``media/admission.py``). A ``POST``
whose join waits in the worker's line is held, not refused: WHIP encoders and WHEP players send their offer
once and wait for the answer, and few of them retry, so holding gets every one of them in, in order. The
line moves as handshakes end (each within ``VITRINE_HANDSHAKE_TIMEOUT_S``) and is bounded by its length
(``VITRINE_JOIN_QUEUE_MAX``): past it the answer is ``503 worker_busy`` with ``Retry-After`` (RFC 9725
section 4.6: a client may retry later).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from signaling.admission import Admission
from signaling.deps import ClaimsDep, RoomsDep
from signaling.metrics import METRICS
from signaling.rooms import RoomService
from signaling.state import State
from vitrine.core.auth import JoinClaims, verify_token
from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import NAME_PATTERN
from vitrine.core.sdp_guard import parse_sdp
from vitrine.core.turn import ice_servers_for
from vitrine.core.wire.rpc import CandidateCommand, OfferCommand
from vitrine.core.wire.rtc import IceCandidate

router = APIRouter(tags=["whip-whep"])

RETRY_AFTER_S = 2  # a refused join's retry: the worker's line moves by several joins a second
QUEUE_NOTE = (
    " A burst of sessions connects a few at a time (`VITRINE_MAX_HANDSHAKES_PER_WORKER`): a request whose turn"
    " has not come is held until it comes, in arrival order, because most WHIP/WHEP clients never retry; when"
    " `VITRINE_JOIN_QUEUE_MAX` requests already wait, `503 worker_busy` with `Retry-After`."
)

SDP = "application/sdp"
SDPFRAG = "application/trickle-ice-sdpfrag"
Kind = Literal["whip", "whep"]  # explicit in every route: a generic /{kind}/... would shadow other APIs
# What a browser client on another origin sends and reads (RFC 9725): If-Match on trickle PATCHes, and ETag,
# which Eyevinn's whip-web-client sends in their place; the resource URL, the ICE servers and the ICE session.
CORS_REQUEST_HEADERS = ("Authorization", "Content-Type", "If-Match", "ETag")
CORS_EXPOSED_HEADERS = ("Location", "Link", "ETag", "Accept-Post", "Accept-Patch", "Access-Control-Allow-Methods")
ENDPOINT_METHODS = "OPTIONS, POST"
RESOURCE_METHODS = "OPTIONS, PATCH, DELETE"
SESSION_METHODS = "OPTIONS, POST, PATCH, DELETE"  # an endpoint's and its sessions'


class PreconditionFailed(VitrineError):
    """A trickle PATCH for another ICE session than this one (RFC 9725 section 4.3.1): ``412``."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.NEGOTIATION_FAILED, message)

    @property
    def http_status(self) -> int:
        return 412


def session_etag(sid: str) -> str:
    """The strong entity-tag of the session's ICE session. aiortc cannot restart ICE, so a session has one ICE
    session for its whole life, and its sid names it."""
    return f'"{sid}"'


def options_response(methods: str, links: list[str] | None = None) -> Response:
    """An ``OPTIONS`` answer (RFC 9725 section 4.2): what the resource takes, and for an endpoint what it
    accepts and the ICE servers. ``Access-Control-Allow-Methods`` names what the endpoint and its sessions
    take, readable by scripts: Eyevinn's whip-web-client trickles only when it lists PATCH."""
    headers = {"Allow": methods, "Access-Control-Allow-Methods": SESSION_METHODS}
    if "POST" in methods:
        headers["Accept-Post"] = SDP
    else:
        headers["Accept-Patch"] = SDPFRAG
    if links:
        headers["Link"] = ", ".join(links)
    return Response(status_code=200, headers=headers)


async def _read_body(request: Request, content_type: str, limit: int) -> str:
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != content_type:
        raise VitrineError(ErrorCode.INVALID_MESSAGE, f"Content-Type must be {content_type}")
    body = await request.body()
    if len(body) > limit:
        raise VitrineError(ErrorCode.MESSAGE_TOO_LARGE, f"body exceeds {limit} bytes")
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise VitrineError(ErrorCode.INVALID_SDP, "body is not UTF-8") from None


def _check_room(claims: JoinClaims, room: str) -> None:
    if claims.room != room:
        raise VitrineError(ErrorCode.PERMISSION_DENIED, "the token is for another room")


def ice_links(settings: Settings, identity: str) -> list[str]:
    links = []
    for server in ice_servers_for(settings, identity):
        for url in server.urls:
            link = f'<{url}>; rel="ice-server"'
            if server.username and server.credential:
                link += f'; username="{server.username}"; credential="{server.credential}"; credential-type="password"'
            links.append(link)
    return links


async def _check_playable(state: State, room: str, publisher: str | None) -> None:
    """Refuse a WHEP offer that could bind nothing, before admitting a session for it."""
    tracks = await state.rooms.list_tracks(room)
    if publisher is None:
        if not tracks:
            raise VitrineError(ErrorCode.TRACK_NOT_FOUND, "nothing is published in this room yet")
        return
    sids = {p.sid for p in await state.rooms.list_participants(room) if p.identity == publisher}
    if not any(t.participant_sid in sids for t in tracks):
        raise VitrineError(ErrorCode.TRACK_NOT_FOUND, f"participant {publisher!r} publishes nothing in this room yet")


async def read_offer(request: Request, settings: Settings) -> str:
    """The request's SDP offer, checked by the SDP guard before any session or room is admitted for it:
    an empty or malformed offer is a typed 400, never a half-built session."""
    sdp = await _read_body(request, SDP, settings.max_sdp_bytes)
    parse_sdp(sdp, settings.max_sdp_bytes)
    return sdp


async def start_session(
    kind: Kind,
    room: str,
    request: Request,
    rooms: RoomService,
    claims: JoinClaims,
    publisher: str | None = None,
    location: str | None = None,
    sdp: str | None = None,
) -> Response:
    """Admit the token's participant and answer its offer (``sdp``, or the request's body); ``location`` is
    the resource's base URL."""
    _check_room(claims, room)
    if kind == "whip" and not claims.grants.can_publish:
        raise VitrineError(ErrorCode.PERMISSION_DENIED, "this token may not publish")
    if kind == "whep" and not claims.grants.can_subscribe:
        raise VitrineError(ErrorCode.PERMISSION_DENIED, "this token may not subscribe")
    if sdp is None:
        sdp = await read_offer(request, rooms.settings)
    if kind == "whep":
        await _check_playable(rooms.state, room, publisher)
    admission = await rooms.admit(claims, publish=[], name=None, node_id=rooms.settings.node_id, auto_subscribe=False)
    try:  # the worker answers once a handshake slot is free: the request is held while it waits its turn
        reply = await rooms.run(
            admission, OfferCommand(room=room, sid=admission.participant.sid, sdp=sdp, publisher=publisher)
        )
    except BaseException as exc:
        await rooms.leave(admission)
        if isinstance(exc, VitrineError) and exc.code is ErrorCode.WORKER_BUSY:
            return busy_response(exc)
        raise
    if kind == "whip" and not reply.published:
        await rooms.leave(admission)
        raise VitrineError(ErrorCode.NEGOTIATION_FAILED, "the offer publishes no audio or video")
    assert reply.answer is not None
    if kind == "whep" and not any(m.direction == "recv" and m.track_sid for m in reply.answer.mids.values()):
        await rooms.leave(admission)  # its publisher went meanwhile: a session that would never show a frame
        raise VitrineError(ErrorCode.TRACK_NOT_FOUND, "nothing this offer can play is published any more; retry")
    METRICS.whip_sessions.labels(kind=kind).inc()
    headers = {
        "Location": f"{location or f'/{kind}/{room}'}/{admission.participant.sid}",
        "ETag": session_etag(admission.participant.sid),
        "Access-Control-Expose-Headers": ", ".join(CORS_EXPOSED_HEADERS),
    }
    links = ice_links(rooms.settings, claims.sub)
    if links:
        headers["Link"] = ", ".join(links)
    return Response(reply.answer.sdp, status_code=201, media_type=SDP, headers=headers)


def busy_response(exc: VitrineError) -> Response:
    """``503 worker_busy``, with when to try again."""
    return JSONResponse(exc.body(), status_code=exc.http_status, headers={"Retry-After": str(RETRY_AFTER_S)})


async def session_of(room: str, sid: str, rooms: RoomService, identity: str) -> Admission:
    """A WHIP or WHEP session, only for the identity that started it."""
    participant = await rooms.state.rooms.get_participant(room, sid)
    if participant is None or participant.identity != identity:
        raise VitrineError(ErrorCode.NOT_JOINED, "no such session")
    room_record = await rooms.get_room(room)
    if room_record.worker_id is None:
        raise VitrineError(ErrorCode.WORKER_UNAVAILABLE, "the session's media worker is gone")
    return Admission(room=room_record, participant=participant, worker_id=room_record.worker_id)


async def endpoint_links(request: Request, rooms: RoomService, room: str) -> list[str]:
    """The ICE servers an ``OPTIONS`` on an endpoint tells: only for a join token of the room, and never in
    answer to a CORS preflight (RFC 9725 section 4.6: those carry no token, and TURN credentials cost)."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token or "access-control-request-method" in request.headers:
        return []
    try:
        claims = verify_token(rooms.settings, token)
    except VitrineError:
        return []
    return ice_links(rooms.settings, claims.sub) if claims.room == room else []


@router.options("/whip/{room}", summary="What the WHIP endpoint accepts, and its ICE servers")
async def whip_options(room: str, request: Request, rooms: RoomsDep) -> Response:
    return options_response(ENDPOINT_METHODS, await endpoint_links(request, rooms, room))


@router.options("/whep/{room}", summary="What the WHEP endpoint accepts, and its ICE servers")
async def whep_options(room: str, request: Request, rooms: RoomsDep) -> Response:
    return options_response(ENDPOINT_METHODS, await endpoint_links(request, rooms, room))


@router.options("/whip/{room}/{sid}", summary="What a WHIP session takes")
@router.options("/whep/{room}/{sid}", summary="What a WHEP session takes")
async def session_options() -> Response:
    return options_response(RESOURCE_METHODS)


@router.post("/whip/{room}", status_code=201, summary="Publish with WHIP (RFC 9725)", description=QUEUE_NOTE.strip())
async def whip(room: str, request: Request, rooms: RoomsDep, claims: ClaimsDep) -> Response:
    return await start_session("whip", room, request, rooms, claims)


@router.post(
    "/whep/{room}",
    status_code=201,
    summary="Play with WHEP",
    description="Each receive-only m-line of the offer is bound to a track of its kind published in "
    "the room by another participant (by `participant` only, when given). "
    "`404 track_not_found` when nothing (by that participant) is published yet: "
    "WHEP sessions cannot renegotiate, so retry once the publisher is in." + QUEUE_NOTE,
)
async def whep(
    room: str,
    request: Request,
    rooms: RoomsDep,
    claims: ClaimsDep,
    participant: Annotated[
        str | None,
        Query(
            pattern=NAME_PATTERN.pattern,
            max_length=128,
            description="Play only this publisher's tracks: the identity of its join token",
        ),
    ] = None,
) -> Response:
    return await start_session("whep", room, request, rooms, claims, participant)


@router.patch("/whip/{room}/{sid}", status_code=204, summary="Trickle a WHIP session's ICE candidates (sdpfrag)")
async def whip_trickle(room: str, sid: str, request: Request, rooms: RoomsDep, claims: ClaimsDep) -> Response:
    return await _trickle(room, sid, request, rooms, claims)


@router.patch("/whep/{room}/{sid}", status_code=204, summary="Trickle a WHEP session's ICE candidates (sdpfrag)")
async def whep_trickle(room: str, sid: str, request: Request, rooms: RoomsDep, claims: ClaimsDep) -> Response:
    return await _trickle(room, sid, request, rooms, claims)


@router.delete("/whip/{room}/{sid}", summary="End a WHIP session")
async def whip_stop(room: str, sid: str, rooms: RoomsDep, claims: ClaimsDep) -> Response:
    return await _stop(room, sid, rooms, claims)


@router.delete("/whep/{room}/{sid}", summary="End a WHEP session")
async def whep_stop(room: str, sid: str, rooms: RoomsDep, claims: ClaimsDep) -> Response:
    return await _stop(room, sid, rooms, claims)


async def _trickle(room: str, sid: str, request: Request, rooms: RoomService, claims: JoinClaims) -> Response:
    _check_room(claims, room)
    return await trickle_session(await session_of(room, sid, rooms, claims.sub), request, rooms)


async def _stop(room: str, sid: str, rooms: RoomService, claims: JoinClaims) -> Response:
    _check_room(claims, room)
    await rooms.leave(await session_of(room, sid, rooms, claims.sub))
    return Response(status_code=200)


async def trickle_session(admission: Admission, request: Request, rooms: RoomService) -> Response:
    """Apply an sdpfrag of trickled candidates (and end-of-candidates) to a session."""
    room, sid = admission.room.name, admission.participant.sid
    _check_ice_session(request, sid)
    fragment = await _read_body(request, SDPFRAG, rooms.settings.max_sdp_bytes)
    for line in fragment.splitlines():
        line = line.strip()
        if line.startswith("a=candidate:"):
            try:
                candidate = IceCandidate(candidate=line[2:], sdpMLineIndex=0)
            except ValidationError:
                raise VitrineError(ErrorCode.INVALID_CANDIDATE, "ICE candidate could not be parsed") from None
            await rooms.run(admission, CandidateCommand(room=room, sid=sid, candidate=candidate))
        elif line == "a=end-of-candidates":
            await rooms.run(admission, CandidateCommand(room=room, sid=sid, candidate=None))
    return Response(status_code=204)


def _check_ice_session(request: Request, sid: str) -> None:
    """RFC 9725 section 4.3.1: ``If-Match: *`` is an ICE restart (``422``: not supported), and an entity-tag
    of another ICE session is ``412``. None at all is let through, for clients older than the RFC."""
    if_match = request.headers.get("if-match")
    if if_match is None:
        return
    tags = [tag.strip() for tag in if_match.split(",")]
    if "*" in tags:
        raise VitrineError(ErrorCode.NEGOTIATION_FAILED, "ICE restarts are not supported: start a new session")
    if session_etag(sid) not in tags:
        raise PreconditionFailed("If-Match names another ICE session than this one")
