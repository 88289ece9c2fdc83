"""Rooms that records say exist come back after a restart: coordination is rebuilt from records.

The embedded server keeps rooms in memory. When it restarts in the same data folder, a live show is
still live and an open case still open, so their rooms are put back on the first join
(``RoomService.find_room``), with tokens that may not create rooms. A room whose record says it is
over stays gone.
"""

from __future__ import annotations

from pathlib import Path

from tests.inspect_helpers import CaseFlow
from tests.live_helpers import go_live, join, make_show, viewer_token
from tests.servers import embedded_server


async def test_a_live_show_and_an_open_case_outlive_a_restart(tmp_path: Path) -> None:
    folders = {
        "data_dir": str(tmp_path / "data"),
        "evidence_dir": str(tmp_path / "evidence"),
        "recordings_dir": str(tmp_path / "recordings"),
    }
    async with embedded_server(**folders) as server:
        show = await make_show(server)
        console, host_token = await go_live(server, show)
        await console.aclose()
        host = await join(server, host_token)
        await host.send({"type": "chat", "text": "welcome"})
        await host.expect("log", lambda m: m["entry"].get("text") == "welcome")
        await host.close()
        case = await CaseFlow.open(server)
        await case.consent()
        async with case.inspector() as http:
            inspector_token = (await http.get("/v1/inspect/console")).json()["join_token"]
        ended = await make_show(server, shop="other", title="Over")
        console, over_token = await go_live(server, ended)
        assert (await console.post("/v1/live/console/end")).status_code == 200
        await console.aclose()

    async with embedded_server(**folders) as restarted:
        host = await join(restarted, host_token)  # the host's token may not create the room: it was put back
        assert host.of("joined")[0]["live"]["state"] == "live"
        viewer = await join(restarted, await viewer_token(restarted, show))
        await viewer.send({"type": "history", "after": 0})
        history = await viewer.expect("history")
        assert [e["text"] for e in history["entries"] if e["kind"] == "chat"] == ["welcome"]
        case.server = restarted
        inspector = await case.join(inspector_token)
        await inspector.expect("joined")
        late = await case.join(over_token)  # the ended show's room is not put back
        refused = await late.expect("error")
        assert refused["code"] == "room_not_found"
        for client in (host, viewer, inspector, late):
            await client.close()
