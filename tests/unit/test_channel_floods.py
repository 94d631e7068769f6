"""Every channel refuses a client's flood before Rasa: the first refused message gets one polite answer, later
ones none, and nothing of a refused message reaches Rasa or the database (bot.channels.floods).

REST and WeChat run as in production (the REST blueprint on a live Sanic server, the WeChat webhook on a real
database with a simulated WeChat); the web chat's socket events run against a fake socket.io server. Fakes
stand in for Rasa's ``on_new_message``: what they record is exactly what would have reached Rasa.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any, Dict, Iterator, List, Optional, Tuple

import aiohttp
import pytest
from rasa.core.channels.channel import register
from sanic import Sanic

from apps.staff.wecom.callback import Responder, WeComChannel, WeComConfig
from apps.staff.wecom.store import WeComStore
from bot import wording
from bot.channels.floods import refusal_text
from bot.channels.inbound import ip_client
from bot.channels.rest import PinnedRestInput
from bot.compliance import violations
from bot.db.wecom_models import WeComCallbackStatus
from bot.services.message_limits import Decision, Limit, MessageLimiter, Verdict
from bot.settings import get_settings
from tests.conftest import free_port
from tests.fakes.wecom_api import FakeWeComAPI
from tests.fakes.wecom_client import WeComClient
from tests.unit.test_rest_channel import RecordingAgent
from tests.unit.test_webchat_channel import Server
from tests.unit.test_wechat_channel import FakeBot, Harness, harness, openid  # noqa: F401  (fixture)
from tests.unit.test_wecom_channel import WANG, estate, fake, fake_api, rows, settings_for  # noqa: F401  (fixtures)

NOTICE_ONE_MINUTE = wording.text("floods.too_many_messages", minutes=1)
# Two messages a minute, both at a window's start: one more fits 90 s later (the next window, half gone).
NOTICE_TWO_MINUTES = wording.text("floods.too_many_messages", minutes=2)


class Clock:
    """Epoch seconds the test moves by hand (a minute boundary to start with)."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def two_a_minute(clock: Optional[Clock] = None) -> MessageLimiter:
    return MessageLimiter([Limit(2, 60), Limit(100, 3600)], now=clock or Clock())


def test_the_notice_is_polite_compliant_and_given_once_per_run() -> None:
    assert violations(NOTICE_ONE_MINUTE) == []
    assert refusal_text(Decision(Verdict.NOTICE, 40), source="test") == NOTICE_ONE_MINUTE
    assert refusal_text(Decision(Verdict.NOTICE, 3000), source="test") == wording.text(
        "floods.too_many_messages", minutes=50
    )
    assert refusal_text(Decision(Verdict.SILENT, 40), source="test") is None


# --- REST ----------------------------------------------------------------------------------------------


Answer = Tuple[int, Dict[str, str], Any]


def post_all(
    monkeypatch: pytest.MonkeyPatch, posts: List[Tuple[str, str]], *, headers: Dict[str, str], limiter: MessageLimiter
) -> Tuple[List[Answer], RecordingAgent]:
    """POST each (sender, text) to a REST channel mounted as Rasa mounts it; (status, headers, JSON) of each."""
    monkeypatch.setattr(Sanic, "test_mode", True)
    agent = RecordingAgent(answer="收到")
    app = Sanic(f"rest_flood_{uuid.uuid4().hex[:8]}")
    app.ctx.agent = agent
    channel = PinnedRestInput()
    channel.limiter = limiter
    register([channel], app, route="/webhooks/")
    port = free_port()

    async def scenario() -> List[Answer]:
        server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False)
        assert server is not None
        await server.startup()
        answers: List[Answer] = []
        try:
            async with aiohttp.ClientSession() as http:
                for sender, text in posts:
                    url = f"http://127.0.0.1:{port}/webhooks/rest/webhook"
                    async with http.post(url, json={"sender": sender, "message": text}, headers=headers) as response:
                        answers.append((response.status, dict(response.headers), json.loads(await response.text())))
        finally:
            await server.close()
        return answers

    return asyncio.run(scenario()), agent


@pytest.fixture
def rest_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dict[str, str]]:
    monkeypatch.setenv("REST_CHANNEL_TOKEN", "t0ken")
    get_settings.cache_clear()
    yield {"Authorization": "Bearer t0ken"}
    get_settings.cache_clear()


