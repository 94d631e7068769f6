"""Public holidays for the reminder policy: the State Council's schedule of each year, never guessed.

Each year's holidays (and the weekend days worked in exchange, 调休) are set by a notice of the General Office
of the State Council (国务院办公厅), usually in November or December for the year after. ``chinesecalendar``
carries the years announced before its release (to 2026 in 1.11); an operator (``bot holidays load``) or a
manager (the reminders screen) loads a later year, or corrects one, as data: a CSV of ``date,kind,name`` rows.
A loaded year wins over the package.

A day of a year that neither knows is *unknown*: :class:`Calendar` answers None for it, and the reminder policy
holds such reminders and shows staff which year is missing instead of sending on what may be 春节.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Set, Tuple

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot.db import audit
from bot.db.holiday_models import HolidayDay, HolidayKind, HolidaySchedule
from bot.db.reminder_models import PENDING_STATES, Reminder

HOLIDAYS_LOADED = "holidays_loaded"
# The reason a reminder carries while it waits for its year's schedule.
SCHEDULE_MISSING = "holiday_schedule_missing"
HEADER = ("date", "kind", "name")
# A year's notice lists seven holidays and a handful of exchanged workdays; a file much longer is not one.
MAX_ROWS = 120
_KINDS = {"holiday": HolidayKind.HOLIDAY, "workday": HolidayKind.WORKDAY, "假期": HolidayKind.HOLIDAY,
          "放假": HolidayKind.HOLIDAY, "上班": HolidayKind.WORKDAY, "调休上班": HolidayKind.WORKDAY}  # fmt: skip
_NAME_LENGTH = HolidayDay.__table__.c.name.type.length
_SOURCE_LENGTH = HolidaySchedule.__table__.c.source.type.length


class ScheduleError(ValueError):
    """A schedule file that cannot be loaded; ``problems`` lists each, by line (nothing was stored)."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class ScheduleDay:
    """One listed day of a schedule file."""

    day: dt.date
    kind: HolidayKind
    name: str


def parse_schedule(text: str) -> Tuple[int, List[ScheduleDay]]:
    """Read a year's schedule from CSV text (``date,kind,name``; kind ``holiday`` or ``workday``).

    Args:
        text: The file's text; a header row is required, blank lines and ``#`` comments are ignored.

    Returns:
        The year and its days, in date order.

    Raises:
        ScheduleError: With every problem found (a bad date, kind or name, a repeated date, days of more than
            one year, no holiday at all, too many rows).
    """
    problems: List[str] = []
    lines = [line for line in text.lstrip("\ufeff").splitlines() if line.strip() and not line.lstrip().startswith("#")]
    rows = list(csv.reader(io.StringIO("\n".join(lines))))
    if not rows or tuple(cell.strip().lower() for cell in rows[0]) != HEADER:
        raise ScheduleError(["the first row must be the header date,kind,name"])
    if len(rows) - 1 > MAX_ROWS:
        raise ScheduleError([f"at most {MAX_ROWS} days in one year's schedule"])
    days: List[ScheduleDay] = []
    seen: Set[dt.date] = set()
    for number, row in enumerate(rows[1:], start=2):
        if len(row) != 3:
            problems.append(f"row {number}: expected date,kind,name")
            continue
        raw_day, raw_kind, name = (cell.strip() for cell in row)
        try:
            day = dt.date.fromisoformat(raw_day)
        except ValueError:
            problems.append(f"row {number}: {raw_day!r} is not a date (YYYY-MM-DD)")
            continue
        kind = _KINDS.get(raw_kind.lower())
        if kind is None:
            problems.append(f"row {number}: kind must be holiday or workday, not {raw_kind!r}")
            continue
        if not name or len(name) > _NAME_LENGTH:
            problems.append(f"row {number}: the holiday's name is missing or longer than {_NAME_LENGTH}")
            continue
        if day in seen:
            problems.append(f"row {number}: {day.isoformat()} is listed twice")
            continue
        if kind is HolidayKind.WORKDAY and day.weekday() < 5:
            problems.append(f"row {number}: {day.isoformat()} is a weekday; only a weekend day can be worked in exchange")
            continue
        seen.add(day)
        days.append(ScheduleDay(day, kind, name))
    years = sorted({day.day.year for day in days})
    if len(years) > 1:
        problems.append(f"one year per file: the days span {', '.join(map(str, years))}")
    if not any(day.kind is HolidayKind.HOLIDAY for day in days) and not problems:
        problems.append("no holiday listed")
    if problems:
        raise ScheduleError(problems)
    return years[0], sorted(days, key=lambda listed: listed.day)


