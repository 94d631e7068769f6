"""Scheduling fixes of issue 11: a promise moved back to a date it had before (A -> B -> A) keeps its history and
gets its reminders again instead of crashing on the dedupe key; the escalation ladder and the payment answer.
Every test runs on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import List, Optional
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from bot import clock, wording
from bot.db import models
from bot.db.models import ConversationLink, Owner, PaymentPromise, PromiseStatus
from bot.db.reminder_models import Reminder, ReminderPurpose, ReminderState
from bot.db.session import session_scope
from bot.owners import importer, payments
from bot.reminders import answers, ladder, promise_changes, schedule
from bot.services import owner_requests

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo" / "arrears.csv"
SH = ZoneInfo("Asia/Shanghai")
A, B = dt.date(2026, 11, 27), dt.date(2026, 12, 4)


def at(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=SH)


@pytest.fixture
def wang(database_url: str) -> int:
    """The demo estate imported; 王建国 (3栋2单元501) linked to web chat ``web-1``. His owner id."""
    with session_scope(database_url) as session:
        importer.import_arrears(session, DEMO)
    with session_scope(database_url) as session:
        owner = session.execute(
            select(Owner.id).join(models.Unit, models.Unit.id == Owner.unit_id).where(models.Unit.code == "3-2-501")
        ).scalar_one()
        session.add(ConversationLink(channel="socketio", sender_id="web-1", owner_id=int(owner)))
        return int(owner)


def _promise(url: str, owner: int) -> int:
    with clock.frozen(at(11, 24, 10)), session_scope(url) as session:
        row = owner_requests.create(
            session, PaymentPromise, message_id=None, sender_id="web-1", owner_id=owner, amount=Decimal("2460.00"), due_date=A
        )
        promise_changes.recorded(session, promise=row)
        return int(row.id)


def _move(url: str, promise_id: int, new_date: dt.date, moment: dt.datetime) -> None:
    with clock.frozen(moment), session_scope(url) as session:
        promise_changes.reschedule(session, promise=session.get(PaymentPromise, promise_id), new_date=new_date)


def _rows(url: str) -> List[Reminder]:
    with session_scope(url) as session:
        return list(session.execute(select(Reminder).order_by(Reminder.id)).scalars())


def _local(value: Optional[dt.datetime]) -> Optional[dt.datetime]:
    return None if value is None else schedule.local(value)


@pytest.mark.parametrize("first_fate", [ReminderState.CANCELLED, ReminderState.SENT])
def test_a_promise_moved_back_to_its_first_date_gets_its_reminders_again(
    database_url: str, wang: int, first_fate: ReminderState
) -> None:
    url = database_url
    promise_id = _promise(url, wang)
    first = [int(row.id) for row in _rows(url)]
    with session_scope(url) as session:  # the date-A rows went out (or were cancelled) and keep their keys
        for row in session.execute(select(Reminder).where(Reminder.id.in_(first))).scalars():
            row.state = first_fate
            row.sent_at = row.due_at if first_fate is ReminderState.SENT else None
    _move(url, promise_id, B, at(11, 24, 11))  # A -> B: new rows for B
    _move(url, promise_id, A, at(11, 24, 12))  # B -> A: the B rows take the A keys; this crashed

    rows = _rows(url)
    key = f"promise:{promise_id}"
    assert [(r.id in first, r.purpose, r.state, _local(r.due_at), r.dedupe_key) for r in rows] == [
        (True, ReminderPurpose.DAY_BEFORE, first_fate, at(11, 26, 10), f"{key}:day_before:2026-11-27:retired:{first[0]}"),
        (True, ReminderPurpose.DUE_MORNING, first_fate, at(11, 27, 9), f"{key}:due_morning:2026-11-27:retired:{first[1]}"),
        (False, ReminderPurpose.DAY_BEFORE, ReminderState.MOVED, at(11, 26, 10), f"{key}:day_before:2026-11-27"),
        (False, ReminderPurpose.DUE_MORNING, ReminderState.MOVED, at(11, 27, 9), f"{key}:due_morning:2026-11-27"),
    ]
    with session_scope(url) as session:
        promise = session.get(PaymentPromise, promise_id)
        assert (promise.due_date, promise.reschedule_count) == (A, 2)
    with clock.frozen(at(11, 24, 13)), session_scope(url) as session:  # scheduling again stays idempotent
        again = schedule.schedule_for_promise(session, promise=session.get(PaymentPromise, promise_id))
    assert sorted(int(r.id) for r in again) == [int(r.id) for r in rows[2:]]
    assert len(_rows(url)) == 4


def test_a_promise_moved_there_and_back_with_nothing_sent_moves_the_same_rows(database_url: str, wang: int) -> None:
    url = database_url
    promise_id = _promise(url, wang)
    first = [int(row.id) for row in _rows(url)]
    _move(url, promise_id, B, at(11, 24, 11))
    _move(url, promise_id, A, at(11, 24, 12))
    rows = _rows(url)
    assert [(int(r.id), r.state, _local(r.due_at), r.dedupe_key) for r in rows] == [
        (first[0], ReminderState.MOVED, at(11, 26, 10), f"promise:{promise_id}:day_before:2026-11-27"),
        (first[1], ReminderState.MOVED, at(11, 27, 9), f"promise:{promise_id}:due_morning:2026-11-27"),
    ]


def test_paid_after_a_reminder_names_the_latest_counted_payment_not_a_voided_one(database_url: str, wang: int) -> None:
    url = database_url
    promise_id = _promise(url, wang)  # made 2026-11-24 10:00
    with session_scope(url) as session:
        unit = int(session.get(Owner, wang).unit_id)
        day_before = session.execute(select(Reminder).where(Reminder.promise_id == promise_id).order_by(Reminder.id)).scalars().first()
        day_before.state, day_before.sent_at = ReminderState.SENT, at(11, 26, 10).astimezone(dt.timezone.utc)
    with clock.frozen(at(11, 26, 12)), session_scope(url) as session:
        payments.record_payment(session, unit=unit, amount="300.00", paid_at=at(11, 20, 9), reference="OLD-1", actor="test")
        payments.record_payment(session, unit=unit, amount="1000.00", paid_at=at(11, 25, 15), reference="WX-1", actor="test")
        wrong = payments.record_payment(session, unit=unit, amount="500.00", paid_at=at(11, 26, 11), reference="WX-2", actor="test")
        payments.void_payment(session, payment_id=int(wrong.id), actor="zhao", reason="录错了")
    with clock.frozen(at(11, 26, 13)), session_scope(url) as session:
        answer = answers.payment_found(session, owner_id=wang)
    assert answer == wording.text("reminders.payment_found", amount="1,000.00", month=11, day=25)


def _broken_twice(url: str, owner: int, sender: str) -> None:
    for index, due in enumerate((dt.date(2026, 11, 25), dt.date(2026, 11, 26))):
        with clock.frozen(at(11, 24, 10 + index)), session_scope(url) as session:
            row = owner_requests.create(
                session, PaymentPromise, message_id=None, sender_id=sender, owner_id=owner, amount=Decimal("100.00"), due_date=due
            )
            promise_changes.recorded(session, promise=row)


def test_the_ladder_skips_owners_who_have_paid_up_since_their_promises_broke(database_url: str, wang: int) -> None:
    url = database_url
    with session_scope(url) as session:
        li = int(
            session.execute(
                select(Owner.id).join(models.Unit, models.Unit.id == Owner.unit_id).where(models.Unit.code == "3-2-502")
            ).scalar_one()
        )
        unit = int(session.get(Owner, wang).unit_id)
    _broken_twice(url, wang, "web-1")
    _broken_twice(url, li, "web-li")
    with clock.frozen(at(12, 10, 9)), session_scope(url) as session:
        payments.evaluate_promises(session, today=dt.date(2026, 12, 10))
        # 王建国 then pays all he owes (2,460.00), long after both promises broke.
        payments.record_payment(
            session, unit=unit, amount="2460.00", paid_at=at(12, 10, 9), reference="WX-ALL", actor="test", evaluate=False
        )
    with clock.frozen(at(12, 10, 10)), session_scope(url) as session:
        statuses = {
            (int(p.owner_id), p.status) for p in session.execute(select(PaymentPromise)).scalars()
        }
        found = ladder.escalate_repeat_breakers(session, months=6)
        result = [(e.reason, e.owner_id, e.detail) for e in found]
        stored = [(e.reason, e.owner_id) for e in session.execute(select(models.Escalation)).scalars()]
    assert statuses == {(wang, PromiseStatus.BROKEN), (li, PromiseStatus.BROKEN)}
    assert result == [("broken_promises", li, "broken_promises=2; arrears_months=4")]
    assert stored == [("broken_promises", li)]


def test_only_a_promise_broken_lately_is_followed_up(database_url: str, wang: int) -> None:
    url = database_url
    with clock.frozen(at(8, 1, 10)), session_scope(url) as session:  # long ago: due 08-05, broken since 08-07
        old = owner_requests.create(
            session, PaymentPromise, message_id="old", sender_id="web-1", owner_id=wang,
            amount=Decimal("100.00"), due_date=dt.date(2026, 8, 5),
        )  # fmt: skip
        recent = owner_requests.create(
            session, PaymentPromise, message_id="recent", sender_id="web-1", owner_id=wang,
            amount=Decimal("100.00"), due_date=dt.date(2026, 11, 20),
        )  # fmt: skip
        old.status = recent.status = PromiseStatus.BROKEN
        old_id, recent_id = int(old.id), int(recent.id)
    with clock.frozen(at(11, 24, 9)), session_scope(url) as session:  # recent: window ended 11-22
        written = schedule.schedule_broken_followups(session)
        assert [(row.promise_id, _local(row.due_at)) for row in written] == [(recent_id, at(11, 24, 10))]
    followups = [row for row in _rows(url) if row.purpose == ReminderPurpose.BROKEN_FOLLOWUP]
    assert [row.promise_id for row in followups] == [recent_id] and old_id not in {r.promise_id for r in _rows(url)}
