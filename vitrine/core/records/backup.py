"""``vitrine backup DEST``: a consistent copy of the embedded database and the files its records name.

The database goes first, through SQLite's online backup API: a snapshot as of one moment, taken
while the server keeps running. The evidence and recordings folders are copied after it, so every
file a record of the snapshot names is already on disk (files are written before their records, and
only an expiry deletes them). A PostgreSQL deployment backs up its database with ``pg_dump`` (see
the README) and these folders alongside.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import make_url

from vitrine.core.config import Settings
from vitrine.core.models import now_ms
from vitrine.core.records.database import SQLITE_BUSY_TIMEOUT_MS, database_url


class BackupError(RuntimeError):
    """The backup cannot be made as asked; the message says why."""


@dataclass(frozen=True)
class BackupResult:
    database: Path
    files: int
    bytes: int


def backup(settings: Settings, dest: Path) -> BackupResult:
    url = make_url(database_url(settings))
    if url.get_backend_name() != "sqlite":
        raise BackupError(
            "the records are in PostgreSQL: back them up with pg_dump (README, Data and backups), "
            "and copy the evidence and recordings folders alongside"
        )
    source = Path(url.database or "")
    if not source.is_file():
        raise BackupError(
            f"no database at {source}: has this server ever started with VITRINE_DATA_DIR {settings.data_dir}?"
        )
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty: back up into a new folder")
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / source.name
    _snapshot(source, target)
    files = size = 0
    for name, folder in (("evidence", settings.evidence_dir), ("recordings", settings.recordings_dir)):
        copied, copied_bytes = _copy_tree(Path(folder), dest / name)
        files, size = files + copied, size + copied_bytes
    (dest / "backup.json").write_text(
        json.dumps(
            {
                "taken_at_ms": now_ms(),
                "database": target.name,
                "files": files,
                "bytes": size,
                "restore": "stop the server; copy vitrine.db into VITRINE_DATA_DIR, evidence/ into "
                "VITRINE_EVIDENCE_DIR and recordings/ into VITRINE_RECORDINGS_DIR; start it",
            },
            indent=1,
        )
    )
    return BackupResult(database=target, files=files, bytes=size)


def _snapshot(source: Path, target: Path) -> None:
    """SQLite's online backup: pages copied under the database's read lock, a consistent whole."""
    with sqlite3.connect(source, timeout=SQLITE_BUSY_TIMEOUT_MS / 1000) as src, sqlite3.connect(target) as out:
        src.backup(out)
        if out.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError(f"the copy at {target} failed SQLite's integrity check")
        out.execute("PRAGMA journal_mode=DELETE")  # a single self-contained file, no -wal beside it


def _copy_tree(source: Path, target: Path) -> tuple[int, int]:
    """Every finished file (not the ``.part`` files still being written); the count and bytes copied."""
    files = size = 0
    if not source.is_dir():
        return files, size
    for path in sorted(source.rglob("*")):
        if not path.is_file() or path.name.endswith(".part"):
            continue
        copy = target / path.relative_to(source)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)
        files, size = files + 1, size + path.stat().st_size
    return files, size
