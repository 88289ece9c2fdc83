"""The evidence manifest: every file of an exported case, with its SHA-256, in a hash chain, signed.

Each entry's ``entry_hash`` is the SHA-256 of its own canonical JSON (sorted keys, no spaces, UTF-8)
without that field, and each entry carries the previous one's hash as ``prev``: an entry cannot be
changed, dropped or moved without breaking every hash after it. The signature (``manifest.sig``) covers
the manifest's exact bytes and says that it changed; the chain says where.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from typing import Literal

from pydantic import Field

from vitrine.core.models import Strict
from vitrine.core.wire.inspect import (
    ARTIFACT_FILE_PATTERN,
    ARTIFACT_ID_PATTERN,
    Artifact,
    ArtifactKind,
    Consent,
    Outcome,
)

MANIFEST_FORMAT = "vitrine-evidence/1"
GENESIS = "0" * 64  # the ``prev`` of the first entry
REPORT_NAME = "report.html"
MAX_ENTRIES = 10_000
HEX64 = r"^[0-9a-f]{64}$"
ENTRY_NAME = rf"^(artifacts/{ARTIFACT_FILE_PATTERN[1:-1]}|report\.html)$"  # the paths a bundle may hold


def canonical_json(value: object) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


class EntryFacts(Strict):
    """What an entry says about one file of the bundle, before it is chained."""

    name: str = Field(pattern=ENTRY_NAME, description="The member's path inside the zip")
    artifact_id: str | None = Field(default=None, pattern=ARTIFACT_ID_PATTERN)  # None for the report
    kind: ArtifactKind | Literal["report"]
    content_type: str = Field(max_length=80)
    bytes: int = Field(ge=0)
    sha256: str = Field(pattern=HEX64)
    captured_at_ms: int
    source: str = Field(max_length=200)
    width: int | None = None
    height: int | None = None
    duration_ms: int | None = None
    request: str | None = Field(default=None, max_length=64)

    @classmethod
    def of_artifact(cls, artifact: Artifact) -> EntryFacts:
        return cls(
            name=f"artifacts/{artifact.file}",
            artifact_id=artifact.id,
            kind=artifact.kind,
            content_type=artifact.content_type,
            bytes=artifact.bytes,
            sha256=artifact.sha256,
            captured_at_ms=artifact.captured_at_ms,
            source=artifact.source,
            width=artifact.width,
            height=artifact.height,
            duration_ms=artifact.duration_ms,
            request=artifact.request,
        )


class ManifestEntry(EntryFacts):
    seq: int = Field(ge=1)
    prev: str = Field(pattern=HEX64)
    entry_hash: str = Field(pattern=HEX64)


class CaseSummary(Strict):
    id: str
    shop: str
    shop_name: str
    order_ref: str
    claim: str
    language: str
    created_at_ms: int
    closed_at_ms: int | None
    consent: Consent | None
    outcome: Outcome | None
    notes: int = Field(ge=0, description="How many notes the case has (their text is the notes artifact)")


class SignerInfo(Strict):
    alg: Literal["Ed25519"]
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$")
    public_key_pem: str = Field(max_length=1000)


class Manifest(Strict):
    format: Literal["vitrine-evidence/1"]
    generated_at_ms: int
    case: CaseSummary
    signer: SignerInfo
    entries: list[ManifestEntry] = Field(min_length=1, max_length=MAX_ENTRIES)
    head: str = Field(pattern=HEX64, description="The last entry's hash")


def entry_hash(entry: EntryFacts) -> str:
    """The SHA-256 of the entry's canonical JSON, without its own ``entry_hash``."""
    return hashlib.sha256(canonical_json(entry.model_dump(mode="json", exclude={"entry_hash"}))).hexdigest()


def chain_entries(facts: Sequence[EntryFacts]) -> list[ManifestEntry]:
    """Number the entries from 1 and link each to the previous one's hash."""
    entries: list[ManifestEntry] = []
    prev = GENESIS
    for seq, fact in enumerate(facts, start=1):
        unsealed = ManifestEntry(**fact.model_dump(), seq=seq, prev=prev, entry_hash=GENESIS)
        prev = entry_hash(unsealed)
        entries.append(unsealed.model_copy(update={"entry_hash": prev}))
    return entries


def check_chain(entries: Sequence[ManifestEntry], head: str) -> str | None:
    """The first broken link, as a problem that names its entry; None when the chain holds up to ``head``."""
    prev = GENESIS
    for seq, entry in enumerate(entries, start=1):
        where = f"entry {seq} ({entry.name}): chain broken"
        if entry.seq != seq:
            return f"{where} (numbered {entry.seq})"
        if entry.prev != prev:
            return f"{where} (prev is not the previous entry's hash)"
        if entry_hash(entry) != entry.entry_hash:
            return f"{where} (its hash does not match its contents)"
        prev = entry.entry_hash
    if head != prev:
        return "manifest.json: head is not the last entry's hash"
    return None
