"""``Cadence`` (vitrine/core/tasks.py): a loop's beat that its own work does not push later, on a clock we hold."""

from __future__ import annotations

from pytest import approx

from vitrine.core.tasks import Cadence


def test_the_work_of_a_beat_does_not_push_the_next_one_later() -> None:
    cadence = Cadence(2.0)
    assert cadence.delay(100.0) == approx(2.0)  # the first beat: one period from the start
    assert cadence.delay(102.4) == approx(1.6)  # the beat at 102.0 took 0.4 s: the next is still at 104.0
    assert cadence.delay(104.1) == approx(1.9)  # woken 0.1 s late: the beat stays at 106.0


def test_a_stalled_loop_beats_at_once_and_skips_the_beats_it_missed() -> None:
    cadence = Cadence(2.0)
    cadence.delay(100.0)  # next beat at 102.0
    assert cadence.delay(109.0) == approx(0.0)  # stalled for 7 s: beat now, not four times in a row
    assert cadence.delay(109.2) == approx(1.8)  # and on from 109.0
