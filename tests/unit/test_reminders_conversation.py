"""Reminders and the conversation they belong to (issue 11): a moved promise follows the conversation the owner
last promised in, and a conversation a person holds is not interrupted by a reminder (moved, never dropped).

Runs on SQLite and PostgreSQL with an injected clock, through the real worker and the real takeover service.
"""

from __future__ import annotations

import datetime as dt
from contextlib import contextmanager
from decimal import Decimal
from typing import Iterator, List

import pytest
from sqlalchemy import select

from bot import clock
from bot.conversations import handoff
from bot.db import models
from bot.db.models import PaymentPromise
from bot.db.reminder_models import Reminder, ReminderPurpose, ReminderState
from bot.db.session import session_scope
from bot.owners import importer
from bot.reminders import promise_changes
from tests.unit.test_reminders import (
    DEMO,
    WANG,
    Clock,
    Sender,
    at,
    delivered,
    link,
    local,
    outbox_rows,
    owner_id,
    promise,
    reminders,
    wechat_inbound,
    worker,
)


@pytest.fixture
def estate(database_url: str) -> str:
    with session_scope(database_url) as session:
        importer.import_arrears(session, DEMO)
    return database_url


def texts_to(url: str, sender: str) -> List[str]:
    """The ordinary text messages the outbox holds for ``sender`` (not the takeover's notices)."""
    return [r.text for r in outbox_rows(url) if r.sender_id == sender and r.kind == models.OutboxKind.TEXT]


# --- a moved promise follows the conversation ------------------------------------------------------------


def test_a_promise_moved_from_another_conversation_follows_it_with_its_reminders(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang, sender="web-old")
    link(estate, wang, sender="web-new")
    made = promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10), sender="web-old")
    assert {(r.sender_id, r.channel) for r in reminders(estate)} == {("web-old", "socketio")}

    with clock.frozen(at(11, 25, 12)), session_scope(estate) as session:
        moved = promise_changes.reschedule_latest(
            session, owner_id=wang, new_date=dt.date(2026, 12, 4), amount=Decimal("2460.00"),
            sender_id="web-new", channel="socketio",
        )
        assert moved is not None and int(moved.id) == made
    with session_scope(estate) as session:
        rows = session.execute(select(PaymentPromise).where(PaymentPromise.owner_id == wang)).scalars().all()
        assert [(p.id, p.sender_id, p.due_date, p.reschedule_count, p.status) for p in rows] == [
            (made, "web-new", dt.date(2026, 12, 4), 1, models.PromiseStatus.OPEN)
        ]
    assert [(r.purpose, r.sender_id, r.channel, r.state, local(r.due_at)) for r in reminders(estate)] == [
        (ReminderPurpose.DAY_BEFORE, "web-new", "socketio", ReminderState.MOVED, at(12, 3, 10)),
        (ReminderPurpose.DUE_MORNING, "web-new", "socketio", ReminderState.MOVED, at(12, 4, 9)),
    ]
    # and they go out there
    processed = worker(estate, Clock(at(12, 3, 10))).send_due()
    assert [(p.state, p.via) for p in processed] == [(ReminderState.SENT, "webchat_outbox")]
    assert len(texts_to(estate, "web-new")) == 1 and texts_to(estate, "web-old") == []
    assert "12月4日" in texts_to(estate, "web-new")[0]


def test_the_same_date_again_from_another_conversation_moves_only_the_conversation(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang, sender="web-old")
    link(estate, wang, channel="wechat", sender="oWANG")
    made = promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10), sender="web-old")

    with clock.frozen(at(11, 25, 12)), session_scope(estate) as session:
        promise_changes.reschedule_latest(session, owner_id=wang, new_date=dt.date(2026, 11, 27), sender_id="oWANG", channel="wechat")
    with session_scope(estate) as session:
        row = session.get(PaymentPromise, made)
        assert (row.sender_id, row.due_date, row.reschedule_count) == ("oWANG", dt.date(2026, 11, 27), 0)
    assert [(r.purpose, r.sender_id, r.channel, r.state, local(r.due_at)) for r in reminders(estate)] == [
        (ReminderPurpose.DAY_BEFORE, "oWANG", "wechat", ReminderState.SCHEDULED, at(11, 26, 10)),
        (ReminderPurpose.DUE_MORNING, "oWANG", "wechat", ReminderState.SCHEDULED, at(11, 27, 9)),
    ]


def test_a_conversation_that_is_not_verified_takes_the_promise_but_reminders_stay_verified(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang, sender="web-old")
    made = promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10), sender="web-old")

    with clock.frozen(at(11, 25, 12)), session_scope(estate) as session:
        promise_changes.reschedule_latest(session, owner_id=wang, new_date=dt.date(2026, 12, 4), sender_id="rest-9", channel="rest")
    with session_scope(estate) as session:
        row = session.get(PaymentPromise, made)
        assert (row.sender_id, row.due_date, row.reschedule_count) == ("rest-9", dt.date(2026, 12, 4), 1)
    # REST can take no proactive message: the owner's verified conversation keeps them
    assert {(r.sender_id, r.channel) for r in reminders(estate)} == {("web-old", "socketio")}


