"""The one clock: what time and what day it is for the estate, in the timezone from settings.

Every "today" the bot uses (relative dates, the promise window, record numbers, staff hours) comes from
here, never from a client. Tests freeze it with :func:`frozen`; a local run (the test suite and the servers its
end-to-end tests start) can set it with ``CLOCK_START`` and ``CLOCK_ANCHOR``, so that it ticks on from a day the
test chose whatever the machine's calendar says (:func:`real_now` is then the only reading of the machine's).
"""

from __future__ import annotations

import datetime as dt
import functools
import threading
from contextlib import contextmanager
from typing import Dict, Iterator, List, Tuple
from zoneinfo import ZoneInfo

# The frozen moments in force, innermost last. Each ``frozen`` block removes its own entry on the way out, so
# blocks that overlap in several threads (two reminder workers in one test) never leave a moment behind.
_overrides: List[Tuple[object, dt.datetime]] = []
_overrides_lock = threading.Lock()
# When this process first read a set clock without an anchor: (CLOCK_START, the real moment then).
_first_reading: Dict[dt.datetime, dt.datetime] = {}


@functools.lru_cache(maxsize=8)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def zone() -> ZoneInfo:
    """The estate's timezone (``TIMEZONE`` setting, Asia/Shanghai by default)."""
    from bot.settings import get_settings

    return _zone(get_settings().timezone)


def real_now() -> dt.datetime:
    """The machine's own clock (aware UTC), for measuring intervals only; never a date the bot acts on."""
    return dt.datetime.now(dt.timezone.utc)


def _base_now() -> dt.datetime:
    """The machine's clock, or the set clock (``CLOCK_START`` at ``CLOCK_ANCHOR``, ticking) in a local run."""
    from bot.settings import get_settings

    settings = get_settings()
    real = real_now()
    if settings.clock_start is None:
        return real
    if settings.clock_anchor is not None:
        anchor = dt.datetime.fromtimestamp(settings.clock_anchor, dt.timezone.utc)
    else:
        anchor = _first_reading.setdefault(settings.clock_start, real)
    return settings.clock_start + (real - anchor)


def now() -> dt.datetime:
    """The current moment, timezone-aware, in the estate's timezone."""
    overrides = tuple(_overrides)  # one snapshot: another thread may leave its block meanwhile
    moment = overrides[-1][1] if overrides else _base_now()
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(zone())


def utc_now() -> dt.datetime:
    """The current moment (:func:`now`) in UTC, for timestamps to store.

    SQLite keeps a time's fields without its zone, so stored times are written in one zone, UTC, and a naive
    time read back is UTC.
    """
    return now().astimezone(dt.timezone.utc)


def today() -> dt.date:
    """The estate's current date."""
    return now().date()


def local_date(moment: dt.datetime) -> dt.date:
    """The estate's date at ``moment`` (naive values are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(zone()).date()


@contextmanager
def frozen(moment: dt.datetime) -> Iterator[None]:
    """Within the block, :func:`now` returns ``moment`` (for tests and a worker's injected clock)."""
    token = object()
    with _overrides_lock:
        _overrides.append((token, moment))
    try:
        yield
    finally:
        with _overrides_lock:
            _overrides[:] = [entry for entry in _overrides if entry[0] is not token]