@pytest.fixture
def rest_no_token(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dict[str, str]]:
    monkeypatch.delenv("REST_CHANNEL_TOKEN", raising=False)
    get_settings.cache_clear()
    yield {}
    get_settings.cache_clear()


def test_rest_refuses_a_senders_flood_with_429_polite_once(
    monkeypatch: pytest.MonkeyPatch, rest_token: Dict[str, str]
) -> None:
    posts = [("owner-a", f"第{n}条") for n in range(1, 6)] + [("owner-b", "我欠多少物业费")]
    answers, agent = post_all(monkeypatch, posts, headers=rest_token, limiter=two_a_minute())
    assert [status for status, _, _ in answers] == [200, 200, 429, 429, 429, 200]
    assert answers[0][2] == [{"recipient_id": "owner-a", "text": "收到"}]
    notice = {"error": "too many messages", "retry_after": 90, "messages": [{"recipient_id": "owner-a", "text": NOTICE_TWO_MINUTES}]}
    assert answers[2][2] == notice and answers[2][1]["Retry-After"] == "90"
    assert [body for _, _, body in answers[3:5]] == [{"error": "too many messages", "retry_after": 90, "messages": []}] * 2
    # Only the admitted messages reached Rasa; another sender of the authenticated integration is counted apart.
    assert [(m.sender_id, m.text, m.metadata["client"]) for m in agent.messages] == [
        ("owner-a", "第1条", "rest:owner-a"), ("owner-a", "第2条", "rest:owner-a"), ("owner-b", "我欠多少物业费", "rest:owner-b"),
    ]  # fmt: skip


def test_rest_without_a_token_counts_the_address_whatever_the_sender(
    monkeypatch: pytest.MonkeyPatch, rest_no_token: Dict[str, str]
) -> None:
    posts = [(f"sender-{n}", "你好") for n in range(4)]
    answers, agent = post_all(monkeypatch, posts, headers=rest_no_token, limiter=two_a_minute())
    assert [status for status, _, _ in answers] == [200, 200, 429, 429]
    assert [len(body["messages"]) for _, _, body in answers[2:]] == [1, 0]
    assert [m.sender_id for m in agent.messages] == ["sender-0", "sender-1"]
    assert {m.metadata["client"] for m in agent.messages} == {ip_client("127.0.0.1")}


def test_rest_takes_its_limits_from_settings(monkeypatch: pytest.MonkeyPatch, rest_token: Dict[str, str]) -> None:
    monkeypatch.setenv("CHANNEL_MESSAGES_PER_MINUTE", "3")
    get_settings.cache_clear()
    monkeypatch.setattr(Sanic, "test_mode", True)
    agent = RecordingAgent(answer="收到")
    app = Sanic(f"rest_flood_{uuid.uuid4().hex[:8]}")
    app.ctx.agent = agent
    register([PinnedRestInput()], app, route="/webhooks/")
    port = free_port()

    async def scenario() -> List[int]:
        server = await app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False)
        assert server is not None
        await server.startup()
        try:
            async with aiohttp.ClientSession() as http:
                statuses = []
                for n in range(5):
                    url = f"http://127.0.0.1:{port}/webhooks/rest/webhook"
                    async with http.post(url, json={"sender": "o", "message": f"m{n}"}, headers=rest_token) as response:
                        statuses.append(response.status)
                return statuses
        finally:
            await server.close()

    assert asyncio.run(scenario()) == [200, 200, 200, 429, 429]
    assert [m.text for m in agent.messages] == ["m0", "m1", "m2"]


# --- web chat ------------------------------------------------------------------------------------------


def bot_texts(server: Server) -> List[Tuple[str, Optional[str]]]:
    return [(data.get("text"), room) for event, data, room in server.sio.emitted if event == "bot_uttered"]


