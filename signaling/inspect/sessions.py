"""``InspectionService``: a case's live session: its room, its two sides' tokens, and what they say.

The buyer's path: consent (recorded with the exact text shown), a join token that knocks until the
inspector admits the case's buyer once, then the room. The admit starts the recording of the buyer's
tracks only; a later join of the buyer keeps it going (its next part if the room changed worker). In
the room, each side's ``inspect`` actions are checked against who may send them and appended to the
room's log, which both pages follow and which becomes the case's timeline; photos the
worker stored from the buyer's data channel, and snapshots it decoded, are added to the case with their
hashes and announced in the log.
"""

from __future__ import annotations

import logging

from signaling.admission import Admission
from signaling.inspect.cases import CaseService
from signaling.inspect.consent import consent_text
from signaling.inspect.links import (
    buyer_identity,
    mint_buyer_join_token,
    mint_inspector_join_token,
)
from signaling.rooms import RoomService
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import ParticipantView, Role, Room, RoomKind, now_ms
from vitrine.core.records.roomlog import INSPECTION_MAX_ENTRIES
from vitrine.core.wire.inspect import Artifact, Case, CaseState, Consent, case_of_room, inspect_room
from vitrine.core.wire.inspect_actions import (
    BUYER_ACTIONS,
    INSPECTOR_ACTIONS,
    ArtifactNotice,
    CaseNotice,
    InspectBody,
    SnapshotRequest,
)
from vitrine.core.wire.rpc import RecordCommand, Recorded, Refused, Snapped, SnapshotCommand, expect
from vitrine.core.wire.rtc import Knock, LogEntry

logger = logging.getLogger(__name__)

ROOM_CAPACITY = 4  # the buyer, the inspector, and room for a second console or a supervisor


def still_open(case: Case) -> Case:
    if case.state == CaseState.CLOSED:
        raise VitrineError(ErrorCode.CASE_CLOSED, "this inspection is over")
    return case


