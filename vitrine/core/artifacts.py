"""Evidence artifacts on disk: every file a case collects, stored once with its SHA-256.

Layout: ``<evidence dir>/<shop>/<case>/<artifact id>.<ext>``. Ids and extensions match fixed patterns
and every path is resolved inside the root, so nothing a client sends can name a file elsewhere (an
artifact is looked up by id in its case's record; a request never carries a path). A file is written
to ``.part`` and renamed once complete and hashed: a crash leaves no half artifact under a real name.

In scaled mode the directory must be storage that every media worker and signaling node shares, as
for recordings: the worker writes photos and recordings, signaling serves them and builds bundles.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import SLUG_PATTERN, now_ms
from vitrine.core.wire.inspect import ARTIFACT_FILE_PATTERN, Artifact, ArtifactKind, new_artifact_id
from vitrine.core.wire.rpc import CASE_ID_PATTERN

CASE_ID = re.compile(CASE_ID_PATTERN)
QUARANTINE = ".quarantine"  # never a shop id (ids are slugs), so never swept as one
SHOP_ID = re.compile(SLUG_PATTERN)
EXTENSION = re.compile(r"^[a-z0-9]{1,5}$")
FILE_NAME = re.compile(ARTIFACT_FILE_PATTERN)
CHUNK = 1 << 20


def _fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (the directory entry, not only the file)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactWriter:
    """A file being received (a photo over the data channel): bounded, hashed as it is written.

    ``finish`` renames it into place and returns its record; ``abort`` removes what was written.
    Blocking file I/O: the worker calls it from a thread or for small chunks only.
    """

    def __init__(self, final: Path, artifact_id: str, max_bytes: int) -> None:
        self.final = final
        self.part = final.with_name(final.name + ".part")
        self.artifact_id = artifact_id
        self.max_bytes = max_bytes
        self.size = 0
        self._digest = hashlib.sha256()
        final.parent.mkdir(parents=True, exist_ok=True)
        self._handle = self.part.open("wb")

    def write(self, chunk: bytes | bytearray) -> None:
        if self.size + len(chunk) > self.max_bytes:
            self.abort()
            raise VitrineError(ErrorCode.MESSAGE_TOO_LARGE, f"the file exceeds {self.max_bytes} bytes")
        self._handle.write(chunk)
        self._digest.update(chunk)
        self.size += len(chunk)

    def finish(
        self, kind: ArtifactKind, *, content_type: str, source: str, captured_at_ms: int | None = None, **meta: object
    ) -> Artifact:
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        os.replace(self.part, self.final)
        _fsync_dir(self.final.parent)
        return Artifact(
            id=self.artifact_id,
            kind=kind,
            file=self.final.name,
            content_type=content_type,
            bytes=self.size,
            sha256=self._digest.hexdigest(),
            captured_at_ms=captured_at_ms if captured_at_ms is not None else now_ms(),
            source=source,
            **meta,
        )

    def abort(self) -> None:
        if not self._handle.closed:
            with contextlib.suppress(OSError):  # closing flushes, and a full disk refuses that too
                self._handle.close()
        self.part.unlink(missing_ok=True)


class ArtifactStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def case_dir(self, shop: str, case: str) -> Path:
        if not SHOP_ID.match(shop) or not CASE_ID.match(case):
            raise VitrineError(ErrorCode.CASE_NOT_FOUND, "no such case")
        return self._inside(self.root / shop / case)

    def path_of(self, shop: str, case: str, artifact: Artifact) -> Path:
        """Where a recorded artifact's file is; its name was checked when the record was made, and again here."""
        if not FILE_NAME.match(artifact.file):
            raise VitrineError(ErrorCode.ARTIFACT_NOT_FOUND, "no such artifact")
        return self._inside(self.case_dir(shop, case) / artifact.file)

    def _inside(self, path: Path) -> Path:
        resolved = path.resolve()
        if resolved != self.root and self.root not in resolved.parents:
            raise VitrineError(ErrorCode.ARTIFACT_NOT_FOUND, "no such artifact")
        return resolved

    def open_writer(self, shop: str, case: str, ext: str, max_bytes: int) -> ArtifactWriter:
        if not EXTENSION.match(ext):
            raise VitrineError(ErrorCode.INVALID_MESSAGE, "unsupported file type")
        artifact_id = new_artifact_id()
        return ArtifactWriter(self.case_dir(shop, case) / f"{artifact_id}.{ext}", artifact_id, max_bytes)

    def write(
        self,
        shop: str,
        case: str,
        kind: ArtifactKind,
        data: bytes,
        *,
        ext: str,
        content_type: str,
        source: str,
        captured_at_ms: int | None = None,
        **meta: object,
    ) -> Artifact:
        writer = self.open_writer(shop, case, ext, max(len(data), 1))
        try:
            writer.write(data)
            return writer.finish(kind, content_type=content_type, source=source, captured_at_ms=captured_at_ms, **meta)
        except BaseException:
            writer.abort()  # a full or read-only disk leaves no half file behind
            raise

    def adopt(
        self,
        shop: str,
        case: str,
        kind: ArtifactKind,
        path: Path,
        *,
        content_type: str,
        source: str,
        captured_at_ms: int,
        **meta: object,
    ) -> Artifact:
        """Move a finished file (a recording) into the case, hashing it on the way.

        The source is removed only once the case's copy is complete and on disk: on one filesystem an
        atomic rename, across two a copy through ``.part`` with fsync. A failure (a full disk) leaves the
        source where it was and no half file in the case."""
        ext = path.suffix.lstrip(".").lower()
        if not EXTENSION.match(ext):
            raise VitrineError(ErrorCode.INVALID_MESSAGE, "unsupported file type")
        folder = self.case_dir(shop, case)
        folder.mkdir(parents=True, exist_ok=True)
        size = path.stat().st_size
        if folder.stat().st_dev == path.stat().st_dev:
            artifact_id = new_artifact_id()
            final = folder / f"{artifact_id}.{ext}"
            os.replace(path, final)
            _fsync_dir(folder)
            return Artifact(
                id=artifact_id,
                kind=kind,
                file=final.name,
                content_type=content_type,
                bytes=size,
                sha256=sha256_file(final),
                captured_at_ms=captured_at_ms,
                source=source,
                **meta,
            )
        writer = self.open_writer(shop, case, ext, max(size, 1))
        try:
            with path.open("rb") as source_file:
                while chunk := source_file.read(1 << 20):
                    writer.write(chunk)
            artifact = writer.finish(
                kind, content_type=content_type, source=source, captured_at_ms=captured_at_ms, **meta
            )
        except BaseException:
            writer.abort()
            raise
        _fsync_dir(folder)
        path.unlink()
        return artifact

    def remove(self, shop: str, case: str, artifacts: list[Artifact]) -> None:
        """Unlink files written for records that were never saved (a failed end of a case)."""
        for artifact in artifacts:
            self.path_of(shop, case, artifact).unlink(missing_ok=True)

    def delete_case(self, shop: str, case: str) -> int:
        """Remove a case's files; the number of files removed."""
        folder = self.case_dir(shop, case)
        if not folder.exists():
            return 0
        count = sum(1 for _ in folder.iterdir())
        shutil.rmtree(folder)
        return count

    def quarantine(self, shop: str, case: str) -> Path:
        """Move a case folder that no record names out of the way, never deleting it: into
        ``<root>/.quarantine/<shop>/<case>-<ms>``, for an operator to inspect, restore or remove."""
        folder = self.case_dir(shop, case)
        target = self.root / QUARANTINE / shop / f"{case}-{now_ms()}"
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(folder, target)
        _fsync_dir(target.parent)
        _fsync_dir(folder.parent)
        return target

    def cases_on_disk(self) -> Iterator[tuple[str, str]]:
        """(shop, case) of every case folder, for sweeping folders whose record is gone."""
        if not self.root.exists():
            return
        for shop in self.root.iterdir():
            if shop.is_dir() and SHOP_ID.match(shop.name):
                for case in shop.iterdir():
                    if case.is_dir() and CASE_ID.match(case.name):
                        yield shop.name, case.name
