"""Public holidays never expire silently (bot/reminders/holidays.py, the policy, ``bot holidays``).

chinesecalendar 1.11 knows the State Council's schedules up to 2026. A later year is loaded as data; until it is,
a reminder on a day of that year is held and staff are told which year is missing, never sent blind. Every
database test runs on SQLite and PostgreSQL.

The 2027 schedule below is test data in the notice's shape (元旦 and a 春节 week with two exchanged Saturdays),
not the State Council's: the tests need a year the package does not know, whatever it says.
"""

from __future__ import annotations

import datetime as dt
import io
from contextlib import redirect_stderr, redirect_stdout
from decimal import Decimal
from pathlib import Path
from typing import List, Tuple
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot import clock
from bot.cli import main
from bot.db.holiday_models import HolidayDay, HolidayKind, HolidaySchedule
from bot.db.models import ConversationLink, OutboxMessage, Owner, PaymentPromise, Unit
from bot.db.reminder_models import Reminder, ReminderPurpose, ReminderState
from bot.db.session import session_scope
from bot.db.staff_models import AuditEntry
from bot.owners import importer
from bot.reminders import holidays, policy, promise_changes, schedule
from bot.reminders.delivery import Template
from bot.reminders.policy import Policy
from bot.reminders.worker import ReminderWorker
from bot.services import owner_requests

ROOT = Path(__file__).resolve().parents[2]
SH = ZoneInfo("Asia/Shanghai")
SCHEDULE_2027 = """date,kind,name
# test data shaped like a notice: not the State Council's 2027 schedule
2027-01-01,holiday,元旦
2027-01-02,holiday,元旦
2027-01-03,holiday,元旦
2027-02-06,holiday,春节
2027-02-07,holiday,春节
2027-02-08,holiday,春节
2027-02-09,holiday,春节
2027-02-10,holiday,春节
2027-02-11,holiday,春节
2027-02-12,holiday,春节
2027-02-13,workday,春节
2027-02-20,workday,春节
"""
SOURCE = "测试用：2027年部分节假日安排（格式样例）"
SKIPPING = Policy(max_per_week=2, skip_holidays=True)


def at(year: int, month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=SH)


class Clock:
    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def __call__(self) -> dt.datetime:
        return self.moment


# --- the data ----------------------------------------------------------------------------------------------


def test_a_schedule_file_is_read_with_its_year_and_days_in_order() -> None:
    year, days = holidays.parse_schedule("\ufeff" + SCHEDULE_2027.replace("2027-01-03,holiday", "2027-01-03,放假"))
    assert year == 2027
    assert [(d.day, d.kind, d.name) for d in days[:3]] == [
        (dt.date(2027, 1, 1), HolidayKind.HOLIDAY, "元旦"),
        (dt.date(2027, 1, 2), HolidayKind.HOLIDAY, "元旦"),
        (dt.date(2027, 1, 3), HolidayKind.HOLIDAY, "元旦"),
    ]
    assert [(d.day, d.kind) for d in days if d.kind is HolidayKind.WORKDAY] == [
        (dt.date(2027, 2, 13), HolidayKind.WORKDAY), (dt.date(2027, 2, 20), HolidayKind.WORKDAY),
    ]  # fmt: skip
    assert len(days) == 12


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("day,kind,name\n2027-01-01,holiday,元旦\n", "the first row must be the header date,kind,name"),
        ("date,kind,name\n2027-13-01,holiday,元旦\n", "row 2: '2027-13-01' is not a date (YYYY-MM-DD)"),
        ("date,kind,name\n2027-01-01,rest,元旦\n", "row 2: kind must be holiday or workday, not 'rest'"),
        ("date,kind,name\n2027-01-01,holiday,\n", "row 2: the holiday's name is missing or longer than 32"),
        ("date,kind,name\n2027-01-01,holiday,元旦\n2027-01-01,holiday,元旦\n", "row 3: 2027-01-01 is listed twice"),
        ("date,kind,name\n2027-01-01,holiday,元旦\n2028-01-01,holiday,元旦\n", "one year per file: the days span 2027, 2028"),
        ("date,kind,name\n2027-02-13,workday,春节\n", "no holiday listed"),
        ("date,kind,name\n2027-02-15,workday,春节\n2027-02-10,holiday,春节\n", "row 2: 2027-02-15 is a weekday; only a weekend day can be worked in exchange"),
        ("date,kind,name\n2027-01-01,holiday\n", "row 2: expected date,kind,name"),
    ],
)
def test_a_bad_schedule_file_is_refused_with_the_row_that_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(holidays.ScheduleError) as refused:
        holidays.parse_schedule(text)
    assert problem in refused.value.problems


