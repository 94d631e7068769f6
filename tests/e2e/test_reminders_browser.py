"""A promise over web chat, followed up: the end-to-end run of issue 11 in headless Chromium.

The owner verifies and promises a date on the chat page (real Rasa and action servers); the reminder worker runs
with its clock moved to the day before and then to the due day; each reminder reaches the open page through the
durable outbox and the Rasa process's deliverer; ``bot import-payments`` then loads the payment, which marks the
promise kept.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from bot import clock
from bot.db import models
from bot.db.reminder_models import Reminder, ReminderPurpose, ReminderState
from bot.db.session import session_scope
from bot.reminders.delivery import Template
from bot.reminders.policy import Policy
from bot.reminders.worker import ReminderWorker
from bot.services.promises import confirmation_question, format_date
from bot.text.dates import find_times
from tests.e2e.test_webchat_browser import CHROMIUM, Chat
from tests.fakes.wording import response_variants

pytestmark = [pytest.mark.e2e, pytest.mark.model]

ROOT = Path(__file__).resolve().parents[2]
SH = ZoneInfo("Asia/Shanghai")


class MovableClock:
    """The worker's injected clock."""

    def __init__(self) -> None:
        self.moment = clock.now()

    def __call__(self) -> dt.datetime:
        return self.moment


@pytest.fixture
def page(servers) -> Iterator[Page]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(locale="zh-CN", viewport={"width": 480, "height": 1000})
        try:
            yield context.new_page()
        finally:
            context.close()
            browser.close()


def stored_reminders(url: str, promise_id: int) -> Dict[ReminderPurpose, Reminder]:
    with session_scope(url) as session:
        rows = session.execute(select(Reminder).where(Reminder.promise_id == promise_id)).scalars().all()
        return {ReminderPurpose(row.purpose): row for row in rows}


def test_a_promise_over_web_chat_is_reminded_in_the_browser_and_kept_by_the_import(servers, page: Page, tmp_path: Path) -> None:
    chat = Chat(page)
    today = clock.today()
    due = find_times("下周五交", today)[0].date
    assert due is not None

    page.goto(f"{servers.rasa_url}/chat/")
    chat.wait_for_bot(0, 1)
    session_id = chat.stored_session()["session_id"]
    assert chat.say("我欠多少物业费") == response_variants("utter_ask_room")
    assert chat.say("3栋2单元502") == response_variants("utter_ask_phone_tail")
    replies = chat.say("1234", count=2)
    assert replies[0] == response_variants("utter_identity_verified", owner_name="李秀英")[0]
    assert chat.say("下周五交") == [confirmation_question(due, Decimal("820.00"))]
    recorded = chat.say("对")
    assert "CN" in recorded[0] and format_date(due) in recorded[0]

    with session_scope(servers.database_url) as session:
        promise = session.execute(
            select(models.PaymentPromise).where(models.PaymentPromise.sender_id == session_id)
        ).scalar_one()
        promise_id, owner_id = int(promise.id), int(promise.owner_id)
    planned = stored_reminders(servers.database_url, promise_id)
    assert {purpose: (row.state, row.sender_id, row.channel) for purpose, row in planned.items()} == {
        ReminderPurpose.DAY_BEFORE: (ReminderState.SCHEDULED, session_id, "socketio"),
        ReminderPurpose.DUE_MORNING: (ReminderState.SCHEDULED, session_id, "socketio"),
    }

    now = MovableClock()
    worker = ReminderWorker(
        database_url=servers.database_url, name="e2e-worker", wechat=False, template=Template(),
        policy=Policy(max_per_week=5, skip_holidays=False), now=now, poll_seconds=0.1,
    )  # fmt: skip
    before = len(chat.bot_texts())
    now.moment = dt.datetime.combine(due - dt.timedelta(days=1), dt.time(10, 0, 30), tzinfo=SH)
    # The shared e2e database holds other tests' promises too: the worker sends what is due for everyone.
    ours = {row.id for row in planned.values()}
    sent = [p for p in worker.send_due() if p.reminder_id in ours]
    assert [(p.reminder_id, p.state, p.via) for p in sent] == [
        (planned[ReminderPurpose.DAY_BEFORE].id, ReminderState.SENT, "webchat_outbox")
    ]
    # The open page gets it live: the Rasa process holding the socket delivers the outbox row.
    shown = chat.wait_for_bot(before, 1)[-1]
    assert f"明天（{format_date(due)}）" in shown and "如果您已经交过了" in shown and "820" not in shown

    now.moment = dt.datetime.combine(due, dt.time(9, 0, 30), tzinfo=SH)
    assert [p.state for p in worker.send_due() if p.reminder_id in ours] == [ReminderState.SENT]
    assert f"今天（{format_date(due)}）" in chat.wait_for_bot(before + 1, 1)[-1]

    # The import runs on the real clock (it refuses payments in its future): the owner paid just now, after the
    # promise (a payment before the moment of the promise does not keep it), to the second.
    time.sleep(1.1)
    paid_at = clock.now()
    export = tmp_path / "payments.csv"
    export.write_text(
        f"房号,金额,缴费时间,缴费期间,渠道,流水号\n3栋2单元502,820.00,{paid_at:%Y-%m-%d %H:%M:%S},2026-09至2026-11,微信,WX-E2E-1\n",
        encoding="utf-8",
    )
    loaded = subprocess.run(
        [sys.executable, "-m", "bot.cli", "import-payments", str(export)],
        cwd=ROOT, env={**_env(), "DATABASE_URL": servers.database_url}, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stdout + loaded.stderr
    with session_scope(servers.database_url) as session:
        kept = session.get(models.PaymentPromise, promise_id)
        assert (kept.status, kept.paid_amount) == (models.PromiseStatus.KEPT, Decimal("820.00"))
        assert int(kept.owner_id) == owner_id
    rows = stored_reminders(servers.database_url, promise_id)
    assert [rows[purpose].state for purpose in (ReminderPurpose.DAY_BEFORE, ReminderPurpose.DUE_MORNING)] == [
        ReminderState.SENT,
        ReminderState.SENT,
    ]


def _env() -> Dict[str, Any]:
    import os

    return {**os.environ, "PYTHONPATH": str(ROOT)}
