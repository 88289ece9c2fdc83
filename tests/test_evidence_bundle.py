"""Evidence bundles: built from real stored artifacts, verified by the function and the real ``vitrine verify``.

Any changed byte of any signed member, any entry moved, dropped or added, a signature by another key
(pinned), a stored file that changed after capture, and hostile zips are each caught and named.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path

import av
import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signaling.inspect.bundle import MAX_MEMBERS, build_bundle, manifest_bytes, verify_bundle
from signaling.inspect.manifest import GENESIS, EntryFacts, Manifest, chain_entries, check_chain, entry_hash
from signaling.inspect.report import render_report
from signaling.inspect.signing import EvidenceSigner, key_id_of, public_key_raw, verify_signature
from signaling.inspect.timeline import TimelineRow
from tests.servers import TEST_SECRET
from vitrine.core.artifacts import ArtifactStore
from vitrine.core.config import InsecureSettingsError, Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.wire.inspect import ArtifactKind, Case, Consent, Note, Outcome, Verdict

SHOP = "acme-shop"
T0 = 1_717_000_000_000  # 2024-05-29T16:26:40Z
BASE_ENV = {k: v for k, v in os.environ.items() if not k.startswith("VITRINE_")}
SIGNED_MEMBERS_EXCEPT_ARTIFACTS = ("report.html", "manifest.json", "manifest.sig")


def tiny_jpeg(shade: int) -> bytes:
    frame = av.VideoFrame.from_ndarray(np.full((16, 24, 3), shade, np.uint8), format="rgb24")
    codec = av.CodecContext.create("mjpeg", "w")
    codec.width, codec.height, codec.pix_fmt, codec.time_base = 24, 16, "yuvj420p", Fraction(1, 25)
    return b"".join(bytes(p) for p in [*codec.encode(frame.reformat(format="yuvj420p")), *codec.encode(None)])


def make_case(
    tmp_path: Path, *, claim: str = "The mug arrived cracked", recording_bytes: int = 1_500_000
) -> tuple[Case, ArtifactStore]:
    """A closed case with a photo, a snapshot, a recording, chat and timeline, written through the store."""
    store = ArtifactStore(tmp_path / "evidence")
    case = Case(
        shop=SHOP,
        order_ref="A-1001",
        claim=claim,
        created_at_ms=T0,
        closed_at_ms=T0 + 600_000,
        consent=Consent(at_ms=T0 + 5_000, version=1, language="en", text="I agree to be recorded."),
        notes=[Note(at_ms=T0 + 300_000, author="inspector-1", text="Crack visible on the handle")],
        outcome=Outcome(verdict=Verdict.ACCEPTED, comment="Refund approved", at_ms=T0 + 590_000, by="inspector-1"),
    )
    photo = store.write(
        SHOP,
        case.id,
        ArtifactKind.PHOTO,
        tiny_jpeg(200),
        ext="jpg",
        content_type="image/jpeg",
        source="buyer camera, full resolution",
        captured_at_ms=T0 + 120_000,
        width=24,
        height=16,
        request="handle close-up",
    )
    snapshot = store.write(
        SHOP,
        case.id,
        ArtifactKind.SNAPSHOT,
        tiny_jpeg(90),
        ext="jpg",
        content_type="image/jpeg",
        source="worker frame grab",
        captured_at_ms=T0 + 60_000,
        width=24,
        height=16,
    )
    raw = tmp_path / "session.webm"
    raw.write_bytes(os.urandom(recording_bytes))
    recording = store.adopt(
        SHOP,
        case.id,
        ArtifactKind.RECORDING,
        raw,
        content_type="video/webm",
        source="media worker, remuxed",
        captured_at_ms=T0 + 10_000,
        duration_ms=580_000,
    )
    chat = store.write(
        SHOP,
        case.id,
        ArtifactKind.CHAT,
        json.dumps([{"who": "buyer", "text": "hi"}]).encode(),
        ext="json",
        content_type="application/json",
        source="session chat",
        captured_at_ms=T0 + 600_000,
    )
    timeline = store.write(
        SHOP,
        case.id,
        ArtifactKind.TIMELINE,
        json.dumps([{"at_ms": T0, "what": "opened"}]).encode(),
        ext="json",
        content_type="application/json",
        source="case events",
        captured_at_ms=T0 + 600_000,
    )
    case.artifacts = [photo, chat, timeline, snapshot, recording]
    return case, store


TIMELINE = [
    TimelineRow(at_ms=T0, who="seller", what="case opened"),
    TimelineRow(at_ms=T0 + 5_000, who="buyer", what="consented to recording"),
]


@pytest.fixture
def signer() -> EvidenceSigner:
    return EvidenceSigner.from_settings(Settings(api_secret=TEST_SECRET))


@pytest.fixture
def bundle(tmp_path: Path, signer: EvidenceSigner) -> tuple[Path, Case, Manifest]:
    case, store = make_case(tmp_path)
    path = tmp_path / "bundle.zip"
    manifest = build_bundle(path, case, store, signer, shop_name="Acme <Mugs>", timeline=TIMELINE)
    return path, case, manifest


def members_of(path: Path) -> dict[str, tuple[bytes, int]]:
    with zipfile.ZipFile(path) as archive:
        return {info.filename: (archive.read(info), info.compress_type) for info in archive.infolist()}


def rewrite(
    path: Path, out: Path, *, change: dict[str, bytes | None] | None = None, add: dict[str, bytes] | None = None
) -> Path:
    """A well-formed copy of a bundle (valid CRCs) with members replaced, removed (None) or added."""
    change, add = change or {}, add or {}
    with zipfile.ZipFile(out, "w") as archive:
        for name, (data, compress) in members_of(path).items():
            if change.get(name, data) is not None:
                archive.writestr(zipfile.ZipInfo(name), change.get(name, data), compress_type=compress)
        for name, data in add.items():
            archive.writestr(name, data)
    return out


def flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "vitrine.cli", *args], env=BASE_ENV, capture_output=True, text=True, timeout=60
    )


def resign(path: Path, out: Path, manifest: Manifest, key: EvidenceSigner, **changes: bytes | None) -> Path:
    """What a forger with their own key can do: rewrite the manifest consistently and sign it."""
    manifest = manifest.model_copy(
        update={
            "signer": manifest.signer.model_copy(update={"key_id": key.key_id, "public_key_pem": key.public_key_pem})
        }
    )
    signed = manifest_bytes(manifest)
    return rewrite(
        path, out, change={"manifest.json": signed, "manifest.sig": base64.b64encode(key.sign(signed)), **changes}
    )


def test_a_bundle_verifies_and_holds_what_it_says(bundle: tuple[Path, Case, Manifest], signer: EvidenceSigner) -> None:
    path, case, manifest = bundle
    result = verify_bundle(path)
    assert result.ok, result.problems
    assert (result.entries, result.key_id, result.pinned) == (6, signer.key_id, False)
    pinned = verify_bundle(path, public_key_pem=signer.public_key_pem)
    assert pinned.ok and pinned.pinned

    ordered = sorted(case.artifacts, key=lambda a: (a.captured_at_ms, a.id))
    assert [e.name for e in manifest.entries] == [f"artifacts/{a.file}" for a in ordered] + ["report.html"]
    assert [e.seq for e in manifest.entries] == [1, 2, 3, 4, 5, 6]
    assert manifest.entries[0].prev == GENESIS and manifest.head == manifest.entries[-1].entry_hash
    assert manifest.entries[-1].kind == "report" and manifest.entries[-1].artifact_id is None
    assert manifest.case.consent == case.consent and manifest.case.outcome == case.outcome
    assert manifest.case.notes == 1 and manifest.case.shop_name == "Acme <Mugs>"
    assert manifest.signer.public_key_pem == signer.public_key_pem

    members = members_of(path)
    assert set(members) == {f"artifacts/{a.file}" for a in case.artifacts} | {
        "report.html",
        "manifest.json",
        "manifest.sig",
        "README.txt",
    }
    signed = members["manifest.json"][0]
    assert signed == manifest_bytes(manifest)
    assert verify_signature(signer.public_key_pem, signed, base64.b64decode(members["manifest.sig"][0]))
    for entry in manifest.entries:
        assert hashlib.sha256(members[entry.name][0]).hexdigest() == entry.sha256
        stored = entry.content_type in ("image/jpeg", "video/webm")
        assert members[entry.name][1] == (zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED), entry.name
    assert members["manifest.json"][1] == zipfile.ZIP_DEFLATED
    assert "vitrine verify bundle.zip" in members["README.txt"][0].decode()


def test_the_real_cli_verifies_without_any_server_settings(
    tmp_path: Path, bundle: tuple[Path, Case, Manifest], signer: EvidenceSigner
) -> None:
    path, _, _ = bundle
    result = run_cli("verify", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"OK: 6 entries, signed by key {signer.key_id}" in result.stdout and "not pinned" in result.stdout

    key = tmp_path / "shop-evidence-key.pem"
    key.write_text(signer.public_key_pem)
    pinned = run_cli("verify", str(path), "--key", str(key))
    assert pinned.returncode == 0 and "not pinned" not in pinned.stdout, pinned.stdout + pinned.stderr

    other = tmp_path / "other.pem"
    other.write_text(EvidenceSigner.derive(b"another deployment's secret").public_key_pem)
    wrong_key = run_cli("verify", str(path), "--key", str(other))
    assert wrong_key.returncode == 1 and "not the pinned key" in wrong_key.stdout

    name = next(n for n in members_of(path) if n.endswith(".jpg"))
    tampered = rewrite(path, tmp_path / "tampered.zip", change={name: flip(members_of(path)[name][0], 100)})
    failed = run_cli("verify", str(tampered))
    assert failed.returncode == 1 and f"{name}: sha256 mismatch" in failed.stdout

    missing_key = run_cli("verify", str(path), "--key", str(tmp_path / "nope.pem"))
    assert missing_key.returncode != 0 and "nope.pem" in missing_key.stderr


def test_any_changed_byte_of_any_signed_member_is_named(tmp_path: Path, bundle: tuple[Path, Case, Manifest]) -> None:
    path, _, _ = bundle
    for name, (data, _) in members_of(path).items():
        for position in sorted({0, 1, len(data) // 3, len(data) // 2, len(data) - 2, len(data) - 1}):
            result = verify_bundle(rewrite(path, tmp_path / "t.zip", change={name: flip(data, position)}))
            where = f"{name} byte {position}: {result.problems}"
            if name == "README.txt":  # not signed, and says so: changing it is not a finding
                assert result.ok, where
            elif name.startswith("artifacts/") or name == "report.html":
                assert not result.ok and result.problems == [f"{name}: sha256 mismatch"], where
            elif name == "manifest.json":  # unparseable, or parseable and no longer what was signed (and more)
                assert not result.ok and result.problems[0].startswith("manifest.json: "), where
            else:  # manifest.sig: no longer base64 of 64 bytes, or another signature
                assert result.problems in (
                    ["manifest.sig: not the base64 of an Ed25519 signature"],
                    ["manifest.json: signature does not match"],
                ), where


def test_moved_dropped_or_added_entries_fail(
    tmp_path: Path, bundle: tuple[Path, Case, Manifest], signer: EvidenceSigner
) -> None:
    path, _, manifest = bundle
    first, second = manifest.entries[0].name, manifest.entries[1].name

    dropped = verify_bundle(rewrite(path, tmp_path / "a.zip", change={first: None}))
    assert dropped.problems == [f"missing member: {first}"]
    added = verify_bundle(rewrite(path, tmp_path / "b.zip", add={"artifacts/ar_0000000000000000.jpg": b"\xff\xd8\xff"}))
    assert added.problems == ["extra member not in manifest: artifacts/ar_0000000000000000.jpg"]
    no_signature = verify_bundle(rewrite(path, tmp_path / "c.zip", change={"manifest.sig": None}))
    assert no_signature.problems == ["missing member: manifest.sig"]

    swapped = manifest.model_copy(update={"entries": [manifest.entries[1], manifest.entries[0], *manifest.entries[2:]]})
    reordered = verify_bundle(rewrite(path, tmp_path / "d.zip", change={"manifest.json": manifest_bytes(swapped)}))
    assert reordered.problems == [
        "manifest.json: signature does not match",
        f"entry 1 ({second}): chain broken (numbered 2)",
    ]
    without = manifest.model_copy(update={"entries": manifest.entries[1:]})
    removed = verify_bundle(rewrite(path, tmp_path / "e.zip", change={"manifest.json": manifest_bytes(without)}))
    assert removed.problems == [
        "manifest.json: signature does not match",
        f"entry 1 ({second}): chain broken (numbered 2)",
        f"extra member not in manifest: {first}",
    ]

    # A forger who drops an entry and its file, re-chains and signs with their own key: only a pinned key stops it.
    forger = EvidenceSigner.derive(b"someone else's secret")
    entries = chain_entries(
        [EntryFacts(**e.model_dump(exclude={"seq", "prev", "entry_hash"})) for e in manifest.entries[1:]]
    )
    forged_manifest = manifest.model_copy(update={"entries": entries, "head": entries[-1].entry_hash})
    forged = resign(path, tmp_path / "f.zip", forged_manifest, forger, **{first: None})
    unpinned = verify_bundle(forged)
    assert unpinned.ok and not unpinned.pinned and unpinned.key_id == forger.key_id != signer.key_id
    pinned = verify_bundle(forged, public_key_pem=signer.public_key_pem)
    assert not pinned.ok and pinned.problems == [
        f"manifest.json: signed by key {forger.key_id}, not the pinned key {signer.key_id}",
        "manifest.json: signature does not match",
    ]


def test_a_bundle_signed_by_another_key_fails_when_pinned(tmp_path: Path, signer: EvidenceSigner) -> None:
    case, store = make_case(tmp_path, recording_bytes=1000)
    other = EvidenceSigner.derive(b"a different deployment, a different secret")
    path = tmp_path / "other.zip"
    build_bundle(path, case, store, other, shop_name="Acme", timeline=[])
    assert verify_bundle(path).ok
    result = verify_bundle(path, public_key_pem=signer.public_key_pem)
    assert not result.ok and "manifest.json: signature does not match" in result.problems
    # An embedded key swapped for the pinned one does not help: the signature is still the other key's.
    manifest = Manifest.model_validate_json(members_of(path)["manifest.json"][0])
    manifest.signer = manifest.signer.model_copy(
        update={"key_id": signer.key_id, "public_key_pem": signer.public_key_pem}
    )
    swapped = rewrite(path, tmp_path / "swapped.zip", change={"manifest.json": manifest_bytes(manifest)})
    assert verify_bundle(swapped, public_key_pem=signer.public_key_pem).problems == [
        "manifest.json: signature does not match"
    ]
    assert verify_bundle(path, public_key_pem="not a key").problems == ["pinned key: not an Ed25519 public key in PEM"]


def test_the_derived_key_is_stable_per_secret_and_never_weak(tmp_path: Path) -> None:
    first = EvidenceSigner.from_settings(Settings(api_secret=TEST_SECRET))
    again = EvidenceSigner.from_settings(Settings(api_secret=TEST_SECRET))
    other = EvidenceSigner.from_settings(Settings(api_secret=TEST_SECRET + "-rotated"))
    assert first.public_key_pem == again.public_key_pem and first.key_id == again.key_id
    assert other.public_key_pem != first.public_key_pem and other.key_id != first.key_id
    raw = public_key_raw(first.public_key_pem)
    assert len(raw) == 32 and first.key_id == hashlib.sha256(raw).hexdigest()[:16] == key_id_of(raw)
    assert first.sign(b"data") == again.sign(b"data")  # Ed25519 is deterministic: same key
    assert verify_signature(first.public_key_pem, b"data", first.sign(b"data"))
    assert not verify_signature(first.public_key_pem, b"date", first.sign(b"data"))
    assert not verify_signature(other.public_key_pem, b"data", first.sign(b"data"))
    assert not verify_signature("garbage", b"data", first.sign(b"data"))
    assert "PRIVATE" not in repr(first) and first.key_id in repr(first)
    for weak in ("", "changeme", "short"):
        with pytest.raises(InsecureSettingsError):
            EvidenceSigner.from_settings(Settings(api_secret=weak))

    private = Ed25519PrivateKey.generate()
    key_file = tmp_path / "evidence.pem"
    key_file.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    from_file = EvidenceSigner.from_settings(Settings(api_secret="", evidence_key_file=str(key_file)))
    assert public_key_raw(from_file.public_key_pem) == private.public_key().public_bytes(
        serialization.Encoding.Raw, serialization.PublicFormat.Raw
    )
    ec_file = tmp_path / "ec.pem"
    ec_file.write_bytes(
        generate_private_key(SECP256R1()).private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    with pytest.raises(ValueError, match="Ed25519"):
        EvidenceSigner.from_settings(Settings(evidence_key_file=str(ec_file)))
    ec_file.write_text("-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n")
    with pytest.raises(ValueError, match="not an unencrypted PEM private key") as raised:
        EvidenceSigner.from_settings(Settings(evidence_key_file=str(ec_file)))
    assert "nonsense" not in str(raised.value)


@pytest.mark.parametrize("damage", ["flipped", "appended", "truncated", "deleted"])
def test_build_refuses_a_stored_file_that_changed_after_capture(
    tmp_path: Path, signer: EvidenceSigner, damage: str
) -> None:
    case, store = make_case(tmp_path, recording_bytes=3_000_000)
    victim = next(a for a in case.artifacts if a.kind == ArtifactKind.RECORDING)
    file = store.path_of(SHOP, case.id, victim)
    data = file.read_bytes()
    if damage == "deleted":
        file.unlink()
    else:
        file.write_bytes(
            {"flipped": flip(data, len(data) - 1), "appended": data + b"\0", "truncated": data[:-1]}[damage]
        )
    out = tmp_path / "bundle.zip"
    with pytest.raises(VitrineError) as raised:
        build_bundle(out, case, store, signer, shop_name="Acme", timeline=[])
    assert raised.value.code == ErrorCode.EVIDENCE_CORRUPT and victim.id in raised.value.message
    assert not out.exists()

    stream = io.BytesIO()  # a stream is left with a zip that does not verify
    with pytest.raises(VitrineError):
        build_bundle(stream, case, store, signer, shop_name="Acme", timeline=[])
    (tmp_path / "partial.zip").write_bytes(stream.getvalue())
    assert not verify_bundle(tmp_path / "partial.zip").ok


class WriteOnly(io.RawIOBase):
    """A response body: written once, front to back, never sought."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, chunk: bytes) -> int:  # type: ignore[override]
        self.data += chunk
        return len(chunk)


