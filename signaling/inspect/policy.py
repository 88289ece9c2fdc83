"""An inspection's answers to the spine's questions (``signaling.policy``).

An inspection keeps a long log (it is the case's timeline), takes its two sides' ``inspect`` actions, records
the timeline's admit or denial of the buyer's knock (an admit starts the recording), keeps recording a buyer who
was admitted before and joins again, and has the media worker keep the buyer's evidence (photos, snapshots) in
its case's folder.
"""

from __future__ import annotations

from signaling.admission import Admission
from signaling.inspect.sessions import InspectionService
from signaling.policy import PlainPolicy, RateLimit, RoomMessage
from vitrine.core.artifacts import CASE_ID
from vitrine.core.models import Participant, Role, Room, RoomKind
from vitrine.core.records.roomlog import INSPECTION_MAX_ENTRIES
from vitrine.core.wire.inspect import case_of_room
from vitrine.core.wire.inspect_actions import InspectMessage
from vitrine.core.wire.rpc import EvidenceFolder
from vitrine.core.wire.rtc import Knock

INSPECT_BURST, INSPECT_PER_S = 20, 5.0  # an inspector drags a zoom slider, draws marks


class InspectionPolicy(PlainPolicy):
    kind = RoomKind.INSPECTION
    roles = frozenset({Role.BUYER, Role.INSPECTOR})
    where = "an inspection"
    log_keep = INSPECTION_MAX_ENTRIES

    def __init__(self, inspections: InspectionService) -> None:
        self.inspections = inspections
        limit = RateLimit(INSPECT_BURST, INSPECT_PER_S, "slow down: too many inspection actions")
        self.messages = {"inspect": RoomMessage(self._inspect, limit)}

    async def joined(self, admission: Admission, *, knocked: bool) -> None:
        if not knocked:  # a buyer admitted before: its recording goes on
            await self.inspections.rejoined(admission)

    async def knock_settled(self, admission: Admission, knock: Knock, admitted: bool) -> None:
        await self.inspections.knock_settled(admission, knock, admitted)

    def evidence(self, room: Room, participant: Participant) -> EvidenceFolder | None:
        """The case's buyer, and nobody else, gets the evidence channel; its files go in the case's folder."""
        case_id = case_of_room(room.name)
        if participant.role != Role.BUYER or room.shop is None or case_id is None or not CASE_ID.match(case_id):
            return None
        return EvidenceFolder(shop=room.shop, case_id=case_id)

    async def _inspect(self, admission: Admission, message: InspectMessage) -> None:
        await self.inspections.act(admission, message.body)
