"""The one clock: its frozen blocks (also when they overlap in several threads, two reminder workers in one test)
and the set clock a local run ticks on from (``CLOCK_START`` at ``CLOCK_ANCHOR``)."""

from __future__ import annotations

import datetime as dt
import threading
from typing import Iterator

import pytest
from pydantic import ValidationError

from bot import clock
from bot.settings import Settings, get_settings

SH = dt.timezone(dt.timedelta(hours=8))
A = dt.datetime(2026, 12, 1, 10, 0, tzinfo=SH)
B = dt.datetime(2026, 12, 2, 10, 0, tzinfo=SH)


def test_nested_blocks_restore_the_outer_moment_and_then_the_real_clock() -> None:
    with clock.frozen(A):
        with clock.frozen(B):
            assert clock.now() == B
        assert clock.now() == A
    assert abs((clock.utc_now() - unfrozen()).total_seconds()) < 5


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
    assert abs((clock.utc_now() - unfrozen()).total_seconds()) < 5


def unfrozen() -> dt.datetime:
    """What the clock reads outside every frozen block: the suite's set clock (tests/conftest.py)."""
    settings = get_settings()
    assert settings.clock_start is not None and settings.clock_anchor is not None
    elapsed = clock.real_now() - dt.datetime.fromtimestamp(settings.clock_anchor, dt.timezone.utc)
    return settings.clock_start + elapsed


@pytest.fixture
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """The settings re-read from an environment the test edits, and the suite's restored afterwards."""
    get_settings.cache_clear()
    yield monkeypatch
    monkeypatch.undo()
    get_settings.cache_clear()


def test_the_suite_runs_on_its_own_clock_whatever_the_machine_says() -> None:
    # tests/conftest.py sets the clock for every test and every server an e2e test starts.
    assert clock.today() == dt.date(2026, 11, 25)
    assert abs((clock.utc_now() - unfrozen()).total_seconds()) < 1


def test_a_set_clock_ticks_on_from_its_start_at_its_anchor(fresh_settings: pytest.MonkeyPatch) -> None:
    anchor = clock.real_now() - dt.timedelta(hours=30)  # the clock was set 30 hours ago (real time)
    fresh_settings.setenv("CLOCK_START", "2027-02-10T23:00:00+08:00")
    fresh_settings.setenv("CLOCK_ANCHOR", repr(anchor.timestamp()))
    reading = clock.now()
    expected = dt.datetime(2027, 2, 12, 5, 0, tzinfo=SH)
    assert abs((reading - expected).total_seconds()) < 5
    assert reading.utcoffset() == dt.timedelta(hours=8) and clock.today() == dt.date(2027, 2, 12)
    with clock.frozen(A):  # a frozen block still wins
        assert clock.now() == A


def test_a_set_clock_without_an_anchor_starts_when_the_process_first_reads_it(
    fresh_settings: pytest.MonkeyPatch,
) -> None:
    fresh_settings.setenv("CLOCK_START", "2028-01-01T09:00:00+08:00")
    fresh_settings.delenv("CLOCK_ANCHOR", raising=False)
    first = clock.now()
    assert dt.timedelta(0) <= first - dt.datetime(2028, 1, 1, 9, 0, tzinfo=SH) < dt.timedelta(seconds=5)
    assert clock.now() >= first


def test_without_a_set_clock_the_machine_clock_is_read(fresh_settings: pytest.MonkeyPatch) -> None:
    fresh_settings.delenv("CLOCK_START", raising=False)
    fresh_settings.delenv("CLOCK_ANCHOR", raising=False)
    assert abs((clock.utc_now() - dt.datetime.now(dt.timezone.utc)).total_seconds()) < 5


def test_a_set_clock_is_refused_outside_local_and_without_a_zone() -> None:
    secrets = {"secret_key": "s3cret", "rest_channel_token": "t", "action_server_token": "a", "staff_secret_key": "x9"}
    with pytest.raises(ValidationError, match="CLOCK_START is for local runs only"):
        Settings(_env_file=None, environment="production", clock_start="2026-11-23T10:00:00+08:00", **secrets)
    with pytest.raises(ValidationError, match="CLOCK_START needs a UTC offset"):
        Settings(_env_file=None, clock_start="2026-11-23T10:00:00")
    assert Settings(_env_file=None, environment="production", clock_start=None, **secrets).clock_start is None