def test_reminders_already_sent_stay_where_they_went(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang, sender="web-old")
    link(estate, wang, sender="web-new")
    promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10), sender="web-old")
    worker(estate, Clock(at(11, 26, 10))).send_due()
    with clock.frozen(at(11, 26, 12)), session_scope(estate) as session:
        promise_changes.reschedule_latest(session, owner_id=wang, new_date=dt.date(2026, 11, 28), sender_id="web-new", channel="socketio")
    assert [(r.purpose, r.sender_id, r.state) for r in reminders(estate)] == [
        (ReminderPurpose.DAY_BEFORE, "web-old", ReminderState.SENT),
        (ReminderPurpose.DAY_BEFORE, "web-new", ReminderState.SCHEDULED),
        (ReminderPurpose.DUE_MORNING, "web-new", ReminderState.MOVED),
    ]


# --- a held conversation ------------------------------------------------------------------------------------


def test_a_reminder_waits_while_a_person_holds_the_conversation(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang, sender="web-1")
    promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10), sender="web-1")
    with clock.frozen(at(11, 26, 9, 30)), session_scope(estate) as session:
        handoff.take_over(session, sender_id="web-1", staff="zhang")
    now = Clock(at(11, 26, 10))
    runner = worker(estate, now)

    assert [(p.state, p.reason) for p in runner.send_due()] == [(ReminderState.MOVED, "held")]
    row = reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0]
    assert (row.state, row.reason, local(row.due_at), local(row.first_due_at), row.sent_at, row.outbox_id) == (
        ReminderState.MOVED, "held", at(11, 26, 11), at(11, 26, 10), None, None
    )
    assert texts_to(estate, "web-1") == []
    # still held an hour later: checked again, moved again
    now.moment = at(11, 26, 11)
    assert [(p.state, p.reason) for p in runner.send_due()] == [(ReminderState.MOVED, "held")]
    assert local(reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0].due_at) == at(11, 26, 12)
    assert texts_to(estate, "web-1") == []

    with clock.frozen(at(11, 26, 11, 30)), session_scope(estate) as session:
        handoff.hand_back(session, sender_id="web-1", staff="zhang")
    now.moment = at(11, 26, 12)
    assert [(p.state, p.via) for p in runner.send_due()] == [(ReminderState.SENT, "webchat_outbox")]
    row = reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0]
    assert (row.state, local(row.sent_at)) == (ReminderState.SENT, at(11, 26, 12))
    (text,) = texts_to(estate, "web-1")
    assert "11月27日" in text


def test_a_held_reminder_late_in_the_evening_waits_for_the_morning(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang, sender="web-1")
    with clock.frozen(at(11, 30, 12)), session_scope(estate) as session:
        from bot.reminders import schedule

        owner = session.get(models.Owner, wang)
        schedule._add(
            session, owner=owner, sender_id="web-1", channel="socketio", purpose=ReminderPurpose.MONTHLY_BILL,
            due_at=at(11, 30, 20, 30), dedupe_key="test:held-late", period="2026-12",
        )
        handoff.take_over(session, sender_id="web-1", staff="zhang")
    processed = worker(estate, Clock(at(11, 30, 20, 30))).send_due()
    assert [(p.state, p.reason) for p in processed] == [(ReminderState.MOVED, "held")]
    assert local(reminders(estate)[0].due_at) == at(12, 1, 8)  # not 21:30: quiet hours still apply


def test_a_wechat_reminder_is_not_sent_into_a_held_conversation(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang, channel="wechat", sender="oWANG")
    wechat_inbound(estate, "oWANG", at(11, 25, 12))
    promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10), sender="oWANG")
    with clock.frozen(at(11, 26, 9)), session_scope(estate) as session:
        handoff.take_over(session, sender_id="oWANG", staff="zhang")
    processed = worker(estate, Clock(at(11, 26, 10)), wechat=True).send_due()
    assert [(p.state, p.reason) for p in processed] == [(ReminderState.MOVED, "held")]
    assert [r.kind for r in outbox_rows(estate)] == [models.OutboxKind.CONTROL, models.OutboxKind.JOINED]  # no reminder
    with session_scope(estate) as session:
        row = session.execute(select(Reminder).where(Reminder.purpose == ReminderPurpose.DAY_BEFORE)).scalar_one()
        assert (row.state, row.delivered_via, row.sent_at) == (ReminderState.MOVED, None, None)


def test_a_paid_reminder_in_a_held_conversation_is_cancelled_not_moved(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang, sender="web-1")
    promise_id = promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10), sender="web-1")
    with clock.frozen(at(11, 26, 9)), session_scope(estate) as session:
        handoff.take_over(session, sender_id="web-1", staff="zhang")
        session.get(PaymentPromise, promise_id).status = models.PromiseStatus.KEPT
    processed = worker(estate, Clock(at(11, 26, 10))).send_due()
    assert [(p.state, p.reason) for p in processed] == [(ReminderState.CANCELLED, "promise_kept")]