def load_schedule(session: Session, *, text: str, source: str, actor: str) -> HolidaySchedule:
    """Load (or replace) one year's schedule from CSV text, audited. The caller commits.

    Args:
        session: The caller's unit of work; a year loaded before is replaced whole.
        text: The schedule (:func:`parse_schedule`).
        source: Where it comes from (the notice's title or number), required.
        actor: Who loads it (a staff username or ``cli:<os user>``).

    Returns:
        The stored schedule.

    Raises:
        ScheduleError: If the text or the source is not acceptable (nothing is written).
    """
    source = source.strip()
    if not source:
        raise ScheduleError(["name the notice the schedule comes from (source)"])
    year, days = parse_schedule(text)
    replaced = session.get(HolidaySchedule, year) is not None
    session.execute(delete(HolidayDay).where(HolidayDay.year == year))
    session.execute(delete(HolidaySchedule).where(HolidaySchedule.year == year))
    session.flush()
    schedule = HolidaySchedule(year=year, source=source[:_SOURCE_LENGTH], loaded_by=actor[:64])
    session.add(schedule)
    session.flush()
    session.add_all(HolidayDay(day=listed.day, year=year, kind=listed.kind, name=listed.name) for listed in days)
    session.flush()
    holidays = sum(1 for listed in days if listed.kind is HolidayKind.HOLIDAY)
    audit.record(
        session, actor=actor, action=HOLIDAYS_LOADED, target=f"holidays:{year}",
        detail={"year": year, "source": schedule.source, "holidays": holidays, "workdays": len(days) - holidays,
                "replaced": replaced},
    )  # fmt: skip
    return schedule


def loaded(session: Session) -> List[HolidaySchedule]:
    """The loaded schedules, latest year first."""
    return list(session.execute(select(HolidaySchedule).order_by(HolidaySchedule.year.desc())).scalars())


def days_of(session: Session, year: int) -> List[HolidayDay]:
    """A loaded year's listed days in date order (empty when the year was not loaded)."""
    return list(session.execute(select(HolidayDay).where(HolidayDay.year == year).order_by(HolidayDay.day)).scalars())


def package_knows(year: int) -> bool:
    """Whether ``chinesecalendar`` has the State Council's schedule for ``year``."""
    import chinese_calendar

    try:
        chinese_calendar.get_holiday_detail(dt.date(year, 1, 1))
    except NotImplementedError:
        return False
    return True


class Calendar:
    """Whether a day is a public holiday: the loaded schedule of its year, else ``chinesecalendar``.

    Calling it answers True (a holiday), False (not one: a working day or an ordinary weekend) or None (its
    year is known to neither). Weekends are not holidays: a notice on a Saturday is allowed, on 春节 it is not.
    Each year is read from the database once per instance.
    """

    def __init__(self, session: Optional[Session] = None) -> None:
        self._session = session
        self._years: Dict[int, Optional[Dict[dt.date, HolidayKind]]] = {}

    def __call__(self, day: dt.date) -> Optional[bool]:
        """True on a public holiday, False on any other day, None when ``day``'s year has no schedule."""
        listed = self._loaded_year(day.year)
        if listed is not None:
            return listed.get(day) is HolidayKind.HOLIDAY
        import chinese_calendar

        try:
            on_holiday, name = chinese_calendar.get_holiday_detail(day)
        except NotImplementedError:
            return None
        return bool(on_holiday and name)

    def _loaded_year(self, year: int) -> Optional[Dict[dt.date, HolidayKind]]:
        if self._session is None:
            return None
        if year not in self._years:
            if self._session.get(HolidaySchedule, year) is None:
                self._years[year] = None
            else:
                self._years[year] = {row.day: HolidayKind(row.kind) for row in days_of(self._session, year)}
        return self._years[year]


def waiting_for_schedule(session: Session) -> Dict[int, int]:
    """Reminders held because their day's year has no schedule: how many, by year of their due date.

    The due time of such a reminder is the hour it will be judged again; its year is that of its original
    moment as far as the policy is concerned, so the year counted is the local year of ``due_at``.
    """
    from bot import clock

    rows = session.execute(
        select(Reminder.due_at).where(Reminder.state.in_(PENDING_STATES), Reminder.reason == SCHEDULE_MISSING)
    ).scalars()
    counts: Dict[int, int] = {}
    for due_at in rows:
        year = clock.local_date(due_at).year
        counts[year] = counts.get(year, 0) + 1
    return dict(sorted(counts.items()))

