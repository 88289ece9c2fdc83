"""The pure logic of media/forwarder.py: 16-bit sequence order, the packet history ring, and upstream NACKs.

No sockets and no event loop: ``NackTracker`` is driven with explicit clock values, well past the clock's
origin (as ``time.monotonic()`` is) and never exactly on a threshold, so float rounding cannot decide a case.
"""

from __future__ import annotations

import pytest
from aiortc.rtp import RtpPacket

from media.forwarder import (
    HISTORY_SIZE,
    MAX_TRACKED_GAP,
    NACK_GIVE_UP_S,
    NACK_MAX_TRIES,
    NACK_RETRY_S,
    NackTracker,
    PacketHistory,
    seq_newer,
)

T0 = 1000.0  # a monotonic clock value well past its origin
R = NACK_RETRY_S
HALF = 0x8000


def after(seq: int, n: int = 1) -> int:
    return (seq + n) & 0xFFFF


def run(start: int, count: int) -> list[int]:
    """``count`` consecutive sequence numbers from ``start``, wrapping at 65536."""
    return [after(start, i) for i in range(count)]


# -- seq_newer ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "newer"),
    [
        pytest.param(5, 5, False, id="equal"),
        pytest.param(0, 0, False, id="equal-zero"),
        pytest.param(65535, 65535, False, id="equal-max"),
        pytest.param(6, 5, True, id="next"),
        pytest.param(5, 6, False, id="previous"),
        pytest.param(0, 65535, True, id="next-across-the-wrap"),
        pytest.param(65535, 0, False, id="previous-across-the-wrap"),
        pytest.param(3, 65533, True, id="a-few-ahead-across-the-wrap"),
        pytest.param(65533, 3, False, id="a-few-behind-across-the-wrap"),
        pytest.param(HALF - 1, 0, True, id="just-under-half-range-ahead"),
        pytest.param(0, HALF - 1, False, id="just-under-half-range-behind"),
        pytest.param(HALF, 0, False, id="exactly-half-range-is-not-newer"),
        pytest.param(0, HALF, False, id="exactly-half-range-either-way"),
        pytest.param(HALF + 1, 0, False, id="just-over-half-range-ahead-is-behind"),
        pytest.param(0, HALF + 1, True, id="just-over-half-range-behind-is-ahead"),
        pytest.param(100 + HALF - 1, 100, True, id="half-range-boundary-off-zero"),
        pytest.param(100 + HALF, 100, False, id="half-range-off-zero"),
        pytest.param(50, 65500, True, id="ahead-across-the-wrap-by-86"),
    ],
)
def test_seq_newer(a: int, b: int, newer: bool) -> None:
    assert seq_newer(a, b) is newer


@pytest.mark.parametrize("base", [0, 1, HALF - 1, HALF, 40_000, 65535])
def test_seq_newer_orders_every_pair_but_equal_and_half_range_apart(base: int) -> None:
    """For every distance: exactly one of the two is newer, and it is the one less than half the range ahead."""
    for distance in range(0x10000):
        other = after(base, distance)
        ahead, behind = seq_newer(other, base), seq_newer(base, other)
        if distance in (0, HALF):
            assert not ahead and not behind, distance
        else:
            assert ahead is (distance < HALF) and behind is not ahead, distance


# -- PacketHistory -----------------------------------------------------------------------------------------


def packet(seq: int) -> RtpPacket:
    return RtpPacket(payload_type=96, sequence_number=seq, payload=seq.to_bytes(2, "big"))


@pytest.mark.parametrize("seq", [0, 1, HISTORY_SIZE - 1, HISTORY_SIZE, 65535])
def test_an_empty_history_has_nothing(seq: int) -> None:
    assert PacketHistory().get(seq) is None


@pytest.mark.parametrize("seq", [0, 7, HISTORY_SIZE, 40_000, 65535])
def test_a_packet_is_found_by_its_sequence_number(seq: int) -> None:
    history = PacketHistory()
    stored = packet(seq)
    history.add(seq, stored)
    assert history.get(seq) is stored
    assert history.get(after(seq)) is None and history.get(after(seq, -1)) is None