def test_a_bundle_streams_to_an_unseekable_output(tmp_path: Path, signer: EvidenceSigner) -> None:
    case, store = make_case(tmp_path, recording_bytes=2_500_000)
    out = WriteOnly()
    manifest = build_bundle(out, case, store, signer, shop_name="Acme", timeline=TIMELINE)
    (tmp_path / "streamed.zip").write_bytes(out.data)
    result = verify_bundle(tmp_path / "streamed.zip", public_key_pem=signer.public_key_pem)
    assert result.ok and result.entries == len(manifest.entries) == 6, result.problems


def test_a_recording_past_the_zip64_limit_is_streamed_into_a_zip64_member(
    tmp_path: Path, signer: EvidenceSigner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(zipfile, "ZIP64_LIMIT", 1_000_000)  # stands for 4 GiB: the recording is "larger"
    case, store = make_case(tmp_path, recording_bytes=1_500_000)
    path = tmp_path / "big.zip"
    build_bundle(path, case, store, signer, shop_name="Acme", timeline=[])
    monkeypatch.undo()
    recording = next(f"artifacts/{a.file}" for a in case.artifacts if a.kind == ArtifactKind.RECORDING)
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo(recording).extra[:2] == b"\x01\x00"  # the ZIP64 extra field's tag
    assert verify_bundle(path, public_key_pem=signer.public_key_pem).ok


def zip_of(tmp_path: Path, name: str, members: list[tuple[str, bytes]]) -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w") as archive:
        for member, data in members:
            archive.writestr(zipfile.ZipInfo(member), data)
    return path


@pytest.mark.filterwarnings("ignore:Duplicate name")
def test_hostile_files_give_problems_not_tracebacks(tmp_path: Path, bundle: tuple[Path, Case, Manifest]) -> None:
    path, _, manifest = bundle
    good = members_of(path)
    (tmp_path / "not.zip").write_bytes(b"PK\x03\x04 but nothing else")
    (tmp_path / "empty.zip").write_bytes(b"")
    (tmp_path / "dir.zip").mkdir()
    cases: dict[str, tuple[Path, str]] = {
        "not a zip": (tmp_path / "not.zip", "not.zip: not a readable zip (BadZipFile)"),
        "empty": (tmp_path / "empty.zip", "empty.zip: not a readable zip (BadZipFile)"),
        "absent": (tmp_path / "absent.zip", "absent.zip: not a readable zip (FileNotFoundError)"),
        "a directory": (tmp_path / "dir.zip", "dir.zip: not a readable zip"),
        "no manifest": (
            rewrite(path, tmp_path / "nm.zip", change={"manifest.json": None}),
            "missing member: manifest.json",
        ),
        "parent path": (rewrite(path, tmp_path / "up.zip", add={"../evil": b"x"}), "unsafe member name: ../evil"),
        "absolute path": (
            rewrite(path, tmp_path / "abs.zip", add={"/etc/cron.d/x": b"x"}),
            "unsafe member name: /etc/cron.d/x",
        ),
        "backslashes": (rewrite(path, tmp_path / "bs.zip", add={"..\\evil": b"x"}), "unsafe member name: ..\\evil"),
        "control characters": (
            rewrite(path, tmp_path / "cc.zip", add={"a\x1b[2Jb": b"x"}),
            "extra member not in manifest: a?[2Jb",
        ),
        "malformed json": (
            rewrite(path, tmp_path / "mj.zip", change={"manifest.json": b"{not json"}),
            "manifest.json: not a valid manifest",
        ),
        "wrong types": (
            rewrite(
                path,
                tmp_path / "wt.zip",
                change={
                    "manifest.json": json.dumps({**manifest.model_dump(mode="json"), "entries": "all of them"}).encode()
                },
            ),
            "manifest.json: not a valid manifest (entries",
        ),
        "numbers as text": (
            rewrite(
                path,
                tmp_path / "nt.zip",
                change={
                    "manifest.json": json.dumps({**manifest.model_dump(mode="json"), "generated_at_ms": "1"}).encode()
                },
            ),
            "manifest.json: not a valid manifest (generated_at_ms",
        ),
        "a hostile entry name": (
            rewrite(
                path,
                tmp_path / "hn.zip",
                change={
                    "manifest.json": json.dumps(
                        {
                            **manifest.model_dump(mode="json"),
                            "entries": [{**manifest.entries[0].model_dump(mode="json"), "name": "../../etc/passwd"}],
                        }
                    ).encode()
                },
            ),
            "manifest.json: not a valid manifest (entries.0.name",
        ),
        "deep nesting": (
            rewrite(path, tmp_path / "dn.zip", change={"manifest.json": b"[" * 100_000}),
            "manifest.json: not a valid manifest",
        ),
        "a huge manifest": (
            rewrite(path, tmp_path / "hm.zip", change={"manifest.json": b" " * (17 << 20)}),
            "manifest.json: larger than",
        ),
        "a JSON array": (
            zip_of(tmp_path, "ja.zip", [("manifest.json", b"[]"), ("manifest.sig", b"")]),
            "manifest.json: not a valid manifest",
        ),
        "duplicate members": (
            zip_of(
                tmp_path,
                "dm.zip",
                [(n, d) for n, (d, _) in good.items()] + [("report.html", b"<p>the other report</p>")],
            ),
            "duplicate member: report.html",
        ),
        "too many members": (
            zip_of(tmp_path, "tm.zip", [(f"m{i}", b"") for i in range(MAX_MEMBERS + 1)]),
            f"bundle: {MAX_MEMBERS + 1} members",
        ),
    }
    for label, (hostile, expected) in cases.items():
        result = verify_bundle(hostile)
        assert not result.ok and any(p.startswith(expected) for p in result.problems), (label, result.problems)
    for label in ("not a zip", "parent path", "malformed json"):
        cli = run_cli("verify", str(cases[label][0]))
        assert cli.returncode == 1 and cases[label][1] in cli.stdout and not cli.stderr, (label, cli.stderr)


def test_random_damage_anywhere_in_the_zip_never_crashes(tmp_path: Path, signer: EvidenceSigner) -> None:
    case, store = make_case(tmp_path, recording_bytes=2000)
    path = tmp_path / "small.zip"
    build_bundle(path, case, store, signer, shop_name="Acme", timeline=TIMELINE)
    data = path.read_bytes()
    damaged = tmp_path / "damaged.zip"
    tail = range(max(0, len(data) - 1500), len(data))  # the central directory and its end record, every byte
    for position in sorted({*range(0, len(data), max(1, len(data) // 400)), *tail}):
        for value in (data[position] ^ 0x01, 0xFF):
            damaged.write_bytes(data[:position] + bytes([value]) + data[position + 1 :])
            result = verify_bundle(damaged)  # a changed timestamp or comment can be harmless; a crash never is
            assert result.ok or (result.problems and all(isinstance(p, str) for p in result.problems))


def test_the_report_escapes_untrusted_text_and_loads_nothing_external(tmp_path: Path, signer: EvidenceSigner) -> None:
    case, store = make_case(tmp_path, claim='<script>alert("claim")</script> & "cracked"', recording_bytes=100)
    case.notes.append(Note(at_ms=T0, author='<img src=x onerror="alert(1)">', text="</td><script>x()</script>"))
    timeline = [TimelineRow(at_ms=T0, who="buyer<b>", what='<a href="https://evil.example">click</a>')]
    page = render_report(
        case,
        shop_name="<iframe src=//evil.example>",
        timeline=timeline,
        artifacts=case.artifacts,
        key_id=signer.key_id,
        generated_at_ms=T0 + 700_000,
    )

    class Tags(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.tags: list[tuple[str, dict[str, str | None]]] = []

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            self.tags.append((tag, dict(attrs)))

    parser = Tags()
    parser.feed(page)
    names = {tag for tag, _ in parser.tags}
    assert not names & {"script", "iframe", "object", "embed", "link", "base", "form"}, names
    for tag, attrs in parser.tags:
        assert not any(key.startswith("on") for key in attrs), (tag, attrs)
        if tag in ("img", "a"):
            assert (attrs.get("src") or attrs.get("href") or "").startswith("artifacts/ar_"), (tag, attrs)
    images = [attrs["src"] for tag, attrs in parser.tags if tag == "img"]
    assert sorted(images) == sorted(
        f"artifacts/{a.file}" for a in case.artifacts if a.kind in (ArtifactKind.PHOTO, ArtifactKind.SNAPSHOT)
    )
    assert "&lt;script&gt;alert(&quot;claim&quot;)&lt;/script&gt; &amp; &quot;cracked&quot;" in page
    assert "&lt;iframe src=//evil.example&gt;" in page and "buyer&lt;b&gt;" in page
    assert "script-src 'none'" in page
    for artifact in case.artifacts:
        assert artifact.sha256 in page
    assert "2024-05-29T16:26:40.000Z" in page and "I agree to be recorded." in page and "Refund approved" in page
    assert "vitrine verify bundle.zip" in page and signer.key_id in page

    path = tmp_path / "bundle.zip"
    build_bundle(path, case, store, signer, shop_name="Acme", timeline=timeline)
    report = members_of(path)["report.html"][0].decode()
    assert "<script>" not in report and "&lt;script&gt;" in report


def test_the_chain_names_the_first_broken_entry() -> None:
    facts = [
        EntryFacts(
            name=f"artifacts/ar_{i:016d}.jpg",
            artifact_id=f"ar_{i:016d}",
            kind=ArtifactKind.PHOTO,
            content_type="image/jpeg",
            bytes=i,
            sha256=hashlib.sha256(bytes([i])).hexdigest(),
            captured_at_ms=T0 + i,
            source="camera",
        )
        for i in range(1, 5)
    ]
    entries = chain_entries(facts)
    assert check_chain(entries, entries[-1].entry_hash) is None
    for entry in entries:
        body = entry.model_dump(mode="json", exclude={"entry_hash"})
        assert (
            entry.entry_hash
            == hashlib.sha256(
                json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
            ).hexdigest()
        )
        assert entry_hash(entry) == entry.entry_hash
    changed = [*entries[:2], entries[2].model_copy(update={"bytes": 99}), entries[3]]
    assert check_chain(changed, entries[-1].entry_hash) == (
        f"entry 3 ({facts[2].name}): chain broken (its hash does not match its contents)"
    )
    resealed = [*entries[:2], changed[2].model_copy(update={"entry_hash": entry_hash(changed[2])}), entries[3]]
    assert check_chain(resealed, entries[-1].entry_hash) == (
        f"entry 4 ({facts[3].name}): chain broken (prev is not the previous entry's hash)"
    )
    assert check_chain(entries[:3], entries[-1].entry_hash) == "manifest.json: head is not the last entry's hash"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_the_readme_recipe_verifies_with_standard_tools(
    tmp_path: Path, bundle: tuple[Path, Case, Manifest], signer: EvidenceSigner
) -> None:
    path, _, manifest = bundle
    members = members_of(path)
    (tmp_path / "manifest.json").write_bytes(members["manifest.json"][0])
    (tmp_path / "manifest.sig.bin").write_bytes(base64.b64decode(members["manifest.sig"][0]))
    (tmp_path / "key.pem").write_text(signer.public_key_pem)
    result = subprocess.run(
        [
            "openssl",
            "pkeyutl",
            "-verify",
            "-pubin",
            "-inkey",
            "key.pem",
            "-rawin",
            "-in",
            "manifest.json",
            "-sigfile",
            "manifest.sig.bin",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    if "rawin" in result.stderr and result.returncode != 0:
        pytest.skip("this openssl has no -rawin (OpenSSL < 3)")
    assert result.returncode == 0 and "Signature Verified Successfully" in result.stdout, result.stderr
    assert json.loads(members["manifest.json"][0])["head"] == manifest.head
