"""Reminders as rows (bot/reminders): scheduled at the right times, judged at send time, delivered per channel.

Every test runs the worker with an injected clock on SQLite and PostgreSQL. The worker sends nothing itself:
it queues outbox rows, a Rasa process's deliverer sends them (here one delivery round, :func:`delivered`), and
the worker reads the outcome back. The WeChat tests talk to the fake WeChat API over HTTP (customer-service and
template messages, the real protocol).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import threading
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List, Optional
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import clock
from bot.conversations.delivery.deliverer import Deliverer
from bot.conversations.delivery.senders import Outcome, WeChatCustomerServiceSender
from bot.conversations.delivery.senders import Sender as ChannelSender
from bot.db import migrate, models
from bot.db.models import Base, ConversationLink, Owner, PaymentPromise, PromiseStatus
from bot.db.reminder_models import (
    CallTask,
    CallTaskState,
    Reminder,
    ReminderOptOut,
    ReminderPurpose,
    ReminderState,
)
from bot.db.session import get_engine, session_scope
from bot.db.staff_models import StaffUser
from bot.owners import importer, payments
from bot.reminders import calls, delivery, ladder, policy, schedule
from bot.reminders.delivery import Template
from bot.reminders.policy import Policy
from bot.reminders.worker import ReminderWorker, settle_handed_over
from bot.services import escalations, owner_requests, queue
from bot.wechat.api import WeChatAPI
from tests.fakes.wechat_api import TEST_APP_ID, TEST_APP_SECRET, FakeWeChatAPI

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo" / "arrears.csv"
SH = ZoneInfo("Asia/Shanghai")
# The demo estate: 王建国 (3栋2单元501) owes 2,460.00 since 2026-03; 李秀英 (3栋2单元502) owes 820.00 since 2026-09.
WANG, LI = "3栋2单元501", "3栋2单元502"


def at(month: int, day: int, hour: int, minute: int = 0, year: int = 2026) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=SH)


class Clock:
    """The injected clock: tests move it."""

    def __init__(self, moment: dt.datetime) -> None:
        self.moment = moment

    def __call__(self) -> dt.datetime:
        return self.moment


class Sender:
    """WeChat as a Rasa process's deliverer sends to it, recording (the HTTP path is tested below)."""

    channel = "wechat"

    def __init__(self) -> None:
        self.texts: List[tuple] = []

    def reachable(self) -> None:
        return None

    async def send(self, sender_id: str, text: str, *, attempts: int, template: Any = None) -> Outcome:
        self.texts.append((sender_id, text))
        return Outcome(via="wechat_custom")


class NoLog:
    """The conversations as the deliverer records in them; these tests read the outbox and the reminders."""

    def ready(self) -> bool:
        return True

    async def set_paused(self, sender_id: str, paused: bool) -> bool:
        return False

    async def append_bot_message(self, sender_id: str, text: str, metadata: Dict[str, Any]) -> None:
        return None

    async def delivered_before(self, sender_id: str, outbox_id: int) -> bool:
        return False


def delivered(url: str, sender: ChannelSender, *, now: dt.datetime) -> List[int]:
    """A Rasa process's deliverer at ``now`` until the outbox is done, then the worker's settling.

    Returns:
        The reminders settled.
    """
    deliverer = Deliverer(NoLog(), lambda: [sender], database_url=url, worker="rasa:test")
    with clock.frozen(now):
        while asyncio.run(deliverer.deliver_once()):
            pass
        with session_scope(url) as session:
            return settle_handed_over(session)


def wechat_api(fake: FakeWeChatAPI, url: str) -> WeChatCustomerServiceSender:
    """The deliverer's WeChat sender over the fake API."""
    return WeChatCustomerServiceSender(WeChatAPI(fake.base_url, TEST_APP_ID, TEST_APP_SECRET), database_url=url)


@pytest.fixture
def estate(database_url: str) -> str:
    with session_scope(database_url) as session:
        importer.import_arrears(session, DEMO)
    return database_url


def owner_id(url: str, room: str) -> int:
    with session_scope(url) as session:
        return int(
            session.execute(select(Owner.id).join(models.Unit).where(models.Unit.code == _code(session, room))).scalar_one()
        )


def _code(session: Session, room: str) -> str:
    from bot.owners.units import parse_unit

    address = parse_unit(room)
    assert address is not None
    return address.code


def link(url: str, owner: int, *, channel: str = "socketio", sender: str = "web-1") -> None:
    with session_scope(url) as session:
        session.add(ConversationLink(channel=channel, sender_id=sender, owner_id=owner))


def wechat_inbound(url: str, openid: str, moment: dt.datetime) -> None:
    with session_scope(url) as session:
        session.add(
            models.WeChatInboundMessage(
                dedupe_key=f"msg:{openid}:{moment.timestamp()}", openid=openid, msg_type="text", received_at=moment
            )
        )


def promise(url: str, owner: int, *, due: dt.date, made: dt.datetime, amount: str = "2460.00", sender: str = "web-1") -> int:
    """A promise recorded as the bot records one, at ``made``; its reminders scheduled by the hook."""
    from bot.reminders import promise_changes

    with clock.frozen(made), session_scope(url) as session:
        row = owner_requests.create(
            session, PaymentPromise, message_id=None, sender_id=sender, owner_id=owner, amount=Decimal(amount), due_date=due
        )
        promise_changes.recorded(session, promise=row)
        return int(row.id)


def reminders(url: str, **where: object) -> List[Reminder]:
    with session_scope(url) as session:
        query = select(Reminder).order_by(Reminder.due_at, Reminder.id)
        for name, value in where.items():
            query = query.where(getattr(Reminder, name) == value)
        return list(session.execute(query).scalars())


def local(value: Optional[dt.datetime]) -> Optional[dt.datetime]:
    return None if value is None else schedule.local(value)


def worker(url: str, now: Clock, **kwargs: object) -> ReminderWorker:
    options: Dict[str, object] = {
        "database_url": url,
        "name": "worker-1",
        "wechat": False,
        "template": Template(),
        "policy": Policy(max_per_week=2, skip_holidays=False),
        "now": now,
        "poll_seconds": 0.01,
    }
    options.update(kwargs)
    return ReminderWorker(**options)  # type: ignore[arg-type]


