"""The consult desk as the runtime holds it: one hub, the queue desk and the call desk."""

from __future__ import annotations

from signaling.consult.calls import CallDesk
from signaling.consult.desk import ConsultDesk
from signaling.consult.hub import ConsultHub
from signaling.consult.policy import ConsultPolicy
from signaling.consult.records import WebhookSink
from signaling.consult.store import ConsultStore
from signaling.rooms import RoomService
from signaling.state import State
from vitrine.core.config import Settings
from vitrine.core.models import RoomKind


class ConsultService:
    def __init__(
        self, settings: Settings, state: State, rooms: RoomService, webhooks: WebhookSink, store: ConsultStore
    ) -> None:
        self.hub = ConsultHub(state.bus)
        self.desk = ConsultDesk(settings, state, rooms, self.hub, webhooks, store)
        self.calls = CallDesk(state, self.desk.records, rooms, self.desk.push_history)
        policy = rooms.policies.policy_for(RoomKind.CONSULT)
        if isinstance(policy, ConsultPolicy):  # the call rooms' door is the desk's to keep
            policy.door = self.desk

    def start(self) -> None:
        self.desk.start(self.calls.end)

    async def stop(self) -> None:
        await self.desk.stop()
