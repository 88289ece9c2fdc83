"""``EvidenceService``: closing a case into evidence, exporting it, and forgetting it on time or on request.

Ending a session logs the verdict (both pages see it), stops the recording and moves its files into the
case's evidence with their hashes (one part per media worker the session was on: the part just stopped and
every part an earlier worker finalized), closes the room (its log stays: it is the timeline), and stores the
chat, annotations, notes and timeline as JSON artifacts. The bundle is built on demand from what is stored, and
re-hashes every file on the way, so evidence changed at rest is refused, not exported.

Retention: a sweep deletes every case whose shop's ``evidence_retention_days`` have passed since it closed
(or opened, if it never closed), with its files, its room's log and its record. Erasure deletes every case
of one buyer (``buyer_ref``) at once and keeps only a count of what went, never what it was.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import tempfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

from signaling.inspect.bundle import build_bundle
from signaling.inspect.cases import CaseService
from signaling.inspect.sessions import InspectionService, still_open
from signaling.inspect.signing import EvidenceSigner
from signaling.inspect.timeline import exports, timeline
from signaling.metrics import METRICS
from signaling.recordings import RecordingFiles
from signaling.rooms import RoomService
from vitrine.core.artifacts import ArtifactStore
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import now_ms
from vitrine.core.records.roomlog import whole_log
from vitrine.core.tasks import stop_tasks
from vitrine.core.wire.inspect import (
    Artifact,
    ArtifactKind,
    Case,
    CaseState,
    Erasure,
    Note,
    Outcome,
    PendingRecording,
    Verdict,
    inspect_room,
)
from vitrine.core.wire.inspect_actions import CaseNotice
from vitrine.core.wire.rpc import RecordCommand, Recorded, RecordingInfo, Refused, expect
from vitrine.core.wire.rtc import LogEntry

logger = logging.getLogger(__name__)
T = TypeVar("T")

DAY_MS = 24 * 3600 * 1000
CONTAINER_TYPES = {"webm": "video/webm", "mp4": "video/mp4", "mkv": "video/x-matroska"}
EXPORT_SOURCES = {
    "chat": "Vitrine signaling: the session's ordered room log",
    "annotations": "Vitrine signaling: the session's ordered room log",
    "notes": "Vitrine signaling: the inspector's case notes",
    "timeline": "Vitrine signaling: the case record and the session's ordered room log",
}


class EvidenceService:
    def __init__(
        self, rooms: RoomService, cases: CaseService, sessions: InspectionService, recordings: RecordingFiles
    ) -> None:
        self.rooms = rooms
        self.cases = cases
        self.sessions = sessions
        self.settings = rooms.settings
        self.state = rooms.state
        self.store = ArtifactStore(self.settings.evidence_dir)
        self.recordings = recordings
        self.signer = EvidenceSigner.from_settings(self.settings)
        self._sweeper: asyncio.Task[None] | None = None

    # -- notes and the end of a session -----------------------------------------------------

    async def add_note(self, case: Case, author: str, text: str) -> Note:
        note = Note(at_ms=now_ms(), author=author, text=text)
        await self.cases.update(
            case.shop, case.id, lambda stored: still_open(stored).model_copy(update={"notes": [*stored.notes, note]})
        )
        return note

    async def end(self, case: Case, verdict: Verdict, comment: str, by: str) -> Case:
        """Close the case with its verdict, once its evidence is on disk: every part of the recording moved into
        the case and the chat, annotations, notes and timeline exported, each hashed.

        A full or read-only disk is ``storage_unavailable``: the case stays open, nothing is lost (the parts not
        moved yet wait on the case as ``pending_recordings``, an export is not half written), and ending again
        once the disk is fixed finishes the job."""
        still_open(case)
        room = inspect_room(case.id)
        live = await self.state.rooms.get_room(room)
        if not case.pending_recordings:
            stopped = None
            if live is not None:
                await self.sessions.log(room, CaseNotice(action="case", event="ended", verdict=verdict))
                stopped = await self._stop_recording(case)
            finished = await asyncio.to_thread(self._finished_recordings, case, stopped)
            if finished:
                case = await self.cases.update(
                    case.shop,
                    case.id,
                    lambda stored: still_open(stored).model_copy(update={"pending_recordings": finished}),
                )
        for pending in list(case.pending_recordings):  # one at a time: a retry moves only what is left
            recording = await self._store(self._adopt_recording, case, pending)
            case = await self.cases.update(case.shop, case.id, partial(_adopted, pending, recording))
        outcome = Outcome(verdict=verdict, comment=comment, at_ms=now_ms(), by=by)
        closing = case.model_copy(update={"outcome": outcome, "state": CaseState.CLOSED, "closed_at_ms": now_ms()})
        documents = await self._store(self._write_exports, closing, await self._entries(case))

        def close(stored: Case) -> Case:
            still_open(stored)
            return stored.model_copy(
                update={
                    "outcome": outcome,
                    "state": CaseState.CLOSED,
                    "closed_at_ms": closing.closed_at_ms,
                    "artifacts": [*stored.artifacts, *documents],
                }
            )

        try:
            case = await self.cases.update(case.shop, case.id, close)
        except BaseException:
            await asyncio.to_thread(self.store.remove, case.shop, case.id, documents)  # no file without a record
            raise
        with contextlib.suppress(VitrineError):
            await self.rooms.close_room(room, reason="the inspection has ended", keep_log=True)
        return case

    async def _store(self, write: Callable[..., T], *args: Any) -> T:
        """Run a file write off the loop; a disk that refuses it is a typed, retryable error, not a 500."""
        try:
            return await asyncio.to_thread(write, *args)
        except OSError as exc:
            logger.error("evidence storage failed: %s", exc)
            raise VitrineError(
                ErrorCode.STORAGE_UNAVAILABLE,
                f"the evidence could not be stored ({exc.strerror or exc}); nothing was lost and the "
                "case is still open: end it again once the evidence disk has space",
            ) from exc

    async def _stop_recording(self, case: Case) -> RecordingInfo | None:
        """Stop the part the room's worker records now; None if it records none, or finalized none cleanly."""
        record = await self.state.rooms.get_room(inspect_room(case.id))
        if record is None or record.worker_id is None:
            return None
        reply = await self.rooms.link.call(
            record.worker_id, RecordCommand(room=record.name, action="stop", recording_id=case.id)
        )
        match reply:
            case Refused(message=message):
                info, why = None, message or "no media"
            case _:
                info, why = expect(reply, Recorded).recording, "no media"
        if info is None or not info.finished or info.error:
            logger.warning("inspection %s: the current worker stopped no part (%s)", case.id, why)
            return None
        return info

    def _finished_recordings(self, case: Case, stopped: RecordingInfo | None) -> list[PendingRecording]:
        """Every finished part of the case's recording, in order: the one just stopped, and those no stop
        returned (their worker closed the room when it restarted, died or lost coordination state, and
        finalized them). The case takes each in like any other."""
        parts = self.recordings.finished(case.id, stopped, case.admitted_at_ms or case.created_at_ms)
        return [
            PendingRecording(
                path=part.path, container=part.container, started_at_ms=part.started_at_ms, duration_ms=part.duration_ms
            )
            for part in parts
        ]

    def _adopt_recording(self, case: Case, pending: PendingRecording) -> Artifact:
        return self.store.adopt(
            case.shop,
            case.id,
            ArtifactKind.RECORDING,
            Path(self.settings.recordings_dir) / pending.path,
            content_type=CONTAINER_TYPES[pending.container],
            captured_at_ms=pending.started_at_ms,
            source="media worker recording of the buyer's camera (remuxed, not transcoded)",
            duration_ms=pending.duration_ms,
        )

    async def _entries(self, case: Case) -> list[LogEntry]:
        return [entry async for entry in whole_log(self.state.records.roomlog, inspect_room(case.id))]

    def _write_exports(self, case: Case, entries: list[LogEntry]) -> list[Artifact]:
        written: list[Artifact] = []
        try:
            for kind, document in exports(case, entries).items():
                written.append(
                    self.store.write(
                        case.shop,
                        case.id,
                        ArtifactKind(kind),
                        json.dumps(document, indent=1).encode(),
                        ext="json",
                        content_type="application/json",
                        source=EXPORT_SOURCES[kind],
                    )
                )
        except BaseException:
            self.store.remove(case.shop, case.id, written)  # all of them or none: a retry writes them again
            raise
        return written

    # -- export ----------------------------------------------------------------------------

    async def bundle(self, case: Case) -> Path:
        """The signed evidence bundle, in a temporary file the caller removes."""
        shop = await self.state.records.shops.get_shop(case.shop)
        rows = timeline(case, await self._entries(case))
        handle, name = tempfile.mkstemp(prefix=f"{case.id}-", suffix=".zip")
        path = Path(name)
        try:
            with open(handle, "wb") as out:
                await asyncio.to_thread(
                    build_bundle,
                    out,
                    case,
                    self.store,
                    self.signer,
                    shop_name=shop.name if shop else case.shop,
                    timeline=rows,
                )
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def artifact_path(self, case: Case, artifact_id: str) -> tuple[Artifact, Path]:
        """A case's artifact file, found by id in its record (never by a path from the request)."""
        artifact = next((a for a in case.artifacts if a.id == artifact_id), None)
        if artifact is None:
            raise VitrineError(ErrorCode.ARTIFACT_NOT_FOUND, "no such artifact in this case")
        path = self.store.path_of(case.shop, case.id, artifact)
        if not path.is_file():
            raise VitrineError(ErrorCode.ARTIFACT_NOT_FOUND, "the artifact's file is gone")
        return artifact, path

    # -- retention and erasure ---------------------------------------------------------------

    async def purge(self, case: Case) -> int:
        """Delete a case everywhere: its room (if still open), its log, its files, its record."""
        room = inspect_room(case.id)
        if await self.state.rooms.get_room(room) is not None:
            with contextlib.suppress(VitrineError):
                await self.rooms.close_room(room, reason="the inspection was deleted")
        await self.state.records.roomlog.drop(room)
        removed = await asyncio.to_thread(self.store.delete_case, case.shop, case.id)
        removed += await asyncio.to_thread(self.recordings.remove, case.id)  # a recording no end took in
        await self.cases.delete(case)
        return removed

    async def erase_buyer(self, shop_id: str, buyer_ref: str) -> Erasure:
        cases = await self.cases.recent(shop_id, limit=None, buyer_ref=buyer_ref)
        artifacts = 0
        for case in cases:
            artifacts += await self.purge(case)
        erasure = Erasure(id="er_" + secrets.token_hex(8), at_ms=now_ms(), cases=len(cases), artifacts=artifacts)
        await self.cases.store.add_erasure(shop_id, erasure)
        logger.info("erasure %s for shop %s: %d case(s), %d file(s)", erasure.id, shop_id, len(cases), artifacts)
        return erasure

    async def erasures(self, shop_id: str, limit: int) -> list[Erasure]:
        return await self.cases.store.erasures(shop_id, limit)

    async def sweep(self, now: int | None = None) -> int:
        """Delete every case past its shop's retention, proven by its record; the number deleted.

        A case folder that no record names (its record was lost, or a photo landed after the case was
        deleted) is never deleted here: it is moved to the quarantine folder, logged and counted, for an
        operator to restore or remove."""
        now = now if now is not None else now_ms()
        deleted = 0
        for shop in await self.state.records.shops.list_shops():
            horizon = now - shop.evidence_retention_days * DAY_MS
            for case in await self.cases.recent(shop.id, limit=None):
                if (case.closed_at_ms or case.created_at_ms) < horizon:
                    await self.purge(case)
                    deleted += 1
        for shop_id, case_id in list(self.store.cases_on_disk()):
            if not await self.cases.store.exists(shop_id, case_id):
                target = await asyncio.to_thread(self.store.quarantine, shop_id, case_id)
                METRICS.evidence_quarantined.inc()
                logger.warning(
                    "evidence folder %s/%s has no case record: moved to %s, not deleted", shop_id, case_id, target
                )
        await self.recordings.audit()
        return deleted

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        await stop_tasks(self._sweeper)

    async def _sweep_forever(self) -> None:
        while True:
            try:
                if deleted := await self.sweep():
                    logger.info("retention: deleted %d expired inspection case(s)", deleted)
            except Exception:
                logger.exception("the evidence retention sweep failed")
            await asyncio.sleep(self.settings.evidence_sweep_s)


def _adopted(pending: PendingRecording, recording: Artifact, stored: Case) -> Case:
    """The case with one part of its recording moved in: an artifact now, no longer pending."""
    return still_open(stored).model_copy(
        update={
            "artifacts": [*stored.artifacts, recording],
            "pending_recordings": [part for part in stored.pending_recordings if part.path != pending.path],
        }
    )