def outbox_rows(url: str) -> List[models.OutboxMessage]:
    with session_scope(url) as session:
        return list(session.execute(select(models.OutboxMessage).order_by(models.OutboxMessage.id)).scalars())


# --- scheduling --------------------------------------------------------------------------------------------


def test_a_recorded_promise_gets_its_two_reminders_once(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang)
    promise_id = promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10))
    with clock.frozen(at(11, 24, 10, 5)), session_scope(estate) as session:  # scheduling again changes nothing
        schedule.schedule_for_promise(session, promise=session.get(PaymentPromise, promise_id))

    rows = reminders(estate)
    assert [(r.purpose, local(r.due_at), r.state, r.promise_id, r.sender_id, r.channel, r.owner_id) for r in rows] == [
        (ReminderPurpose.DAY_BEFORE, at(11, 26, 10), ReminderState.SCHEDULED, promise_id, "web-1", "socketio", wang),
        (ReminderPurpose.DUE_MORNING, at(11, 27, 9), ReminderState.SCHEDULED, promise_id, "web-1", "socketio", wang),
    ]
    assert all(local(r.first_due_at) == local(r.due_at) and r.attempts == 0 for r in rows)


def test_a_promise_for_tomorrow_made_after_ten_gets_only_the_morning_reminder(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang)
    promise(estate, wang, due=dt.date(2026, 11, 25), made=at(11, 24, 15))
    assert [(r.purpose, local(r.due_at)) for r in reminders(estate)] == [(ReminderPurpose.DUE_MORNING, at(11, 25, 9))]


def test_each_reminder_goes_out_at_its_time_through_the_web_chat_outbox(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang)
    promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10))
    now = Clock(at(11, 26, 9, 59))
    runner = worker(estate, now)

    assert runner.tick() == []
    now.moment = at(11, 26, 10)
    sent = runner.tick()
    assert [(p.state, p.via) for p in sent] == [(ReminderState.SENT, "webchat_outbox")]
    day_before = reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0]
    assert (day_before.state, local(day_before.sent_at), day_before.locked_by, day_before.attempts) == (
        ReminderState.SENT,
        at(11, 26, 10),
        "worker-1",
        1,
    )
    rows = outbox_rows(estate)
    assert [(r.id, r.sender_id, r.channel, r.kind, r.state) for r in rows] == [
        (day_before.outbox_id, "web-1", "socketio", models.OutboxKind.TEXT, models.OutboxState.PENDING)
    ]
    assert "11月27日" in rows[0].text and "如果您已经交过了" in rows[0].text

    now.moment = at(11, 27, 8, 59)
    assert runner.tick() == []
    now.moment = at(11, 27, 9, 0)
    assert [p.via for p in runner.tick()] == ["webchat_outbox"]
    assert [r.state for r in reminders(estate)] == [ReminderState.SENT, ReminderState.SENT]


def test_monthly_notices_go_to_owners_in_arrears_once_a_month(estate: str) -> None:
    wang, li = owner_id(estate, WANG), owner_id(estate, LI)
    link(estate, wang)
    with clock.frozen(at(12, 1, 0, 5)), session_scope(estate) as session:
        first = schedule.schedule_monthly(session, today=dt.date(2026, 12, 1))
        second = schedule.schedule_monthly(session, today=dt.date(2026, 12, 2))
    assert second == []
    rows = reminders(estate, purpose=ReminderPurpose.MONTHLY_BILL)
    chen = owner_id(estate, "A座808")  # owes nothing: no notice
    assert chen not in {r.owner_id for r in rows}
    by_owner = {r.owner_id: r for r in rows}
    assert len(first) == len(rows) and {wang, li} <= set(by_owner)
    assert (local(by_owner[wang].due_at), by_owner[wang].period, by_owner[wang].channel) == (at(12, 1, 10), "2026-12", "socketio")
    assert (by_owner[li].sender_id, by_owner[li].channel) == (None, None)  # never verified anywhere

    with clock.frozen(at(12, 9, 10)), session_scope(estate) as session:  # too late in the month: nothing new
        assert schedule.schedule_monthly(session, today=dt.date(2026, 12, 9)) == []


# --- the policy at send time --------------------------------------------------------------------------------


def test_quiet_hours_move_a_reminder_to_eight_never_drop_it(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang)
    with clock.frozen(at(11, 30, 12)), session_scope(estate) as session:
        owner = session.get(Owner, wang)
        schedule._add(
            session, owner=owner, sender_id="web-1", channel="socketio", purpose=ReminderPurpose.MONTHLY_BILL,
            due_at=at(11, 30, 21, 30), dedupe_key="test:late", period="2026-12",
        )
    now = Clock(at(11, 30, 21, 30))
    runner = worker(estate, now)
    assert [(p.state, p.reason) for p in runner.send_due()] == [(ReminderState.MOVED, "quiet_hours")]
    row = reminders(estate)[0]
    assert (row.state, local(row.due_at), local(row.first_due_at), row.reason) == (
        ReminderState.MOVED, at(12, 1, 8), at(11, 30, 21, 30), "quiet_hours"
    )
    now.moment = at(12, 1, 7, 59)
    assert runner.send_due() == []
    now.moment = at(12, 1, 8)
    assert [p.state for p in runner.send_due()] == [ReminderState.SENT]
    assert local(reminders(estate)[0].sent_at) == at(12, 1, 8)


def test_early_morning_moves_to_eight_the_same_day_and_holidays_to_the_next_working_day() -> None:
    plain = Policy(max_per_week=2, skip_holidays=False)
    assert policy.earliest_allowed(at(11, 25, 6), policy=plain) == at(11, 25, 8)
    assert policy.earliest_allowed(at(11, 25, 12), policy=plain) == at(11, 25, 12)
    holidays = Policy(max_per_week=2, skip_holidays=True)
    # Spring Festival 2026: 2月15日–2月23日 in the State Council's calendar.
    assert policy.is_public_holiday(dt.date(2026, 2, 17)) and not policy.is_public_holiday(dt.date(2026, 2, 24))
    assert policy.earliest_allowed(at(2, 17, 10), policy=holidays) == at(2, 24, 8)
    assert policy.earliest_allowed(at(2, 17, 10), policy=plain) == at(2, 17, 10)
    assert not policy.is_public_holiday(dt.date(2026, 11, 28))  # a Saturday is no holiday
    assert policy.is_public_holiday(dt.date(2031, 1, 1)) is None  # a year nobody knows: held (test_holidays.py)


