"""Property tests (hypothesis) for what the channels accept from clients.

Whatever a client sends — any JSON, any bytes, any text — the REST channel and the WeChat webhook answer
without a 5xx, and whatever reaches Rasa is screened: bounded length, no control characters or lone
surrogates, no ``/intent{...}`` payload, metadata without client dates and with the server's client key.
"""

from __future__ import annotations

import asyncio
import json
import re
import string
import threading
import unicodedata
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, List, Tuple
from xml.sax.saxutils import escape

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rasa.core.channels.channel import UserMessage, register
from sanic import Sanic

from bot.channels.inbound import DATE_KEYS, RESERVED_KEYS, allowed_commands, screen_text, server_metadata
from bot.channels.wechat_handler import WeChatConfig, WeChatWebhook
from bot.db import migrate
from bot.db.session import get_engine
from bot.settings import get_settings
from bot.wechat.store import WeChatStore
from tests.conftest import free_port
from tests.fakes.wechat_api import TEST_APP_ID, TEST_ENCODING_AES_KEY, TEST_TOKEN
from tests.fakes.wechat_client import WeChatClient, now

LIMIT = 1000
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_scalars = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
json_values = st.recursive(
    json_scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
# Text as attackers write it: anything, plus the shapes that matter here.
nasty_text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(blacklist_categories=()), max_size=50),  # surrogates and controls too
    st.builds(lambda intent, body: f"/{intent}{body}", st.text(string.ascii_letters + "_", min_size=1, max_size=12),
              st.sampled_from(["", '{"verified_owner_id": 1}', '{"unit": "1栋1单元101", "phone_tail": "1234"}',
                               "@0.99", '{"x": [}'])),
    st.builds(lambda n, c: c * n, st.integers(LIMIT - 2, LIMIT * 12), st.sampled_from(["我", "a", "😀", " ", "\x00"])),
)

# Metadata with the keys only the server writes, as an attacker spells them (case, width, padding, controls).
reserved_key = st.builds(
    lambda key, spell, pad: pad + spell(key) + pad,
    st.sampled_from(sorted(RESERVED_KEYS)),
    st.sampled_from([str, str.upper, str.title, lambda k: "".join(chr(ord(c) + 0xFEE0) if c.isalnum() else c for c in k)]),
    st.sampled_from(["", " ", "\x00", "\u200b", "\t"]),
)
metadata_values = st.one_of(
    json_values,
    st.dictionaries(st.one_of(reserved_key, st.text(max_size=8)), json_values, min_size=1, max_size=6),
)


def canonical(key: str) -> str:
    """A key by its letters, as the server judges it."""
    return re.sub(r"[^a-z0-9_]", "", unicodedata.normalize("NFKC", key).lower())


def assert_no_client_reserved_keys(metadata: Any, client: str) -> None:
    """Only the server's ``client`` is left of the reserved keys, whatever the client sent."""
    assert metadata["client"] == client
    assert [key for key in metadata if canonical(key) in RESERVED_KEYS] == ["client"]


def assert_screened_for_rasa(text: str) -> None:
    """What every text handed to Rasa satisfies."""
    assert text == text.strip() and text
    assert len(text) <= LIMIT
    text.encode("utf-8")  # no lone surrogates
    assert all(char in "\n\t" or unicodedata.category(char) != "Cc" for char in text)
    assert not text.startswith("/") or text in allowed_commands()


@FUZZ
@given(raw=st.one_of(nasty_text, json_values))
def test_screen_text_never_fails_and_only_passes_safe_text(raw: Any) -> None:
    screened = screen_text(raw, limit=LIMIT)
    if screened.text is not None:
        assert_screened_for_rasa(screened.text)
        assert screened.refusal is None
    else:
        assert screened.problem in {"not text", "empty", "too long"}
        assert (screened.refusal is not None) == (screened.problem == "too long")


@FUZZ
@given(raw=metadata_values, client=st.sampled_from(["ip:127.0.0.1", "wechat:o-1"]), trusted=st.booleans())
def test_server_metadata_always_names_the_servers_client_and_drops_client_dates_and_reserved_keys(
    raw: Any, client: str, trusted: bool
) -> None:
    metadata = server_metadata(raw, client=client, trusted=trusted)
    assert_no_client_reserved_keys(metadata, client)
    if not trusted:
        assert not DATE_KEYS & set(metadata)
        json.dumps(metadata, ensure_ascii=False).encode("utf-8")  # storable as it is


# --- REST, on a live Sanic server in a thread ------------------------------------------------------------


class RecordingAgent:
    def __init__(self) -> None:
        self.messages: List[UserMessage] = []

    async def handle_message(self, message: UserMessage) -> None:
        self.messages.append(message)
        await message.output_channel.send_text_message(message.sender_id, "收到")


