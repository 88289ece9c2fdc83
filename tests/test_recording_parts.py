"""Recording in segments: a room that changes media worker mid-session is recorded on, one part per worker,
and every part ends up with its record.

The worker change is the real one: the embedded server on a Redis of its own, whose state is flushed under a
live show and an inspection. The worker notices (``vitrine.core.state.epoch``), closes its rooms and finalizes part
0, which nobody stops; signaling puts the rooms back and sends the clients to reconnect; their rejoin starts
part 1 (the show's room is made to be recorded, the inspection's buyer was admitted before). At the end the
show's replay plays both parts, with chapters in the part that shows them, and the case takes both into its
evidence, whose bundle verifies offline. Old stored documents with one recording still load.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import av
import httpx
import pytest

from loadtest.client import VitrineClient
from tests.desk_helpers import make_shop
from tests.durability_helpers import until
from tests.inspect_helpers import CaseFlow
from tests.live_helpers import go_live, make_show
from tests.media_helpers import av_tracks
from tests.recording_helpers import WAIT_S, lose_coordination, recorded
from tests.servers import RunningServer, embedded_server
from vitrine.core.models import now_ms
from vitrine.core.recording_parts import tagged_start
from vitrine.core.wire.inspect import ArtifactKind, Case, CaseState, inspect_room
from vitrine.core.wire.live import Show


@pytest.fixture
async def server(tmp_path: Path, redis_db_url: str) -> AsyncIterator[RunningServer]:
    async with embedded_server(redis_url=redis_db_url, recordings_dir=str(tmp_path / "recordings")) as running:
        yield running


def playable(path: Path) -> tuple[int, int]:
    """Decode a recorded file whole: (video frames, decode errors). It must start on a keyframe to decode."""
    frames = errors = 0
    with av.open(str(path)) as container:
        for packet in container.demux(video=0):
            try:
                frames += len(packet.decode())
            except av.FFmpegError:
                errors += 1
    return frames, errors


@pytest.mark.redis
async def test_a_show_whose_room_changes_worker_is_replayed_from_both_parts(
    server: RunningServer, tmp_path: Path
) -> None:
    show = await make_show(server)
    room = f"live-{show['id']}"
    console, host_token = await go_live(server, show)
    host = VitrineClient(server.url, host_token, tracks=av_tracks())
    try:
        await host.connect()
        await recorded(server, room, part=0, video_frames=30)
        await host.send({"type": "product", "action": "pin", "sku": "mug-1"})
        await until(lambda: any(e["kind"] == "product" for e in host.log), "the first pin")
        lost_at = now_ms()
        await lose_coordination(server, [host])
        part0 = tmp_path / "recordings" / f"{show['id']}.webm"
        assert part0.is_file(), "the worker that closed the room finalized part 0"

        host = VitrineClient(server.url, host_token, tracks=av_tracks())  # may not create the room: put back
        await host.connect(timeout=WAIT_S)
        await recorded(server, room, part=1, video_frames=30)
        await host.send({"type": "product", "action": "pin", "sku": "lamp-2"})
        await until(lambda: any(e["kind"] == "product" for e in host.log), "the second pin")
        ended = await console.post("/v1/live/console/end")
        assert ended.status_code == 200, ended.text
    finally:
        await host.close()
        await console.aclose()

    record = Show.model_validate(ended.json()["show"])
    first, second = record.recordings
    assert (first.path, second.path) == (part0.name, f"{show['id']}.1.webm")
    assert first.started_at_ms < lost_at < second.started_at_ms, "a part from before the loss and one from after"
    assert first.started_at_ms + first.duration_ms <= second.started_at_ms
    for part in (first, second):
        path = tmp_path / "recordings" / part.path
        assert part.duration_ms >= 1000 and part.bytes == path.stat().st_size
        with av.open(str(path)) as container:
            assert tagged_start(container.metadata) == part.started_at_ms
        frames, errors = playable(path)
        assert frames >= 30 and errors == 0
    assert [(c.card.sku, c.part) for c in record.chapters] == [("mug-1", 0), ("lamp-2", 1)]
    assert all(0 <= c.offset_ms <= record.recordings[c.part].duration_ms for c in record.chapters)

    base = f"/v1/live/acme/{show['id']}"
    async with httpx.AsyncClient(base_url=server.url) as http:
        replay = (await http.get(base)).json()["replay"]
        assert replay["media_url"] == f"{base}/recording" and replay["started_at_ms"] == first.started_at_ms
        assert [(p["url"], p["started_at_ms"], p["duration_ms"]) for p in replay["parts"]] == [
            (f"{base}/recording/{i}", part.started_at_ms, part.duration_ms) for i, part in enumerate(record.recordings)
        ]
        assert replay["duration_ms"] == first.duration_ms + second.duration_ms
        assert [(c["part"], c["offset_ms"]) for c in replay["chapters"]] == [
            (c.part, c.offset_ms) for c in record.chapters
        ]
        for index, part in enumerate(record.recordings):
            whole = (tmp_path / "recordings" / part.path).read_bytes()
            ranged = await http.get(f"{base}/recording/{index}", headers={"Range": "bytes=100-1099"})
            assert ranged.status_code == 206 and ranged.content == whole[100:1100]
            assert ranged.headers["content-type"] == "video/webm"
        assert (await http.get(f"{base}/recording")).content == part0.read_bytes()  # older pages: part 0
        missing = await http.get(f"{base}/recording/2")
        assert (missing.status_code, missing.json()["code"]) == (404, "show_not_found")


@pytest.mark.redis
async def test_an_inspection_whose_room_changes_worker_keeps_every_part_as_evidence(
    server: RunningServer, tmp_path: Path
) -> None:
    await make_shop(server)
    case = await CaseFlow.open(server)
    room = inspect_room(case.id)
    await case.consent()
    clients = list(await case.on_camera(await case.buyer_token(), WAIT_S))  # admitted: the buyer is recorded
    try:
        await recorded(server, room, part=0, video_frames=30)
        lost_at = now_ms()
        await lose_coordination(server, clients)
        assert (tmp_path / "recordings" / f"{case.id}.webm").is_file()
        clients[:] = await case.on_camera(await case.buyer_token(), WAIT_S)  # no knock: already admitted
        await recorded(server, room, part=1, video_frames=30)
        async with case.inspector() as http:
            ended = await http.post("/v1/inspect/console/end", json={"verdict": "accepted", "comment": ""})
        assert ended.status_code == 200 and ended.json()["state"] == "closed", ended.text
    finally:
        for client in clients:
            await client.close()

    stored = await case.stored()
    assert stored.pending_recordings == [] and stored.state == CaseState.CLOSED
    recordings = [a for a in stored.artifacts if a.kind == ArtifactKind.RECORDING]
    assert len(recordings) == 2, "the part from before the loss and the part from after it"
    assert recordings[0].captured_at_ms < lost_at < recordings[1].captured_at_ms
    assert not list((tmp_path / "recordings").iterdir()), "both parts moved into the case"
    assert server.runtime is not None
    for artifact in recordings:
        frames, errors = playable(server.runtime.evidence.store.path_of("acme", case.id, artifact))
        assert frames >= 30 and errors == 0 and artifact.duration_ms and artifact.duration_ms >= 1000
    result = await case.verified_bundle(tmp_path)  # offline, with both recordings in its hash chain
    assert result.entries == len(stored.artifacts) + 1  # every artifact and the report


@pytest.mark.redis
async def test_purging_a_case_removes_every_part_and_the_audit_quarantines_parts_of_no_record(
    server: RunningServer, tmp_path: Path
) -> None:
    await make_shop(server)
    case = await CaseFlow.open(server)
    directory = tmp_path / "recordings"
    directory.mkdir(exist_ok=True)
    mine = [f"{case.id}.webm", f"{case.id}.1.mp4", f"{case.id}.2.webm.part.1733580000000"]
    stray = ["sh_AbCdEf123456.webm", "sh_AbCdEf123456.1.webm", "cs_ZyXwVu987654.3.mp4"]
    for name in (*mine, *stray):
        (directory / name).write_bytes(name.encode())
    assert server.runtime is not None
    files = server.runtime.evidence.recordings
    assert [p.name for p in files.of(case.id)] == mine  # in part order
    assert await files.audit() == len(stray)  # no show or case of those ids: moved aside, not deleted
    assert sorted(p.name.rsplit(".", 1)[0] for p in (directory / ".quarantine").iterdir()) == sorted(stray)
    stored = await case.stored()
    assert await server.runtime.evidence.purge(stored) == len(mine)
    assert [p.name for p in directory.iterdir()] == [".quarantine"]


def test_documents_stored_before_recordings_had_parts_still_load() -> None:
    recording = {
        "path": "sh_AbCdEf123456.webm",
        "container": "webm",
        "started_at_ms": 1_000,
        "duration_ms": 60_000,
        "bytes": 4096,
    }
    chapter = {
        "offset_ms": 5_000,
        "seq": 3,
        "card": {
            "sku": "mug-1",
            "title": "Mug",
            "price": "12.50",
            "currency": "EUR",
            "url": "https://acme.example/p/mug-1",
        },
    }
    show = {
        "id": "sh_AbCdEf123456",
        "shop": "acme",
        "title": "Spring drop",
        "state": "ended",
        "recording": recording,
        "chapters": [chapter],
    }
    old = Show.model_validate_json(json.dumps(show))
    assert [r.path for r in old.recordings] == ["sh_AbCdEf123456.webm"] and old.chapters[0].part == 0
    assert Show.model_validate({**show, "recording": None}).recordings == []
    assert "recording" not in Show.model_validate(show).model_dump()

    pending = {"path": "cs_AbCdEf123456.webm", "container": "webm", "started_at_ms": 1_000, "duration_ms": 9_000}
    case = {
        "id": "cs_AbCdEf123456",
        "shop": "acme",
        "order_ref": "A-1",
        "claim": "cracked",
        "pending_recording": pending,
    }
    assert [p.path for p in Case.model_validate_json(json.dumps(case)).pending_recordings] == [pending["path"]]
    assert Case.model_validate({**case, "pending_recording": None}).pending_recordings == []