@pytest.mark.parametrize(("size", "seq"), [(HISTORY_SIZE, 5), (HISTORY_SIZE, 65535), (8, 3), (8, 65534)])
def test_a_slot_answers_only_for_the_sequence_number_it_holds(size: int, seq: int) -> None:
    """Sequence numbers a multiple of ``size`` apart share a slot: the others are not mistaken for it."""
    history = PacketHistory(size)
    history.add(seq, packet(seq))
    for alias in (after(seq, size), after(seq, -size), after(seq, 3 * size), after(seq, HALF)):
        assert history.get(alias) is None, alias


@pytest.mark.parametrize(
    ("size", "first", "count"),
    [
        pytest.param(8, 0, 8, id="exactly-full"),
        pytest.param(8, 0, 9, id="one-over"),
        pytest.param(8, 65533, 11, id="over-across-the-wrap"),
        pytest.param(8, 65528, 8, id="full-ending-on-65535"),
        pytest.param(HISTORY_SIZE, 65536 - 1000, HISTORY_SIZE + 5, id="default-size-across-the-wrap"),
        pytest.param(HISTORY_SIZE, 100, 3 * HISTORY_SIZE + 1, id="default-size-three-times-round"),
    ],
)
def test_the_newest_size_packets_are_kept_and_older_ones_evicted(size: int, first: int, count: int) -> None:
    history = PacketHistory(size)
    added = {seq: packet(seq) for seq in run(first, count)}
    for seq, stored in added.items():
        history.add(seq, stored)
    seqs = list(added)
    for seq in seqs[-size:]:
        assert history.get(seq) is added[seq], seq
    for seq in seqs[:-size]:
        assert history.get(seq) is None, seq


def test_adding_a_sequence_number_again_replaces_its_packet() -> None:
    history = PacketHistory()
    first, again = packet(9), packet(9)
    history.add(9, first)
    history.add(9, again)
    assert history.get(9) is again


def test_a_late_packet_within_the_window_fills_its_own_slot() -> None:
    history = PacketHistory(8)
    stored = {seq: packet(seq) for seq in run(65533, 8)}
    late = run(65533, 8)[3]  # 0
    for seq, item in stored.items():
        if seq != late:
            history.add(seq, item)
    assert history.get(late) is None
    history.add(late, stored[late])
    assert all(history.get(seq) is item for seq, item in stored.items())


def test_a_packet_older_than_the_window_still_takes_its_slot_from_a_newer_one() -> None:
    """The ring keeps the last packet added to each slot, whatever its age: nothing checks it is recent."""
    history = PacketHistory(8)
    for seq in run(1, 8):  # 1..8: 8 is in slot 0
        history.add(seq, packet(seq))
    stale = packet(0)
    history.add(0, stale)
    assert history.get(0) is stale
    assert history.get(8) is None
    assert all(history.get(seq) is not None for seq in run(1, 7))


# -- NackTracker -------------------------------------------------------------------------------------------


def feed(tracker: NackTracker, steps: list[tuple[int, float]]) -> list[tuple[list[int], bool]]:
    """(sequence number, clock) for each packet; what the tracker answered to each."""
    return [tracker.on_packet(seq, now) for seq, now in steps]


@pytest.mark.parametrize("seq", [0, 1234, HALF, 65535])
def test_the_first_packet_sets_the_reference_and_asks_nothing(seq: int) -> None:
    tracker = NackTracker()
    assert tracker.on_packet(seq, T0) == ([], False)
    assert tracker.max_seq == seq and tracker.missing == {}


@pytest.mark.parametrize("start", [0, 100, HALF - 10, 65530])
def test_packets_in_order_ask_nothing(start: int) -> None:
    tracker = NackTracker()
    seqs = run(start, 40)
    answers = feed(tracker, [(seq, T0 + i * 0.02) for i, seq in enumerate(seqs)])
    assert answers == [([], False)] * len(seqs)
    assert tracker.max_seq == seqs[-1] and tracker.missing == {}