# --- delivery once ------------------------------------------------------------------------------------------


class Died(BaseException):
    """The worker process ends mid-step (SIGKILL, power): nothing after this line runs."""


@contextmanager
def dying_at_the_commit_of(state: ReminderState) -> Iterator[None]:
    """The worker process ends at the commit that would store a reminder in ``state``: nothing of it lands."""
    from sqlalchemy import event
    from sqlalchemy.orm import Session as OrmSession

    def crash(session: OrmSession) -> None:
        if any(isinstance(obj, Reminder) and obj.state == state for obj in list(session.identity_map.values())):
            raise Died()

    event.listen(OrmSession, "before_commit", crash)
    try:
        yield
    finally:
        event.remove(OrmSession, "before_commit", crash)


def _wechat_promise(url: str) -> int:
    wang = owner_id(url, WANG)
    link(url, wang, channel="wechat", sender="oWANG")
    wechat_inbound(url, "oWANG", at(11, 25, 12))
    return promise(url, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10), sender="oWANG")


def test_a_wechat_reminder_and_its_outbox_row_commit_together_and_go_out_once(estate: str) -> None:
    _wechat_promise(estate)
    runner = worker(estate, Clock(at(11, 26, 10)), wechat=True)
    with pytest.raises(Died), dying_at_the_commit_of(ReminderState.SENDING):  # the hand-over (its outbox row written)
        runner.send_due()
    assert outbox_rows(estate) == []  # neither the row nor the state was committed: due again, not lost
    row = reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0]
    assert (row.state, row.outbox_id) == (ReminderState.SCHEDULED, None)

    now = Clock(at(11, 26, 10, 6))  # past the claim's lease
    assert [(p.state, p.via) for p in worker(estate, now, name="worker-2", wechat=True).send_due()] == [
        (ReminderState.SENDING, None)
    ]
    assert worker(estate, now, name="worker-3", wechat=True).send_due() == []  # a handed-over row is not claimed
    [queued] = outbox_rows(estate)
    sender = Sender()
    assert delivered(estate, sender, now=at(11, 26, 10, 7)) == [row.id]
    assert delivered(estate, sender, now=at(11, 26, 10, 8)) == []  # settled once
    assert [openid for openid, _ in sender.texts] == ["oWANG"]
    row = reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0]
    assert (row.state, row.outbox_id, row.delivered_via, local(row.sent_at), row.locked_by) == (
        ReminderState.SENT, queued.id, "wechat_custom", at(11, 26, 10, 7), "worker-2"
    )


def test_a_sending_row_an_earlier_worker_left_mid_call_goes_to_a_person(estate: str) -> None:
    from bot.db.reminder_models import CallTask, CallTaskState

    _wechat_promise(estate)
    with session_scope(estate) as session:  # as an earlier version's worker left it, dying during its own call
        row = session.execute(select(Reminder).where(Reminder.purpose == ReminderPurpose.DAY_BEFORE)).scalar_one()
        row.state, row.locked_by = ReminderState.SENDING, "worker-old"
        row.locked_at = at(11, 26, 10).astimezone(dt.timezone.utc)
    now = Clock(at(11, 26, 10, 1))
    runner = worker(estate, now, name="worker-2", wechat=True)
    runner.tick()
    assert reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0].state is ReminderState.SENDING  # within the lease
    now.moment = at(11, 26, 10, 6)
    runner.tick()
    row = reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0]
    assert (row.state, row.reason, row.sent_at, row.locked_at) == (ReminderState.CALL_TASK, "send_unconfirmed", None, None)
    assert outbox_rows(estate) == []  # never sent a second time
    with session_scope(estate) as session:
        (task,) = session.execute(select(CallTask).where(CallTask.reminder_id == row.id)).scalars().all()
        assert (task.reason, task.state, task.purpose, task.owner_id) == (
            "send_unconfirmed", CallTaskState.OPEN, "day_before", row.owner_id
        )


def test_a_web_chat_reminder_and_its_outbox_row_commit_together(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang, sender="web-1")
    promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10), sender="web-1")
    runner = worker(estate, Clock(at(11, 26, 10)))
    with pytest.raises(Died), dying_at_the_commit_of(ReminderState.SENT):  # stored as sent, its outbox row written
        runner.send_due()
    # neither the outbox row nor the sent state was committed: the reminder is due again, not lost
    assert texts_to(estate, "web-1") == []
    row = reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0]
    assert (row.state, row.sent_at) == (ReminderState.SCHEDULED, None)
    assert [(p.state, p.via) for p in runner.send_due()] == [(ReminderState.SENT, "webchat_outbox")]
    assert len(texts_to(estate, "web-1")) == 1
