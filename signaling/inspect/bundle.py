"""A case's evidence bundle: one zip a seller hands to a marketplace or payment dispute, checkable offline.

Members: ``artifacts/<file>`` (each stored file, re-hashed while it is copied, so a file changed at rest
is refused rather than exported), ``report.html``, ``manifest.json`` (every member's SHA-256 in a hash
chain; the exact bytes that were signed), ``manifest.sig`` (base64 of their Ed25519 signature) and an
unsigned ``README.txt``. Media is stored as is (it is compressed already); JSON and HTML are deflated.

``verify_bundle`` treats the zip as hostile: it never extracts, streams every member through SHA-256,
and turns each failure, down to one that is not a zip at all, into a problem naming the member at fault.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import time
import zipfile
from pathlib import Path
from typing import BinaryIO

from pydantic import Field, ValidationError

from signaling.inspect.manifest import (
    MANIFEST_FORMAT,
    MAX_ENTRIES,
    REPORT_NAME,
    CaseSummary,
    EntryFacts,
    Manifest,
    SignerInfo,
    chain_entries,
    check_chain,
)
from signaling.inspect.report import render_report
from signaling.inspect.signing import SIGNATURE_BYTES, EvidenceSigner, key_id_of, public_key_raw, verify_signature
from signaling.inspect.timeline import TimelineRow
from vitrine.core.artifacts import CHUNK, ArtifactStore
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.models import Strict, now_ms
from vitrine.core.wire.inspect import Artifact, Case

MANIFEST_NAME = "manifest.json"
SIGNATURE_NAME = "manifest.sig"
README_NAME = "README.txt"
MAX_MEMBERS = MAX_ENTRIES + 3
MAX_MANIFEST_BYTES = 16 << 20
MAX_SHOWN = 200  # characters of a hostile name a problem repeats


class VerifyResult(Strict):
    ok: bool
    key_id: str | None = Field(default=None, description="The signing key's id, to compare with the shop's")
    pinned: bool = Field(default=False, description="Checked against a key the caller gave, not only the embedded one")
    entries: int = 0
    problems: list[str] = Field(default_factory=list)


def ordered_artifacts(case: Case) -> list[Artifact]:
    return sorted(case.artifacts, key=lambda artifact: (artifact.captured_at_ms, artifact.id))


def manifest_bytes(manifest: Manifest) -> bytes:
    return json.dumps(manifest.model_dump(mode="json"), indent=2, sort_keys=True, ensure_ascii=False).encode() + b"\n"


ZipTime = tuple[int, int, int, int, int, int]  # a member's date_time: year, month, day, hour, minute, second


def _member(name: str, content_type: str, stamp: ZipTime) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=stamp)
    text = content_type.startswith(("text/", "application/json"))
    info.compress_type = zipfile.ZIP_DEFLATED if text else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16  # readable files once extracted
    return info


def _copy_verified(archive: zipfile.ZipFile, path: Path, artifact: Artifact, stamp: ZipTime) -> None:
    """Stream a stored file into the zip, refusing it if it is not the file that was captured."""
    info = _member(f"artifacts/{artifact.file}", artifact.content_type, stamp)
    info.file_size = artifact.bytes  # zipfile picks ZIP64 up front for a large recording
    digest, size = hashlib.sha256(), 0
    try:
        source = path.open("rb")
    except FileNotFoundError:
        raise VitrineError(
            ErrorCode.EVIDENCE_CORRUPT, f"artifact {artifact.id} ({artifact.kind.value}): its file is missing"
        ) from None
    with source, archive.open(info, "w") as member:
        while size <= artifact.bytes and (chunk := source.read(CHUNK)):  # stop early if the file grew
            digest.update(chunk)
            size += len(chunk)
            member.write(chunk)
    if size != artifact.bytes or digest.hexdigest() != artifact.sha256:
        raise VitrineError(
            ErrorCode.EVIDENCE_CORRUPT,
            f"artifact {artifact.id} ({artifact.kind.value}, "
            f"{artifact.file}) no longer matches the SHA-256 recorded "
            "when it was captured",
        )


def _readme(case: Case, key_id: str) -> str:
    return f"""Vitrine inspection evidence: case {case.id}, shop {case.shop}.

report.html     a readable summary: open it in a browser.
artifacts/      every file of the case, as captured.
manifest.json   each file's SHA-256, in a hash chain.
manifest.sig    the Ed25519 signature (base64) of manifest.json's exact bytes, by key {key_id}.

To check that nothing was changed, added or removed since export, with the shop's published public key:

    vitrine verify bundle.zip --key shop-evidence-key.pem

