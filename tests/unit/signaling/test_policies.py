"""What each product's policy answers the spine about sizes and relays (``signaling.policy``).

The cascade serves only the participants a room's policy lets a relay serve, and a room made over REST without a
size gets its policy's default: a show is large, calls and inspections are small.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from signaling.consult.policy import ConsultPolicy
from signaling.inspect.policy import InspectionPolicy
from signaling.live.policy import LivePolicy
from signaling.policy import RoomPolicy
from vitrine.core.models import ROLE_DEFAULT_GRANTS, Grants, Participant, Role


def _policies() -> dict[str, RoomPolicy]:
    live = LivePolicy(SimpleNamespace(click=None, product=None, deal=None, moderate=None))  # type: ignore[arg-type]
    return {"consult": ConsultPolicy(), "live": live, "inspect": InspectionPolicy(SimpleNamespace())}  # type: ignore[arg-type]


def _someone(role: Role, grants: Grants | None = None) -> Participant:
    return Participant(
        sid=f"PA_{role.value}", identity=role.value, role=role, grants=grants or ROLE_DEFAULT_GRANTS[role]
    )


@pytest.mark.parametrize(
    ("product", "capacity", "relays"),
    [("consult", 4, False), ("live", 1000, True), ("inspect", 4, False)],
)
def test_default_size_and_whether_the_room_relays(product: str, capacity: int, relays: bool) -> None:
    policy = _policies()[product]
    assert policy.default_capacity == capacity
    assert policy.relays is relays


@pytest.mark.parametrize(
    ("product", "participant", "relayed"),
    [
        ("live", _someone(Role.VIEWER), True),
        ("live", _someone(Role.VIEWER, Grants(can_publish=True)), False),  # a viewer brought on stage publishes
        ("live", _someone(Role.HOST), False),
        ("consult", _someone(Role.CUSTOMER), False),
        ("consult", _someone(Role.VIEWER), False),  # a role's name alone does not make a relay: the room's kind does
        ("inspect", _someone(Role.INSPECTOR), False),
    ],
)
def test_who_a_relay_may_serve(product: str, participant: Participant, relayed: bool) -> None:
    assert _policies()[product].relayed(participant) is relayed
