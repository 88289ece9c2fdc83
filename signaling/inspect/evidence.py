"""``EvidenceService``: closing a case into evidence, exporting it, and forgetting it on time or on request.

Ending a session logs the verdict (both pages see it), stops the recording and moves the file into the
case's evidence with its hash, closes the room (its log stays: it is the timeline), and stores the chat,
annotations, notes and timeline as JSON artifacts. The bundle is built on demand from what is stored, and
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
from pathlib import Path

from signaling.inspect.cases import CaseService
from signaling.inspect.sessions import InspectionService, still_open
from signaling.rooms import RoomService
from vitrine.errors import ErrorCode, VitrineError
from vitrine.inspect.artifacts import ArtifactStore
from vitrine.inspect.bundle import build_bundle
from vitrine.inspect.models import Artifact, ArtifactKind, Case, CaseState, Note, Outcome, Verdict, inspect_room
from vitrine.inspect.protocol import CaseNotice
from vitrine.inspect.signing import EvidenceSigner
from vitrine.inspect.timeline import exports, timeline
from vitrine.models import Strict, now_ms
from vitrine.protocol import LogEntry
from vitrine.rpc import RecordCommand
from vitrine.state.desk import Collection
from vitrine.state.roomlog import whole_log

logger = logging.getLogger(__name__)

DAY_MS = 24 * 3600 * 1000
CONTAINER_TYPES = {"webm": "video/webm", "mp4": "video/mp4", "mkv": "video/x-matroska"}
EXPORT_SOURCES = {"chat": "Vitrine signaling: the session's ordered room log",
                  "annotations": "Vitrine signaling: the session's ordered room log",
                  "notes": "Vitrine signaling: the inspector's case notes",
                  "timeline": "Vitrine signaling: the case record and the session's ordered room log"}


class Erasure(Strict):
    """What an erasure request removed: counts only, so the log of erasures keeps no buyer's data."""

    id: str
    at_ms: int
    cases: int
    artifacts: int


