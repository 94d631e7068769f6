"""The one clock's frozen blocks, also when they overlap in several threads (two reminder workers in one test)."""

from __future__ import annotations

import datetime as dt
import threading

from bot import clock

SH = dt.timezone(dt.timedelta(hours=8))
A = dt.datetime(2026, 12, 1, 10, 0, tzinfo=SH)
B = dt.datetime(2026, 12, 2, 10, 0, tzinfo=SH)


def test_nested_blocks_restore_the_outer_moment_and_then_the_real_clock() -> None:
    with clock.frozen(A):
        with clock.frozen(B):
            assert clock.now() == B
        assert clock.now() == A
    assert abs((clock.utc_now() - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 5


def test_blocks_that_overlap_in_two_threads_leave_no_moment_behind() -> None:
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first() -> None:  # enters first, leaves first
        with clock.frozen(A):
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def second() -> None:  # enters while the first is inside, leaves after it
        a_in.wait(5)
        with clock.frozen(B):
            b_in.set()
            a_out.wait(5)
            assert clock.now() == B  # its own moment survives the other block's exit

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert abs((clock.utc_now() - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 5