@pytest.fixture(scope="module")
def rest_server() -> Iterator[Tuple[str, RecordingAgent]]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(Sanic, "test_mode", True)
        patch.setenv("REST_CHANNEL_TOKEN", "fuzz-token")
        patch.setenv("MAX_MESSAGE_CHARS", str(LIMIT))
        get_settings.cache_clear()
        agent = RecordingAgent()
        app = Sanic(f"rest_fuzz_{uuid.uuid4().hex[:8]}")
        app.ctx.agent = agent
        from bot.channels.rest import PinnedRestInput

        register([PinnedRestInput()], app, route="/webhooks/")
        port = free_port()
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def serve() -> None:
            asyncio.set_event_loop(loop)
            server = loop.run_until_complete(
                app.create_server(host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False)
            )
            assert server is not None
            loop.run_until_complete(server.startup())
            ready.set()
            loop.run_forever()
            loop.run_until_complete(server.close())

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        assert ready.wait(30), "the test server did not start"
        url = f"http://127.0.0.1:{port}/webhooks/rest/webhook"
        # The fuzz below would pass vacuously if every request were refused: a valid one must get through.
        valid = requests.post(url, json={"sender": "o", "message": "你好"}, headers=HEADERS, timeout=10)
        assert (valid.status_code, [m.text for m in agent.messages]) == (200, ["你好"])
        try:
            yield url, agent
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            get_settings.cache_clear()


HEADERS = {"Authorization": "Bearer fuzz-token", "Content-Type": "application/json"}


def check_rest_answer(response: requests.Response) -> None:
    assert response.status_code < 500, response.text
    answer = response.json()
    if response.status_code == 200:
        assert isinstance(answer, list) and all(isinstance(item.get("text"), str) for item in answer)
    else:
        assert 400 <= response.status_code < 500 and answer["error"]


@FUZZ
@given(raw=st.binary(max_size=300) | st.builds(lambda v: json.dumps(v).encode(), json_values))
def test_rest_never_answers_5xx_to_any_body(rest_server: Tuple[str, RecordingAgent], raw: bytes) -> None:
    url, agent = rest_server
    before = len(agent.messages)
    check_rest_answer(requests.post(url, data=raw, headers=HEADERS, timeout=10))
    for message in agent.messages[before:]:
        assert_screened_for_rasa(message.text)


@FUZZ
@given(
    sender=st.text(string.ascii_letters, min_size=1, max_size=20) | json_values,
    message=st.one_of(nasty_text, json_values),
    metadata=metadata_values,
)
def test_rest_screens_every_field_of_a_json_object(
    rest_server: Tuple[str, RecordingAgent], sender: Any, message: Any, metadata: Any
) -> None:
    url, agent = rest_server
    before = len(agent.messages)
    body = json.dumps({"sender": sender, "message": message, "metadata": metadata}).encode()
    check_rest_answer(requests.post(url, data=body, headers=HEADERS, timeout=10))
    for received in agent.messages[before:]:
        assert_screened_for_rasa(received.text)
        # the fuzz server has a token: an authenticated integration is counted per sender it names
        assert_no_client_reserved_keys(received.metadata, f"rest:{received.sender_id}")
        assert received.input_channel == "rest"


# --- WeChat, the framework-independent webhook on a real (SQLite) database -------------------------------


class FakeBot:
    def __init__(self) -> None:
        self.texts: List[str] = []

    async def __call__(self, turn: Any) -> List[dict]:
        self.texts.append(turn.text)
        assert turn.metadata["client"] == f"wechat:{turn.openid}"
        assert not DATE_KEYS & set(turn.metadata)
        return [{"text": "收到"}]


@dataclass
class WeChatFuzz:
    """A webhook in safe mode (with an EncodingAESKey), one in plaintext mode, their bot and a simulated WeChat."""

    safe: WeChatWebhook
    plain: WeChatWebhook
    bot: FakeBot
    client: WeChatClient


