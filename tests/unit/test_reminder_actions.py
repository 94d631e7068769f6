"""Answers to a reminder, through the real actions on the demo estate (SQLite): 退订 is recorded and honoured,
a new date moves the open promise (counted, reminders moved), "已经交了" is checked against the payments."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from actions import owner_data as record_actions
from actions import reminders as reminder_actions
from bot import clock, wording
from bot.db import models
from bot.db.reminder_models import Reminder, ReminderOptOut, ReminderPurpose, ReminderState
from bot.db.session import session_scope
from bot.owners import identity, payments
from bot.reminders import schedule
from tests.builders import run, tracker

SH = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 23, 11, 0, tzinfo=SH)  # the builders' message date is 2026-11-23


@pytest.fixture
def database(estate_env: str) -> str:
    return estate_env


def wang(url: str, *, channel: str = "socketio", sender: str = "web-1") -> int:
    with session_scope(url) as session:
        owner = identity.verify(session, room="3栋2单元501", phone_tail="6688")
        identity.link_conversation(session, channel=channel, sender_id=sender, owner_id=owner.owner_id)
        return int(owner.owner_id)


def test_an_opt_out_in_the_chat_is_stored_for_the_owner_and_the_conversation(database: str) -> None:
    owner = wang(database)
    with clock.frozen(NOW):
        messages, events = run(
            reminder_actions.ActionOptOutReminders(),
            tracker("opt_out_reminders", text="别再提醒我了", channel="socketio", sender="web-1"),
        )
    assert [m["text"] for m in messages] == [wording.text("reminders.opted_out")] and events == []
    with session_scope(database) as session:
        row = session.execute(select(ReminderOptOut)).scalar_one()
        unit_id = session.get(models.Owner, owner).unit_id
    assert (row.owner_id, row.unit_id, row.sender_id, row.channel, row.how, row.text) == (
        owner, unit_id, "web-1", "socketio", "chat", "别再提醒我了"
    )


def test_an_opt_out_from_an_unknown_conversation_still_covers_that_conversation(database: str) -> None:
    with clock.frozen(NOW):
        messages, _ = run(reminder_actions.ActionOptOutReminders(), tracker("opt_out_reminders", text="退订", sender="rest-9"))
    assert [m["text"] for m in messages] == [wording.text("reminders.opted_out")]
    with session_scope(database) as session:
        row = session.execute(select(ReminderOptOut)).scalar_one()
    assert (row.owner_id, row.unit_id, row.sender_id, row.channel) == (None, None, "rest-9", "rest")


def _promise_tracker(date: str, message_id: str) -> object:
    return tracker(
        "affirm",
        slots={"promise_date": date, "promise_amount": "2460.00"},
        channel="socketio",
        sender="web-1",
        message_id=message_id,
    )


def test_a_new_date_moves_the_open_promise_and_its_reminders(database: str) -> None:
    wang(database)
    action = record_actions.ActionRecordPromise()
    with clock.frozen(NOW):
        first, _ = run(action, _promise_tracker("2026-11-27", "m-1"))
    assert first[0]["response"] == "utter_promise_recorded"
    with session_scope(database) as session:
        promise = session.execute(select(models.PaymentPromise)).scalar_one()
        reminders = session.execute(select(Reminder).order_by(Reminder.due_at)).scalars().all()
        assert [(r.purpose, schedule.local(r.due_at)) for r in reminders] == [
            (ReminderPurpose.DAY_BEFORE, dt.datetime(2026, 11, 26, 10, tzinfo=SH)),
            (ReminderPurpose.DUE_MORNING, dt.datetime(2026, 11, 27, 9, tzinfo=SH)),
        ]
    with clock.frozen(NOW + dt.timedelta(hours=1)):
        second, _ = run(action, _promise_tracker("2026-12-04", "m-2"))
        run(action, _promise_tracker("2026-12-04", "m-2"))  # a retried message moves nothing again
    assert second[0]["response"] == "utter_promise_recorded" and second[0]["number"] == first[0]["number"]
    with session_scope(database) as session:
        promises = session.execute(select(models.PaymentPromise)).scalars().all()
        reminders = session.execute(select(Reminder).order_by(Reminder.due_at)).scalars().all()
        assert [(p.id, p.due_date, p.reschedule_count, p.status) for p in promises] == [
            (promise.id, dt.date(2026, 12, 4), 1, models.PromiseStatus.OPEN)
        ]
        assert [(r.purpose, schedule.local(r.due_at), r.state, r.reason) for r in reminders] == [
            (ReminderPurpose.DAY_BEFORE, dt.datetime(2026, 12, 3, 10, tzinfo=SH), ReminderState.MOVED, "promise_rescheduled"),
            (ReminderPurpose.DUE_MORNING, dt.datetime(2026, 12, 4, 9, tzinfo=SH), ReminderState.MOVED, "promise_rescheduled"),
        ]


def _bill_check(database: str) -> list:
    return run(
        record_actions.ActionRecordBillCheck(),
        tracker("affirm", slots={"bill_issue": "我已经交了"}, channel="socketio", sender="web-1", message_id="b-1"),
    )[0]


def test_already_paid_after_a_reminder_is_checked_against_the_payments(database: str) -> None:
    owner = wang(database)
    with clock.frozen(NOW), session_scope(database) as session:
        promise = models.PaymentPromise(
            owner_id=owner, amount=Decimal("2460.00"), due_date=dt.date(2026, 11, 25), sender_id="web-1", created_at=NOW
        )
        session.add(promise)
        session.flush()
        rows = schedule.schedule_for_promise(session, promise=promise)
        rows[0].state, rows[0].sent_at = ReminderState.SENT, NOW.astimezone(dt.timezone.utc)
        unit = session.get(models.Owner, owner).unit_id
    with clock.frozen(NOW + dt.timedelta(hours=2)):
        nothing_yet = _bill_check(database)  # nothing paid: the bill check is recorded as before
    assert nothing_yet[0]["response"] == "utter_bill_check_recorded"
    with clock.frozen(NOW + dt.timedelta(hours=3)), session_scope(database) as session:
        payments.record_payment(
            session, unit=unit, amount="2460.00", paid_at=NOW + dt.timedelta(hours=3), reference="WX-9", actor="test"
        )
    with clock.frozen(NOW + dt.timedelta(hours=4)):
        found = run(
            record_actions.ActionRecordBillCheck(),
            tracker("affirm", slots={"bill_issue": "已经交了"}, channel="socketio", sender="web-1", message_id="b-2"),
        )[0]
    assert [m.get("text") for m in found] == [
        wording.text("reminders.payment_found", month=11, day=23, amount="2,460.00")
    ]
    with session_scope(database) as session:
        assert len(session.execute(select(models.BillCheckRequest)).scalars().all()) == 1