@pytest.mark.parametrize(
    ("reference", "seq", "lost"),
    [
        pytest.param(10, 12, [11], id="one-lost"),
        pytest.param(10, 15, [11, 12, 13, 14], id="four-lost"),
        pytest.param(65534, 1, [65535, 0], id="lost-across-the-wrap"),
        pytest.param(65535, 2, [0, 1], id="lost-just-after-the-wrap"),
        pytest.param(65533, 0, [65534, 65535], id="lost-just-before-the-wrap"),
        pytest.param(HALF - 2, HALF + 1, [HALF - 1, HALF], id="lost-across-half-range"),
        pytest.param(100, 100 + MAX_TRACKED_GAP + 1, run(101, MAX_TRACKED_GAP), id="largest-tracked-gap"),
        pytest.param(65500, after(65500, MAX_TRACKED_GAP + 1), run(65501, MAX_TRACKED_GAP), id="largest-gap-wrapping"),
    ],
)
def test_a_gap_is_nacked_as_soon_as_it_is_seen(reference: int, seq: int, lost: list[int]) -> None:
    tracker = NackTracker()
    tracker.on_packet(reference, T0)
    due, abandoned = tracker.on_packet(seq, T0 + 0.001)
    assert sorted(due) == sorted(lost) and len(due) == len(set(due))
    assert abandoned is False
    assert tracker.max_seq == seq and set(tracker.missing) == set(lost)


@pytest.mark.parametrize(
    "jump",
    [
        pytest.param(MAX_TRACKED_GAP + 2, id="one-more-than-the-largest-tracked-gap"),
        pytest.param(1000, id="a-thousand"),
        pytest.param(HALF - 1, id="the-furthest-ahead"),
    ],
)
@pytest.mark.parametrize("reference", [10, 65000])
def test_a_jump_beyond_the_tracked_gap_is_a_resync_not_loss(reference: int, jump: int) -> None:
    """Nothing is NACKed, gaps still pending are forgotten (not reported abandoned), and tracking goes on."""
    tracker = NackTracker()
    assert feed(tracker, [(reference, T0), (after(reference, 2), T0)]) == [([], False), ([after(reference)], False)]
    landed = after(reference, 2 + jump)
    assert tracker.on_packet(landed, T0 + 0.01) == ([], False)
    assert tracker.max_seq == landed and tracker.missing == {}
    assert tracker.on_packet(after(reference), T0 + 0.02) == ([], False)  # the old gap's packet, late: nothing
    assert tracker.on_packet(after(landed, 2), T0 + 0.03) == ([after(landed)], False)  # a new gap counts again


@pytest.mark.parametrize(
    "seq",
    [
        pytest.param(1000, id="duplicate-of-the-newest"),
        pytest.param(999, id="one-behind"),
        pytest.param(400, id="far-behind"),
        pytest.param(after(1000, HALF), id="exactly-half-range-ahead-counts-as-behind"),
        pytest.param(after(1000, HALF + 1), id="over-half-range-ahead-is-behind"),
    ],
)
def test_a_packet_that_is_not_newer_opens_no_gap(seq: int) -> None:
    tracker = NackTracker()
    tracker.on_packet(1000, T0)
    assert tracker.on_packet(seq, T0 + 0.01) == ([], False)
    assert tracker.max_seq == 1000 and tracker.missing == {}
    assert tracker.on_packet(1002, T0 + 0.02) == ([1001], False)  # the reference did not move


@pytest.mark.parametrize(
    ("reference", "seq", "arrivals", "still_lost"),
    [
        pytest.param(10, 14, [12], [11, 13], id="middle-arrives"),
        pytest.param(10, 14, [13, 11, 12], [], id="all-arrive-out-of-order"),
        pytest.param(65534, 2, [0], [65535, 1], id="across-the-wrap"),
        pytest.param(65534, 2, [65535, 0, 1], [], id="across-the-wrap-all-arrive"),
        pytest.param(10, 14, [12, 12], [11, 13], id="a-duplicate-arrival"),
    ],
)
def test_an_arriving_packet_closes_its_gap(
    reference: int, seq: int, arrivals: list[int], still_lost: list[int]
) -> None:
    tracker = NackTracker()
    feed(tracker, [(reference, T0), (seq, T0)])
    answers = feed(tracker, [(late, T0 + 0.2 * R) for late in arrivals])  # well before a retry is due
    assert answers == [([], False)] * len(arrivals)
    assert set(tracker.missing) == set(still_lost) and tracker.max_seq == seq
    # At the next retry, only what is still missing is asked for again, and nothing is abandoned later.
    due, abandoned = tracker.on_packet(after(seq), T0 + 1.5 * R)
    assert sorted(due) == sorted(still_lost) and not abandoned
    if not still_lost:
        assert tracker.on_packet(after(seq, 2), T0 + NACK_GIVE_UP_S + 1) == ([], False)


