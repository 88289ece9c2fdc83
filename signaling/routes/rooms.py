"""Rooms: create, get, list, close. Authenticated with the API key and secret."""

from __future__ import annotations

from fastapi import APIRouter, status
from pydantic import Field

from signaling.deps import ApiKeyDep, RoomsDep, SettingsDep, StateDep
from vitrine.core.errors import ErrorCode, error_responses
from vitrine.core.models import Participant, Room, RoomKind, RoomName, ShopId, Strict, Track
from vitrine.core.records.shops import require_shop

router = APIRouter(prefix="/v1/rooms", tags=["rooms"], dependencies=[ApiKeyDep])


class CreateRoom(Strict):
    name: RoomName
    kind: RoomKind = RoomKind.CONSULT
    max_participants: int | None = Field(default=None, ge=1, le=10_000)
    shop: ShopId | None = Field(default=None, description="The shop that owns the room: only its tokens can join")


class RoomDetail(Strict):
    room: Room
    participants: list[Participant]
    tracks: list[Track]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=Room,
    summary="Create a room",
    responses=error_responses(ErrorCode.ROOM_EXISTS, ErrorCode.SHOP_NOT_FOUND),
)
async def create_room(body: CreateRoom, settings: SettingsDep, state: StateDep, rooms: RoomsDep) -> Room:
    default = rooms.policies.policy_for(body.kind).default_capacity
    capacity = body.max_participants or min(default, settings.max_participants_per_room)
    if body.shop is not None:  # the body names it, not the path: checked here, once the body is valid
        await require_shop(state.records.shops, body.shop)
    return await rooms.create_room(Room(name=body.name, kind=body.kind, max_participants=capacity, shop=body.shop))


@router.get("", response_model=list[Room], summary="List rooms")
async def list_rooms(state: StateDep) -> list[Room]:
    return await state.rooms.list_rooms()


@router.get(
    "/{name}",
    response_model=RoomDetail,
    summary="A room with its participants and tracks",
    responses=error_responses(ErrorCode.ROOM_NOT_FOUND),
)
async def get_room(name: str, state: StateDep, rooms: RoomsDep) -> RoomDetail:
    room = await rooms.get_room(name)
    return RoomDetail(
        room=room,
        participants=await state.rooms.list_participants(name),
        tracks=await state.rooms.list_tracks(name),
    )


@router.delete(
    "/{name}",
    response_model=Room,
    summary="Close a room: every participant is disconnected",
    responses=error_responses(ErrorCode.ROOM_NOT_FOUND),
)
async def close_room(name: str, rooms: RoomsDep) -> Room:
    return await rooms.close_room(name)