With standard tools instead (OpenSSL 3): unzip the bundle, then

    base64 -d manifest.sig > manifest.sig.bin
    openssl pkeyutl -verify -pubin -inkey shop-evidence-key.pem -rawin -in manifest.json -sigfile manifest.sig.bin

and compare `sha256sum artifacts/* report.html` with the manifest's entries. This file is not signed.
"""


def build_bundle(
    out: BinaryIO | Path,
    case: Case,
    store: ArtifactStore,
    signer: EvidenceSigner,
    *,
    shop_name: str,
    timeline: list[TimelineRow],
) -> Manifest:
    """Write the case's bundle to ``out``; ``EVIDENCE_CORRUPT`` if a stored file differs from its record.

    On failure a path is removed; a stream is left with an incomplete zip, which does not verify.
    """
    if isinstance(out, Path):
        try:
            with out.open("wb") as handle:
                return build_bundle(handle, case, store, signer, shop_name=shop_name, timeline=timeline)
        except BaseException:
            out.unlink(missing_ok=True)
            raise
    generated_at_ms = now_ms()
    stamp = time.gmtime(generated_at_ms // 1000)[:6]
    artifacts = ordered_artifacts(case)
    with zipfile.ZipFile(out, "w") as archive:
        for artifact in artifacts:
            _copy_verified(archive, store.path_of(case.shop, case.id, artifact), artifact, stamp)
        report = render_report(
            case,
            shop_name=shop_name,
            timeline=timeline,
            artifacts=artifacts,
            key_id=signer.key_id,
            generated_at_ms=generated_at_ms,
        ).encode()
        report_facts = EntryFacts(
            name=REPORT_NAME,
            kind="report",
            content_type="text/html; charset=utf-8",
            bytes=len(report),
            sha256=hashlib.sha256(report).hexdigest(),
            captured_at_ms=generated_at_ms,
            source="vitrine, at export",
        )
        entries = chain_entries([*map(EntryFacts.of_artifact, artifacts), report_facts])
        manifest = Manifest(
            format=MANIFEST_FORMAT,
            generated_at_ms=generated_at_ms,
            case=CaseSummary(
                id=case.id,
                shop=case.shop,
                shop_name=shop_name,
                order_ref=case.order_ref,
                claim=case.claim,
                language=case.language,
                created_at_ms=case.created_at_ms,
                closed_at_ms=case.closed_at_ms,
                consent=case.consent,
                outcome=case.outcome,
                notes=len(case.notes),
            ),
            signer=SignerInfo(alg="Ed25519", key_id=signer.key_id, public_key_pem=signer.public_key_pem),
            entries=entries,
            head=entries[-1].entry_hash,
        )
        signed = manifest_bytes(manifest)
        archive.writestr(_member(REPORT_NAME, "text/html", stamp), report)
        archive.writestr(_member(MANIFEST_NAME, "application/json", stamp), signed)
        archive.writestr(
            _member(SIGNATURE_NAME, "application/octet-stream", stamp), base64.b64encode(signer.sign(signed))
        )
        archive.writestr(_member(README_NAME, "text/plain", stamp), _readme(case, signer.key_id))
    return manifest


def _shown(name: str) -> str:
    """A hostile name as a problem may repeat it: printable, bounded."""
    shown = "".join(c if c.isprintable() else "?" for c in name[:MAX_SHOWN])
    return shown + ("…" if len(name) > MAX_SHOWN else "")


def _unsafe(name: str) -> bool:
    return name.startswith("/") or "\\" in name or ":" in name or ".." in name.split("/")


def _scan(
    archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int, problems: list[str], *, keep: bool = False
) -> tuple[int, str, bytes] | None:
    """Size, SHA-256 and (``keep``) content of a member, reading at most ``limit`` + 1 bytes; None if unreadable."""
    digest, size, kept = hashlib.sha256(), 0, bytearray()
    try:
        with archive.open(info) as member:
            while size <= limit and (chunk := member.read(min(CHUNK, limit + 1 - size))):
                digest.update(chunk)
                size += len(chunk)
                if keep:
                    kept += chunk
    except Exception as exc:  # zipfile fails in many ways on a hostile member (CRC, method, encryption, headers)
        problems.append(f"{_shown(info.filename)}: unreadable ({type(exc).__name__})")
        return None
    return size, digest.hexdigest(), bytes(kept)


def _read_small(
    archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], name: str, limit: int, problems: list[str]
) -> bytes | None:
    info = members.get(name)
    if info is None:
        problems.append(f"missing member: {name}")
        return None
    scanned = _scan(archive, info, limit, problems, keep=True)
    if scanned is None:
        return None
    if scanned[0] > limit:
        problems.append(f"{name}: larger than {limit} bytes")
        return None
    return scanned[2]


def _parse_manifest(data: bytes, problems: list[str]) -> Manifest | None:
    try:
        return Manifest.model_validate_json(data, strict=True)
    except ValidationError as exc:
        error = exc.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in error["loc"]) or "document"
        problems.append(f"{MANIFEST_NAME}: not a valid manifest ({_shown(where)}: {_shown(error['msg'])})")
        return None


def _decode_signature(data: bytes) -> bytes | None:
    """The signature, if ``data`` is exactly the base64 the exporter writes (so no byte of it can change)."""
    try:
        signature = base64.b64decode(data, validate=True)
    except binascii.Error:
        return None
    return signature if len(signature) == SIGNATURE_BYTES and base64.b64encode(signature) == data else None


def _check_signature(
    manifest: Manifest, signed: bytes, signature_data: bytes | None, pinned: str | None, result: VerifyResult
) -> None:
    try:
        embedded = public_key_raw(manifest.signer.public_key_pem)
    except ValueError:
        result.problems.append(f"{MANIFEST_NAME}: the signer's key is not an Ed25519 public key")
        return
    result.key_id = key_id_of(embedded)
    if manifest.signer.key_id != result.key_id:
        result.problems.append(f"{MANIFEST_NAME}: the signer's key_id is not its key's id")
    pinned_raw = public_key_raw(pinned) if pinned is not None else embedded  # a pinned key was checked already
    if pinned_raw != embedded:
        result.problems.append(
            f"{MANIFEST_NAME}: signed by key {result.key_id}, not the pinned key {key_id_of(pinned_raw)}"
        )
    if signature_data is None:
        return
    signature = _decode_signature(signature_data)
    if signature is None:
        result.problems.append(f"{SIGNATURE_NAME}: not the base64 of an Ed25519 signature")
    elif not verify_signature(pinned or manifest.signer.public_key_pem, signed, signature):
        result.problems.append(f"{MANIFEST_NAME}: signature does not match")


def _verify(archive: zipfile.ZipFile, pinned: str | None, result: VerifyResult) -> None:
    problems = result.problems
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        problems.append(f"bundle: {len(infos)} members, more than the {MAX_MEMBERS} a bundle may hold")
        return
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if _unsafe(info.filename):
            problems.append(f"unsafe member name: {_shown(info.filename)}")
        elif info.filename in members:
            problems.append(f"duplicate member: {_shown(info.filename)}")
        else:
            members[info.filename] = info
    signed = _read_small(archive, members, MANIFEST_NAME, MAX_MANIFEST_BYTES, problems)
    signature_data = _read_small(archive, members, SIGNATURE_NAME, 4 * SIGNATURE_BYTES, problems)
    if signed is None:
        return
    manifest = _parse_manifest(signed, problems)
    if manifest is None:
        return
    result.entries = len(manifest.entries)
    _check_signature(manifest, signed, signature_data, pinned, result)
    if broken := check_chain(manifest.entries, manifest.head):
        problems.append(broken)
    expected = {MANIFEST_NAME, SIGNATURE_NAME, README_NAME}
    for entry in manifest.entries:
        if entry.name in expected:
            problems.append(f"entry {entry.seq} ({entry.name}): listed twice")
            continue
        expected.add(entry.name)
        member = members.get(entry.name)
        if member is None:
            problems.append(f"missing member: {entry.name}")
        elif member.file_size != entry.bytes:
            problems.append(f"{entry.name}: {member.file_size} bytes, the manifest says {entry.bytes}")
        elif (scanned := _scan(archive, member, entry.bytes, problems)) is not None:
            if scanned[0] != entry.bytes:
                problems.append(f"{entry.name}: {scanned[0]} bytes read, the manifest says {entry.bytes}")
            elif scanned[1] != entry.sha256:
                problems.append(f"{entry.name}: sha256 mismatch")
    problems.extend(f"extra member not in manifest: {_shown(name)}" for name in members if name not in expected)


def verify_bundle(path: Path, *, public_key_pem: str | None = None) -> VerifyResult:
    """Check a bundle's signature, chain and every member; with ``public_key_pem``, that this key signed it."""
    result = VerifyResult(ok=False, pinned=public_key_pem is not None)
    if public_key_pem is not None:
        try:
            public_key_raw(public_key_pem)
        except ValueError:
            result.problems.append("pinned key: not an Ed25519 public key in PEM")
            return result
    try:
        archive = zipfile.ZipFile(path)
    except Exception as exc:  # not a file, not a zip, or a zip whose directory zipfile cannot parse
        result.problems.append(f"{_shown(Path(path).name)}: not a readable zip ({type(exc).__name__})")
        return result
    with archive:
        _verify(archive, public_key_pem, result)
    result.ok = not result.problems
    return result