def test_loading_stores_the_year_its_days_and_an_audit_row_and_a_reload_replaces_it(database_url: str) -> None:
    with clock.frozen(at(2026, 12, 2, 9)), session_scope(database_url) as session:
        holidays.load_schedule(session, text=SCHEDULE_2027, source=SOURCE, actor="cli:ops")
    with session_scope(database_url) as session:
        schedule = session.get(HolidaySchedule, 2027)
        assert (schedule.year, schedule.source, schedule.loaded_by) == (2027, SOURCE, "cli:ops")
        assert clock.local_date(schedule.loaded_at) == dt.date(2026, 12, 2)
        stored = session.execute(select(HolidayDay).order_by(HolidayDay.day)).scalars().all()
        assert [(d.day, d.year, HolidayKind(d.kind), d.name) for d in stored][:2] == [
            (dt.date(2027, 1, 1), 2027, HolidayKind.HOLIDAY, "元旦"), (dt.date(2027, 1, 2), 2027, HolidayKind.HOLIDAY, "元旦"),
        ]  # fmt: skip
        assert len(stored) == 12
        entry = session.execute(select(AuditEntry).where(AuditEntry.action == holidays.HOLIDAYS_LOADED)).scalar_one()
        assert (entry.actor, entry.target, entry.detail) == (
            "cli:ops", "holidays:2027",
            {"year": 2027, "source": SOURCE, "holidays": 10, "workdays": 2, "replaced": False},
        )  # fmt: skip
    corrected = "date,kind,name\n2027-01-01,holiday,元旦\n"
    with session_scope(database_url) as session:
        holidays.load_schedule(session, text=corrected, source="更正", actor="manager1")
    with session_scope(database_url) as session:
        assert [(d.day, d.name) for d in holidays.days_of(session, 2027)] == [(dt.date(2027, 1, 1), "元旦")]
        assert session.get(HolidaySchedule, 2027).source == "更正"
        details = [e.detail["replaced"] for e in session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars()]
        assert details == [False, True]


def test_a_refused_file_or_a_missing_source_writes_nothing(database_url: str) -> None:
    with session_scope(database_url) as session:
        holidays.load_schedule(session, text=SCHEDULE_2027, source=SOURCE, actor="ops")
    for text, source in (("date,kind,name\n2027-01-01,holiday,元旦\n2027-13-01,holiday,春节\n", "x"), (SCHEDULE_2027, "  ")):
        with pytest.raises(holidays.ScheduleError), session_scope(database_url) as session:
            holidays.load_schedule(session, text=text, source=source, actor="ops")
    with session_scope(database_url) as session:
        assert len(holidays.days_of(session, 2027)) == 12  # the schedule loaded before is untouched
        assert session.execute(select(AuditEntry)).scalars().all()[-1].detail["replaced"] is False


