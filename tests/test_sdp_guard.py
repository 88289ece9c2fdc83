"""``vitrine.core.sdp_guard``: malformed SDP and ICE candidates become typed errors, also under ``python -O``.

The fixtures in ``tests/fixtures/sdp/`` are derived from ``valid.sdp`` (a real
aiortc publisher offer: VP8/H264 video and Opus audio, sendonly, max-bundle)
by deleting or replacing lines; ``test_fixtures_are_derived_from_the_valid_offer``
proves each file is what ``BROKEN`` says it is. The 100k-line SDP is generated here.

aiortc validates parts of an SDP with ``assert``, which ``python -O`` strips, so
the guard must not depend on it. This module is re-run under ``python -O`` (see
the ``optimize`` tests at the bottom) and therefore uses no bare ``assert``:
pytest cannot rewrite assertions under ``-O`` and they would silently pass.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from vitrine.core.config import Settings
from vitrine.core.errors import ErrorCode, VitrineError
from vitrine.core.sdp_guard import MAX_MEDIA_SECTIONS, MAX_SDP_LINES, parse_candidate, parse_sdp, sends_media
from vitrine.core.wire.rtc import IceCandidate

FIXTURES = Path(__file__).parent / "fixtures" / "sdp"
ROOT = Path(__file__).resolve().parent.parent
MAX_SDP_BYTES = Settings().max_sdp_bytes
UNDER_O_ENV = "VITRINE_SDP_GUARD_UNDER_O"  # set by the optimize tests for the child run


def check(condition: object, message: str = "check failed") -> None:
    """An assertion that ``python -O`` cannot strip."""
    if not condition:
        raise AssertionError(message)


def load(name: str) -> str:
    """A fixture as text; latin-1 maps every byte to one character, so binary junk survives."""
    return (FIXTURES / name).read_bytes().decode("latin-1")


def rejected(sdp: object, max_bytes: int = MAX_SDP_BYTES) -> VitrineError:
    with pytest.raises(VitrineError) as info:
        parse_sdp(sdp, max_bytes)  # type: ignore[arg-type]
    check(info.value.code == ErrorCode.INVALID_SDP, f"expected invalid_sdp, got {info.value.code}")
    return info.value


# -- deriving the broken fixtures from the valid offer ---------------------------------------


def _lines(sdp: str) -> list[str]:
    return sdp.split("\r\n")


def _drop(prefix: str) -> Callable[[str], str]:
    def derive(sdp: str) -> str:
        return "\r\n".join(line for line in _lines(sdp) if not line.startswith(prefix))

    return derive


def _replace(mapping: Callable[[str], str]) -> Callable[[str], str]:
    def derive(sdp: str) -> str:
        return "\r\n".join(mapping(line) for line in _lines(sdp))

    return derive


def _garbage_mline(line: str) -> str:
    if line.startswith("m=video"):
        return "m=video port-number UDP/TLS/RTP/SAVPF ?? !!"  # non-numeric port
    if line.startswith("m=audio"):
        return "m=audio 9 UDP/TLS/RTP/SAVPF opus G722 PCMU"  # non-numeric payload types
    return line


def _video_payload_type_300(line: str) -> str:
    if line.startswith("m=video"):
        bits = line.split(" ")
        return " ".join(bits[:3] + ["300"] + bits[4:])  # VP8's 97 becomes 300: not a 7-bit RTP payload type
    if line.startswith("a=rtpmap:97 "):
        return line.replace("a=rtpmap:97 ", "a=rtpmap:300 ")
    return line


def _truncated_candidate(line: str) -> str:
    return "a=candidate:1 1 udp" if line.startswith("a=candidate:") else line


def _bad_setup(line: str) -> str:
    return "a=setup:bogus" if line.startswith("a=setup:") else line


def _binary_junk(sdp: str) -> str:
    """The session-level lines, then 2 KiB of deterministic binary junk where the m-lines were."""
    session = sdp[: sdp.index("\r\nm=") + 2]
    junk = b"".join(hashlib.sha256(str(i).encode()).digest() for i in range(64)).decode("latin-1")
    for line in junk.splitlines():
        if line[:2] in ("m=", "a=", "c="):  # keep it junk: nothing the parser could take for an SDP line
            raise ValueError("junk generator produced an SDP-looking line")
    return session + junk


BROKEN: dict[str, Callable[[str], str]] = {
    "no_fingerprint": _drop("a=fingerprint:"),
    "no_ice_ufrag": _drop("a=ice-ufrag:"),
    "no_ice_pwd": _drop("a=ice-pwd:"),
    "no_mid": _drop("a=mid:"),
    "no_rtcp_mux": _drop("a=rtcp-mux"),
    "garbage_mlines": _replace(_garbage_mline),
    "payload_type_out_of_range": _replace(_video_payload_type_300),
    "truncated_candidate": _replace(_truncated_candidate),
    "bad_dtls_setup": _replace(_bad_setup),
    "binary_junk": _binary_junk,
}


def test_fixtures_are_derived_from_the_valid_offer() -> None:
    valid = load("valid.sdp")
    check(valid.startswith("v=0\r\n") and valid.endswith("\r\n"), "valid.sdp must be a CRLF SDP")
    for name, derive in BROKEN.items():
        stored = load(f"{name}.sdp")
        check(stored == derive(valid), f"{name}.sdp is not derived from valid.sdp as BROKEN[{name!r}] says")
        check(stored != valid, f"{name}.sdp is identical to valid.sdp")


# -- parse_sdp -------------------------------------------------------------------------------


def test_the_valid_offer_is_accepted() -> None:
    description = parse_sdp(load("valid.sdp"), MAX_SDP_BYTES)
    check([m.kind for m in description.media] == ["video", "audio"], "expected a video and an audio m-line")
    check(all(m.dtls.fingerprints and m.ice.usernameFragment for m in description.media), "lost ICE/DTLS")
    check(sends_media(description), "a sendonly publisher offer sends media")
    recvonly = load("valid.sdp").replace("a=sendonly", "a=recvonly")
    check(not sends_media(parse_sdp(recvonly, MAX_SDP_BYTES)), "a recvonly offer sends nothing")


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_broken_fixture_is_rejected(name: str) -> None:
    rejected(load(f"{name}.sdp"))


def test_pure_binary_junk_is_rejected() -> None:
    rejected(bytes(range(256)).decode("latin-1") * 4)


@pytest.mark.parametrize(
    "sdp",
    ["", "   \r\n\t", "hello", "m=video 9 UDP/TLS/RTP/SAVPF 97\r\n", "v=0\r\n"],
    ids=["empty", "whitespace", "not_sdp", "no_version_line", "only_version_line"],
)
def test_trivially_broken_sdp_is_rejected(sdp: str) -> None:
    rejected(sdp)


@pytest.mark.parametrize("value", [None, 42, b"v=0\r\n"], ids=["none", "int", "bytes"])
def test_non_string_sdp_is_rejected(value: object) -> None:
    rejected(value)


def test_a_100k_line_sdp_is_rejected_by_size_and_by_line_count() -> None:
    valid = load("valid.sdp")
    huge = valid + "".join(f"a=x-filler:{i}\r\n" for i in range(100_000))
    check(huge.count("\n") > 100_000, "the generated SDP is not 100k lines")
    rejected(huge)  # over the byte limit the server is configured with
    error = rejected(huge, max_bytes=len(huge.encode()) * 2)  # within any byte limit: the line limit holds
    check(str(MAX_SDP_LINES) in error.message, f"expected the line limit to reject it, got {error.message!r}")


def test_too_many_media_sections_are_rejected() -> None:
    valid = load("valid.sdp")
    audio = valid[valid.index("m=audio") :]
    many = valid + audio * MAX_MEDIA_SECTIONS
    check(many.count("\nm=") > MAX_MEDIA_SECTIONS, "not enough m-lines generated")
    rejected(many, max_bytes=len(many.encode()) * 2)


def test_payload_type_above_127_is_rejected() -> None:
    valid = load("valid.sdp")
    rejected(valid.replace("UDP/TLS/RTP/SAVPF 97 ", "UDP/TLS/RTP/SAVPF 200 ").replace("a=rtpmap:97 ", "a=rtpmap:200 "))


def test_unsupported_media_kind_is_rejected() -> None:
    valid = load("valid.sdp")
    rejected(valid.replace("m=audio ", "m=text "))


# -- parse_candidate --------------------------------------------------------------------------

GOOD_CANDIDATE = "candidate:842163049 1 udp 2130706431 127.0.0.1 50000 typ host"


def test_a_well_formed_candidate_is_accepted() -> None:
    parsed = parse_candidate(IceCandidate(candidate=GOOD_CANDIDATE, sdpMid="0", sdpMLineIndex=0))
    check((parsed.ip, parsed.port, parsed.protocol, parsed.type) == ("127.0.0.1", 50000, "udp", "host"))
    check(parsed.priority == 2130706431 and parsed.sdpMid == "0" and parsed.sdpMLineIndex == 0)
    srflx = parse_candidate(
        IceCandidate(candidate="842163049 1 udp 1694498815 203.0.113.7 40000 typ srflx raddr 10.0.0.2 rport 50000")
    )
    check(srflx.relatedAddress == "10.0.0.2" and srflx.relatedPort == 50000, "raddr/rport lost")


BAD_CANDIDATES = {
    "empty": "",
    "only_prefix": "candidate:",
    "whitespace": "   ",
    "too_few_fields": "candidate:842163049 1 udp 2130706431 127.0.0.1 50000 typ",
    "no_typ_keyword": "candidate:842163049 1 udp 2130706431 127.0.0.1 50000 type host",
    "port_zero": "candidate:842163049 1 udp 2130706431 127.0.0.1 0 typ host",
    "port_too_big": "candidate:842163049 1 udp 2130706431 127.0.0.1 65536 typ host",
    "port_negative": "candidate:842163049 1 udp 2130706431 127.0.0.1 -5 typ host",
    "port_not_a_number": "candidate:842163049 1 udp 2130706431 127.0.0.1 fifty typ host",
    "priority_not_a_number": "candidate:842163049 1 udp high 127.0.0.1 50000 typ host",
    "component_not_a_number": "candidate:842163049 rtp udp 2130706431 127.0.0.1 50000 typ host",
    "unknown_protocol": "candidate:842163049 1 sctp 2130706431 127.0.0.1 50000 typ host",
    "rport_not_a_number": "candidate:1 1 udp 1694498815 203.0.113.7 40000 typ srflx raddr 10.0.0.2 rport x",
    "huge_junk": "x" * 1024,
    "huge_numbers": "candidate:1 1 udp " + "9" * 500 + " 127.0.0.1 " + "9" * 480 + " typ host",
    "binary_junk": bytes(range(1, 256)).decode("latin-1"),
}


@pytest.mark.parametrize("text", list(BAD_CANDIDATES.values()), ids=list(BAD_CANDIDATES))
def test_malformed_candidate_is_rejected(text: str) -> None:
    with pytest.raises(VitrineError) as info:
        parse_candidate(IceCandidate(candidate=text, sdpMid="0", sdpMLineIndex=0))
    check(info.value.code == ErrorCode.INVALID_CANDIDATE, f"expected invalid_candidate, got {info.value.code}")


def test_an_oversized_candidate_never_reaches_the_guard() -> None:
    """Over 1024 characters the protocol model itself refuses it (an ``invalid_message`` on the socket)."""
    with pytest.raises(ValueError):
        IceCandidate(candidate=GOOD_CANDIDATE + " generation 0" * 100)


# -- the same checks under python -O -----------------------------------------------------------


def test_check_is_never_stripped() -> None:
    with pytest.raises(AssertionError):
        check(False)


def test_interpreter_mode_is_the_one_requested() -> None:
    expected = os.environ.get(UNDER_O_ENV) == "1"
    check(bool(sys.flags.optimize) == expected, f"sys.flags.optimize={sys.flags.optimize}, expected -O: {expected}")


def _run_under_o(keyword: str) -> tuple[int, str]:
    env = {**os.environ, UNDER_O_ENV: "1", "PYTHONDONTWRITEBYTECODE": "1"}
    command = [
        sys.executable,
        "-O",
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "-p",
        "no:randomly",
        str(Path(__file__).resolve()),
        "-k",
        keyword,
    ]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return result.returncode, result.stdout + result.stderr


def _passed(output: str) -> int:
    found = re.search(r"(\d+) passed", output)
    return int(found.group(1)) if found else 0


@pytest.mark.skipif(os.environ.get(UNDER_O_ENV) == "1", reason="already the child run")
def test_guard_holds_under_python_optimize() -> None:
    code, output = _run_under_o("not optimize and not payload_type_out_of_range")
    check(code == 0, f"the SDP guard tests fail under python -O:\n{output[-6000:]}")
    # Every test above except the payload-type one must have run, so none passed vacuously by not running.
    check(_passed(output) >= 40 and " failed" not in output, f"unexpected child run:\n{output[-3000:]}")


@pytest.mark.skipif(os.environ.get(UNDER_O_ENV) == "1", reason="already the child run")
def test_payload_type_range_holds_under_python_optimize() -> None:
    code, output = _run_under_o("payload_type_out_of_range and not optimize")
    check(code == 0 and _passed(output) >= 1, f"payload type 300 under python -O:\n{output[-3000:]}")
