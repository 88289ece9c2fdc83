"""What the resync tests share (tests/test_resync.py, tests/browser/test_resync_browser.py): room events lost
where production loses them, on the way through the event bus."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from vitrine.core.state import keys
from vitrine.core.state.bus import EventBus

Drop = Callable[[dict[str, Any]], bool]


class LossyBus:
    """Drops the room events of ``room`` that ``drop`` picks as they are published on ``bus``, counting them.

    The room's state changes as usual; only the news is lost, for every session on every node, as a pub/sub
    message published while a node resubscribes is."""

    def __init__(self, bus: EventBus, room: str) -> None:
        self.drop: Drop = lambda event: False
        self.dropped = 0
        self._channel = keys.room_events_channel(room)
        self._publish = bus.publish
        bus.publish = self._maybe_publish  # type: ignore[method-assign]

    async def _maybe_publish(self, channel: str, message: str) -> int:
        body = json.loads(message)
        if channel == self._channel and body.get("type") == "event" and self.drop(body):
            self.dropped += 1
            return 1  # "heard": lost after the publish, as pub/sub loses it
        return await self._publish(channel, message)


def about(sid: str) -> Drop:
    """The events about one participant: its joins and leaves, and its tracks'."""
    return lambda e: sid in ((e.get("participant") or {}).get("sid"), (e.get("track") or {}).get("participant_sid"))


def joins(event: dict[str, Any]) -> bool:
    """Participants' joins and tracks' publications."""
    return event["event"] in ("participant_joined", "track_published")
