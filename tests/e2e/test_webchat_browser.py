"""The web chat page in headless Chromium against the real Rasa and action servers.

One owner's whole conversation through the page (identity, arrears, a heating objection, a repair order, a
payment promise), then a reload (history and session id survive, the conversation continues without asking
for identity again), buttons and links in bot messages, and a dropped socket that reconnects to the same
conversation. Relative dates resolve against today's date in Asia/Shanghai (the page sends no date), so the
expected texts are computed with the bot's own date rules.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple
from urllib.parse import quote

import pytest
import requests
from playwright.sync_api import Page, WebSocketRoute, expect, sync_playwright

from bot import clock, wording
from bot.conversations.session_ids import signer_from_settings
from bot.owners.arrears import months_between
from bot.playbook import default_playbook
from bot.service_config import get_service_config
from bot.services.promises import confirmation_question, format_date
from bot.text.dates import find_times
from tests.fakes.wording import response_variants

pytestmark = [pytest.mark.e2e, pytest.mark.model]

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOT = ROOT / "results" / "webchat-conversation.png"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
REPLY_TIMEOUT_MS = 90_000
# The page shows each bot message after at most 1.5 s (customMessageDelay); wait this long for stragglers.
SETTLE_MS = 2_500
# The page sends no date: the server's today decides how many months are owed.
ARREARS = response_variants(
    "utter_arrears",
    unit="3栋2单元501",
    amount="2,460.00",
    since="2026年3月",
    months=months_between("2026-03", clock.today()),
)[0]


def conversation_slots(servers: Any, session_id: str) -> Dict[str, Any]:
    """The conversation's slots as the Rasa server holds them (the test servers enable its HTTP API)."""
    url = f"{servers.rasa_url}/conversations/{quote(session_id)}/tracker"
    return dict(requests.get(url, timeout=30).json()["slots"])


class Chat:
    """The chat page as an owner sees it."""

    def __init__(self, page: Page) -> None:
        self.page = page

    def bot_texts(self) -> List[str]:
        return [text.strip() for text in self.page.locator(".rw-response").all_inner_texts()]

    def all_texts(self) -> List[str]:
        return [text.strip() for text in self.page.locator(".rw-response, .rw-client").all_inner_texts()]

    def wait_for_bot(self, before: int, count: int) -> List[str]:
        """The bot messages after the first ``before``, once at least ``count`` arrived and no more follow."""
        expect(self.page.locator(".rw-response")).to_have_count(before + count, timeout=REPLY_TIMEOUT_MS)
        self.page.wait_for_timeout(SETTLE_MS)
        return self.bot_texts()[before:]

    def say(self, text: str, count: int = 1) -> List[str]:
        """Type ``text``, press Enter and return the bot's replies."""
        before = len(self.bot_texts())
        box = self.page.locator(".rw-new-message")
        box.fill(text)
        box.press("Enter")
        expect(self.page.locator(".rw-client").last).to_have_text(text)
        return self.wait_for_bot(before, count)

    def stored_session(self) -> Dict[str, Any]:
        return json.loads(self.page.evaluate("window.localStorage.getItem('chat_session')") or "null") or {}

    def wait_for_confirmations(self, logs: List[str], session_id: str, count: int) -> List[str]:
        """Socket ids the server confirmed ``session_id`` to, once there are ``count`` of them.

        rasa-webchat logs every ``session_confirm`` it receives with the socket's id.
        """
        pattern = re.compile(rf"^session_confirm:(\S+) session_id:{re.escape(session_id)}$")
        for _ in range(300):
            sockets = [match.group(1) for match in map(pattern.match, list(logs)) if match]
            if len(sockets) >= count:
                assert len(sockets) == count, sockets
                return sockets
            self.page.wait_for_timeout(100)
        raise AssertionError(f"{count} confirmations of the session expected, saw {logs}")


@pytest.fixture
def browser_page(servers) -> Iterator[Dict[str, Any]]:
    """A fresh headless Chromium page; records requests, WebSockets and console messages."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(locale="zh-CN", viewport={"width": 480, "height": 1000})
        page = context.new_page()
        seen: Dict[str, Any] = {"page": page, "requests": [], "websockets": [], "logs": [], "routes": []}
        page.on("request", lambda request: seen["requests"].append(request.url))
        page.on("websocket", lambda socket: seen["websockets"].append(socket.url))
        page.on("console", lambda message: seen["logs"].append(message.text))

        def through_playwright(route: WebSocketRoute) -> None:
            # Forward the socket unchanged, but keep hold of it so the test can drop it.
            seen["routes"].append((route, route.connect_to_server()))

        page.route_web_socket(re.compile(r"/socket\.io/"), through_playwright)
        try:
            yield seen
        finally:
            context.close()
            browser.close()


def inject_bot_messages(servers, sender_id: str, *events: Dict[str, Any]) -> None:
    """Send bot messages to a conversation through Rasa's HTTP API and the socket.io output channel."""
    response = requests.post(
        f"{servers.rasa_url}/conversations/{quote(sender_id)}/tracker/events",
        params={"output_channel": "socketio", "execute_side_effects": "true"},
        json=list(events),
        timeout=30,
    )
    response.raise_for_status()


