"""Scaled mode: a photo is ``stored`` only once signaling has recorded it, over a real Redis.

The worker's pushes go through ``media.service.BusPusher`` and arrive at a signaling node's
``BusWorkerLink``, as with separate processes. The node's push handler stands in for
``Runtime.on_push`` (which commits the artifact to the case): the tests control when, and whether, it
succeeds, and check what the phone hears and what stays on disk.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from media.service import BusPusher
from signaling.worker_link import BusWorkerLink
from tests.evidence_helpers import Evidence, buyer_with_channel, leftovers, photo
from tests.worker_harness import Harness
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.state import open_coordination
from vitrine.core.wire.rpc import ArtifactStored, WorkerPush

pytestmark = pytest.mark.redis

ArtifactHandler = Callable[[ArtifactStored], Awaitable[None]]


class ScaledHarness:
    """A worker whose pushes cross Redis to a signaling node; ``on_artifact`` is that node's recording step."""

    def __init__(self, harness: Harness, link: BusWorkerLink) -> None:
        self.harness, self.link = harness, link
        self.events: list[str] = []  # what happened, in order: "recorded", "stored" (the phone's reply), ...
        self.on_artifact: ArtifactHandler = self._record

    async def _record(self, push: ArtifactStored) -> None:
        self.events.append("recorded")

    async def node_push(self, push: WorkerPush) -> None:
        match push:
            case ArtifactStored():
                await self.on_artifact(push)
            case _:
                await self.harness._push(push)

    async def photo_reply(self, evidence: Evidence) -> dict[str, object]:
        reply = await evidence.reply()
        self.events.append(str(reply["type"]))
        return reply


@pytest.fixture
async def scaled(tmp_path: Path, redis_db_url: str) -> AsyncIterator[ScaledHarness]:
    harness = Harness(tmp_path)
    settings = harness.settings.model_copy(update={"redis_url": redis_db_url})
    coordination = await open_coordination(settings)
    link = BusWorkerLink(coordination.bus, "node-test", timeout_s=10.0)
    pusher = BusPusher(coordination, harness.worker.id, timeout_s=2.0)
    running = ScaledHarness(harness, link)
    link.on_push(running.node_push)
    await link.start()
    await pusher.start()
    harness.worker.push = pusher.push
    try:
        yield running
    finally:
        await harness.close()
        await pusher.close()
        await link.close()
        await coordination.close()


async def test_the_phone_hears_stored_only_after_signaling_recorded_the_photo(scaled: ScaledHarness) -> None:
    async def slow_record(push: ArtifactStored) -> None:
        await asyncio.sleep(0.3)  # a slow database commit: the phone must not hear "stored" before it ends
        scaled.events.append("recorded")

    scaled.on_artifact = slow_record
    _, evidence = await buyer_with_channel(scaled.harness)
    payload = photo(200_000)
    evidence.send_photo("rq_1", payload)
    reply = await scaled.photo_reply(evidence)
    assert reply["type"] == "stored" and reply["request"] == "rq_1"
    assert scaled.events == ["recorded", "stored"]
    assert (scaled.harness.case_dir / reply["artifact"]["file"]).read_bytes() == payload  # type: ignore[index]


async def test_a_photo_the_case_refuses_is_removed_and_the_phone_hears_why(scaled: ScaledHarness) -> None:
    async def closed(push: ArtifactStored) -> None:
        raise VitrineError(ErrorCode.CASE_CLOSED, "this inspection is over")

    scaled.on_artifact = closed
    _, evidence = await buyer_with_channel(scaled.harness)
    evidence.send_photo("rq_1", photo(50_000))
    reply = await evidence.error(ErrorCode.CASE_CLOSED, "rq_1")
    assert reply["message"] == "this inspection is over"
    assert leftovers(scaled.harness) == []  # refused: no file the case does not list

    scaled.on_artifact = scaled._record  # the channel still works for the next photo
    evidence.send_photo("rq_2", photo(50_000))
    assert (await scaled.photo_reply(evidence))["type"] == "stored"
    assert len(leftovers(scaled.harness)) == 1


async def test_a_photo_nobody_confirms_is_kept_and_the_phone_is_asked_again(scaled: ScaledHarness) -> None:
    """The node took the push but never answered (it died mid-commit): the photo may be in the record, so its
    file stays; the phone hears ``storage_unavailable`` and can send it again."""
    never = asyncio.Event()

    async def hang(push: ArtifactStored) -> None:
        await never.wait()

    scaled.on_artifact = hang
    _, evidence = await buyer_with_channel(scaled.harness)
    evidence.send_photo("rq_1", photo(50_000))
    reply = await evidence.error(ErrorCode.STORAGE_UNAVAILABLE, "rq_1")
    assert "again" in str(reply["message"])
    assert len(leftovers(scaled.harness)) == 1


async def test_a_photo_for_a_node_that_is_gone_is_refused(scaled: ScaledHarness) -> None:
    """Nobody listens on the node's inbox, so nothing recorded the photo: it is removed, and the phone told."""
    await scaled.link.close()
    _, evidence = await buyer_with_channel(scaled.harness)
    evidence.send_photo("rq_1", photo(50_000))
    await evidence.error(ErrorCode.WORKER_UNAVAILABLE, "rq_1")
    assert leftovers(scaled.harness) == []