def test_at_most_two_proactive_messages_per_owner_in_seven_days(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang)
    with clock.frozen(at(11, 20, 12)), session_scope(estate) as session:
        owner = session.get(Owner, wang)
        for day in (23, 24, 25):
            schedule._add(
                session, owner=owner, sender_id="web-1", channel="socketio", purpose=ReminderPurpose.MONTHLY_BILL,
                due_at=at(11, day, 10), dedupe_key=f"test:{day}",
            )
    now = Clock(at(11, 23, 10))
    runner = worker(estate, now)
    assert [p.state for p in runner.send_due()] == [ReminderState.SENT]
    now.moment = at(11, 24, 10)
    assert [p.state for p in runner.send_due()] == [ReminderState.SENT]
    now.moment = at(11, 25, 10)
    assert [(p.state, p.reason) for p in runner.send_due()] == [(ReminderState.MOVED, "weekly_cap")]
    third = reminders(estate, dedupe_key="test:25")[0]
    assert (third.state, local(third.due_at)) == (ReminderState.MOVED, at(11, 30, 10, 0) + dt.timedelta(seconds=1))
    now.moment = at(11, 30, 10, 0) + dt.timedelta(seconds=1)
    assert [p.state for p in runner.send_due()] == [ReminderState.SENT]


def test_a_payment_cancels_the_reminders_of_a_kept_promise(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang)
    promise_id = promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10))
    with clock.frozen(at(11, 25, 15)), session_scope(estate) as session:
        payments.record_payment(
            session, unit=_code(session, WANG), amount="2460.00", paid_at=at(11, 25, 14), reference="WX-1", actor="test"
        )
    with session_scope(estate) as session:
        assert session.get(PaymentPromise, promise_id).status is PromiseStatus.KEPT
    runner = worker(estate, Clock(at(11, 26, 10)))
    assert [(p.state, p.reason) for p in runner.send_due()] == [(ReminderState.CANCELLED, "promise_kept")]
    day_before = reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0]
    assert (day_before.state, day_before.reason, day_before.cancelled_by, day_before.sent_at) == (
        ReminderState.CANCELLED, "promise_kept", "system", None
    )
    runner.tick()  # the daily run cancels what is left of a kept promise at once
    assert [(r.state, r.reason) for r in reminders(estate)] == [(ReminderState.CANCELLED, "promise_kept")] * 2
    assert outbox_rows(estate) == []


def test_no_monthly_notice_once_the_arrears_are_paid(estate: str) -> None:
    li = owner_id(estate, LI)
    link(estate, li, sender="web-li")
    with clock.frozen(at(12, 1, 0, 5)), session_scope(estate) as session:
        schedule.schedule_monthly(session, today=dt.date(2026, 12, 1))
        payments.record_payment(
            session, unit=_code(session, LI), amount="820.00", paid_at=at(12, 1, 0, 1), reference="WX-2", actor="test"
        )
    processed = worker(estate, Clock(at(12, 1, 10))).send_due()
    li_row = reminders(estate, owner_id=li)[0]
    assert (li_row.state, li_row.reason) == (ReminderState.CANCELLED, "no_arrears")
    assert li_row.id in {p.reminder_id for p in processed}


def test_an_opt_out_is_recorded_and_honoured(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang)
    promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10))
    with clock.frozen(at(11, 24, 11)), session_scope(estate) as session:
        schedule.record_opt_out(session, owner_id=wang, sender_id="web-1", channel="socketio", how="chat", text="退订")
    with session_scope(estate) as session:
        opt_out = session.execute(select(ReminderOptOut)).scalar_one()
        unit_id = session.get(Owner, wang).unit_id
    assert (opt_out.owner_id, opt_out.unit_id, opt_out.sender_id, opt_out.how, opt_out.text) == (wang, unit_id, "web-1", "chat", "退订")
    assert [(r.state, r.reason) for r in reminders(estate)] == [(ReminderState.SKIPPED, "opted_out")] * 2
    with clock.frozen(at(12, 1, 0, 5)), session_scope(estate) as session:  # scheduled later: skipped when due
        schedule.schedule_monthly(session, today=dt.date(2026, 12, 1))
    worker(estate, Clock(at(12, 1, 10))).send_due()
    monthly = reminders(estate, owner_id=wang, purpose=ReminderPurpose.MONTHLY_BILL)[0]
    assert (monthly.state, monthly.reason, monthly.sent_at) == (ReminderState.SKIPPED, "opted_out", None)
    assert outbox_rows(estate) == []


def test_an_unverified_conversation_gets_nothing_in_writing_and_a_promise_goes_to_the_call_list(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang, channel="rest", sender="rest-1")  # REST links are never trusted
    promise_id = promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10), sender="rest-1")
    assert {(r.sender_id, r.channel) for r in reminders(estate)} == {(None, None)}
    worker(estate, Clock(at(11, 26, 10))).send_due()
    row = reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0]
    # A promise's reminder nobody can receive in writing is a collector's call (never silently dropped).
    assert (row.state, row.reason, row.delivered_via, row.sent_at) == (
        ReminderState.CALL_TASK, "unverified", "call_task", None
    )
    # A conversation later bound to another owner is not this owner's either.
    li = owner_id(estate, LI)
    with session_scope(estate) as session:
        morning = session.execute(select(Reminder).where(Reminder.purpose == ReminderPurpose.DUE_MORNING)).scalar_one()
        session.add(ConversationLink(channel="socketio", sender_id="web-li", owner_id=li))
        morning.sender_id, morning.channel = "web-li", "socketio"
    worker(estate, Clock(at(11, 27, 9))).send_due()
    row = reminders(estate, purpose=ReminderPurpose.DUE_MORNING)[0]
    assert (row.state, row.reason, row.sender_id, row.channel) == (ReminderState.CALL_TASK, "unverified", None, None)
    with session_scope(estate) as session:
        tasks = [
            (t.reminder_id is not None, t.promise_id, t.owner_id, t.reason, t.purpose, t.state)
            for t in session.execute(select(CallTask).order_by(CallTask.id)).scalars()
        ]
    assert tasks == [
        (True, promise_id, wang, "unverified", "day_before", CallTaskState.OPEN),
        (True, promise_id, wang, "unverified", "due_morning", CallTaskState.OPEN),
    ]
    assert outbox_rows(estate) == []


