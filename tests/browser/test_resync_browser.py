"""The browser client (web/vitrine-client.js) in Debian Chromium catches up on lost room events with `resync`.

The embedded server loses the news of some room changes on its event bus (tests/resync_helpers.py); aiortc
clients make the changes. The page sees the gap at the next event that gets through, asks `resync` once, and
ends with the room's real participants and tracks, having emitted the joins, leaves and track changes the gap
hid (`resync: true`), so a UI driven by those events ends right.
"""

from __future__ import annotations

import pytest

from loadtest.client import VitrineClient
from tests.browser_support import STATE_TIMEOUT_MS, playwright_api, record_sent_frames
from tests.durability_helpers import until
from tests.media_helpers import av_tracks
from tests.resync_helpers import LossyBus, about, joins
from tests.servers import RunningServer
from vitrine.core.models import Role

pytestmark = pytest.mark.browser

ROOM = "resync-b"

# A page that joins with the shared client (nothing to publish) and keeps what a UI would draw from its events.
JOIN = """async (token) => {
  const { VitrineRoom } = await import("/vitrine-client.js");
  const room = new VitrineRoom();
  window.people = new Set(); window.published = new Set(); window.resynced = []; window.resyncs = 0;
  room.addEventListener("participant", (e) => {
    const { action, participant, resync } = e.detail;
    if (action === "joined") window.people.add(participant.identity); else window.people.delete(participant.identity);
    if (resync) window.resynced.push(`${action} ${participant.identity}`);
  });
  room.addEventListener("roomevent", (e) => {
    const { event, track, resync } = e.detail;
    if (event === "track_published") window.published.add(track.sid);
    if (event === "track_unpublished") window.published.delete(track.sid);
    if (resync && track) window.resynced.push(`${event} ${track.sid}`);
  });
  room.addEventListener("resync", () => { window.resyncs += 1; });
  await room.connect({ token, publish: false });
  window.room = room;
}"""

STATE = """() => ({
  people: [...window.people].sort(),
  published: [...window.published].sort(),
  participants: [...window.room.participants.values()].map((p) => p.identity).sort(),
  tracks: [...window.room.tracks.keys()].sort(),
  resyncs: window.resyncs,
})"""


async def _room(server: RunningServer) -> tuple[list[str], list[str]]:
    async with server.api() as api:
        detail = (await api.get(f"/v1/rooms/{ROOM}")).raise_for_status().json()
    return sorted(p["identity"] for p in detail["participants"]), sorted(t["sid"] for t in detail["tracks"])


async def test_the_browser_client_resyncs_after_lost_events(
    server: RunningServer, browser: playwright_api.Browser
) -> None:
    assert server.runtime is not None
    bus = LossyBus(server.runtime.state.bus, ROOM)
    page = await (await browser.new_context()).new_page()
    sent: list[dict] = []
    record_sent_frames(page, sent, "/v1/rtc")
    await page.goto(server.url + "/")
    await page.evaluate(JOIN, server.token(ROOM, "alice"))
    bob = VitrineClient(server.url, server.token(ROOM, "bob", create=False), tracks=av_tracks())
    carol = VitrineClient(server.url, server.token(ROOM, "carol", Role.AGENT, create=False))
    try:
        bus.drop = joins
        bob_sid = (await bob.connect())["participant"]["sid"]

        async def bobs_tracks() -> bool:
            return len((await _room(server))[1]) == 2

        await until(bobs_tracks, "bob's two tracks in the room")
        assert bus.dropped == 3
        bus.drop = lambda e: False
        await carol.connect()
        await page.wait_for_function("() => window.resyncs === 1", timeout=STATE_TIMEOUT_MS, polling=50)
        identities, tracks = await _room(server)
        state = await page.evaluate(STATE)
        assert state["participants"] == state["people"] == ["bob", "carol"] and identities == ["alice", "bob", "carol"]
        assert state["tracks"] == state["published"] == tracks
        assert sorted(await page.evaluate("() => window.resynced")) == sorted(
            ["joined bob", "joined carol", *(f"track_published {sid}" for sid in tracks)]
        )

        bus.drop = about(bob_sid)
        await bob.close()
        await until(lambda: bus.dropped == 6, "bob's leave and his two unpublished tracks, lost")
        bus.drop = lambda e: False
        await carol.close()
        await page.wait_for_function("() => window.resyncs === 2", timeout=STATE_TIMEOUT_MS, polling=50)
        state = await page.evaluate(STATE)
        assert state == {"people": [], "published": [], "participants": [], "tracks": [], "resyncs": 2}
        assert await _room(server) == (["alice"], [])
        assert [m["type"] for m in sent].count("resync") == 2
    finally:
        for client in (bob, carol):
            await client.close()
        await page.close()
