"""The REST channel pins its input channel, checks the bearer token, and screens what it is sent."""

import asyncio
import json
import re
import uuid
from typing import Any, Dict, List, Optional, Tuple

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage, register
from sanic import Sanic

from bot import wording
from bot.channels.inbound import ip_client
from bot.channels.rest import PinnedRestInput, bearer_token_matches
from bot.compliance import violations
from bot.settings import get_settings
from tests.conftest import free_port


@pytest.mark.parametrize(
    ("header", "token", "expected"),
    [
        (None, None, True),
        (None, "t0ken", False),
        ("Bearer t0ken", "t0ken", True),
        ("bearer t0ken", "t0ken", True),
        ("Bearer wrong", "t0ken", False),
        ("t0ken", "t0ken", False),
    ],
)
def test_bearer_token(header: Optional[str], token: Optional[str], expected: bool) -> None:
    assert bearer_token_matches(header, token) is expected


class RecordingAgent:
    def __init__(self, answer: Optional[str] = None) -> None:
        self.messages: List[UserMessage] = []
        self.answer = answer

    async def handle_message(self, message: UserMessage) -> None:
        self.messages.append(message)
        if self.answer is not None:
            await message.output_channel.send_text_message(message.sender_id, self.answer)


def exchange(
    monkeypatch: pytest.MonkeyPatch,
    posts: List[Tuple[bytes, Dict[str, str]]],
    agent: Optional[RecordingAgent] = None,
) -> Tuple[List[Tuple[int, Any]], List[UserMessage]]:
    """Mount the channel the way Rasa does, POST each raw body; (status, decoded JSON) of each, and messages."""
    monkeypatch.setattr(Sanic, "test_mode", True)
    agent = agent or RecordingAgent()
    app = Sanic(f"rest_test_{uuid.uuid4().hex[:8]}")
    app.ctx.agent = agent
    register([PinnedRestInput()], app, route="/webhooks/")
    port = free_port()

    async def scenario() -> List[Tuple[int, Any]]:
        server = await app.create_server(
            host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
        )
        assert server is not None
        await server.startup()
        answers = []
        try:
            async with aiohttp.ClientSession() as http:
                for body, headers in posts:
                    url = f"http://127.0.0.1:{port}/webhooks/rest/webhook"
                    async with http.post(url, data=body, headers=headers) as response:
                        answers.append((response.status, json.loads(await response.text())))
        finally:
            await server.close()
        return answers

    return asyncio.run(scenario()), agent.messages