def test_a_monthly_notice_to_an_unverified_owner_is_skipped(estate: str) -> None:
    with clock.frozen(at(12, 1, 0)), session_scope(estate) as session:
        schedule.schedule_monthly(session, today=dt.date(2026, 12, 1))
    worker(estate, Clock(at(12, 1, 10))).send_due()
    rows = reminders(estate, purpose=ReminderPurpose.MONTHLY_BILL)
    assert len(rows) == 5  # the demo owners in arrears, none of them verified anywhere
    assert {(r.state, r.reason, r.sender_id) for r in rows} == {(ReminderState.SKIPPED, "unverified", None)}
    with session_scope(estate) as session:
        assert session.execute(select(CallTask)).scalars().all() == []


def test_no_notice_ever_names_an_amount(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang)
    promise_id = promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10), amount="1234.56")
    texts = []
    with clock.frozen(at(11, 24, 12)), session_scope(estate) as session:
        owner = session.get(Owner, wang)
        for purpose in ReminderPurpose:
            row = schedule._add(
                session, owner=owner, sender_id="web-1", channel="socketio", purpose=purpose, due_at=at(11, 30, 10),
                dedupe_key=f"test:{purpose.value}", promise_id=None if purpose is ReminderPurpose.MONTHLY_BILL else promise_id,
            )
            text = delivery.compose(session, row)
            texts.append(text)
            values = delivery.template_values(session, row, text)
            texts.extend(values.values())
    joined = "\n".join(texts)
    for amount in ("1234", "1,234", "2460", "2,460", "元"):
        assert amount not in joined
    assert not re.search(r"\d+\.\d\d", joined)
    assert joined.count("如果您已经交过了，请忽略这条消息") >= 4


# --- restarts and concurrency ---------------------------------------------------------------------------------


def test_reminders_survive_a_restart_of_the_worker(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang)
    promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10))
    first = worker(estate, Clock(at(11, 24, 12)), name="before-restart")
    first.tick()
    get_engine(estate).dispose()  # the process is gone; only the rows remain
    second = worker(estate, Clock(at(11, 26, 10, 1)), name="after-restart")
    assert [p.state for p in second.tick()] == [ReminderState.SENT]
    row = reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0]
    assert (row.state, row.locked_by) == (ReminderState.SENT, "after-restart")


@pytest.fixture
def postgres_estate(postgres_url: str):
    migrate.upgrade(postgres_url)
    with session_scope(postgres_url) as session:
        importer.import_arrears(session, DEMO)
    yield postgres_url
    with get_engine(postgres_url).begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


