"""A recording's files: one part per media worker that recorded it, each saying when it started.

A recording is named by its owner (a show's or a case's id) and written by the worker that hosts the room.
The room can change worker mid-session (a restart, a worker's death, a loss of coordination state), and the
next worker records the rest into the next part, never touching an earlier one. The media worker names the
files (``media/recorder.py``) and signaling gathers them (``signaling/recordings.py``); both read this scheme:

- part 0 is ``<id>.<ext>``, the one name a recording had before it could have parts, so older shows, cases
  and bundles keep theirs; part n (n >= 1) is ``<id>.<n>.<ext>``. Ids have no dots, so a name is unambiguous,
  and the numbers order the parts in time;
- a part is ``<name>.part`` until finalized; a crashed worker's leftover is kept as ``<name>.part.<ms>``;
- each file states the wall clock of its time zero in its container metadata (``STARTED_AT_TAG``), written
  with the header, so even a crashed worker's prefix says it. Signaling reads it for the parts it did not stop
  itself: the worker that recorded them closed the room, or died, and nobody heard its report.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

PART_FILE = re.compile(
    r"^(?P<id>[A-Za-z0-9_-]{1,64})(?:\.(?P<part>[1-9][0-9]{0,8}))?\.(?P<ext>webm|mp4|mkv)"
    r"(?P<tail>\.part(?:\.[0-9]+)?)?$"
)
STARTED_AT_TAG = "vitrine_started_at_ms"


def part_name(recording_id: str, part: int, ext: str) -> str:
    """The finished file's name of one part."""
    return f"{recording_id}.{ext}" if part == 0 else f"{recording_id}.{part}.{ext}"


def next_part(directory: Path, recording_id: str) -> int:
    """One past the highest part of the id on disk, finished, being written or kept from a crash; 0 for none."""
    numbers = [
        int(match["part"] or 0)
        for path in directory.glob(f"{recording_id}.*")
        if (match := PART_FILE.match(path.name)) and match["id"] == recording_id
    ]
    return max(numbers, default=-1) + 1


def tagged_start(metadata: Mapping[str, str]) -> int | None:
    """The start a file's container metadata states; Matroska upper-cases tag names, MP4 keeps them."""
    value = next((v for k, v in metadata.items() if k.lower() == STARTED_AT_TAG), "")
    return int(value) if value.isdigit() else None