def test_web_chat_refuses_an_addresss_flood_polite_once_then_silent() -> None:
    clock = Clock()
    server = Server()
    server.events.limiter = two_a_minute(clock)
    server.connect("socket-a", "203.0.113.9")
    server.connect("socket-b", "203.0.113.9")  # another tab, same address: the same client
    server.connect("socket-c", "198.51.100.4")
    mine, tab, other = (server.session_request(sid) for sid in ("socket-a", "socket-b", "socket-c"))
    assert server.say("socket-a", mine, "第1条") is not None
    assert server.say("socket-b", tab, "第2条") is not None
    assert [server.say("socket-a", mine, f"第{n}条") for n in (3, 4, 5)] == [None, None, None]
    assert server.say("socket-c", other, "我欠多少物业费") is not None  # another address is counted apart
    assert [m.text for m in server.received] == ["第1条", "第2条", "我欠多少物业费"]
    assert bot_texts(server) == [(NOTICE_TWO_MINUTES, mine)]  # once, to the conversation that went over
    clock.now += 90  # as told, a minute and a half later the address may speak again; a new run is told again
    assert server.say("socket-b", tab, "又来了") is not None
    assert [server.say("socket-b", tab, "x") for _ in range(3)] == [None, None, None]
    assert bot_texts(server) == [(NOTICE_TWO_MINUTES, mine), (NOTICE_ONE_MINUTE, tab)]


def test_web_chat_does_not_count_what_it_drops_unread() -> None:
    server = Server()
    server.events.limiter = two_a_minute()
    server.connect("socket-a", "203.0.113.10")
    session_id = server.session_request("socket-a")
    for junk in ("", "   ", "\x00"):
        assert server.say("socket-a", session_id, junk) is None
    assert server.say("socket-a", session_id, "你好") is not None
    assert server.say("socket-a", session_id, "在吗") is not None
    assert bot_texts(server) == []


# --- WeChat --------------------------------------------------------------------------------------------


def test_wechat_refuses_an_openids_flood_storing_nothing(harness: Harness) -> None:  # noqa: F811
    bot = FakeBot()
    webhook = harness.webhook(bot)
    webhook.limiter = two_a_minute()
    user, other = openid(), openid()
    first_xml = harness.client.text(user, "第1条", msg_id=harness.client.new_msg_id())

    async def scenario() -> List[Any]:
        replies = [await harness.post(webhook, first_xml)]
        for n in (2, 3, 4, 5):
            replies.append(await harness.post(webhook, harness.client.text(user, f"第{n}条")))
        replies.append(await harness.post(webhook, harness.client.event(user, "subscribe")))  # WeChat's own: not counted
        replies.append(await harness.post(webhook, first_xml))  # WeChat's retry of an admitted message goes on
        replies.append(await harness.post(webhook, harness.client.text(other, "我欠多少物业费")))
        await webhook.drain()
        return replies

    replies = asyncio.run(scenario())
    assert [reply.status for reply in replies] == [200] * 8
    assert [reply.content for reply in replies] == [
        "收到：第1条", "收到：第2条", NOTICE_TWO_MINUTES, None, None,
        wording.text("channels.wechat_welcome"), "收到：第1条", "收到：我欠多少物业费",
    ]  # fmt: skip
    assert replies[3].is_success and replies[4].is_success
    assert [(call.sender_id, call.text) for call in bot.calls] == [(user, "第1条"), (user, "第2条"), (other, "我欠多少物业费")]
    # Nothing of the refused messages was claimed or remembered: three messages and the event, four signatures
    # of callbacks that went on (the retry's too), and the refused ones' signatures nowhere.
    kinds = sorted((row.openid, row.msg_type) for row in harness.inbound())
    assert kinds == sorted([(user, "text"), (user, "text"), (user, "event:subscribe"), (other, "text")])
    assert len(harness.signatures()) == 5


# --- WeCom (staff) -------------------------------------------------------------------------------------


def test_wecom_refuses_a_members_flood_polite_once_storing_nothing(estate: str, fake: FakeWeComAPI) -> None:  # noqa: F811
    config = WeComConfig.from_settings(settings_for(fake))
    assert config is not None
    responder = Responder(estate, coach=lambda text: f"话术：{text}")
    channel = WeComChannel(config, store=WeComStore(estate), responder=responder, limiter=two_a_minute())
    client = WeComClient()
    for n in range(1, 6):
        signed = client.sign(client.text(WANG, f"问题{n}"))
        answer, job = channel.receive(signed.params, signed.body)
        assert (answer.status, answer.body) == (200, "")
        if job is not None:
            channel.handle(job)
    assert [m.content for m in fake.messages_for(WANG)] == ["话术：问题1", "话术：问题2", NOTICE_TWO_MINUTES]
    assert [(row.user_id, row.status) for row in rows(estate)] == [(WANG, WeComCallbackStatus.SENT)] * 2