def test_two_workers_on_postgresql_never_send_a_reminder_twice(postgres_estate: str) -> None:
    url = postgres_estate
    wang = owner_id(url, WANG)
    link(url, wang, channel="wechat", sender="oWANG")
    wechat_inbound(url, "oWANG", at(11, 24, 9))
    with clock.frozen(at(11, 24, 9, 30)), session_scope(url) as session:
        owner = session.get(Owner, wang)
        for index in range(30):
            schedule._add(
                session, owner=owner, sender_id="oWANG", channel="wechat", purpose=ReminderPurpose.MONTHLY_BILL,
                due_at=at(11, 24, 9, 45), dedupe_key=f"race:{index}",
            )
    sender = Sender()
    lots = Policy(max_per_week=1000, skip_holidays=False)
    now = Clock(at(11, 24, 10))
    workers = [worker(url, now, name=f"racer-{n}", wechat=True, policy=lots) for n in (1, 2)]
    with clock.frozen(now.moment):  # both threads share the process clock
        threads = [threading.Thread(target=w.send_due) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    rows = reminders(url)
    assert [r.state for r in rows] == [ReminderState.SENDING] * 30  # handed to the outbox, one row each
    assert len({r.outbox_id for r in rows}) == 30 and len(outbox_rows(url)) == 30
    assert len(delivered(url, sender, now=at(11, 24, 10))) == 30
    rows = reminders(url)
    assert [r.state for r in rows] == [ReminderState.SENT] * 30
    assert all(r.attempts == 1 for r in rows)
    assert len(sender.texts) == 30  # one message per reminder, none twice
    by_worker = {r.locked_by for r in rows}
    assert by_worker == {"racer-1", "racer-2"}  # both took part


# --- broken promises and the ladder -------------------------------------------------------------------------


def test_a_broken_promise_is_followed_up_and_the_second_goes_to_a_person(estate: str) -> None:
    li = owner_id(estate, LI)
    link(estate, li, sender="web-li")
    first = promise(estate, li, due=dt.date(2026, 11, 25), made=at(11, 24, 10), amount="820.00", sender="web-li")
    now = Clock(at(11, 28, 0, 30))  # due 11-25, two days' grace: broken on the 28th
    runner = worker(estate, now)
    runner.tick()
    with session_scope(estate) as session:
        assert session.get(PaymentPromise, first).status is PromiseStatus.BROKEN
    followup = reminders(estate, purpose=ReminderPurpose.BROKEN_FOLLOWUP)[0]
    assert (followup.promise_id, local(followup.due_at), followup.state, followup.sender_id) == (
        first, at(11, 28, 10), ReminderState.SCHEDULED, "web-li"
    )
    now.moment = at(11, 28, 10)
    assert [p.via for p in runner.tick()] == ["webchat_outbox"]
    assert "11月25日" in outbox_rows(estate)[-1].text
    with session_scope(estate) as session:
        assert session.execute(select(models.Escalation)).scalars().all() == []

    second = promise(estate, li, due=dt.date(2026, 11, 30), made=at(11, 28, 11), amount="820.00", sender="web-li")
    now.moment = at(12, 3, 0, 30)
    runner.tick()
    runner.tick()  # the daily jobs are idempotent
    with session_scope(estate) as session:
        assert session.get(PaymentPromise, second).status is PromiseStatus.BROKEN
        found = session.execute(select(models.Escalation)).scalars().all()
    assert [(e.reason, e.owner_id, e.sender_id, e.state) for e in found] == [
        ("broken_promises", li, "web-li", models.EscalationState.PENDING)
    ]
    assert len(reminders(estate, purpose=ReminderPurpose.BROKEN_FOLLOWUP)) == 2


def test_old_arrears_go_to_the_manager(estate: str) -> None:
    wang = owner_id(estate, WANG)  # arrears since 2026-03: nine months by December
    for index, due in enumerate((dt.date(2026, 11, 25), dt.date(2026, 11, 26))):
        promise(estate, wang, due=due, made=at(11, 24, 10 + index), sender="web-1")
    with clock.frozen(at(12, 1, 9)), session_scope(estate) as session:
        payments.evaluate_promises(session, today=dt.date(2026, 12, 1))
        found = ladder.escalate_repeat_breakers(session, months=6)
    assert [(e.reason, e.owner_id) for e in found] == [("old_arrears", wang)]


def _staff(url: str, *people: tuple) -> None:
    from bot.services import staff_users

    with session_scope(url) as session:
        for username, role in people:
            staff_users.create_user(
                session, username=username, password="correct horse battery 9", role=role, actor="test"
            )


def _broken_twice(url: str, owner: int, sender: str) -> None:
    for index, due in enumerate((dt.date(2026, 11, 25), dt.date(2026, 11, 26))):
        promise(url, owner, due=due, made=at(11, 24, 10 + index), sender=sender)


def _ladder(url: str) -> List[tuple]:
    with clock.frozen(at(12, 1, 9)), session_scope(url) as session:
        payments.evaluate_promises(session, today=dt.date(2026, 12, 1))
        found = ladder.escalate_repeat_breakers(session, months=6)
        return [(e.reason, e.owner_id, e.assignee, e.state) for e in found]


def test_the_second_broken_promise_is_assigned_to_the_least_busy_collector(estate: str) -> None:
    _staff(estate, ("gone", "collector"), ("qian", "collector"), ("sun", "collector"), ("zhou", "supervisor"))
    wang = owner_id(estate, WANG)
    with session_scope(estate) as session:
        session.execute(select(StaffUser).where(StaffUser.username == "gone")).scalar_one().active = False
        busy = escalations.escalate(  # qian already has a case of another owner's
            session, reason=escalations.Reason.REQUEST_HUMAN, detail="", owner_id=wang,
            channel="socketio", sender_id="web-other", message_id="busy-1",
        )
        session.flush()
        queue.assign(session, escalation_id=int(busy.id), staff="qian", by="zhou")
    li = owner_id(estate, LI)  # arrears of a few months: a collector's case
    _broken_twice(estate, li, "web-li")
    assert _ladder(estate) == [("broken_promises", li, "sun", models.EscalationState.PENDING)]
    with session_scope(estate) as session:
        history = session.execute(
            select(models.EscalationEvent.action, models.EscalationEvent.actor, models.EscalationEvent.assignee)
            .order_by(models.EscalationEvent.id.desc())
            .limit(1)
        ).one()
    assert tuple(history) == ("assign", ladder.LADDER_ACTOR, "sun")
    assert _ladder(estate) == [("broken_promises", li, "sun", models.EscalationState.PENDING)]  # idempotent


def test_the_collector_who_already_has_the_owner_keeps_them(estate: str) -> None:
    _staff(estate, ("qian", "collector"), ("sun", "collector"))
    li = owner_id(estate, LI)
    with session_scope(estate) as session:
        earlier = escalations.escalate(
            session, reason=escalations.Reason.REQUEST_HUMAN, detail="", owner_id=li,
            channel="socketio", sender_id="web-li", message_id="earlier-1",
        )
        session.flush()
        queue.assign(session, escalation_id=int(earlier.id), staff="qian", by="qian")
    _broken_twice(estate, li, "web-li")
    assert [row[2] for row in _ladder(estate) if row[0] == "broken_promises"] == ["qian"]


def test_old_arrears_are_assigned_to_a_manager_and_nobody_of_the_role_leaves_it_in_the_queue(estate: str) -> None:
    wang = owner_id(estate, WANG)  # arrears since 2026-03: nine months by December
    _broken_twice(estate, wang, "web-1")
    assert _ladder(estate) == [("old_arrears", wang, None, models.EscalationState.PENDING)]  # no manager yet
    _staff(estate, ("qian", "collector"), ("li_pm", "manager"))
    assert _ladder(estate) == [("old_arrears", wang, "li_pm", models.EscalationState.PENDING)]


# --- delivery per channel (the fake WeChat API over HTTP) -------------------------------------------------------


@pytest.fixture
def fake_wechat():
    fake = FakeWeChatAPI().start()
    yield fake
    fake.stop()


def _wechat_reminder(url: str, *, last_inbound: Optional[dt.datetime]) -> int:
    wang = owner_id(url, WANG)
    link(url, wang, channel="wechat", sender="oWANG")
    if last_inbound is not None:
        wechat_inbound(url, "oWANG", last_inbound)
    return promise(url, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10), sender="oWANG")


def test_wechat_inside_the_window_is_a_customer_service_message(estate: str, fake_wechat: FakeWeChatAPI) -> None:
    _wechat_reminder(estate, last_inbound=at(11, 25, 12))
    template = Template("TPL-1", {"first": "purpose"})
    processed = worker(estate, Clock(at(11, 26, 10)), wechat=True, template=template).send_due()
    assert [(p.state, p.via) for p in processed] == [(ReminderState.SENDING, None)]
    assert fake_wechat.sent == []  # the worker only queues
    [row] = outbox_rows(estate)
    assert (row.channel, row.kind, row.staff, row.template_id, row.state) == (
        "wechat", models.OutboxKind.TEXT, None, "TPL-1", models.OutboxState.PENDING
    )  # the template goes with it, for a window that closes before the send
    reminder = reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0]
    assert (reminder.state, reminder.outbox_id, reminder.sent_at) == (ReminderState.SENDING, row.id, None)

    assert delivered(estate, wechat_api(fake_wechat, estate), now=at(11, 26, 10, 1)) == [reminder.id]
    assert [(m.touser, m.msgtype) for m in fake_wechat.sent] == [("oWANG", "text")]
    assert "明天（11月27日" in (fake_wechat.sent[0].content or "") and fake_wechat.templates == []
    reminder = reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0]
    assert (reminder.state, reminder.delivered_via, local(reminder.sent_at)) == (
        ReminderState.SENT, "wechat_custom", at(11, 26, 10, 1)
    )
    assert [(r.state, r.delivered_via) for r in outbox_rows(estate)] == [(models.OutboxState.DELIVERED, "wechat_custom")]


