"""The outbox's deliverer (bot/conversations/delivery) on SQLite and PostgreSQL, with WeChat's API faked over HTTP.

Every test asserts the stored fields of the rows it touched: state, attempts, failure, claimant.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from typing import Any, Dict, Iterator, List, Optional, Set, Tuple

import pytest
from sqlalchemy import update

from bot import clock, wording
from bot.conversations import outbox
from bot.conversations.delivery.deliverer import Deliverer
from bot.conversations.delivery.senders import (
    DELIVERED,
    MAX_TRANSPORT_RETRIES,
    WECHAT_NOT_CONFIGURED,
    Outcome,
    Sender,
    WeChatCustomerServiceSender,
)
from bot.db import models
from bot.db.models import OutboxKind, OutboxState
from bot.db.session import session_scope
from bot.wechat.api import WeChatAPI
from tests.conftest import free_port
from tests.fakes.wechat_api import TEST_APP_ID, TEST_APP_SECRET, FakeWeChatAPI

WORKER = "rasa:test:1"
REPLY = "您好，我是客户主管王工，您说的暖气问题我们今天下午上门看。"


class RecordingLog:
    """The conversations, as a list of what was recorded in them."""

    def __init__(self, *, ready: bool = True) -> None:
        self.is_ready = ready
        self.said: List[Tuple[str, str, Dict[str, Any]]] = []
        self.paused: Dict[str, bool] = {}

    def ready(self) -> bool:
        return self.is_ready

    async def set_paused(self, sender_id: str, paused: bool) -> bool:
        changed = self.paused.get(sender_id) != paused
        self.paused[sender_id] = paused
        return changed

    async def append_bot_message(self, sender_id: str, text: str, metadata: Dict[str, Any]) -> None:
        self.said.append((sender_id, text, metadata))

    async def delivered_before(self, sender_id: str, outbox_id: int) -> bool:
        return any(sid == sender_id and meta.get("outbox_id") == outbox_id for sid, _, meta in self.said)


class SocketSender:
    """Web chat sockets this process holds (a recording stand-in for the socket.io emit)."""

    channel = "socketio"

    def __init__(self, connected: Set[str]) -> None:
        self.connected = connected
        self.sent: List[Tuple[str, str]] = []

    def reachable(self) -> Set[str]:
        return set(self.connected)

    async def send(self, sender_id: str, text: str, *, attempts: int, template: Any = None) -> Outcome:
        self.sent.append((sender_id, text))
        return DELIVERED


@pytest.fixture
def fake_api() -> Iterator[FakeWeChatAPI]:
    fake = FakeWeChatAPI().start()
    try:
        yield fake
    finally:
        fake.stop()


def queue(url: str, sender_id: str, channel: Optional[str], text: str = REPLY, kind: OutboxKind = OutboxKind.TEXT) -> int:
    with session_scope(url) as session:
        return outbox.enqueue(session, sender_id=sender_id, channel=channel, kind=kind, text=text, staff="wang").id


def row(url: str, message_id: int) -> outbox.OutboxEntry:
    with session_scope(url) as session:
        found = outbox.get(session, message_id=message_id)
        assert found is not None
        return found


def wrote_on_wechat(url: str, openid: str, hours_ago: float) -> None:
    with session_scope(url) as session:
        session.add(
            models.WeChatInboundMessage(
                dedupe_key=f"msg:{openid}:{hours_ago}",
                openid=openid,
                msg_type="text",
                received_at=(clock.now() - dt.timedelta(hours=hours_ago)).astimezone(dt.timezone.utc),  # as the channel stores it
            )
        )


def deliver(url: str, log: RecordingLog, *senders: Sender) -> int:
    return asyncio.run(Deliverer(log, lambda: list(senders), database_url=url, worker=WORKER).deliver_once())


def test_a_wechat_reply_inside_the_window_is_sent_recorded_and_marked_delivered(
    database_url: str, fake_api: FakeWeChatAPI
) -> None:
    wrote_on_wechat(database_url, "oOpen", hours_ago=3)
    message_id = queue(database_url, "oOpen", "wechat")
    log = RecordingLog()
    api = WeChatAPI(fake_api.base_url, TEST_APP_ID, TEST_APP_SECRET)
    assert deliver(database_url, log, WeChatCustomerServiceSender(api, database_url=database_url)) == 1
    assert fake_api.texts_for("oOpen") == [REPLY]
    assert log.said == [("oOpen", REPLY, {"staff": "wang", "outbox_id": message_id})]
    stored = row(database_url, message_id)
    assert (stored.state, stored.attempts, stored.failure) == (OutboxState.DELIVERED, 1, None)
    assert stored.delivered_at is not None
    assert deliver(database_url, log, WeChatCustomerServiceSender(api, database_url=database_url)) == 0  # once


@pytest.mark.parametrize(
    ("hours_ago", "configured", "refusal", "failure"),
    [
        (49, True, None, "wechat_window_closed"),
        (None, True, None, "wechat_window_closed"),  # the owner never wrote
        (3, False, None, WECHAT_NOT_CONFIGURED),
        (3, True, 45015, "wechat_api_error:45015"),  # WeChat's own refusal: the reply window is gone
    ],
)
def test_a_wechat_reply_that_cannot_go_fails_with_the_reason_staff_see(
    database_url: str, fake_api: FakeWeChatAPI, hours_ago: Optional[float], configured: bool,
    refusal: Optional[int], failure: str,
) -> None:  # fmt: skip
    if hours_ago is not None:
        wrote_on_wechat(database_url, "oSome", hours_ago=hours_ago)
    if refusal is not None:
        fake_api.fail_next_sends(refusal)
    message_id = queue(database_url, "oSome", "wechat")
    api = WeChatAPI(fake_api.base_url, TEST_APP_ID, TEST_APP_SECRET) if configured else None
    log = RecordingLog()
    assert deliver(database_url, log, WeChatCustomerServiceSender(api, database_url=database_url)) == 1
    stored = row(database_url, message_id)
    assert (stored.state, stored.attempts, stored.failure) == (OutboxState.FAILED, 1, failure)
    assert fake_api.texts_for("oSome") == [] and log.said == []


def test_an_unreachable_wechat_is_retried_then_given_up(database_url: str) -> None:
    wrote_on_wechat(database_url, "oAway", hours_ago=1)
    message_id = queue(database_url, "oAway", "wechat")
    api = WeChatAPI(f"http://127.0.0.1:{free_port()}", TEST_APP_ID, TEST_APP_SECRET, timeout=2)  # nothing listens
    sender = WeChatCustomerServiceSender(api, database_url=database_url)
    log = RecordingLog()
    for attempt in range(1, MAX_TRANSPORT_RETRIES):
        assert deliver(database_url, log, sender) == 0
        stored = row(database_url, message_id)
        assert (stored.state, stored.attempts, stored.failure) == (OutboxState.PENDING, attempt, None)
    assert deliver(database_url, log, sender) == 1
    stored = row(database_url, message_id)
    assert (stored.state, stored.attempts, stored.failure) == (
        OutboxState.FAILED, MAX_TRANSPORT_RETRIES, "wechat_api_error:-2",
    )  # fmt: skip
    assert log.said == []


def test_web_chat_rows_go_only_to_sockets_held_here_and_wait_for_the_rest(database_url: str) -> None:
    here = queue(database_url, "web-here", "socketio", text="第一条")
    away = queue(database_url, "web-away", "socketio", text="第二条")
    sockets = SocketSender({"web-here"})
    log = RecordingLog()
    assert deliver(database_url, log, sockets) == 1
    assert sockets.sent == [("web-here", "第一条")]
    assert row(database_url, here).state is OutboxState.DELIVERED
    waiting = row(database_url, away)
    assert (waiting.state, waiting.attempts, waiting.failure) == (OutboxState.PENDING, 0, None)
    # Without a web chat sender in this process (the channel is not configured here) nothing is claimed.
    assert deliver(database_url, log, WeChatCustomerServiceSender(None, database_url=database_url)) == 0
    assert row(database_url, away).attempts == 0


def test_control_rows_pause_and_resume_and_rows_without_a_channel_fail(database_url: str) -> None:
    pause = queue(database_url, "web-1", "socketio", text="pause", kind=OutboxKind.CONTROL)
    lost = queue(database_url, "nobody", None)
    log = RecordingLog()
    assert deliver(database_url, log) == 2
    assert log.paused == {"web-1": True}
    assert row(database_url, pause).state is OutboxState.DELIVERED
    stored = row(database_url, lost)
    assert (stored.state, stored.failure) == (OutboxState.FAILED, "unknown_channel")


def test_a_row_found_in_the_conversation_after_a_crash_is_marked_not_sent_again(database_url: str) -> None:
    message_id = queue(database_url, "web-2", "socketio")
    log = RecordingLog()
    log.said.append(("web-2", REPLY, {"staff": "wang", "outbox_id": message_id}))  # sent, then the process died
    with session_scope(database_url) as session:
        session.execute(
            update(models.OutboxMessage)
            .where(models.OutboxMessage.id == message_id)
            .values(
                state=OutboxState.DELIVERING, attempts=1, claimed_by="rasa:dead:9",
                claimed_at=clock.now() - dt.timedelta(hours=1),
            )
        )  # fmt: skip
    sockets = SocketSender({"web-2"})
    assert deliver(database_url, log, sockets) == 1
    assert sockets.sent == []
    stored = row(database_url, message_id)
    assert (stored.state, stored.attempts) == (OutboxState.DELIVERED, 2)


def test_a_refused_text_is_replaced_by_the_safe_sentence_at_the_moment_of_sending(database_url: str) -> None:
    message_id = queue(database_url, "web-3", "socketio", text="再不交物业费，明天就停你家的水。")
    sockets = SocketSender({"web-3"})
    log = RecordingLog()
    assert deliver(database_url, log, sockets) == 1
    safe = wording.text("channels.blocked_reply")
    assert sockets.sent == [("web-3", safe)]
    assert log.said == [("web-3", safe, {"staff": "wang", "outbox_id": message_id})]


def test_nothing_is_claimed_before_the_conversations_can_be_written(database_url: str) -> None:
    message_id = queue(database_url, "web-4", "socketio")
    assert deliver(database_url, RecordingLog(ready=False), SocketSender({"web-4"})) == 0
    assert row(database_url, message_id).attempts == 0
