"""Recording files and the records that own them.

A recording is named by its owner's id, ``<show id>`` for a show and ``<case id>`` for an inspection, and has
one part per media worker that recorded it: ``<id>.<ext>``, then ``<id>.<n>.<ext>``
(``vitrine/core/recording_parts.py``).
A part can lose its way: a worker that closed its rooms after a loss of coordination state, or died, or
restarted, finalized a part that nobody stopped, so no record took it in. Owners gather such parts when they
end (``finished``: a show's replay and an inspection's evidence take every part, in order). The audit finds
the others: one whose owner's record exists stays, one whose owner is gone is moved to
``<recordings>/.quarantine/``, logged and counted, never deleted.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import av

from signaling.metrics import METRICS
from vitrine.core.models import now_ms
from vitrine.core.recording_parts import tagged_start
from vitrine.core.wire.rpc import RecordingInfo

logger = logging.getLogger(__name__)

QUARANTINE = ".quarantine"
# A finished part (``<id>.<ext>``, ``<id>.<n>.<ext>``) or a crashed worker's kept prefix (``... .part.<ms>``).
RECORDING_FILE = re.compile(
    r"^(?P<id>(?:sh|cs)_[A-Za-z0-9]{12})(?:\.(?P<part>[1-9][0-9]{0,8}))?"
    r"\.(?P<ext>webm|mp4|mkv)(?P<kept>\.part\.\d+)?$"
)


class RecordingFiles:
    def __init__(self, directory: Path | str, owned: Callable[[str], Awaitable[bool]]) -> None:
        """``owned``: whether the record of an owner's id exists; the owners' products know, these files do not
        (``signaling.records.Records.owns_recording``)."""
        self.directory = Path(directory)
        self._owned = owned

    def of(self, owner_id: str) -> list[Path]:
        """Every finished or kept file of one owner, in part order (a kept prefix after a finished part of its
        number, which only recordings from before parts can have)."""
        if not self.directory.is_dir():
            return []
        found = [
            (int(match["part"] or 0), bool(match["kept"]), path.name, path)
            for path in self.directory.glob(f"{owner_id}.*")
            if (match := RECORDING_FILE.match(path.name)) and match["id"] == owner_id and path.is_file()
        ]
        return [path for *_, path in sorted(found)]

    def finished(self, owner_id: str, stopped: RecordingInfo | None, default_start_ms: int) -> list[RecordingInfo]:
        """Every finished part of an owner, in start order: ``stopped`` (the part its worker's stop reported) as
        reported, the others read from their files, starting when their metadata says (``default_start_ms``
        for a file from before parts, which does not say). Kept crash prefixes are not finished: left out."""
        parts = {} if stopped is None else {stopped.path: stopped}
        for path in self.of(owner_id):
            match = RECORDING_FILE.match(path.name)
            if match is not None and not match["kept"] and path.name not in parts:
                parts[path.name] = _read(path, int(match["part"] or 0), match["ext"], default_start_ms)
        return sorted(parts.values(), key=lambda part: part.part)

    def remove(self, owner_id: str) -> int:
        """Delete an owner's files (its record is being deleted, proven expired or erased)."""
        files = self.of(owner_id)
        for path in files:
            path.unlink(missing_ok=True)
        return len(files)

    async def audit(self) -> int:
        """Quarantine every recording whose owner's record is gone; the number moved."""
        if not self.directory.is_dir():
            return 0
        moved = 0
        for path in list(self.directory.iterdir()):
            match = RECORDING_FILE.match(path.name)
            if match is None or not path.is_file() or await self._owned(match["id"]):
                continue
            target = self.directory / QUARANTINE / f"{path.name}.{now_ms()}"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, target)
            METRICS.recordings_quarantined.inc()
            logger.warning("recording %s has no show or case record: moved to %s, not deleted", path.name, target)
            moved += 1
        return moved


def _read(path: Path, part: int, container: str, default_start_ms: int) -> RecordingInfo:
    """A finished part as its file states it: its start (metadata) and duration (header); a file that cannot be
    read still counts, with the default start and no duration, so no part is ever left behind."""
    started_at_ms, duration_ms, size = None, 0, 0
    try:
        size = path.stat().st_size
        with av.open(str(path)) as opened:
            started_at_ms, duration_ms = tagged_start(opened.metadata), int((opened.duration or 0) / 1000)
    except (av.FFmpegError, OSError):
        logger.warning("recording %s cannot be read: taken with no start or duration", path.name)
    return RecordingInfo(
        path=path.name,
        part=part,
        container=container,
        finished=True,
        bytes=size,
        started_at_ms=default_start_ms if started_at_ms is None else started_at_ms,
        duration_ms=duration_ms,
    )