def test_the_calendar_knows_the_package_years_a_loaded_year_and_nothing_else(database_url: str) -> None:
    assert holidays.package_knows(2026) and not holidays.package_knows(2027)
    with session_scope(database_url) as session:
        calendar = holidays.Calendar(session)
        assert calendar(dt.date(2026, 2, 17)) is True  # 春节 2026, from chinesecalendar
        assert calendar(dt.date(2026, 11, 28)) is False  # a Saturday is no holiday
        assert calendar(dt.date(2027, 1, 1)) is None  # nobody knows 2027 yet
        holidays.load_schedule(session, text=SCHEDULE_2027, source=SOURCE, actor="ops")
        holidays.load_schedule(session, text="date,kind,name\n2026-11-27,holiday,测试\n", source="override", actor="ops")
    with session_scope(database_url) as session:
        calendar = holidays.Calendar(session)
        assert calendar(dt.date(2027, 1, 1)) is True and calendar(dt.date(2027, 2, 12)) is True
        assert calendar(dt.date(2027, 2, 13)) is False  # a Saturday worked in exchange
        assert calendar(dt.date(2027, 1, 4)) is False
        assert calendar(dt.date(2026, 11, 27)) is True  # a loaded year wins over the package
        assert calendar(dt.date(2026, 2, 17)) is False
        assert calendar(dt.date(2028, 1, 1)) is None
    assert policy.is_public_holiday(dt.date(2027, 1, 1)) is None  # without the database: the package alone


def test_earliest_allowed_refuses_to_guess_a_year_with_no_schedule() -> None:
    with pytest.raises(policy.UnknownHolidays) as unknown:
        policy.earliest_allowed(at(2027, 1, 4, 10), policy=SKIPPING)
    assert unknown.value.year == 2027
    # Quiet hours on New Year's Eve lead into the unknown year too.
    with pytest.raises(policy.UnknownHolidays):
        policy.earliest_allowed(at(2026, 12, 31, 22), policy=SKIPPING)
    plain = Policy(max_per_week=2, skip_holidays=False)
    assert policy.earliest_allowed(at(2027, 1, 4, 10), policy=plain) == at(2027, 1, 4, 10)


# --- the worker in 2027 ------------------------------------------------------------------------------------


@pytest.fixture
def estate(database_url: str) -> str:
    with session_scope(database_url) as session:
        importer.import_arrears(session, ROOT / "data" / "demo" / "arrears.csv")
    return database_url


def promise_for_new_year(url: str) -> int:
    """王建国 (3栋2单元501), on verified web chat, promises on 2026-12-28 to pay 2,460.00 on 2027-01-04."""
    with session_scope(url) as session:
        owner = session.execute(select(Owner).join(Unit).where(Unit.code == "3-2-501")).scalar_one()
        session.add(ConversationLink(channel="socketio", sender_id="web-wang", owner_id=owner.id))
        owner_id = int(owner.id)
    with clock.frozen(at(2026, 12, 28, 15)), session_scope(url) as session:
        row = owner_requests.create(
            session, PaymentPromise, message_id=None, sender_id="web-wang", owner_id=owner_id,
            amount=Decimal("2460.00"), due_date=dt.date(2027, 1, 4),
        )  # fmt: skip
        promise_changes.recorded(session, promise=row)
    return owner_id


def rows(url: str) -> List[Tuple[ReminderPurpose, ReminderState, str, dt.datetime]]:
    with session_scope(url) as session:
        found = session.execute(select(Reminder).order_by(Reminder.first_due_at)).scalars()
        return [(ReminderPurpose(r.purpose), ReminderState(r.state), r.reason, schedule.local(r.due_at)) for r in found]


def outbox(url: str) -> List[str]:
    with session_scope(url) as session:
        return [str(row.text) for row in session.execute(select(OutboxMessage)).scalars()]


def worker(url: str, now: Clock, skip: bool = True) -> ReminderWorker:
    return ReminderWorker(
        database_url=url, name="worker-1", wechat=False, template=Template(),
        policy=Policy(max_per_week=2, skip_holidays=skip), now=now, poll_seconds=0.01,
    )  # fmt: skip