@pytest.fixture(scope="module")
def wechat(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WeChatFuzz]:
    url = f"sqlite:///{tmp_path_factory.mktemp('wechat-fuzz') / 'bot.db'}"
    migrate.upgrade(url)
    bot = FakeBot()
    safe = WeChatConfig(token=TEST_TOKEN, app_id=TEST_APP_ID, encoding_aes_key=TEST_ENCODING_AES_KEY)
    plain = WeChatConfig(token=TEST_TOKEN, app_id=TEST_APP_ID)
    fuzz = WeChatFuzz(
        safe=WeChatWebhook(safe, bot, WeChatStore(url), api=None, follow_up_delay=0.0),
        plain=WeChatWebhook(plain, bot, WeChatStore(url), api=None, follow_up_delay=0.0),
        bot=bot,
        client=WeChatClient(TEST_TOKEN, TEST_APP_ID, TEST_ENCODING_AES_KEY),
    )
    for webhook, encrypted in ((fuzz.safe, True), (fuzz.plain, False)):
        request = fuzz.client.sign(fuzz.client.text("o-sanity", "你好"), encrypted=encrypted)
        assert asyncio.run(webhook.receive(request.params, request.body)).status == 200
    assert bot.texts == ["你好", "你好"], "a valid callback must reach the bot, or the fuzz below proves nothing"
    yield fuzz
    get_engine(url).dispose()


def xml_text(value: str) -> str:
    """``value`` as XML character data; characters XML 1.0 cannot carry are dropped (WeChat cannot send them)."""
    allowed = "".join(
        ch for ch in value if ch in "\t\n\r" or (" " <= ch <= "\ud7ff") or ("\ue000" <= ch <= "\ufffd") or ch > "\uffff"
    )
    return escape(allowed)


@FUZZ
@given(raw=st.binary(max_size=400) | st.text(max_size=300).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_wechat_never_answers_5xx_to_any_body(wechat: WeChatFuzz, raw: bytes) -> None:
    for webhook, encrypted in ((wechat.safe, True), (wechat.plain, False), (wechat.safe, False)):
        request = wechat.client.sign(wechat.client.text("o1", "hi"), encrypted=encrypted)
        answer = asyncio.run(webhook.receive(request.params, raw))
        assert answer.status < 500, answer.body
        if webhook is wechat.safe and not encrypted:
            assert answer.status == 403  # plaintext is refused before the body is read


@FUZZ
@given(content=nasty_text, msg_type=st.sampled_from(["text", "voice", "image", "event", "location", "x" * 40]))
def test_wechat_screens_any_typed_text(wechat: WeChatFuzz, content: str, msg_type: str) -> None:
    client = wechat.client
    for webhook, encrypted in ((wechat.safe, True), (wechat.plain, False)):
        before = len(wechat.bot.texts)
        openid = f"o{uuid.uuid4().hex[:20]}"
        xml = (
            f"<xml><ToUserName>{client.account}</ToUserName><FromUserName>{openid}</FromUserName>"
            f"<CreateTime>{now()}</CreateTime><MsgType>{msg_type}</MsgType>"
            f"<Content>{xml_text(content)}</Content><MsgId>{WeChatClient.new_msg_id()}</MsgId></xml>"
        )
        request = client.sign(xml.encode("utf-8", "surrogatepass").decode("utf-8", "replace"), encrypted=encrypted)
        answer = asyncio.run(webhook.receive(request.params, request.body))
        assert answer.status < 500, answer.body
        for text in wechat.bot.texts[before:]:
            assert_screened_for_rasa(text)


def test_fuzz_strategies_reach_the_interesting_cases() -> None:
    """The strategies above do produce what the properties are about (guards against a vacuous fuzz)."""
    assert screen_text('/inform{"verified_owner_id": 1}', limit=LIMIT).text == 'inform{"verified_owner_id": 1}'
    assert screen_text("我" * (LIMIT + 1), limit=LIMIT).problem == "too long"
    assert screen_text("\ud800", limit=LIMIT).text == "\ufffd"
    spelled = {" ＨＥＬＤ＿ＮＯＴＥ ": 1, "held_note\u200b": 2, "Wechat": 3, "\x00staff": 4, "keep": 5}
    assert {canonical(key) for key in spelled} == {"held_note", "wechat", "staff", "keep"}
    for trusted in (True, False):
        assert server_metadata(spelled, client="ip:1", trusted=trusted) == {"keep": 5, "client": "ip:1"}
    assert Path(__file__).exists()


def test_allowed_commands_are_discovered_from_buttons_and_the_page(tmp_path: Path) -> None:
    (tmp_path / "domain.yml").write_text(
        "responses:\n"
        "  utter_offer:\n"
        "    - text: 要登记吗？\n"
        "      buttons:\n"
        "        - {title: 好的, payload: /affirm}\n"
        '        - {title: 指定, payload: \'/inform{"room": "1"}\'}\n',
        encoding="utf-8",
    )
    page = tmp_path / "bot" / "channels" / "webchat_static"
    page.mkdir(parents=True)
    (page / "chat.js").write_text('WebChat.default({ initPayload: "/greet" });', encoding="utf-8")
    # Only plain payloads: one carrying entities is never let through, even if the bot offers it.
    assert allowed_commands.__wrapped__(tmp_path) == frozenset({"/affirm", "/greet"})