def test_a_whole_conversation_in_the_browser(servers, browser_page, capsys) -> None:
    page: Page = browser_page["page"]
    chat = Chat(page)
    heating = default_playbook().get("objection_heating")
    today = clock.today()
    promise_day = find_times("下周五交", today)[0].date
    assert promise_day is not None

    page.goto(f"{servers.rasa_url}/chat/")
    labels = wording.catalogue()["webchat_page"]
    expect(page).to_have_title(labels["title"])
    expect(page.locator(".rw-title")).to_have_text(labels["title"])
    expect(page.locator(".rw-header span")).to_have_text(labels["subtitle"])
    expect(page.locator(".rw-new-message")).to_have_attribute("placeholder", labels["input_hint"])

    # The initial payload (/greet) is sent as soon as the server confirmed a signed session id.
    greeting = chat.wait_for_bot(0, 1)
    assert len(greeting) == 1 and greeting[0].startswith("您好")
    session_id = chat.stored_session()["session_id"]
    assert signer_from_settings().is_valid(session_id)

    assert chat.say("我欠多少物业费") == response_variants("utter_ask_room")
    assert chat.say("3栋2单元501") == response_variants("utter_ask_phone_tail")
    replies = chat.say("6688", count=2)
    assert replies[0] == response_variants("utter_identity_verified", owner_name="王建国")[0]
    assert replies[1].startswith(ARREARS)

    # The heating objection offers a repair; its message already says what is wrong, so only the place
    # and the time are asked, then the order is read back and written on a yes.
    assert chat.say("暖气一点都不热，物业费我不交", count=2) == [heating.answers[0], heating.offer.text]
    assert chat.say("好的") == response_variants("utter_ask_repair_location")
    assert chat.say("3栋2单元501 客厅") == response_variants("utter_ask_repair_time")
    readback = chat.say("明天上午")
    slots = conversation_slots(servers, chat.stored_session()["session_id"])
    fields = {
        "item": slots["repair_item"],
        "location": slots["repair_location"],
        "description": slots["repair_description"],
        "time": slots["repair_time"],
    }
    assert readback == response_variants("utter_confirm_repair", **fields)
    assert fields["item"] == "暖气" and "客厅" in fields["location"] and "暖气" in fields["description"]
    assert fields["time"] == f"{format_date(today + dt.timedelta(days=1))}上午"
    replies = chat.say("对")
    order_number = re.search(r"BX\d{12}", replies[0])
    assert order_number is not None
    assert replies[0] == response_variants(
        "utter_repair_recorded",
        number=order_number.group(0),
        item=fields["item"],
        location=fields["location"],
        time=fields["time"],
    )[0]

    assert chat.say("下周五交") == [confirmation_question(promise_day, Decimal("2460.00"))]
    replies = chat.say("对")
    assert len(replies) == 1, replies
    promise_number = re.search(r"CN\d{12}", replies[0])
    assert promise_number is not None
    assert replies[0] == response_variants(
        "utter_promise_recorded",
        date=format_date(promise_day),
        amount="2,460.00",
        number=promise_number.group(0),
        channels="、".join(method.split(" ")[0] for method in get_service_config().payment_methods[:2]),
    )[0]

    tracker = requests.get(f"{servers.rasa_url}/conversations/{quote(session_id)}/tracker", timeout=30).json()
    assert tracker["latest_input_channel"] == "socketio"
    assert tracker["slots"]["verified_owner_id"] is not None

    SCREENSHOT.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOT))
    with capsys.disabled():
        print(f"\nweb chat screenshot: {SCREENSHOT}")

    # Reload: the transcript and the signed session id survive, no second greeting, and the server
    # continues the same conversation (the owner is still verified).
    history = chat.all_texts()
    page.reload()
    expect(page.locator(".rw-response, .rw-client")).to_have_count(len(history), timeout=30_000)
    chat.wait_for_confirmations(browser_page["logs"], session_id, 2)
    page.wait_for_timeout(SETTLE_MS)
    assert chat.all_texts() == history  # restored, and no second greeting
    assert chat.stored_session()["session_id"] == session_id
    replies = chat.say("我欠多少物业费", count=2)
    assert replies[0].startswith(ARREARS) and "哪一天" in replies[1]

    # Buttons and links in bot messages render; a button sends its payload.
    before = len(chat.bot_texts())
    inject_bot_messages(
        servers,
        session_id,
        {"event": "bot", "text": "交费说明请看[在线交费页面](https://pay.example.com/wuye)。"},
        {
            "event": "bot",
            "text": "还需要什么帮助？",
            "data": {"buttons": [{"title": "再查一次欠费", "payload": "我欠多少物业费"}]},
        },
    )
    chat.wait_for_bot(before, 2)
    link = page.locator(".rw-response a", has_text="在线交费页面")
    expect(link).to_have_attribute("href", "https://pay.example.com/wuye")
    button = page.locator(".rw-replies .rw-reply", has_text="再查一次欠费")
    expect(button).to_be_visible()
    before = len(chat.bot_texts())
    button.click()
    expect(page.locator(".rw-client").last).to_have_text("再查一次欠费")
    replies = chat.wait_for_bot(before, 1)
    assert replies[0].startswith(ARREARS)

    # Everything came from the Rasa server itself: no CDN, no web fonts.
    origin = servers.rasa_url
    assert browser_page["requests"] and all(url.startswith(origin) for url in browser_page["requests"])
    ws_origin = origin.replace("http://", "ws://")
    assert browser_page["websockets"] and all(url.startswith(ws_origin) for url in browser_page["websockets"])