class InspectionService:
    def __init__(self, rooms: RoomService, cases: CaseService) -> None:
        self.rooms = rooms
        self.cases = cases
        self.settings = rooms.settings
        self.state = rooms.state

    # -- the room and its tokens ----------------------------------------------------------

    async def room_for(self, case: Case) -> Room:
        """The case's room, created on first use (``room_record`` describes it); a closed case gets none."""
        still_open(case)
        return await self.rooms.get_room(inspect_room(case.id))

    async def room_record(self, name: str) -> Room | None:
        """An open case's room, for ``RoomService.find_room``: it exists while the case is open."""
        case_id = case_of_room(name)
        case = await self.cases.store.find(case_id) if case_id else None
        return case_room(case) if case is not None and case.state != CaseState.CLOSED else None

    async def consent_text(self, case: Case) -> tuple[str, int, int]:
        """The consent text for this case's buyer, its version, and the shop's retention in days."""
        shop = await self.state.records.shops.get_shop(case.shop)
        days = shop.evidence_retention_days if shop else 180
        text, version = consent_text(case.language, shop.name if shop else case.shop, days)
        return text, version, days

    async def consent(self, case: Case, version: int) -> Case:
        text, current, _ = await self.consent_text(case)
        if version != current:
            raise VitrineError(ErrorCode.INVALID_MESSAGE, "the consent text has changed: reload the page")

        def record(stored: Case) -> Case:
            still_open(stored)
            if stored.consent is not None:
                return stored  # agreeing twice keeps the first record
            consent = Consent(at_ms=now_ms(), version=version, language=stored.language, text=text)
            return stored.model_copy(update={"consent": consent})

        case = await self.cases.update(case.shop, case.id, record)
        room = await self.room_for(case)
        await self.log(room.name, CaseNotice(action="case", event="consented"))
        return case

    async def buyer_token(self, case: Case) -> str:
        still_open(case)
        if case.consent is None:
            raise VitrineError(ErrorCode.CONSENT_REQUIRED, "the buyer has not agreed to the recording yet")
        await self.room_for(case)
        return mint_buyer_join_token(self.settings, case)

    async def inspector_token(self, case: Case, name: str) -> str:
        await self.room_for(case)
        return mint_inspector_join_token(self.settings, case, name)

    # -- in the room ----------------------------------------------------------------------

    async def act(self, admission: Admission, body: InspectBody) -> None:
        """One side's ``inspect`` action (the room's policy hands it here): checked against its role, then logged
        for both (a snapshot is taken first)."""
        room, participant = admission.room, admission.participant
        allowed = (
            INSPECTOR_ACTIONS
            if participant.grants.room_admin
            else (BUYER_ACTIONS if participant.role == Role.BUYER else frozenset())
        )
        if body.action not in allowed:
            raise VitrineError(ErrorCode.PERMISSION_DENIED, f"inspect: {body.action} is not yours to send")
        await self.log(room.name, body, ParticipantView.of(participant))
        if isinstance(body, SnapshotRequest):
            await self._snapshot(room, body)

    async def _snapshot(self, room: Room, request: SnapshotRequest) -> None:
        case_id = case_of_room(room.name)
        worker = (await self.rooms.get_room(room.name)).worker_id
        if case_id is None or worker is None:
            raise VitrineError(ErrorCode.NO_MEDIA_WORKER, "the session has no media worker")
        reply = expect(
            await self.rooms.link.call(worker, SnapshotCommand(room=room.name, identity=buyer_identity(case_id))),
            Snapped,
        )
        await self.add_artifact(room.name, reply.artifact.model_copy(update={"request": request.request}))

    async def add_artifact(self, room_name: str, artifact: Artifact) -> None:
        """A photo or snapshot the worker stored under the case: committed to the case's record before this
        returns (the buyer's phone hears ``stored`` only then), then both sides are told.

        The case is found by the id in the room's name, not through the room: coordination state may have
        been lost meanwhile, and the record is what counts. A case that is gone or closed refuses the file
        (``case_not_found``, ``case_closed``), so the worker removes it and tells the phone."""
        case_id = case_of_room(room_name)
        case = await self.cases.store.find(case_id) if case_id else None
        if case is None:
            raise VitrineError(ErrorCode.CASE_NOT_FOUND, "this inspection's case no longer exists")
        await self.cases.update(
            case.shop,
            case.id,
            lambda stored: still_open(stored).model_copy(update={"artifacts": [*stored.artifacts, artifact]}),
        )
        await self.log(room_name, ArtifactNotice(action="artifact", artifact=artifact))

    async def knock_settled(self, admission: Admission, knock: Knock, admitted: bool) -> None:
        """The inspector answered the buyer's knock: the timeline says so, and an admit starts the recording."""
        room = admission.room
        case_id = case_of_room(room.name)
        if case_id is None or room.shop is None:
            return
        if knock.participant.role != Role.BUYER:
            return
        if admitted:  # recorded before the timeline says so: later joins of the buyer need no knock
            await self.cases.update(
                room.shop,
                case_id,
                lambda case: case if case.admitted_at_ms else case.model_copy(update={"admitted_at_ms": now_ms()}),
            )
        await self.log(
            room.name,
            CaseNotice(action="case", event="admitted" if admitted else "denied"),
            ParticipantView.of(admission.participant),
        )
        if not admitted:
            return
        if await self._record(room.name, admission.worker_id, case_id):
            await self.log(room.name, CaseNotice(action="case", event="recording"))

    async def rejoined(self, admission: Admission) -> None:
        """Someone joined without knocking. For an inspection's buyer that means it was admitted before, and its
        recording goes on: a no-op on a worker that records the case already (the buyer's new network), the
        recording's next part on another (the room changed worker: a restart, a death, a loss of coordination
        state), since no admit comes to start it there. Never fails the join."""
        room, participant = admission.room, admission.participant
        case_id = case_of_room(room.name)
        if case_id is None or participant.role != Role.BUYER:
            return
        try:
            await self._record(room.name, admission.worker_id, case_id)
        except VitrineError as exc:
            logger.warning("inspection %s: the recording did not go on: %s", case_id, exc.message)

    async def _record(self, room: str, worker_id: str, case_id: str) -> bool:
        """Record the case's buyer, and only the buyer, on the room's worker; whether it does."""
        reply = await self.rooms.link.call(
            worker_id, RecordCommand(room=room, action="start", recording_id=case_id, identity=buyer_identity(case_id))
        )
        match reply:
            case Refused(message=message):
                logger.warning("inspection %s is not recorded: %s", case_id, message)
                return False
            case _:
                expect(reply, Recorded)
                return True

    async def log(self, room: str, body: InspectBody, participant: ParticipantView | None = None) -> LogEntry:
        return await self.rooms.append_log(
            room,
            LogEntry(seq=0, kind="inspect", participant=participant, at_ms=now_ms(), inspect=body),
            keep=INSPECTION_MAX_ENTRIES,
        )


def case_room(case: Case) -> Room:
    return Room(name=inspect_room(case.id), kind=RoomKind.INSPECTION, shop=case.shop, max_participants=ROOM_CAPACITY)