def test_wechat_outside_the_window_is_the_configured_template(estate: str, fake_wechat: FakeWeChatAPI) -> None:
    _wechat_reminder(estate, last_inbound=at(11, 22, 12))  # more than 48 hours before the 26th, 10:00
    fields = {"first": "purpose", "keyword1": "unit", "keyword2": "date", "remark": "note"}
    processed = worker(estate, Clock(at(11, 26, 10)), wechat=True, template=Template("TPL-1", fields)).send_due()
    assert [(p.state, p.via) for p in processed] == [(ReminderState.SENDING, None)]
    delivered(estate, wechat_api(fake_wechat, estate), now=at(11, 26, 10))
    assert fake_wechat.sent == []
    [template] = fake_wechat.templates
    assert (template.touser, template.template_id) == ("oWANG", "TPL-1")
    assert template.data == {
        "first": "物业费交费提醒",
        "keyword1": "3-2-501",
        "keyword2": "11月27日（周五）",
        "remark": "如果您已经交过了，请忽略这条消息。不想再收到提醒，回复“退订”即可。",
    }
    row = reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0]
    assert (row.state, row.delivered_via) == (ReminderState.SENT, "wechat_template")


def test_a_window_that_closes_before_the_send_falls_back_to_the_template(estate: str, fake_wechat: FakeWeChatAPI) -> None:
    _wechat_reminder(estate, last_inbound=at(11, 25, 12))
    worker(estate, Clock(at(11, 26, 10)), wechat=True, template=Template("TPL-1", {"first": "purpose"})).send_due()
    fake_wechat.fail_next_sends(45015)  # WeChat: the owner has not written for 48 hours
    delivered(estate, wechat_api(fake_wechat, estate), now=at(11, 26, 10))
    assert fake_wechat.sent == [] and [t.template_id for t in fake_wechat.templates] == ["TPL-1"]
    row = reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0]
    assert (row.state, row.delivered_via) == (ReminderState.SENT, "wechat_template")


def test_wechat_outside_the_window_without_a_template_is_a_call_task(estate: str, fake_wechat: FakeWeChatAPI) -> None:
    promise_id = _wechat_reminder(estate, last_inbound=None)
    processed = worker(estate, Clock(at(11, 26, 10)), wechat=True, template=Template()).send_due()
    assert [(p.state, p.reason) for p in processed] == [(ReminderState.CALL_TASK, "wechat_window_closed_no_template")]
    assert outbox_rows(estate) == []
    delivered(estate, wechat_api(fake_wechat, estate), now=at(11, 26, 10))
    assert fake_wechat.sent == [] and fake_wechat.templates == []
    row = reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0]
    with session_scope(estate) as session:
        task = session.execute(select(CallTask)).scalar_one()
    assert (task.reminder_id, task.promise_id, task.owner_id, task.reason, task.purpose, task.state) == (
        row.id, promise_id, owner_id(estate, WANG), "wechat_window_closed_no_template", "day_before", CallTaskState.OPEN
    )
    assert (row.state, row.delivered_via, row.sent_at) == (ReminderState.CALL_TASK, "call_task", None)


def test_a_wechat_refusal_becomes_a_call_task(estate: str, fake_wechat: FakeWeChatAPI) -> None:
    promise_id = _wechat_reminder(estate, last_inbound=at(11, 25, 12))
    worker(estate, Clock(at(11, 26, 10)), wechat=True).send_due()
    fake_wechat.fail_next_sends(43004)  # the owner unfollowed
    delivered(estate, wechat_api(fake_wechat, estate), now=at(11, 26, 10))
    row = reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0]
    assert (row.state, row.reason, row.delivered_via, row.sent_at) == (
        ReminderState.CALL_TASK, "wechat_api_error:43004", None, None
    )
    with session_scope(estate) as session:
        task = session.execute(select(CallTask)).scalar_one()
    assert (task.reminder_id, task.promise_id, task.reason, task.state) == (
        row.id, promise_id, "wechat_api_error:43004", CallTaskState.OPEN
    )
    assert [(r.state, r.failure) for r in outbox_rows(estate)] == [(models.OutboxState.FAILED, "wechat_api_error:43004")]


def test_without_wechat_configured_a_wechat_reminder_is_a_call_task(estate: str) -> None:
    _wechat_reminder(estate, last_inbound=at(11, 25, 12))
    processed = worker(estate, Clock(at(11, 26, 10)), wechat=False).send_due()
    assert [(p.state, p.reason) for p in processed] == [(ReminderState.CALL_TASK, "wechat_not_configured")]
    assert outbox_rows(estate) == []


def test_the_call_list_is_closed_with_a_note(estate: str) -> None:
    wang = owner_id(estate, WANG)
    with clock.frozen(at(11, 26, 10)), session_scope(estate) as session:
        unit_id = session.get(Owner, wang).unit_id
        task = calls.create(session, unit_id=unit_id, owner_id=wang, reason="no_push_channel")
        task_id = task.id
    with session_scope(estate) as session:
        listed = calls.listing(session)
        with pytest.raises(ValueError):
            calls.mark_done(session, task_id=task_id, actor="wang", note="  ")
    assert [(c.id, c.unit_code, c.owner_name, c.reason, c.state) for c in listed] == [
        (task_id, "3-2-501", "王建国", "no_push_channel", CallTaskState.OPEN)
    ]
    with clock.frozen(at(11, 26, 11)), session_scope(estate) as session:
        assert calls.mark_done(session, task_id=task_id, actor="wang", note="业主说周五交")
        assert not calls.mark_done(session, task_id=task_id, actor="li", note="again")
    with session_scope(estate) as session:
        done = calls.listing(session, state=None)[0]
        assert calls.listing(session) == []
    assert (done.state, done.note, done.closed_by, done.closed_at) == (CallTaskState.DONE, "业主说周五交", "wang", at(11, 26, 11))


