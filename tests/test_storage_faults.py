"""A full or read-only evidence disk at the end of an inspection: a clear error, the case stays open, nothing is
lost, and ending again once the disk is fixed closes it with all its evidence (every part of the recording).

The evidence folder is a small tmpfs the test mounts (the suite runs as root, as CI does); the recordings folder
is on another filesystem, so the recording is copied into the case, the way it is on separate volumes.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from loadtest.client import VitrineClient
from signaling.inspect.links import buyer_identity
from tests.desk_helpers import make_shop
from tests.inspect_helpers import CaseFlow
from tests.media_helpers import av_tracks, receive_frames
from tests.servers import embedded_server
from vitrine.core.wire.inspect import ArtifactKind, CaseState, inspect_room
from vitrine.core.wire.rpc import RecordCommand, Recorded, expect

EXPORTS = {ArtifactKind("chat"), ArtifactKind("annotations"), ArtifactKind("notes"), ArtifactKind("timeline")}


@contextlib.contextmanager
def small_disk(path: Path, size: str = "8m") -> Iterator[Path]:
    path.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(disk: Path) -> Path:
    """Write until the disk refuses: the next write anywhere on it fails with ENOSPC."""
    filler = disk / "filler"
    with filler.open("wb") as out:
        chunk = b"\0" * 65536
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def remount(disk: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(disk)], check=True)


async def _end(case: CaseFlow) -> tuple[int, dict]:
    async with case.inspector() as http:
        response = await http.post("/v1/inspect/console/end", json={"verdict": "accepted", "comment": "refund"})
        return response.status_code, response.json()


@pytest.fixture
def root_only() -> None:
    if os.geteuid() != 0:
        pytest.fail("mounting a small disk needs root (CI runs as root)")


async def test_a_full_evidence_disk_keeps_the_case_open_and_the_retry_keeps_every_part_of_the_recording(
    tmp_path: Path, root_only: None
) -> None:
    with small_disk(tmp_path / "evidence") as disk:
        async with embedded_server(evidence_dir=str(disk), recordings_dir=str(tmp_path / "recordings")) as server:
            await make_shop(server)
            case = await CaseFlow.open(server)
            await case.consent()
            async with case.inspector() as http:
                join_token = (await http.get("/v1/inspect/console")).json()["join_token"]
            inspector = VitrineClient(server.url, join_token, tracks=av_tracks())
            buyer = VitrineClient(server.url, await case.buyer_token(), tracks=av_tracks())
            try:
                await inspector.connect()
                joining = asyncio.create_task(buyer.connect(timeout=60))
                knock = await asyncio.wait_for(inspector.knocks.get(), 30)
                await inspector.send({"type": "admit", "knock": knock["id"]})
                await joining
                video = await inspector.next_remote_track("video", timeout=30)
                assert len(await receive_frames(video, 30)) == 30  # the buyer's camera is being recorded
                # Part 0 finalized with nobody to take it in (as by a worker that closed the room), part 1 after.
                assert server.runtime is not None and server.runtime.media_worker is not None
                worker, room = server.runtime.media_worker, inspect_room(case.id)
                stopped = await worker.handle(RecordCommand(room=room, action="stop", recording_id=case.id))
                assert expect(stopped, Recorded).recording
                again = expect(
                    await worker.handle(
                        RecordCommand(room=room, action="start", recording_id=case.id, identity=buyer_identity(case.id))
                    ),
                    Recorded,
                )
                assert again.recording is not None and again.recording.part == 1
                assert len(await receive_frames(video, 30)) == 30

                filler = fill(disk)
                status, body = await _end(case)
                assert (status, body["code"]) == (503, "storage_unavailable"), body
                stored = await case.stored()
                assert stored is not None and stored.state != CaseState.CLOSED
                pending = [p.path for p in stored.pending_recordings]  # the parts wait on the case
                assert pending == [f"{case.id}.webm", f"{case.id}.1.webm"]
                assert all((tmp_path / "recordings" / path).is_file() for path in pending)
                assert not list(disk.rglob("*.part"))  # no half file left behind

                filler.unlink()
                status, body = await _end(case)
                assert status == 200 and body["state"] == "closed", body
                stored = await case.stored()
                assert stored is not None and stored.pending_recordings == []
                kinds = [a.kind for a in stored.artifacts]
                assert kinds.count(ArtifactKind.RECORDING) == 2 and EXPORTS <= set(kinds)
                assert not list((tmp_path / "recordings").iterdir())  # both parts moved into the case
                await case.verified_bundle(tmp_path)
            finally:
                for client in (inspector, buyer):
                    await client.close()


async def test_a_read_only_evidence_disk_refuses_the_end_until_it_is_writable_again(
    tmp_path: Path, root_only: None
) -> None:
    with small_disk(tmp_path / "evidence") as disk:
        async with embedded_server(evidence_dir=str(disk)) as server:
            await make_shop(server)
            case = await CaseFlow.open(server)
            await case.consent()
            async with case.inspector() as http:
                note = await http.post("/v1/inspect/console/notes", json={"text": "Crack along the rim"})
                assert note.status_code == 200, note.text
            remount(disk, "ro")
            status, body = await _end(case)
            assert (status, body["code"]) == (503, "storage_unavailable"), body
            assert "end it again" in body["message"]
            stored = await case.stored()
            assert stored is not None and stored.state != CaseState.CLOSED and stored.outcome is None

            remount(disk, "rw")
            status, body = await _end(case)
            assert status == 200 and body["state"] == "closed", body
            stored = await case.stored()
            assert stored is not None and EXPORTS <= {a.kind for a in stored.artifacts}
            await case.verified_bundle(tmp_path)
