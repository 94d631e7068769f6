"""The Rasa process delivers staff replies whichever channels credentials.yml lists (issue 18 point 1).

Before, the web chat channel started the outbox's deliverer: a Rasa server with WeChat and no web chat never
delivered a staff reply. Each test here starts the real servers with one channel only.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import List, Tuple

import pytest
import requests

from bot import wording
from bot.cli import stop
from bot.conversations import handoff
from bot.db.models import OutboxKind, OutboxState
from bot.db.reminder_models import Reminder, ReminderPurpose, ReminderState
from bot.db.session import session_scope
from bot.reminders.worker import settle_handed_over
from tests.conftest import demo_database, server_plan, start_and_wait
from tests.e2e.test_takeover import tracker_events, wait_delivered
from tests.e2e.test_webchat_socket import WebChatClient
from tests.e2e.test_wechat_channel import WeChatUser
from tests.fakes.wechat_api import shared_fake_api

pytestmark = [pytest.mark.e2e, pytest.mark.model]

REPLY = "您好，我是客户主管李工。您家暖气的问题，师傅明天上午九点上门查看。"
WEB_CHAT_ONLY = """bot.channels.webchat.SignedSocketIOInput:
  user_message_evt: user_uttered
  bot_message_evt: bot_uttered
  session_persistence: true
  metadata_key: customData
"""


def delivered_rows(database_url: str, sender_id: str) -> List[Tuple[OutboxKind, OutboxState, int, object]]:
    return [(row.kind, row.state, row.attempts, row.failure) for row in wait_delivered(database_url, sender_id, 30)]


def staff_texts_in_tracker(rasa_url: str, sender_id: str) -> List[Tuple[str, object]]:
    return [
        (event["text"], event["metadata"].get("staff") or event["metadata"].get("handoff"))
        for event in tracker_events(rasa_url, sender_id)
        if event["event"] == "bot" and (event.get("metadata") or {}).get("outbox_id")
    ]


EXPECTED_ROWS = [
    (OutboxKind.CONTROL, OutboxState.DELIVERED, 1, None),
    (OutboxKind.JOINED, OutboxState.DELIVERED, 1, None),
    (OutboxKind.TEXT, OutboxState.DELIVERED, 1, None),
]


def test_with_only_wechat_a_staff_reply_reaches_the_owner(trained_model: Path, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials.yml"
    credentials.write_text("bot.channels.wechat.WeChatInput:\n", encoding="utf-8")
    plan = replace(server_plan(trained_model, tmp_path, demo_database(tmp_path)), credentials=credentials, worker=False)
    processes = start_and_wait(plan)
    try:
        assert requests.get(f"{plan.rasa_url}/webhooks/socketio/", timeout=10).status_code == 404  # no web chat
        fake_api = shared_fake_api()
        user = WeChatUser(f"{plan.rasa_url}/webhooks/wechat/webhook", fake_api)
        assert user.say("你好")
        seen = len(fake_api.texts_for(user.openid))
        with session_scope(plan.database_url) as session:
            assert handoff.take_over(session, sender_id=user.openid, staff="li").channel == "wechat"
            handoff.staff_reply(session, sender_id=user.openid, staff="li", text=REPLY)
        texts = fake_api.wait_for_texts(user.openid, seen + 2, timeout=30)
        assert texts[seen:] == [wording.text("handoff.joined"), REPLY]
        assert delivered_rows(plan.database_url, user.openid) == EXPECTED_ROWS
        assert staff_texts_in_tracker(plan.rasa_url, user.openid) == [
            (wording.text("handoff.joined"), "joined"), (REPLY, "li"),
        ]  # fmt: skip

        # A reminder leaves the same way: the worker only queues it, the Rasa process sends it.
        reminder_id = queue_wechat_reminder(plan.database_url, user.openid)
        texts = fake_api.wait_for_texts(user.openid, seen + 3, timeout=30)
        assert texts[seen + 2 :] == [wording.text("reminders.monthly_bill", ignore=wording.text("reminders.ignore"))]
        settled: List[int] = []
        deadline = time.monotonic() + 20  # the row is marked delivered just after the send
        while not settled and time.monotonic() < deadline:
            with session_scope(plan.database_url) as session:
                settled = settle_handed_over(session)
            time.sleep(0.2)
        assert settled == [reminder_id]
        with session_scope(plan.database_url) as session:
            row = session.get(Reminder, reminder_id)
            assert (row.state, row.delivered_via, row.sent_at is not None) == (ReminderState.SENT, "wechat_custom", True)
    finally:
        stop(processes)


def queue_wechat_reminder(database_url: str, openid: str) -> int:
    """The demo owner's monthly notice to ``openid``, handed to the outbox as the worker hands it over."""
    import datetime as dt

    from bot import clock
    from bot.db.models import Owner
    from bot.reminders import delivery, schedule
    from bot.reminders.delivery import Template

    with session_scope(database_url) as session:
        owner = session.query(Owner).order_by(Owner.id).first()
        row = schedule._add(
            session, owner=owner, sender_id=openid, channel="wechat", purpose=ReminderPurpose.MONTHLY_BILL,
            due_at=clock.utc_now() - dt.timedelta(minutes=1), dedupe_key=f"e2e:{openid}", period="2026-12",
        )  # fmt: skip
        outcome = delivery.deliver(session, row, wechat=True, template=Template())
        assert (outcome.state, outcome.outbox_id is not None) == (ReminderState.SENDING, True)
        row.state, row.outbox_id = outcome.state, outcome.outbox_id
        return int(row.id)


def test_with_only_web_chat_a_staff_reply_reaches_the_owner(trained_model: Path, tmp_path: Path) -> None:
    credentials = tmp_path / "credentials.yml"
    credentials.write_text(WEB_CHAT_ONLY, encoding="utf-8")
    plan = replace(server_plan(trained_model, tmp_path, demo_database(tmp_path)), credentials=credentials, worker=False)
    processes = start_and_wait(plan)
    try:
        assert requests.get(f"{plan.rasa_url}/webhooks/wechat/webhook", timeout=10).status_code == 404  # no WeChat
        owner = WebChatClient(plan.rasa_url)
        try:
            sender = owner.session_id
            assert sender is not None
            owner.say("你好")
            assert owner.replies()
            with session_scope(plan.database_url) as session:
                assert handoff.take_over(session, sender_id=sender, staff="li").channel == "socketio"
                handoff.staff_reply(session, sender_id=sender, staff="li", text=REPLY)
            assert owner.replies(first_timeout=30, quiet=3) == [wording.text("handoff.joined"), REPLY]
        finally:
            owner.close()
        assert delivered_rows(plan.database_url, sender) == EXPECTED_ROWS
        assert staff_texts_in_tracker(plan.rasa_url, sender) == [(wording.text("handoff.joined"), "joined"), (REPLY, "li")]
    finally:
        stop(processes)
