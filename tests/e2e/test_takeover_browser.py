"""A human takeover and an instalment decision in two headless Chromium windows: the owner on the web chat page
(``/chat/`` on the real Rasa server) and staff in the real staff console, both on the servers ``bot run`` starts
(Rasa, action server, staff console, one database).

* The round trip: the owner verifies and chats; a supervisor takes the conversation over from the console; the
  owner sees the "a person joined" notice; the owner's next message appears live in the staff view and the bot
  says nothing (not even the over-long refusal); the staff reply arrives in the owner's page; the hand-back is
  announced and the bot answers again with the conversation's context (the owner is still verified).
* An instalment request made through the web chat: a collector cannot approve it, a supervisor approves it in
  the console, and the decision appears live in the owner's open page.

Screenshots: ``results/takeover-owner.png``, ``results/takeover-staff.png``, ``results/instalment-owner.png``
and ``results/instalment-supervisor.png``.
"""

from __future__ import annotations

import time
from typing import Iterator
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from bot import wording
from bot.channels.inbound import max_message_chars
from bot.conversations import outbox
from bot.conversations.handles import handle_of
from bot.db import models
from bot.db.models import InstalmentStatus, OutboxKind, OutboxState
from bot.db.session import session_scope
from tests.conftest import ROOT
from tests.e2e.browser import WatchedPage, add_staff_user, chromium, csrf_token, staff_login, watched_page
from tests.e2e.test_webchat_browser import ARREARS, Chat
from tests.fakes.wording import response_variants

pytestmark = [pytest.mark.e2e, pytest.mark.model]

RESULTS = ROOT / "results"
REPLY = "王先生您好，我是物业服务中心的周主管。暖气的问题我已经派师傅今天下午上门查看。"
# Long enough to be sure the bot would have spoken if it were going to (it answers in well under a second).
SILENCE_MS = 5_000


@pytest.fixture(scope="module")
def accounts(servers) -> Iterator[None]:
    """A supervisor 周主管 (zhou) and a collector 钱收费员 (qian), added with ``bot user add``."""
    add_staff_user(servers.database_url, "zhou", role="supervisor", name="周主管")
    add_staff_user(servers.database_url, "qian", role="collector", name="钱收费员")
    yield


def open_chat(servers, browser) -> tuple[WatchedPage, Chat, str]:
    """The owner's window on the web chat page, greeted; its signed session id (the sender id)."""
    owner = watched_page(browser, width=480, height=1000)
    chat = Chat(owner.page)
    owner.page.goto(f"{servers.rasa_url}/chat/")
    greeting = chat.wait_for_bot(0, 1)
    assert greeting[0].startswith("您好")
    return owner, chat, str(chat.stored_session()["session_id"])


def verify(chat: Chat) -> None:
    """王建国 of 3栋2单元501 verifies with the last four digits of his phone."""
    assert chat.say("我欠多少物业费") == response_variants("utter_ask_room")
    assert chat.say("3栋2单元501") == response_variants("utter_ask_phone_tail")
    replies = chat.say("6688", count=2)
    assert replies[0] == response_variants("utter_identity_verified", owner_name="王建国")[0]
    assert replies[1].startswith(ARREARS)


def type_message(chat: Chat, text: str) -> None:
    """The owner types ``text`` and presses Enter (without waiting for an answer)."""
    box = chat.page.locator(".rw-new-message")
    box.fill(text)
    box.press("Enter")
    expect(chat.page.locator(".rw-client").last).to_contain_text(text[:50])


def outbox_rows(database_url: str, sender_id: str) -> list[outbox.OutboxEntry]:
    with session_scope(database_url) as session:
        return outbox.messages(session, sender_id=sender_id, include_control=True)


def wait_all_delivered(database_url: str, sender_id: str, timeout: float = 20) -> list[outbox.OutboxEntry]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = outbox_rows(database_url, sender_id)
        if found and all(row.state is OutboxState.DELIVERED for row in found):
            return found
        time.sleep(0.3)
    raise AssertionError(f"not all delivered: {outbox_rows(database_url, sender_id)}")


