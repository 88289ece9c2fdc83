"""media/snapshot.py's ``KeyframeCatcher``: which packets make up the first complete keyframe it is fed.

Fed by hand (as ``UpTrack`` feeds its sinks: the packet and its keyframe flag), without a track or a socket.
The catcher resolves a future, so each test runs on an event loop, but nothing awaits the network.
"""

from __future__ import annotations

import pytest
from aiortc.rtp import RtpPacket

from media.snapshot import MAX_FRAME_PACKETS, KeyframeCatcher

K, M = "key", "marker"  # flags of a fed packet: detected as a keyframe packet, has the marker bit


def payload(seq: int, timestamp: int) -> bytes:
    return seq.to_bytes(2, "big") + timestamp.to_bytes(4, "big")


def feed(catcher: KeyframeCatcher, packets: list[tuple[int, int, str]]) -> None:
    """(sequence number, timestamp, flags) for each packet, in arrival order."""
    for seq, timestamp, flags in packets:
        packet = RtpPacket(
            payload_type=96,
            marker=M in flags,
            sequence_number=seq,
            timestamp=timestamp,
            payload=payload(seq, timestamp),
        )
        catcher(packet, K in flags)


CASES = [
    pytest.param([(100, 9000, K + M)], (9000, [100]), id="one-packet-keyframe"),
    pytest.param([(100, 9000, K), (101, 9000, ""), (102, 9000, M)], (9000, [100, 101, 102]), id="three-packets"),
    pytest.param([(65535, 9000, K), (0, 9000, ""), (1, 9000, M)], (9000, [65535, 0, 1]), id="across-the-sequence-wrap"),
    pytest.param(
        [(98, 6000, ""), (99, 6000, M), (100, 9000, K), (101, 9000, M)], (9000, [100, 101]), id="delta-frames-before"
    ),
    pytest.param([(100, 9000, K), (102, 9000, M)], None, id="a-packet-missing"),
    pytest.param([(100, 9000, K), (101, 9000, "")], None, id="no-marker-yet"),
    pytest.param([(101, 9000, ""), (102, 9000, M)], None, id="no-keyframe-start-seen"),
    pytest.param(
        [(100, 9000, K), (102, 9000, M), (101, 9000, "")], (9000, [100, 101, 102]), id="retransmission-completes-it"
    ),
    pytest.param(
        [(100, 9000, K), (101, 9000, ""), (101, 9000, ""), (102, 9000, M)], (9000, [100, 101, 102]), id="duplicate"
    ),
    pytest.param(
        [(100, 9000, K), (102, 9000, M), (103, 12000, K), (104, 12000, M)],
        (12000, [103, 104]),
        id="a-newer-keyframe-replaces-an-incomplete-one",
    ),
    pytest.param(
        [(100, 9000, K), (102, 9000, M), (103, 12000, ""), (104, 12000, M), (101, 9000, "")],
        (9000, [100, 101, 102]),
        id="later-delta-frames-do-not-replace-it",
    ),
    pytest.param([(100, 9000, K), (101, 9000, ""), (102, 9000, K + M)], (9000, [100, 101, 102]), id="h264-sps-pps-idr"),
    pytest.param(
        [(101, 9000, K), (100, 9000, K), (102, 9000, M)], (9000, [100, 101, 102]), id="h264-sps-arrives-after-the-idr"
    ),
    pytest.param(
        [(0, 9000, K), (65535, 9000, K), (1, 9000, M)], (9000, [65535, 0, 1]), id="earliest-start-across-the-wrap"
    ),
    pytest.param([(100, 9000, K + M), (101, 12000, K + M)], (9000, [100]), id="the-first-complete-keyframe-is-kept"),
]


@pytest.mark.parametrize(("packets", "caught"), CASES)
async def test_the_first_complete_keyframe_is_caught(
    packets: list[tuple[int, int, str]], caught: tuple[int, list[int]] | None
) -> None:
    catcher = KeyframeCatcher()
    feed(catcher, packets)
    if caught is None:
        assert not catcher.done.done()
    else:
        timestamp, seqs = caught
        assert catcher.done.done()
        assert catcher.done.result() == [payload(seq, timestamp) for seq in seqs]


@pytest.mark.parametrize(("size", "complete"), [(MAX_FRAME_PACKETS, True), (MAX_FRAME_PACKETS + 1, False)])
async def test_a_keyframe_larger_than_max_frame_packets_is_not_waited_for(size: int, complete: bool) -> None:
    catcher = KeyframeCatcher()
    seqs = [(65000 + i) & 0xFFFF for i in range(size)]
    feed(catcher, [(seq, 9000, (K if i == 0 else "") + (M if i == size - 1 else "")) for i, seq in enumerate(seqs)])
    assert catcher.done.done() is complete
    if complete:
        assert catcher.done.result() == [payload(seq, 9000) for seq in seqs]