@pytest.fixture
def no_token(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("REST_CHANNEL_TOKEN", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def with_token(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("REST_CHANNEL_TOKEN", "t0ken")
    get_settings.cache_clear()
    yield {"Authorization": "Bearer t0ken", "Content-Type": "application/json"}
    get_settings.cache_clear()


def body(**fields: Any) -> bytes:
    return json.dumps(fields).encode("utf-8")


BAD_BODIES = [
    b"",
    b"null",
    b"[]",
    b"{",
    b'"just a string"',
    b"12",
    b"\xff\xfe{}",
    b"[" * 100_000 + b"]" * 100_000,
    body(message="hi"),
    body(sender=1, message="hi"),
    body(sender={"id": 1}, message="hi"),
    body(sender=["o"], message="hi"),
    body(sender="", message="hi"),
    body(sender="o" * 500, message="hi"),
    body(sender="o\x00", message="hi"),
    body(sender="o"),
    body(sender="o", message=None),
    body(sender="o", message=5),
    body(sender="o", message={"text": "hi"}),
    body(sender="o", message=["hi"]),
    body(sender="o", message="   "),
    body(sender="o", message="\x00\x01\x02"),
    body(sender="o", message="/"),
]


@pytest.mark.parametrize("raw", BAD_BODIES, ids=[repr(raw[:24]) for raw in BAD_BODIES])
def test_a_bad_body_gets_a_4xx_json_error_and_nothing_reaches_rasa(
    monkeypatch: pytest.MonkeyPatch, with_token: Dict[str, str], raw: bytes
) -> None:
    [(status, answer)], messages = exchange(monkeypatch, [(raw, with_token)])
    assert 400 <= status < 500
    assert isinstance(answer, dict) and answer["error"]
    assert messages == []


def test_a_huge_body_is_413(monkeypatch: pytest.MonkeyPatch, with_token: Dict[str, str]) -> None:
    [(status, answer)], messages = exchange(monkeypatch, [(body(sender="o", message="x" * 300_000), with_token)])
    assert status == 413 and answer["error"] and messages == []


def test_an_over_long_message_is_refused_politely_before_rasa(
    monkeypatch: pytest.MonkeyPatch, with_token: Dict[str, str]
) -> None:
    limit = get_settings().max_message_chars
    [(status, answer)], messages = exchange(monkeypatch, [(body(sender="o-9", message="我" * 11_700), with_token)])
    assert status == 200
    assert answer == [{"recipient_id": "o-9", "text": wording.text("channels.too_long", limit=limit)}]
    assert messages == []


def test_lone_surrogates_and_control_characters_are_cleaned(
    monkeypatch: pytest.MonkeyPatch, with_token: Dict[str, str]
) -> None:
    raw = b'{"sender": "o", "message": "\\ud800\xe6\x88\x91\\u0007\\ud83d\\ude00"}'
    [(status, _)], messages = exchange(monkeypatch, [(raw, with_token)])
    assert status == 200
    assert [m.text for m in messages] == ["\ufffd我\U0001f600"]


@pytest.mark.parametrize(
    ("typed", "seen"),
    [
        ('/inform{"unit": "1栋1单元101", "phone_tail": "1234"}', 'inform{"unit": "1栋1单元101", "phone_tail": "1234"}'),
        ('/affirm{"verified_owner_id": 1}', 'affirm{"verified_owner_id": 1}'),
        ("/tell_arrears", "tell_arrears"),
        ("  /greet  ", "/greet"),
    ],
)
def test_only_the_bots_own_plain_payloads_pass_as_intents(
    monkeypatch: pytest.MonkeyPatch, with_token: Dict[str, str], typed: str, seen: str
) -> None:
    _, messages = exchange(monkeypatch, [(body(sender="o", message=typed), with_token)])
    assert [m.text for m in messages] == [seen]


def test_with_the_token_the_date_is_kept_and_the_client_is_the_server_s(
    monkeypatch: pytest.MonkeyPatch, with_token: Dict[str, str]
) -> None:
    metadata = {"date": "2026-11-20", "client": "ip:10.9.9.9", "sent_at": "2026-11-20T10:00:00"}
    _, messages = exchange(monkeypatch, [(body(sender="o", message="hi", metadata=metadata), with_token)])
    assert [m.metadata for m in messages] == [
        {"date": "2026-11-20", "sent_at": "2026-11-20T10:00:00", "client": "rest:o"}
    ]


@pytest.mark.parametrize("trusted", [True, False])
def test_keys_only_the_server_writes_are_dropped_even_for_a_trusted_caller(
    monkeypatch: pytest.MonkeyPatch, trusted: bool
) -> None:
    if trusted:
        monkeypatch.setenv("REST_CHANNEL_TOKEN", "t0ken")
    else:
        monkeypatch.delenv("REST_CHANNEL_TOKEN", raising=False)
    get_settings.cache_clear()
    headers = {"Authorization": "Bearer t0ken"} if trusted else {}
    forged = {"held_note": {"problem": "too long"}, "Held_Note\u200b": 1, "wechat": {"msg_id": "1"}, "staff": "zhao",
              "handoff": "left", "outbox_id": 3, "client": "ip:1.2.3.4", "date": "2026-11-20", "language": "zh-CN"}  # fmt: skip
    try:
        [(status, _)], [message] = exchange(
            monkeypatch, [(body(sender="o", message="物业费太贵了", metadata=forged), headers)]
        )
    finally:
        get_settings.cache_clear()
    assert status == 200
    if trusted:  # a trusted integration may still name the date (replays), never a server-only key
        assert message.metadata == {"date": "2026-11-20", "language": "zh-CN", "client": "rest:o"}
    else:
        assert message.metadata == {"language": "zh-CN", "client": ip_client("127.0.0.1")}


def test_without_a_configured_token_no_date_is_taken_from_the_client(
    monkeypatch: pytest.MonkeyPatch, no_token: None
) -> None:
    metadata = {"date": "2026-11-20", "timestamp": 1795000000, "sent_at": "x", "client": "wechat:o-other", "lang": "zh"}
    _, messages = exchange(monkeypatch, [(body(sender="o", message="hi", metadata=metadata), {})])
    assert [m.metadata for m in messages] == [{"lang": "zh", "client": ip_client("127.0.0.1")}]


@pytest.mark.parametrize("metadata", [None, [], "text", 5, {"nested": {"date": "2026-01-01"}}])
def test_odd_metadata_is_harmless(monkeypatch: pytest.MonkeyPatch, no_token: None, metadata: Any) -> None:
    [(status, _)], messages = exchange(monkeypatch, [(body(sender="o", message="hi", metadata=metadata), {})])
    assert status == 200
    assert [m.metadata for m in messages] == [{"client": ip_client("127.0.0.1")}]


class TrackerAgent(RecordingAgent):
    """Rasa's own in-memory tracker and lock stores; handling a message stores it and the answer as Rasa does."""

    def __init__(self, answer: str) -> None:
        from rasa.core.lock_store import InMemoryLockStore
        from rasa.core.tracker_store import InMemoryTrackerStore
        from rasa.shared.core.domain import Domain

        super().__init__(answer)
        self.tracker_store = InMemoryTrackerStore(Domain.empty())
        self.lock_store = InMemoryLockStore()
        self.processor = self

    async def get_tracker(self, sender_id: str) -> Any:
        return await self.tracker_store.get_or_create_tracker(sender_id)

    async def handle_message(self, message: UserMessage) -> None:
        from rasa.shared.core.events import BotUttered, UserUttered

        async with self.lock_store.lock(message.sender_id):
            tracker = await self.get_tracker(message.sender_id)
            tracker.update(UserUttered(message.text, input_channel=message.input_channel))
            await super().handle_message(message)
            tracker.update(BotUttered(self.answer))
            await self.tracker_store.save(tracker)


def test_after_a_hand_back_the_tracker_has_the_notices_before_the_owners_message_and_the_answer(
    monkeypatch: pytest.MonkeyPatch, no_token: None, database_url: str
) -> None:
    from rasa.shared.core.events import BotUttered, UserUttered

    from bot.conversations import handoff
    from bot.db.session import session_scope
    from bot.services import escalations
    from bot.services.escalations import Reason

    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    with session_scope(database_url) as session:
        escalations.escalate(
            session, reason=Reason.REQUEST_HUMAN, detail=None, owner_id=None, channel="rest", sender_id="rest-o",
            message_id="rest-o-1",
        )  # fmt: skip
    with session_scope(database_url) as session:
        handoff.take_over(session, sender_id="rest-o", staff="zhao")
    with session_scope(database_url) as session:
        handoff.hand_back(session, sender_id="rest-o", staff="zhao")
    agent = TrackerAgent(answer="您好，请问有什么可以帮您？")

    [(status, answer)], messages = exchange(monkeypatch, [(body(sender="rest-o", message="你好"), {})], agent)

    joined, left = wording.text("handoff.joined"), wording.text("handoff.left")
    assert status == 200 and [item["text"] for item in answer] == [joined, left, "您好，请问有什么可以帮您？"]
    assert [message.text for message in messages] == ["你好"]
    tracker = asyncio.run(agent.tracker_store.retrieve("rest-o"))
    said = [
        (type(event).__name__, event.text, (getattr(event, "metadata", None) or {}).get("handoff"))
        for event in tracker.events
        if isinstance(event, (UserUttered, BotUttered))
    ]
    # What the owner saw first is first in the transcript: the notices, then their message and the bot's answer.
    assert said == [
        ("BotUttered", joined, "joined"),
        ("BotUttered", left, "left"),
        ("UserUttered", "你好", None),
        ("BotUttered", "您好，请问有什么可以帮您？", None),
    ]
    [(_, again)], _ = exchange(monkeypatch, [(body(sender="rest-o", message="在吗"), {})], agent)
    assert [item["text"] for item in again] == ["您好，请问有什么可以帮您？"]  # each notice once


def test_with_the_database_unreachable_a_paused_conversation_gets_no_refusal_and_no_answer(
    monkeypatch: pytest.MonkeyPatch, no_token: None
) -> None:
    from rasa.shared.core.events import ConversationPaused, UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.channels.inbound import max_message_chars

    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere")  # nothing listens
    get_settings.cache_clear()
    agent = TrackerAgent(answer="您好，请问有什么可以帮您？")
    asyncio.run(agent.tracker_store.save(DialogueStateTracker.from_events("held-o", [ConversationPaused()])))
    too_long = "物" * (max_message_chars() + 5)

    answers, messages = exchange(
        monkeypatch, [(body(sender="held-o", message=too_long), {}), (body(sender="held-o", message="在吗"), {})], agent
    )

    assert answers == [(200, []), (200, [])]  # neither the channel's refusal nor the bot talks over the person
    assert messages == []
    tracker = asyncio.run(agent.tracker_store.retrieve("held-o"))
    [kept] = [event for event in tracker.events if isinstance(event, UserUttered)]  # kept for the person
    assert kept.metadata["held_note"] == {"problem": "too long", "chars": len(too_long)}


def test_a_bot_text_with_a_forbidden_phrase_is_replaced(monkeypatch: pytest.MonkeyPatch, no_token: None) -> None:
    agent = RecordingAgent(answer="不交费就断电。")
    [(status, answer)], _ = exchange(monkeypatch, [(body(sender="o", message="hi"), {})], agent)
    assert status == 200
    assert [item["text"] for item in answer] == [wording.text("channels.blocked_reply")]
    assert violations(answer[0]["text"]) == []


def test_a_compliant_bot_text_passes_unchanged(monkeypatch: pytest.MonkeyPatch, no_token: None) -> None:
    agent = RecordingAgent(answer="您好，请问有什么可以帮您？")
    [(_, answer)], _ = exchange(monkeypatch, [(body(sender="o", message="hi"), {})], agent)
    assert [item["text"] for item in answer] == ["您好，请问有什么可以帮您？"]


def post_all(
    monkeypatch: pytest.MonkeyPatch, posts: List[Tuple[Dict[str, Any], Dict[str, str]]]
) -> Tuple[List[int], List[UserMessage]]:
    """Mount the channel the way Rasa does, POST each body with its headers, return statuses and messages."""
    monkeypatch.setattr(Sanic, "test_mode", True)
    agent = RecordingAgent()
    app = Sanic(f"rest_test_{uuid.uuid4().hex[:8]}")
    app.ctx.agent = agent
    register([PinnedRestInput()], app, route="/webhooks/")
    port = free_port()

    async def scenario() -> List[int]:
        server = await app.create_server(
            host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
        )
        assert server is not None
        await server.startup()
        statuses = []
        try:
            async with aiohttp.ClientSession() as http:
                for body, headers in posts:
                    url = f"http://127.0.0.1:{port}/webhooks/rest/webhook"
                    async with http.post(url, json=body, headers=headers) as response:
                        statuses.append(response.status)
        finally:
            await server.close()
        return statuses

    return asyncio.run(scenario()), agent.messages


def test_a_client_cannot_claim_another_channel(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REST_CHANNEL_TOKEN", raising=False)
    get_settings.cache_clear()
    statuses, messages = post_all(
        monkeypatch, [({"sender": "o-1", "message": "你好", "input_channel": "wechat"}, {})]
    )
    assert statuses == [200]
    assert [(m.sender_id, m.input_channel) for m in messages] == [("o-1", "rest")]


def test_the_token_is_required_when_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REST_CHANNEL_TOKEN", "t0ken")
    get_settings.cache_clear()
    body = {"sender": "o-2", "message": "你好"}
    try:
        statuses, messages = post_all(
            monkeypatch, [(body, {}), (body, {"Authorization": "Bearer wrong"}), (body, {"Authorization": "Bearer t0ken"})]
        )
    finally:
        get_settings.cache_clear()
    assert statuses == [401, 401, 200]
    assert [m.sender_id for m in messages] == ["o-2"]


# --- the client address behind reverse proxies ---------------------------------------------------------

PROXIES = ("10.0.0.0/8", "127.0.0.1")


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("198.51.100.7", None, "198.51.100.7"),  # no proxy: the peer
        ("198.51.100.7", "1.2.3.4", "198.51.100.7"),  # an untrusted peer cannot name anyone
        ("10.0.0.5", "203.0.113.9", "203.0.113.9"),  # our proxy names the client
        ("10.0.0.5", "1.2.3.4, 203.0.113.9", "203.0.113.9"),  # the client's own entry is ignored
        ("10.0.0.5", "203.0.113.9, 10.0.0.6", "203.0.113.9"),  # two of our proxies in a row
        ("127.0.0.1", "10.0.0.6, 10.0.0.7", "10.0.0.6"),  # nothing but proxies: the first
        ("10.0.0.5", "not-an-ip, 203.0.113.9", "203.0.113.9"),
        ("10.0.0.5", "203.0.113.9, garbage", "10.0.0.5"),  # malformed where we would read it: the peer
        ("10.0.0.5", "", "10.0.0.5"),
    ],
)
def test_the_client_address_believes_forwarded_for_only_from_trusted_proxies(
    peer: str, forwarded: Optional[str], expected: str
) -> None:
    from bot.channels.inbound import client_address

    assert client_address(peer, forwarded, proxies=PROXIES) == expected
    assert client_address(peer, forwarded, proxies=()) == peer


def test_trusted_proxies_must_be_networks() -> None:
    from bot.settings import Settings

    assert Settings(_env_file=None, trusted_proxies=["10.0.0.0/8", "::1"]).trusted_proxies == ["10.0.0.0/8", "::1"]
    with pytest.raises(ValueError, match="trusted_proxies"):
        Settings(_env_file=None, trusted_proxies=["10.0.0.0/33"])


def test_behind_a_trusted_proxy_the_forwarded_client_is_counted(
    monkeypatch: pytest.MonkeyPatch, no_token: None
) -> None:
    posts = [(body(sender="o", message="hi"), {"X-Forwarded-For": "1.2.3.4, 203.0.113.9"})]
    _, messages = exchange(monkeypatch, posts)
    assert [m.metadata["client"] for m in messages] == [ip_client("127.0.0.1")]  # no proxy configured
    monkeypatch.setenv("TRUSTED_PROXIES", '["127.0.0.1"]')
    get_settings.cache_clear()
    _, messages = exchange(monkeypatch, posts)
    assert [m.metadata["client"] for m in messages] == [ip_client("203.0.113.9")]


@pytest.mark.parametrize(
    ("key", "value"), [(" date", "2030-01-01"), ("date\x00", "2030-01-01"), ("timestamp\u200b", 1900000000)]
)
def test_a_date_key_in_disguise_is_still_dropped(
    monkeypatch: pytest.MonkeyPatch, no_token: None, key: str, value: Any
) -> None:
    from bot.text.entities import reference_date

    _, messages = exchange(monkeypatch, [(body(sender="o", message="hi", metadata={key: value}), {})])
    assert [m.metadata for m in messages] == [{"client": ip_client("127.0.0.1")}]
    assert reference_date(messages[0].metadata).year != 2030


def test_clients_are_counted_by_a_keyed_hash_ipv6_by_its_64() -> None:
    from bot.channels.inbound import ip_client

    subscriber = ip_client("2001:db8:1:2:aaaa::1")
    assert subscriber == ip_client("2001:db8:1:2:bbbb::9")  # the same subscriber's /64
    assert subscriber != ip_client("2001:db8:1:3::1")
    assert ip_client("::ffff:192.0.2.7") == ip_client("192.0.2.7") != ip_client("192.0.2.8")
    assert ip_client(None) == "ip:unknown"
    for key in (subscriber, ip_client("192.0.2.7")):  # never the address itself
        assert re.fullmatch(r"ip:[0-9a-f]{32}", key) and "192.0.2" not in key and "2001" not in key


def test_the_client_key_depends_on_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.channels.inbound import ip_client
    from bot.settings import get_settings

    before = ip_client("192.0.2.7")
    monkeypatch.setenv("SECRET_KEY", "another-secret")
    get_settings.cache_clear()
    try:
        assert ip_client("192.0.2.7") != before
    finally:
        monkeypatch.undo()
        get_settings.cache_clear()


def test_every_x_forwarded_for_line_is_read() -> None:
    from sanic.compat import Header

    from bot.channels.inbound import request_client

    headers = Header([("X-Forwarded-For", "6.6.6.6"), ("X-Forwarded-For", "203.0.113.9")])
    get_settings.cache_clear()
    try:
        import os

        os.environ["TRUSTED_PROXIES"] = '["127.0.0.1"]'
        assert request_client("127.0.0.1", headers) == ip_client("203.0.113.9")
    finally:
        os.environ.pop("TRUSTED_PROXIES", None)
        get_settings.cache_clear()


def test_empty_secrets_are_refused_outside_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOCK_START")  # the suite's set clock is local only
    from bot.settings import Settings

    good = {"secret_key": "s3cret", "rest_channel_token": "t", "action_server_token": "a", "staff_secret_key": "s"}
    Settings(_env_file=None, environment="production", **good)
    for name in good:
        with pytest.raises(ValueError, match="empty"):
            Settings(_env_file=None, environment="production", **{**good, name: "  "})
