"""Recording files and the records that own them.

A recording is named by its owner's id: ``<show id>.<ext>`` for a show, ``<case id>.<ext>`` for an
inspection (``media/recorder.py``). A file can lose its way: a worker that closed its rooms after a loss
of coordination state, or died, finalized a recording that nobody stopped, so no record took it in. The
audit finds such files: one whose owner's record exists stays (an inspection takes it in when it ends,
see ``signaling.inspect.evidence``), one whose owner is gone is moved to ``<recordings>/.quarantine/``,
logged and counted, never deleted.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import av

from signaling.metrics import METRICS
from vitrine.models import now_ms
from vitrine.records import Records

logger = logging.getLogger(__name__)

QUARANTINE = ".quarantine"
# A finished file (``<id>.<ext>``) or a crashed worker's kept prefix (``<id>.<ext>.part.<ms>``).
RECORDING_FILE = re.compile(r"^(?P<id>(?:sh|cs)_[A-Za-z0-9]{12})\.(?P<ext>webm|mp4|mkv)(?:\.part\.\d+)?$")


class RecordingFiles:
    def __init__(self, directory: Path | str, records: Records) -> None:
        self.directory = Path(directory)
        self.records = records

    def of(self, owner_id: str) -> list[Path]:
        """Every finished or kept file of one owner, oldest first."""
        if not self.directory.is_dir():
            return []
        found = [path for path in self.directory.iterdir()
                 if (match := RECORDING_FILE.match(path.name)) and match["id"] == owner_id and path.is_file()]
        return sorted(found, key=lambda path: path.stat().st_mtime)

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

    async def _owned(self, owner_id: str) -> bool:
        if owner_id.startswith("sh_"):
            return await self.records.shows.exists(owner_id)
        return await self.records.cases.exists_anywhere(owner_id)


def duration_ms(path: Path) -> int:
    """A finished file's duration as its container states it; 0 when it does not say."""
    try:
        with av.open(str(path)) as container:
            return int((container.duration or 0) / 1000)
    except (av.FFmpegError, OSError):
        return 0