class EvidenceService:
    def __init__(self, rooms: RoomService, cases: CaseService, sessions: InspectionService) -> None:
        self.rooms = rooms
        self.cases = cases
        self.sessions = sessions
        self.settings = rooms.settings
        self.state = rooms.state
        self.store = ArtifactStore(self.settings.evidence_dir)
        self.signer = EvidenceSigner.from_settings(self.settings)
        self._sweeper: asyncio.Task[None] | None = None

    # -- notes and the end of a session -----------------------------------------------------

    async def add_note(self, case: Case, author: str, text: str) -> Note:
        note = Note(at_ms=now_ms(), author=author, text=text)
        await self.cases.update(case.shop, case.id, lambda stored: still_open(stored).model_copy(
            update={"notes": [*stored.notes, note]}))
        return note

    async def end(self, case: Case, verdict: Verdict, comment: str, by: str) -> Case:
        still_open(case)
        room = inspect_room(case.id)
        if await self.state.rooms.get_room(room) is not None:
            await self.sessions.log(room, CaseNotice(action="case", event="ended", verdict=verdict))
        recording = await self._stop_recording(case)
        with contextlib.suppress(VitrineError):
            await self.rooms.close_room(room, reason="the inspection has ended", keep_log=True)
        outcome = Outcome(verdict=verdict, comment=comment, at_ms=now_ms(), by=by)

        def close(stored: Case) -> Case:
            still_open(stored)
            return stored.model_copy(update={"outcome": outcome, "state": CaseState.CLOSED, "closed_at_ms": now_ms(),
                                             "artifacts": [*stored.artifacts, *recording]})

        case = await self.cases.update(case.shop, case.id, close)
        documents = await asyncio.to_thread(self._write_exports, case, await self._entries(case))
        return await self.cases.update(case.shop, case.id, lambda stored: stored.model_copy(
            update={"artifacts": [*stored.artifacts, *documents]}))

    async def _stop_recording(self, case: Case) -> list[Artifact]:
        record = await self.state.rooms.get_room(inspect_room(case.id))
        if record is None or record.worker_id is None:
            return []
        reply = await self.rooms.link.call(record.worker_id, RecordCommand(
            room=record.name, action="stop", recording_id=case.id))
        info = reply.recording
        if reply.error is not None or info is None or not info.finished or info.error:
            logger.warning("inspection %s ended without a recording (%s)", case.id, reply.message or "no media")
            return []
        source = Path(self.settings.recordings_dir) / info.path
        artifact = await asyncio.to_thread(
            self.store.adopt, case.shop, case.id, ArtifactKind.RECORDING, source,
            content_type=CONTAINER_TYPES[info.container], captured_at_ms=info.started_at_ms,
            source="media worker recording of the buyer's camera (remuxed, not transcoded)",
            duration_ms=info.duration_ms)
        return [artifact]

    async def _entries(self, case: Case) -> list[LogEntry]:
        return [entry async for entry in whole_log(self.state.roomlog, inspect_room(case.id))]

    def _write_exports(self, case: Case, entries: list[LogEntry]) -> list[Artifact]:
        return [self.store.write(case.shop, case.id, ArtifactKind(kind), json.dumps(document, indent=1).encode(),
                                 ext="json", content_type="application/json", source=EXPORT_SOURCES[kind])
                for kind, document in exports(case, entries).items()]

    # -- export ----------------------------------------------------------------------------

    async def bundle(self, case: Case) -> Path:
        """The signed evidence bundle, in a temporary file the caller removes."""
        shop = await self.state.shops.get_shop(case.shop)
        rows = timeline(case, await self._entries(case))
        handle, name = tempfile.mkstemp(prefix=f"{case.id}-", suffix=".zip")
        path = Path(name)
        try:
            with open(handle, "wb") as out:
                await asyncio.to_thread(build_bundle, out, case, self.store, self.signer,
                                        shop_name=shop.name if shop else case.shop, timeline=rows)
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
        await self.state.roomlog.drop(room)
        removed = await asyncio.to_thread(self.store.delete_case, case.shop, case.id)
        await self.cases.delete(case)
        return removed

    async def erase_buyer(self, shop_id: str, buyer_ref: str) -> Erasure:
        cases = [case for case in await self.cases.recent(shop_id, limit=None)
                 if case.buyer_ref is not None and secrets.compare_digest(case.buyer_ref, buyer_ref)]
        artifacts = 0
        for case in cases:
            artifacts += await self.purge(case)
        erasure = Erasure(id="er_" + secrets.token_hex(8), at_ms=now_ms(), cases=len(cases), artifacts=artifacts)
        await self.state.desk.put(shop_id, Collection.ERASURES, erasure.id, erasure.model_dump_json(), erasure.at_ms)
        logger.info("erasure %s for shop %s: %d case(s), %d file(s)", erasure.id, shop_id, len(cases), artifacts)
        return erasure

    async def erasures(self, shop_id: str, limit: int) -> list[Erasure]:
        rows = await self.state.desk.scan(shop_id, Collection.ERASURES, newest_first=True, limit=limit)
        return [Erasure.model_validate_json(raw) for raw in rows]

    async def sweep(self, now: int | None = None) -> int:
        """Delete every case past its shop's retention, and any case folder whose record is gone (a photo that
        arrived after its case was deleted); the number of cases deleted."""
        now = now if now is not None else now_ms()
        deleted = 0
        for shop in await self.state.shops.list_shops():
            horizon = now - shop.evidence_retention_days * DAY_MS
            for case in await self.cases.recent(shop.id, limit=None):
                if (case.closed_at_ms or case.created_at_ms) < horizon:
                    await self.purge(case)
                    deleted += 1
        for shop_id, case_id in list(self.store.cases_on_disk()):
            if await self.state.desk.get(shop_id, Collection.CASES, case_id) is None:
                await asyncio.to_thread(self.store.delete_case, shop_id, case_id)
        return deleted

    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper

    async def _sweep_forever(self) -> None:
        while True:
            try:
                if deleted := await self.sweep():
                    logger.info("retention: deleted %d expired inspection case(s)", deleted)
            except Exception:
                logger.exception("the evidence retention sweep failed")
            await asyncio.sleep(self.settings.evidence_sweep_s)