def test_a_reminder_in_a_year_with_no_schedule_is_held_and_staff_told_until_the_year_is_loaded(estate: str) -> None:
    promise_for_new_year(estate)
    day_before = (ReminderPurpose.DAY_BEFORE, ReminderState.SCHEDULED, None, at(2027, 1, 3, 10))
    assert rows(estate)[0] == day_before
    now = Clock(at(2027, 1, 3, 10))
    held = worker(estate, now).send_due()
    assert [(p.state, p.reason) for p in held] == [(ReminderState.MOVED, holidays.SCHEDULE_MISSING)]
    assert rows(estate)[0] == (ReminderPurpose.DAY_BEFORE, ReminderState.MOVED, holidays.SCHEDULE_MISSING, at(2027, 1, 3, 11))
    assert outbox(estate) == []  # nothing sent blind
    with session_scope(estate) as session:
        assert holidays.waiting_for_schedule(session) == {2027: 1}
    now.moment = at(2027, 1, 3, 11)  # an hour later, still no schedule: held again
    worker(estate, now).send_due()
    assert rows(estate)[0][1:] == (ReminderState.MOVED, holidays.SCHEDULE_MISSING, at(2027, 1, 3, 12))
    with session_scope(estate) as session:  # the operator loads 2027: 1月3日 is 元旦
        holidays.load_schedule(session, text=SCHEDULE_2027, source=SOURCE, actor="ops")
    now.moment = at(2027, 1, 3, 12)
    worker(estate, now).send_due()
    assert rows(estate)[0][1:] == (ReminderState.MOVED, "holiday", at(2027, 1, 4, 8))
    with session_scope(estate) as session:
        assert holidays.waiting_for_schedule(session) == {}
    now.moment = at(2027, 1, 4, 9)  # the first working day: the day-before notice is moot, the morning one goes
    worker(estate, now).send_due()
    assert [row[:3] for row in rows(estate)] == [
        (ReminderPurpose.DAY_BEFORE, ReminderState.CANCELLED, "promise_past"),
        (ReminderPurpose.DUE_MORNING, ReminderState.SENT, None),
    ]
    assert len(outbox(estate)) == 1


def test_without_holiday_skipping_a_year_with_no_schedule_changes_nothing(estate: str) -> None:
    promise_for_new_year(estate)
    sent = worker(estate, Clock(at(2027, 1, 3, 10)), skip=False).send_due()
    assert [(p.state, p.reason) for p in sent] == [(ReminderState.SENT, None)]
    assert len(outbox(estate)) == 1


# --- the command line --------------------------------------------------------------------------------------


def run_cli(*argv: str) -> Tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_bot_holidays_load_and_list(estate: str, tmp_path: Path) -> None:
    good = tmp_path / "2027.csv"
    good.write_text(SCHEDULE_2027, encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text("date,kind,name\n2027-01-01,holiday,元旦\n2027-02-30,holiday,春节\n", encoding="utf-8")
    assert run_cli("holidays", "load", str(bad), "--source", SOURCE, "--url", estate) == (
        2, "", "error: row 3: '2027-02-30' is not a date (YYYY-MM-DD)\n",
    )  # fmt: skip
    with session_scope(estate) as session:
        assert holidays.loaded(session) == []
    code, out, _ = run_cli("holidays", "load", str(good), "--source", SOURCE, "--url", estate)
    assert (code, out) == (0, "2027: 12 days loaded from 2027.csv\n")
    with session_scope(estate) as session:
        [loaded] = holidays.loaded(session)
        assert (loaded.year, loaded.source, loaded.loaded_by.startswith("cli")) == (2027, SOURCE, True)
        owner = session.execute(select(Owner)).scalars().first()
        session.add(Reminder(
            owner_id=owner.id, unit_id=owner.unit_id, purpose=ReminderPurpose.MONTHLY_BILL,
            due_at=at(2028, 1, 1, 10), first_due_at=at(2028, 1, 1, 10), state=ReminderState.MOVED,
            reason=holidays.SCHEDULE_MISSING, dedupe_key="monthly:x:2028-01", created_at=at(2027, 12, 1, 10),
            updated_at=at(2027, 12, 31, 22),
        ))  # fmt: skip
    code, out, _ = run_cli("holidays", "list", "--url", estate)
    assert code == 0
    assert out.splitlines() == [
        f"2027  loaded  12 days  {SOURCE}  ({loaded.loaded_by})",
        "2028  MISSING  1 reminders held until its schedule is loaded",
    ]