def test_rescheduling_a_promise_moves_its_reminders(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang)
    promise_id = promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10))
    with clock.frozen(at(11, 25, 12)), session_scope(estate) as session:
        row = session.get(PaymentPromise, promise_id)
        schedule.reschedule_promise(session, promise=row, new_date=dt.date(2026, 12, 4))
    rows = reminders(estate)
    assert [(r.purpose, local(r.due_at), r.state, r.reason, local(r.first_due_at)) for r in rows] == [
        (ReminderPurpose.DAY_BEFORE, at(12, 3, 10), ReminderState.MOVED, "promise_rescheduled", at(11, 26, 10)),
        (ReminderPurpose.DUE_MORNING, at(12, 4, 9), ReminderState.MOVED, "promise_rescheduled", at(11, 27, 9)),
    ]


# --- the migration ----------------------------------------------------------------------------------------------

REMINDER_TABLES = {"reminders", "reminder_opt_outs", "call_tasks"}


def test_migration_0012_matches_the_models_and_downgrades(database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import inspect

    engine = get_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diffs = [d for d in compare_metadata(context, Base.metadata) if any(t in repr(d) for t in REMINDER_TABLES)]
    assert diffs == []
    migrate.downgrade(database_url, "0011")
    assert REMINDER_TABLES.isdisjoint(inspect(get_engine(database_url)).get_table_names())
    migrate.upgrade(database_url)
    assert REMINDER_TABLES <= set(inspect(get_engine(database_url)).get_table_names())


def test_a_day_before_reminder_that_could_not_go_out_in_time_is_not_sent_late(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang)
    promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10))
    processed = worker(estate, Clock(at(11, 27, 9, 30))).send_due()  # the worker was down until the due day
    assert [(p.state, p.reason) for p in processed] == [
        (ReminderState.CANCELLED, "promise_past"),
        (ReminderState.SENT, None),
    ]
    assert [r.purpose for r in reminders(estate, state=ReminderState.SENT)] == [ReminderPurpose.DUE_MORNING]


def test_a_public_holiday_moves_the_reminder_to_the_next_working_day_when_configured(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang)
    with clock.frozen(at(9, 30, 12)), session_scope(estate) as session:
        owner = session.get(Owner, wang)
        schedule._add(
            session, owner=owner, sender_id="web-1", channel="socketio", purpose=ReminderPurpose.MONTHLY_BILL,
            due_at=at(10, 1, 10), dedupe_key="test:national-day", period="2026-10",
        )
    now = Clock(at(10, 1, 10))
    runner = worker(estate, now, policy=Policy(max_per_week=2, skip_holidays=True))  # chinesecalendar's 2026 data
    assert [(p.state, p.reason) for p in runner.send_due()] == [(ReminderState.MOVED, "holiday")]
    moved = reminders(estate)[0]
    assert local(moved.due_at) == at(10, 8, 8)  # 国庆 2026: 10月1日–7日
    now.moment = at(10, 8, 8)
    assert [p.state for p in runner.send_due()] == [ReminderState.SENT]


# --- where the reminder goes, failures, races and stopping (issue 11 review) ---------------------------------


def test_an_owner_verified_after_scheduling_gets_the_notice_where_they_are_now(estate: str) -> None:
    wang = owner_id(estate, WANG)
    with clock.frozen(at(12, 1, 0)), session_scope(estate) as session:
        schedule.schedule_monthly(session, today=dt.date(2026, 12, 1))
    assert {(r.sender_id, r.channel) for r in reminders(estate)} == {(None, None)}
    link(estate, wang, channel="wechat", sender="oWANG")  # verified on WeChat at 09:00
    wechat_inbound(estate, "oWANG", at(12, 1, 9))
    sender = Sender()
    processed = worker(estate, Clock(at(12, 1, 10)), wechat=True).send_due()
    delivered(estate, sender, now=at(12, 1, 10))
    row = reminders(estate, owner_id=wang)[0]
    assert (row.state, row.reason, row.sender_id, row.channel, row.delivered_via) == (
        ReminderState.SENT, None, "oWANG", "wechat", "wechat_custom"
    )
    assert [openid for openid, _ in sender.texts] == ["oWANG"]
    li = reminders(estate, owner_id=owner_id(estate, LI))[0]
    assert (li.state, li.reason) == (ReminderState.SKIPPED, "unverified")
    assert sorted((p.state.value, p.via or "") for p in processed) == [("sending", "")] + [("skipped", "")] * 4


def test_an_owner_who_moved_to_wechat_gets_the_reminder_on_wechat_not_in_the_old_browser(estate: str) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang)  # verified in web chat, where the promise was made
    promise(estate, wang, due=dt.date(2026, 11, 27), made=at(11, 24, 10))
    assert {(r.sender_id, r.channel) for r in reminders(estate)} == {("web-1", "socketio")}
    link(estate, wang, channel="wechat", sender="oWANG")  # now talks on WeChat
    wechat_inbound(estate, "oWANG", at(11, 25, 12))
    sender = Sender()
    worker(estate, Clock(at(11, 26, 10)), wechat=True).send_due()
    delivered(estate, sender, now=at(11, 26, 10))
    row = reminders(estate, purpose=ReminderPurpose.DAY_BEFORE)[0]
    assert (row.state, row.sender_id, row.channel, row.delivered_via) == (
        ReminderState.SENT, "oWANG", "wechat", "wechat_custom"
    )
    assert [openid for openid, _ in sender.texts] == ["oWANG"]
    assert [(r.channel, r.sender_id) for r in outbox_rows(estate)] == [("wechat", "oWANG")]  # not the old browser