def test_a_takeover_round_trip_with_the_owner_in_a_second_browser(servers, accounts) -> None:
    with chromium() as browser:
        owner, chat, sender = open_chat(servers, browser)
        verify(chat)

        # 周主管 opens the conversation in the console and takes it over (接管).
        staff = watched_page(browser)
        page = staff.page
        staff_login(page, servers.staff_url, f"/conversations/{handle_of(sender)}", "zhou")
        expect(page.locator(".delivery.ok")).to_contain_text("网页聊天")
        expect(page.locator("#transcript .from-owner .text").last).to_have_text("6688")
        before = len(chat.bot_texts())
        page.click("button.take-over")
        expect(page.locator(".holder")).to_have_text("周主管")
        assert chat.wait_for_bot(before, 1) == [wording.text("handoff.joined")]

        # The owner writes: it shows up live in the staff view, and the bot says nothing at all.
        before = len(chat.bot_texts())
        type_message(chat, "暖气不热，物业费我不交了")
        transcript = page.locator("#transcript")
        expect(transcript.locator(".from-owner .text").last).to_have_text("暖气不热，物业费我不交了", timeout=15_000)
        expect(transcript.locator(".from-owner .intent").last).not_to_have_text("—")
        # Not even the channel's own refusal of an over-long message: the person answers; they see a note.
        too_long = "暖气片一直不热家里很冷" * (max_message_chars() // 11 + 5)
        type_message(chat, too_long)
        expect(transcript.locator(".from-owner .text").last).to_contain_text(str(len(too_long)), timeout=15_000)
        expect(transcript.locator(".from-owner .text").last).to_contain_text(too_long[:60])
        owner.page.wait_for_timeout(SILENCE_MS)
        assert chat.bot_texts()[before:] == []

        # The staff reply reaches the owner's page.
        page.fill("#reply-text", REPLY)
        page.click("button.send")
        expect(page.locator(".sent li").last).to_contain_text(REPLY)
        assert chat.wait_for_bot(before, 1) == [REPLY]
        expect(transcript.locator(".from-staff .text").last).to_have_text(REPLY, timeout=15_000)
        expect(transcript.locator(".from-staff .speaker").last).to_have_text("周主管（员工）")
        RESULTS.mkdir(exist_ok=True)
        owner.page.screenshot(path=str(RESULTS / "takeover-owner.png"), full_page=True)
        page.screenshot(path=str(RESULTS / "takeover-staff.png"), full_page=True)

        # Hand back (交还机器人): the owner is told, and the bot answers again — still knowing who he is.
        before = len(chat.bot_texts())
        page.click("button.hand-back")
        expect(page.locator("button.take-over")).to_be_visible()
        assert chat.wait_for_bot(before, 1) == [wording.text("handoff.left")]
        replies = chat.say("我欠多少物业费")
        assert replies[0].startswith(ARREARS), replies
        assert response_variants("utter_ask_room")[0] not in replies

        page.reload()
        expect(page.locator(".sent li")).to_have_count(3)
        expect(page.locator(".sent li .delivery-state")).to_have_text(["已送达", "已送达", "已送达"])
        owner_requests, staff_requests = list(owner.requested), list(staff.requested)
        staff_errors = list(staff.errors)

    delivered = wait_all_delivered(servers.database_url, sender)
    assert [(row.kind, row.staff, row.attempts) for row in delivered] == [
        (OutboxKind.CONTROL, "zhou", 1),
        (OutboxKind.JOINED, "zhou", 1),
        (OutboxKind.TEXT, "zhou", 1),
        (OutboxKind.LEFT, "zhou", 1),
        (OutboxKind.CONTROL, "zhou", 1),
    ]
    with session_scope(servers.database_url) as session:
        escalation = session.execute(
            select(models.Escalation).where(models.Escalation.sender_id == sender)
        ).scalar_one()
        assert (escalation.reason, escalation.state, escalation.assignee) == ("staff_takeover", models.EscalationState.PENDING, "zhou")
        assert escalation.first_response_at is not None
    # Each window loaded only from its own server: no CDN.
    assert all(url.startswith(servers.rasa_url) for url in owner_requests), owner_requests
    staff_origin = urlparse(servers.staff_url).netloc
    assert staff_requests and all(urlparse(url).netloc == staff_origin for url in staff_requests), staff_requests
    assert staff_errors == []


def test_an_instalment_decision_reaches_the_owners_open_page_and_a_collector_cannot_decide(servers, accounts) -> None:
    with chromium() as browser:
        owner, chat, sender = open_chat(servers, browser)
        verify(chat)
        assert chat.say("我想分三个月交") == response_variants("utter_confirm_instalment", plan="分3个月")
        assert chat.say("好的")[0].startswith("已提交分期申请")
        with session_scope(servers.database_url) as session:
            request = session.execute(
                select(models.InstalmentRequest).where(models.InstalmentRequest.sender_id == sender)
            ).scalar_one()
            request_id, number, plan = int(request.id), str(request.number), str(request.proposed_plan)
        assert plan == "分3个月"
        path = f"/records/instalments/{request_id}"

        # A collector sees the request but no decision forms, and a forged POST is refused.
        collector = watched_page(browser)
        staff_login(collector.page, servers.staff_url, path, "qian")
        expect(collector.page.locator(".record")).to_contain_text("分期申请由客户主管或项目经理审批。")
        expect(collector.page.locator("form.decide")).to_have_count(0)
        forged = collector.page.request.post(
            f"{servers.staff_url}{path}/approve", form={"csrf_token": csrf_token(collector.page), "reason": ""}
        )
        assert forged.status == 403
        with session_scope(servers.database_url) as session:
            assert session.get(models.InstalmentRequest, request_id).status is InstalmentStatus.PENDING
        assert outbox_rows(servers.database_url, sender) == []

        # The supervisor approves; the decision appears in the owner's open page.
        supervisor = watched_page(browser)
        staff_login(supervisor.page, servers.staff_url, path, "zhou")
        before = len(chat.bot_texts())
        supervisor.page.locator("form.decide[action$='/approve'] button").click()
        expect(supervisor.page).to_have_url(f"{servers.staff_url}{path}")
        expect(supervisor.page.locator(".status-badge")).to_have_text("已批准")
        expect(supervisor.page.locator(".decided-by")).to_have_text("周主管")
        assert chat.wait_for_bot(before, 1) == [wording.text("instalments.approved", number=number, plan=plan)]
        RESULTS.mkdir(exist_ok=True)
        owner.page.screenshot(path=str(RESULTS / "instalment-owner.png"), full_page=True)
        supervisor.page.screenshot(path=str(RESULTS / "instalment-supervisor.png"), full_page=True)

    with session_scope(servers.database_url) as session:
        decided = session.get(models.InstalmentRequest, request_id)
        assert (decided.status, decided.decided_by) == (InstalmentStatus.APPROVED, "zhou")
    [notice] = wait_all_delivered(servers.database_url, sender)
    assert (notice.kind, notice.channel, notice.staff, notice.attempts) == (OutboxKind.TEXT, "socketio", "zhou", 1)