def test_the_page_reconnects_to_the_same_conversation_when_the_socket_drops(servers, browser_page) -> None:
    page: Page = browser_page["page"]
    chat = Chat(page)
    page.goto(f"{servers.rasa_url}/chat/")
    chat.wait_for_bot(0, 1)
    session_id = chat.stored_session()["session_id"]
    chat.wait_for_confirmations(browser_page["logs"], session_id, 1)
    expect(page.locator("#connection-status")).to_be_hidden()
    routes: List[Tuple[WebSocketRoute, WebSocketRoute]] = browser_page["routes"]
    assert routes, "socket.io never upgraded to a WebSocket"

    # Drop the connection under the page, as a server restart or a network change would.
    page_side, server_side = routes[-1]
    page_side.close()
    server_side.close()
    expect(page.locator("#connection-status")).to_have_text(
        wording.catalogue()["webchat_page"]["disconnected"], timeout=15_000
    )

    # socket.io reconnects by itself; the stored signed id is presented again and kept.
    confirmed = chat.wait_for_confirmations(browser_page["logs"], session_id, 2)
    assert len(set(confirmed)) == 2  # a new socket, the same conversation
    expect(page.locator("#connection-status")).to_be_hidden(timeout=30_000)
    assert chat.stored_session()["session_id"] == session_id

    assert chat.say("你好")[0].startswith("您好")
    tracker = requests.get(f"{servers.rasa_url}/conversations/{quote(session_id)}/tracker", timeout=30).json()
    assert [event["text"] for event in tracker["events"] if event["event"] == "user"] == ["/greet", "你好"]


def test_a_tampered_stored_id_is_replaced_and_the_stale_transcript_dropped(servers, browser_page) -> None:
    page: Page = browser_page["page"]
    chat = Chat(page)
    page.goto(f"{servers.rasa_url}/chat/")
    chat.wait_for_bot(0, 1)
    stored = chat.stored_session()
    forged = "0" * 32 + "." + "1" * 64
    stored["session_id"] = forged
    stored["conversation"].append(
        {"type": "text", "component": "", "text": "别人的对话", "sender": "response", "showAvatar": False}
    )
    page.evaluate("value => window.localStorage.setItem('chat_session', value)", json.dumps(stored))

    page.reload()
    # The server replaces the forged id; the page drops the transcript that belonged to it and starts over.
    page.wait_for_function(
        "forged => { const s = JSON.parse(window.localStorage.getItem('chat_session') || 'null');"
        " return s && s.session_id && s.session_id !== forged; }",
        arg=forged,
        timeout=30_000,
    )
    greeting = chat.wait_for_bot(0, 1)
    assert greeting[0].startswith("您好")
    assert "别人的对话" not in chat.all_texts()
    session_id = chat.stored_session()["session_id"]
    assert session_id != forged and signer_from_settings().is_valid(session_id)
    tracker = requests.get(f"{servers.rasa_url}/conversations/{quote(forged)}/tracker", timeout=30).json()
    assert [event for event in tracker["events"] if event["event"] == "user"] == []