# (clock in units of NACK_RETRY_S after the gap opened, NACKed again then?): one in-order packet per step.
RETRY_STEPS = [(0.8, False), (1.2, True), (1.7, False), (2.3, True), (2.5, False), (4.0, True)]


def test_a_gap_is_nacked_again_once_per_retry_interval() -> None:
    tracker = NackTracker()
    assert feed(tracker, [(10, T0), (12, T0)])[-1] == ([11], False)
    for n, (at, nacked) in enumerate(RETRY_STEPS):
        assert tracker.on_packet(13 + n, T0 + at * R) == ([11] if nacked else [], False), at


def test_nacks_are_only_sent_when_a_packet_arrives() -> None:
    """There is no timer: a retry that fell due while nothing came is sent with the next packet, once."""
    tracker = NackTracker()
    feed(tracker, [(10, T0), (12, T0)])
    assert tracker.on_packet(13, T0 + 5.5 * R) == ([11], False)
    assert tracker.on_packet(14, T0 + 5.6 * R) == ([], False)


def test_a_gap_is_nacked_at_most_nack_max_tries_times_then_abandoned_once() -> None:
    tracker = NackTracker()
    steps = [(10, T0), (12, T0)] + [(13 + n, T0 + (n + 1) * 1.1 * R) for n in range(NACK_MAX_TRIES + 3)]
    assert NACK_MAX_TRIES * 1.1 * R < NACK_GIVE_UP_S  # the tries run out first, not the time
    answers = feed(tracker, steps)[1:]
    assert answers == [([11], False)] * NACK_MAX_TRIES + [([], True)] + [([], False)] * 3
    assert tracker.missing == {}


def test_the_last_try_gets_no_time_of_its_own() -> None:
    """Once the last NACK is sent, the very next packet abandons the gap, however soon it comes."""
    tracker = NackTracker()
    feed(tracker, [(10, T0), (12, T0)])
    last = T0
    for n in range(NACK_MAX_TRIES - 1):
        last = T0 + (n + 1) * 1.1 * R
        assert tracker.on_packet(13 + n, last) == ([11], False)
    assert tracker.on_packet(13 + NACK_MAX_TRIES - 1, last + 0.001) == ([], True)


@pytest.mark.parametrize(
    ("elapsed", "answer"),
    [
        pytest.param(NACK_GIVE_UP_S - 0.01, ([11], False), id="just-before-giving-up"),
        pytest.param(NACK_GIVE_UP_S + 0.01, ([], True), id="just-after-giving-up"),
        pytest.param(10.0, ([], True), id="long-after"),
    ],
)
def test_a_gap_is_abandoned_once_nack_give_up_s_has_passed(elapsed: float, answer: tuple[list[int], bool]) -> None:
    tracker = NackTracker()
    feed(tracker, [(10, T0), (12, T0)])
    assert tracker.on_packet(13, T0 + elapsed) == answer
    if answer[1]:
        assert tracker.missing == {}
        assert tracker.on_packet(11, T0 + elapsed + 0.01) == ([], False)  # its packet, at last: no gap reopens
        assert tracker.on_packet(14, T0 + elapsed + 0.02) == ([], False)


def test_each_gap_keeps_its_own_clock() -> None:
    tracker = NackTracker()
    assert feed(tracker, [(10, T0), (12, T0)])[-1] == ([11], False)
    due, abandoned = tracker.on_packet(14, T0 + 0.4)  # 11 is retried, 13 opens
    assert sorted(due) == [11, 13] and not abandoned
    assert tracker.on_packet(15, T0 + NACK_GIVE_UP_S + 0.05) == ([13], True)  # 11 given up, 13 retried
    assert set(tracker.missing) == {13}
    assert tracker.on_packet(16, T0 + 0.4 + NACK_GIVE_UP_S + 0.05) == ([], True)  # now 13 too
    assert tracker.missing == {}


def test_a_gap_that_opens_while_another_is_pending_is_nacked_at_once() -> None:
    tracker = NackTracker()
    feed(tracker, [(10, T0), (12, T0)])
    due, abandoned = tracker.on_packet(15, T0 + 0.2 * R)
    assert sorted(due) == [13, 14] and not abandoned  # 11 is not due again yet
