"""media/evidence_channel.py's ``magic_matches``: whether a photo's first bytes are those of its announced type.

The channel itself (chunks, replies, partial files) is tested over real data channels in
tests/test_evidence_channel.py; this is the pure check it applies to a transfer's first MAGIC_BYTES.
"""

from __future__ import annotations

import pytest

from media.evidence_channel import MAGIC_BYTES, magic_matches

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01"
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0d"
WEBP = b"RIFF\x24\x00\x01\x00WEBP"


@pytest.mark.parametrize(
    ("content_type", "head", "matches"),
    [
        pytest.param("image/jpeg", JPEG, True, id="jpeg"),
        pytest.param("image/jpeg", b"\xff\xd8\xff\xdb" + bytes(8), True, id="jpeg-any-fourth-byte"),
        pytest.param("image/jpeg", b"\xff\xd8", False, id="jpeg-too-short"),
        pytest.param("image/jpeg", b"\xff\xd8\x00\xe0" + bytes(8), False, id="jpeg-third-byte-wrong"),
        pytest.param("image/jpeg", PNG, False, id="png-announced-as-jpeg"),
        pytest.param("image/png", PNG, True, id="png"),
        pytest.param("image/png", PNG[:7], False, id="png-signature-cut-short"),
        pytest.param("image/png", b"\x89PNG\r\n\x1a\x00" + bytes(4), False, id="png-last-byte-wrong"),
        pytest.param("image/png", JPEG, False, id="jpeg-announced-as-png"),
        pytest.param("image/webp", WEBP, True, id="webp"),
        pytest.param("image/webp", b"RIFF\x00\x00\x00\x00WAVE", False, id="riff-but-wave"),
        pytest.param("image/webp", b"RIFX\x00\x00\x00\x00WEBP", False, id="rifx"),
        pytest.param("image/webp", b"RIFF\x00\x00\x00\x00WEB", False, id="webp-cut-short"),
        pytest.param("image/webp", JPEG, False, id="jpeg-announced-as-webp"),
        pytest.param("image/jpeg", b"", False, id="empty-jpeg"),
        pytest.param("image/png", b"", False, id="empty-png"),
        pytest.param("image/webp", b"", False, id="empty-webp"),
    ],
)
def test_magic_matches(content_type: str, head: bytes, matches: bool) -> None:
    assert len(head) <= MAGIC_BYTES  # what the channel hands it at most
    assert magic_matches(content_type, head) is matches