def test_a_reminder_that_keeps_failing_does_not_block_the_others(estate: str, monkeypatch: pytest.MonkeyPatch) -> None:
    wang, li = owner_id(estate, WANG), owner_id(estate, LI)
    link(estate, wang)
    link(estate, li, sender="web-li")
    with clock.frozen(at(11, 20, 12)), session_scope(estate) as session:
        for who, sender, minute in ((wang, "web-1", 0), (li, "web-li", 5)):
            schedule._add(
                session, owner=session.get(Owner, who), sender_id=sender, channel="socketio",
                purpose=ReminderPurpose.MONTHLY_BILL, due_at=at(11, 24, 10, minute), dedupe_key=f"fail:{who}",
            )
    bad = reminders(estate, owner_id=wang)[0].id
    compose = delivery.compose

    def broken(session: Session, reminder: Reminder) -> str:
        if reminder.id == bad:
            raise RuntimeError("template data missing")
        return compose(session, reminder)

    monkeypatch.setattr(delivery, "compose", broken)
    now = Clock(at(11, 24, 10, 10))
    runner = worker(estate, now)
    processed = runner.send_due()
    assert [(p.reminder_id, p.state, p.reason) for p in processed] == [
        (bad, ReminderState.SCHEDULED, "error:RuntimeError"),
        (reminders(estate, owner_id=li)[0].id, ReminderState.SENT, None),
    ]
    row = reminders(estate, owner_id=wang)[0]
    assert (row.state, row.attempts, row.reason, local(row.due_at)) == (
        ReminderState.SCHEDULED, 1, "error:RuntimeError", at(11, 24, 10, 15)
    )
    assert [m.sender_id for m in outbox_rows(estate)] == ["web-li"]
    for attempt in range(2, 6):
        now.moment = local(reminders(estate, owner_id=wang)[0].due_at)
        [result] = runner.send_due()
        assert (result.reminder_id, result.reason) == (bad, "error:RuntimeError")
        assert reminders(estate, owner_id=wang)[0].attempts == attempt
    row = reminders(estate, owner_id=wang)[0]
    assert (row.state, row.reason, row.delivered_via, row.sent_at) == (
        ReminderState.FAILED, "error:RuntimeError", "call_task", None
    )
    with session_scope(estate) as session:
        task = session.execute(select(CallTask)).scalar_one()
    assert (task.reminder_id, task.owner_id, task.reason, task.state) == (bad, wang, "error:RuntimeError", CallTaskState.OPEN)
    now.moment = at(11, 25, 10)
    assert runner.send_due() == []  # given up: never claimed again


def test_two_workers_on_postgresql_keep_the_weekly_cap(postgres_estate: str) -> None:
    url = postgres_estate
    wang = owner_id(url, WANG)
    link(url, wang, channel="wechat", sender="oWANG")
    wechat_inbound(url, "oWANG", at(11, 24, 9))
    with clock.frozen(at(11, 24, 9, 30)), session_scope(url) as session:
        owner = session.get(Owner, wang)
        for index in range(2):
            schedule._add(
                session, owner=owner, sender_id="oWANG", channel="wechat", purpose=ReminderPurpose.MONTHLY_BILL,
                due_at=at(11, 24, 9, 45), dedupe_key=f"cap:{index}",
            )
    sender = Sender()
    now = Clock(at(11, 24, 10))
    one = Policy(max_per_week=1, skip_holidays=False)
    workers = [worker(url, now, name=f"racer-{n}", wechat=True, policy=one) for n in (1, 2)]
    start = threading.Barrier(2)

    def run(w: ReminderWorker) -> None:
        start.wait()
        w.send_due()

    with clock.frozen(now.moment):
        threads = [threading.Thread(target=run, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    rows = reminders(url)
    assert sorted((r.state.value, r.reason or "") for r in rows) == [("moved", "weekly_cap"), ("sending", "")]
    moved = next(r for r in rows if r.state is ReminderState.MOVED)
    assert local(moved.due_at) == at(12, 1, 10) + dt.timedelta(seconds=1)
    delivered(url, sender, now=at(11, 24, 10))
    assert sorted(r.state.value for r in reminders(url)) == ["moved", "sent"]
    assert len(sender.texts) == 1


def test_sigterm_is_honoured_within_one_reminder(estate: str, monkeypatch: pytest.MonkeyPatch) -> None:
    wang = owner_id(estate, WANG)
    link(estate, wang, channel="wechat", sender="oWANG")
    wechat_inbound(estate, "oWANG", at(11, 24, 9))
    with clock.frozen(at(11, 24, 9, 30)), session_scope(estate) as session:
        owner = session.get(Owner, wang)
        for index in range(10):
            schedule._add(
                session, owner=owner, sender_id="oWANG", channel="wechat", purpose=ReminderPurpose.MONTHLY_BILL,
                due_at=at(11, 24, 9, 45), dedupe_key=f"backlog:{index}",
            )
    stop = threading.Event()
    hand_over = delivery.deliver

    def deliver_then_sigterm(*args: Any, **kwargs: Any) -> delivery.Outcome:
        outcome = hand_over(*args, **kwargs)
        stop.set()  # SIGTERM arrives while the first reminder is being handed over
        return outcome

    monkeypatch.setattr(delivery, "deliver", deliver_then_sigterm)
    runner = worker(estate, Clock(at(11, 24, 10)), wechat=True, policy=Policy(max_per_week=1000))
    thread = threading.Thread(target=runner.run, args=(stop,))
    started = time.monotonic()
    thread.start()
    thread.join(30)
    assert not thread.is_alive() and time.monotonic() - started < 5
    rows = reminders(estate)
    assert sorted(r.state.value for r in rows) == ["scheduled"] * 9 + ["sending"]
    assert len(outbox_rows(estate)) == 1


def test_a_failed_daily_job_is_retried_the_same_day(estate: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monthly = schedule.schedule_monthly
    failures = [RuntimeError("database restarting")]

    def flaky(session: Session, *, today: dt.date) -> List[Reminder]:
        if failures:
            raise failures.pop()
        return monthly(session, today=today)

    monkeypatch.setattr(schedule, "schedule_monthly", flaky)
    now = Clock(at(12, 1, 9))
    runner = worker(estate, now)
    runner.tick()
    assert (runner.last_daily, reminders(estate)) == (None, [])
    now.moment = at(12, 1, 9, 5)  # before the back-off: not yet
    runner.tick()
    assert reminders(estate) == []
    now.moment = at(12, 1, 9, 11)
    runner.tick()
    assert runner.last_daily == dt.date(2026, 12, 1)
    rows = reminders(estate, purpose=ReminderPurpose.MONTHLY_BILL)
    assert [(r.period, r.state, local(r.due_at)) for r in rows] == [("2026-12", ReminderState.SCHEDULED, at(12, 1, 10))] * 5
