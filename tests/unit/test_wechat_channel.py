"""The WeChat channel end to end without Rasa: signed callbacks from a simulated WeChat, a fake bot in
place of Rasa's ``on_new_message``, the fake WeChat API for customer-service messages, a real database.

Covers forged and replayed callbacks, safe mode (the webhook's default here, with an EncodingAESKey: plaintext
is refused, a replayed signature and nonce are refused), compatibility mode, plaintext mode without a key,
retries (one after another and concurrent), the slow path (``success`` now, the reply by API later), long
answers, buttons as numbered choices, non-text messages, follow/unfollow, and the Sanic blueprint mounted the
way Rasa mounts it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import aiohttp
import pytest
from rasa.core.channels.channel import UserMessage, register
from sanic import Sanic
from sqlalchemy import func, select

from bot.channels.wechat import WeChatInput
from bot.channels.wechat_handler import (
    PLEASE_TYPE_TEXT,
    PURGE_EVERY_SECONDS,
    SORRY_TEXT,
    WELCOME_TEXT,
    HttpAnswer,
    WeChatConfig,
    WeChatWebhook,
)
from bot.clock import utc_now
from bot.compliance import violations
from bot.db import migrate, models
from bot.db.session import get_engine, session_scope
from bot.settings import get_settings
from bot.wechat.api import WeChatAPI
from bot.wechat.format import MAX_TEXT_BYTES, utf8_len
from bot.wechat.store import DatabaseTokenCache, WeChatStore
from tests.conftest import free_port
from tests.fakes.wechat_api import (
    TEST_APP_ID,
    TEST_APP_SECRET,
    TEST_ENCODING_AES_KEY,
    TEST_TOKEN,
    FakeWeChatAPI,
)
from tests.fakes.wechat_client import Reply, WeChatClient, now

Answer = Dict[str, Any]


@dataclass
class FakeBot:
    """Stands in for Rasa's ``on_new_message``: records each message, waits, answers via the output channel."""

    delay: float = 0.0
    answer: Callable[[UserMessage], List[Answer]] = lambda message: [{"text": f"收到：{message.text}"}]
    calls: List[UserMessage] = field(default_factory=list)
    fail: bool = False
    started: asyncio.Event = field(default_factory=asyncio.Event)

    async def __call__(self, message: UserMessage) -> None:
        self.calls.append(message)
        self.started.set()
        await asyncio.sleep(self.delay)
        if self.fail:
            raise RuntimeError("the bot broke")
        for answer in self.answer(message):
            if answer.get("buttons"):
                await message.output_channel.send_text_with_buttons(
                    message.sender_id, answer["text"], answer["buttons"]
                )
            else:
                await message.output_channel.send_text_message(message.sender_id, answer["text"])


@dataclass
class Harness:
    url: str
    fake_api: FakeWeChatAPI
    store: WeChatStore
    client: WeChatClient = field(
        default_factory=lambda: WeChatClient(TEST_TOKEN, TEST_APP_ID, TEST_ENCODING_AES_KEY)
    )

    def config(self, budget: float = 4.5, aes: bool = True) -> WeChatConfig:
        return WeChatConfig(
            token=TEST_TOKEN,
            app_id=TEST_APP_ID,
            app_secret=TEST_APP_SECRET,
            encoding_aes_key=TEST_ENCODING_AES_KEY if aes else None,
            api_base_url=self.fake_api.base_url,
            reply_budget=budget,
        )

    def channel(self, budget: float = 4.5, aes: bool = True) -> WeChatInput:
        api = WeChatAPI(self.fake_api.base_url, TEST_APP_ID, TEST_APP_SECRET, DatabaseTokenCache(self.store))
        return WeChatInput(self.config(budget, aes), self.store, api, follow_up_delay=0.0)

    def webhook(self, bot: FakeBot, budget: float = 4.5, aes: bool = True) -> WeChatWebhook:
        return self.channel(budget, aes).webhook(bot)

    async def post(self, webhook: WeChatWebhook, xml: str, *, encrypted: bool = True, **sign: Any) -> Reply:
        """Send ``xml`` as WeChat would: in safe mode by default (the webhook has an EncodingAESKey)."""
        request = self.client.sign(xml, encrypted=encrypted, **sign)
        answer = await webhook.receive(request.params, request.body)
        return self.client.read(answer.status, answer.body, encrypted=encrypted or bool(sign.get("compatible")))

    def inbound(self) -> List[models.WeChatInboundMessage]:
        with session_scope(self.url) as session:
            return list(session.execute(select(models.WeChatInboundMessage)).scalars())

    def signatures(self) -> List[models.WeChatCallbackSignature]:
        with session_scope(self.url) as session:
            return list(
                session.execute(
                    select(models.WeChatCallbackSignature).order_by(models.WeChatCallbackSignature.id)
                ).scalars()
            )


def make_harness(url: str) -> Iterator[Harness]:
    fake = FakeWeChatAPI().start()
    try:
        yield Harness(url, fake, WeChatStore(url))
    finally:
        fake.stop()


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    """SQLite: most behaviour does not depend on the database."""
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    migrate.upgrade(url)
    yield from make_harness(url)
    get_engine(url).dispose()


@pytest.fixture
def any_db_harness(database_url: str) -> Iterator[Harness]:
    """SQLite and PostgreSQL: deduplication must hold on both."""
    yield from make_harness(database_url)


def openid() -> str:
    return f"o-{uuid.uuid4().hex[:20]}"


def aware(moment: dt.datetime) -> dt.datetime:
    """SQLite gives stored times back naive; they are UTC."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


# --- verification and refusals ------------------------------------------------------------------------


def test_url_verification_echoes_only_a_signed_echostr(harness: Harness) -> None:
    # In safe mode too: WeChat's GET carries a plaintext echostr signed with `signature` (no msg_signature).
    webhook = harness.webhook(FakeBot())
    assert webhook.config is not None and webhook.config.encoding_aes_key
    good = harness.client.verification("echo-123")
    assert asyncio.run(webhook.verify(good)) == HttpAnswer(200, "echo-123")
    forged = {**good, "signature": "0" * 40}
    assert asyncio.run(webhook.verify(forged)).status == 403
    assert asyncio.run(webhook.verify({**good, "echostr": None})).status == 400
    plaintext_mode = harness.webhook(FakeBot(), aes=False)
    assert asyncio.run(plaintext_mode.verify(good)) == HttpAnswer(200, "echo-123")
    assert harness.signatures() == []


def test_without_a_token_the_channel_answers_503(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WECHAT_TOKEN", raising=False)
    get_settings.cache_clear()
    try:
        channel = WeChatInput.from_credentials(None)
    finally:
        get_settings.cache_clear()
    webhook = channel.webhook(FakeBot())  # type: ignore[attr-defined]
    client = WeChatClient(TEST_TOKEN, TEST_APP_ID)
    answer = asyncio.run(webhook.verify(client.verification("x")))
    assert answer.status == 503 and "WECHAT_TOKEN" in answer.body
    request = client.sign(client.text("o1", "hi"))
    assert asyncio.run(webhook.receive(request.params, request.body)).status == 503


def test_an_invalid_aes_key_answers_503_with_the_reason(harness: Harness) -> None:
    config = WeChatConfig(token=TEST_TOKEN, app_id=TEST_APP_ID, encoding_aes_key="too-short")
    webhook = WeChatInput(config, harness.store).webhook(FakeBot())
    answer = asyncio.run(webhook.verify(harness.client.verification("x")))
    assert answer.status == 503 and "WECHAT_ENCODING_AES_KEY" in answer.body


@pytest.mark.parametrize("aes", [True, False], ids=["safe-mode", "plaintext-mode"])
def test_forged_stale_and_tampered_callbacks_never_reach_the_bot(harness: Harness, aes: bool) -> None:
    bot = FakeBot()
    webhook = harness.webhook(bot, aes=aes)
    forger = WeChatClient("guessed-token", TEST_APP_ID, TEST_ENCODING_AES_KEY)
    user = openid()

    async def scenario() -> List[int]:
        statuses = []
        request = forger.sign(harness.client.text(user, "我欠多少物业费"), encrypted=aes)
        statuses.append((await webhook.receive(request.params, request.body)).status)
        for skew in (-301, 301, -3600):
            reply = await harness.post(webhook, harness.client.text(user, "hi"), encrypted=aes, timestamp=now() + skew)
            statuses.append(reply.status)
        request = harness.client.sign(harness.client.text(user, "hi"), encrypted=aes)
        no_signature = {k: v for k, v in request.params.items() if k != "signature"}
        statuses.append((await webhook.receive(no_signature, request.body)).status)
        if aes:
            tampered = {**request.params, "msg_signature": "0" * 40}
            statuses.append((await webhook.receive(tampered, request.body)).status)
            no_msg_signature = {k: v for k, v in request.params.items() if k != "msg_signature"}
            statuses.append((await webhook.receive(no_msg_signature, request.body)).status)
            # A signed callback with a body swapped in: signature fine, msg_signature does not match it.
            other = harness.client.sign(harness.client.text(user, "别的内容"), encrypted=True)
            statuses.append((await webhook.receive(request.params, other.body)).status)
        return statuses

    assert asyncio.run(scenario()) == [403] * (8 if aes else 5)
    assert bot.calls == [] and harness.inbound() == [] and harness.signatures() == []


@pytest.mark.parametrize("aes", [True, False], ids=["safe-mode", "plaintext-mode"])
def test_malformed_bodies_are_400(harness: Harness, aes: bool) -> None:
    webhook = harness.webhook(FakeBot(), aes=aes)
    request = harness.client.sign(harness.client.text("o1", "hi"), encrypted=aes)
    for body in (b"", b"not xml", b"<xml><MsgType>text</MsgType></xml>"):
        assert asyncio.run(webhook.receive(request.params, body)).status == 400
    assert harness.inbound() == [] and harness.signatures() == []


def test_an_encrypted_callback_without_an_aes_key_is_503(harness: Harness) -> None:
    webhook = harness.webhook(FakeBot(), aes=False)
    reply = asyncio.run(harness.post(webhook, harness.client.text("o1", "hi"), encrypted=True))
    assert reply.status == 503


# --- safe mode is strict: no plaintext, no replays -----------------------------------------------------------


def test_with_an_aes_key_a_plaintext_callback_is_refused_and_logged(
    harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    # The issue: a callback URL seen once (a proxy's access log) signs any plaintext body for five minutes.
    bot = FakeBot()
    webhook = harness.webhook(bot)
    owner = openid()
    seen_url = harness.client.sign(harness.client.text(owner, "hi"), encrypted=True).params
    plaintext_params = {k: v for k, v in seen_url.items() if k not in ("encrypt_type", "msg_signature")}
    forged_body = harness.client.text(owner, "我欠多少物业费", msg_id=WeChatClient.new_msg_id()).encode("utf-8")
    compatible = harness.client.sign(harness.client.text(owner, "我欠多少物业费"), compatible=True)
    attempts = [
        (plaintext_params, forged_body),  # the attack: the URL's signature, encrypt_type left out
        ({**seen_url, "encrypt_type": "raw"}, forged_body),
        ({**seen_url, "encrypt_type": ""}, forged_body),
        # Compatibility mode's body (plaintext beside <Encrypt>) without encrypt_type: not decrypted, refused.
        ({k: v for k, v in compatible.params.items() if k != "encrypt_type"}, compatible.body),
    ]
    with caplog.at_level(logging.WARNING, logger="bot.channels.wechat_handler"):
        answers = [asyncio.run(webhook.receive(params, body)) for params, body in attempts]
    assert [answer.status for answer in answers] == [403] * 4
    assert all("plaintext callback refused" in answer.body for answer in answers)
    assert "Content" not in answers[0].body and "欠" not in answers[0].body
    refusals = [r.getMessage() for r in caplog.records if "plaintext callback refused" in r.getMessage()]
    assert len(refusals) == 4
    assert bot.calls == [] and harness.inbound() == [] and harness.signatures() == []


def test_compatibility_mode_reads_only_the_encrypted_message(harness: Harness) -> None:
    # 兼容模式 sends the message twice: in plaintext (unsigned) and in <Encrypt> (signed by msg_signature).
    bot = FakeBot()
    webhook = harness.webhook(bot)
    sender, victim = openid(), openid()
    request = harness.client.sign(harness.client.text(sender, "你好", msg_id="5550001"), compatible=True)
    body = request.body.decode("utf-8")
    assert "<Content><![CDATA[你好]]></Content>" in body and "<Encrypt>" in body
    tampered = (
        body.replace(sender, victim).replace("你好", "我欠多少物业费").replace("5550001", "5550002").encode("utf-8")
    )
    answer = asyncio.run(webhook.receive(request.params, tampered))
    reply = harness.client.read(answer.status, answer.body, encrypted=True)
    assert reply.status == 200 and reply.fields is not None
    assert (reply.content, reply.fields["ToUserName"]) == ("收到：你好", sender)
    [message] = bot.calls
    assert (message.sender_id, message.text, message.message_id) == (sender, "你好", "wechat-5550001")
    assert [row.dedupe_key for row in harness.inbound()] == ["msg:5550001"]


def test_a_replayed_safe_mode_callback_is_refused_and_logged(
    any_db_harness: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    harness = any_db_harness
    bot = FakeBot()
    webhook = harness.webhook(bot)
    owner = openid()
    stamp = now() - 5
    request = harness.client.sign(
        harness.client.text(owner, "我欠多少物业费", msg_id="7000001"), encrypted=True, timestamp=stamp, nonce="48151623"
    )
    # The same pair signing another message (a new MsgId): only WeChat could make it, and it never reuses one.
    same_pair = harness.client.sign(
        harness.client.text(owner, "我欠多少物业费", msg_id="7000002"), encrypted=True, timestamp=stamp, nonce="48151623"
    )

    async def scenario() -> List[HttpAnswer]:
        first = await webhook.receive(request.params, request.body)
        return [first, await webhook.receive(request.params, request.body), await webhook.receive(same_pair.params, same_pair.body)]

    with caplog.at_level(logging.WARNING, logger="bot.channels.wechat_handler"):
        first, replay, new_msg_id = asyncio.run(scenario())
    assert harness.client.read(first.status, first.body, encrypted=True).content == "收到：我欠多少物业费"
    assert (replay.status, replay.body) == (403, "replayed callback")
    assert (new_msg_id.status, new_msg_id.body) == (403, "replayed callback")
    assert len([r for r in caplog.records if "replayed callback" in r.getMessage()]) == 2
    assert len(bot.calls) == 1
    assert [(row.dedupe_key, row.status) for row in harness.inbound()] == [
        ("msg:7000001", models.WeChatDelivery.REPLIED)
    ]
    [row] = harness.signatures()
    assert (row.signature, row.nonce, row.dedupe_key) == (request.params["signature"], "48151623", "msg:7000001")
    assert aware(row.expires_at) == dt.datetime.fromtimestamp(stamp + 300 + 60, dt.timezone.utc)
    assert row.seen_at is not None


def test_a_captured_plaintext_url_cannot_carry_another_message(any_db_harness: Harness) -> None:
    # Plaintext mode (no EncodingAESKey): `signature` covers no body, so the pair itself must not be usable twice.
    harness = any_db_harness
    bot = FakeBot()
    webhook = harness.webhook(bot, aes=False)
    owner, attacker_pick = openid(), openid()
    request = harness.client.sign(harness.client.text(owner, "你好"))
    forged = harness.client.text(attacker_pick, "我欠多少物业费", msg_id=WeChatClient.new_msg_id()).encode("utf-8")

    async def scenario() -> List[HttpAnswer]:
        return [await webhook.receive(request.params, request.body), await webhook.receive(request.params, forged)]

    first, replay = asyncio.run(scenario())
    assert first.status == 200 and "收到：你好" in first.body
    assert (replay.status, replay.body) == (403, "replayed callback")
    assert [call.sender_id for call in bot.calls] == [owner]
    assert len(harness.inbound()) == 1
    [row] = harness.signatures()
    assert (row.signature, row.nonce) == (request.params["signature"], request.params["nonce"])


def test_a_captured_url_posted_first_with_another_body_does_not_block_wechats_callback(
    any_db_harness: Harness,
) -> None:
    # Only a callback that passed every check is remembered: the URL alone (signature, nonce, msg_signature)
    # posted ahead of WeChat with a body of the attacker's cannot use up the pair.
    harness = any_db_harness
    bot = FakeBot()
    webhook = harness.webhook(bot)
    owner = openid()
    genuine = harness.client.sign(harness.client.text(owner, "你好"), encrypted=True)
    other = harness.client.sign(harness.client.text(openid(), "我欠多少物业费"), encrypted=True)
    garbage_bodies = [other.body, b"<xml><Encrypt>AAAA</Encrypt></xml>", harness.client.text(owner, "x").encode()]

    async def scenario() -> List[int]:
        statuses = [(await webhook.receive(genuine.params, body)).status for body in garbage_bodies]
        plain = {k: v for k, v in genuine.params.items() if k not in ("encrypt_type", "msg_signature")}
        statuses.append((await webhook.receive(plain, harness.client.text(owner, "x").encode())).status)
        statuses.append((await webhook.receive(genuine.params, genuine.body)).status)
        return statuses

    assert asyncio.run(scenario()) == [403, 403, 400, 403, 200]
    assert [call.sender_id for call in bot.calls] == [owner]
    [row] = harness.signatures()
    assert row.signature == genuine.params["signature"]


def test_processes_racing_on_one_pair_accept_it_once(any_db_harness: Harness) -> None:
    # Two server processes (two webhooks on one database) receive the same captured callback at once.
    harness = any_db_harness
    bots = [FakeBot(delay=0.2), FakeBot(delay=0.2)]
    webhooks = [harness.webhook(bot) for bot in bots]
    request = harness.client.sign(harness.client.text(openid(), "我想报修"), encrypted=True)

    async def scenario() -> List[HttpAnswer]:
        answers = await asyncio.gather(*(hook.receive(request.params, request.body) for hook in webhooks * 2))
        for hook in webhooks:
            await hook.drain()
        return list(answers)

    answers = asyncio.run(scenario())
    assert sorted(answer.status for answer in answers) == [200, 403, 403, 403]
    assert sum(len(bot.calls) for bot in bots) == 1
    assert len(harness.inbound()) == 1 and len(harness.signatures()) == 1


def test_a_retry_signed_afresh_is_answered_and_its_own_pair_remembered(any_db_harness: Harness) -> None:
    # WeChat signs every retry with a new timestamp and nonce: the retry is answered (the stored reply), and
    # its pair is remembered too, so the retry's URL cannot be replayed either.
    harness = any_db_harness
    bot = FakeBot()
    webhook = harness.webhook(bot)
    xml = harness.client.text(openid(), "我欠多少物业费", msg_id=WeChatClient.new_msg_id())
    first = harness.client.sign(xml, encrypted=True)
    retry = harness.client.sign(xml, encrypted=True)

    async def scenario() -> List[HttpAnswer]:
        return [
            await webhook.receive(first.params, first.body),
            await webhook.receive(retry.params, retry.body),
            await webhook.receive(retry.params, retry.body),
        ]

    answers = asyncio.run(scenario())
    replies = [harness.client.read(a.status, a.body, encrypted=True).content for a in answers[:2]]
    assert replies == ["收到：我欠多少物业费"] * 2
    assert (answers[2].status, answers[2].body) == (403, "replayed callback")
    assert len(bot.calls) == 1 and len(harness.inbound()) == 1
    assert {row.nonce for row in harness.signatures()} == {first.params["nonce"], retry.params["nonce"]}


def test_expired_signatures_are_purged_with_the_old_message_keys(harness: Harness) -> None:
    webhook = harness.webhook(FakeBot())
    stamp = now() - 250
    request = harness.client.sign(harness.client.text(openid(), "hi"), encrypted=True, timestamp=stamp)
    assert asyncio.run(webhook.receive(request.params, request.body)).status == 200
    [row] = harness.signatures()
    expires = dt.datetime.fromtimestamp(stamp + 360, dt.timezone.utc)
    assert aware(row.expires_at) == expires
    assert harness.store.purge(utc_now() - dt.timedelta(days=3), expires) == 0
    assert harness.store.purge(utc_now() - dt.timedelta(days=3), expires + dt.timedelta(seconds=1)) == 1
    assert harness.signatures() == [] and len(harness.inbound()) == 1


def test_the_webhook_purges_signatures_on_its_own_clock(harness: Harness) -> None:
    moment = {"now": float(now())}
    webhook = WeChatWebhook(harness.config(), FakeBot(), harness.store, api=None, clock=lambda: moment["now"])
    client = harness.client

    async def scenario() -> None:
        request = client.sign(client.text(openid(), "hi"), encrypted=True, timestamp=int(moment["now"]))
        assert (await webhook.receive(request.params, request.body)).status == 200
        await webhook.drain()
        assert len(harness.signatures()) == 1
        moment["now"] += 361  # past the window: its timestamp is refused by now, the pair can go
        webhook._last_purge = -PURGE_EVERY_SECONDS  # an hour since the last purge
        request = client.sign(client.text(openid(), "hi"), encrypted=True, timestamp=int(moment["now"]))
        assert (await webhook.receive(request.params, request.body)).status == 200
        await webhook.drain()

    asyncio.run(scenario())
    [row] = harness.signatures()
    assert aware(row.expires_at) == dt.datetime.fromtimestamp(int(moment["now"]) + 360, dt.timezone.utc)


# --- messages -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "mode", ["plaintext-mode", "safe-mode", "compatibility-mode"]
)
def test_a_text_goes_to_the_bot_and_the_answer_comes_back_passively(harness: Harness, mode: str) -> None:
    bot = FakeBot()
    webhook = harness.webhook(bot, aes=mode != "plaintext-mode")
    user = openid()
    xml = harness.client.text(user, " 我欠多少物业费 ", msg_id="9876543210", create_time=now() - 2)
    reply = asyncio.run(
        harness.post(webhook, xml, encrypted=mode == "safe-mode", compatible=mode == "compatibility-mode")
    )
    assert reply.status == 200 and reply.fields is not None
    assert reply.content == "收到：我欠多少物业费"
    assert (reply.fields["ToUserName"], reply.fields["FromUserName"]) == (user, harness.client.account)
    assert ("Encrypt" in reply.body) is (mode != "plaintext-mode")

    [message] = bot.calls
    assert (message.text, message.sender_id, message.input_channel) == ("我欠多少物业费", user, "wechat")
    assert message.message_id == "wechat-9876543210"
    assert message.metadata["wechat"]["msg_id"] == "9876543210"
    [row] = harness.inbound()
    assert (row.dedupe_key, row.status, row.reply) == (
        "msg:9876543210",
        models.WeChatDelivery.REPLIED,
        reply.content,
    )
    assert harness.fake_api.sent == []


def test_metadata_has_no_date_and_names_the_openid_as_the_client(harness: Harness) -> None:
    bot = FakeBot()
    user = openid()
    created = now() - 30
    asyncio.run(harness.post(harness.webhook(bot), harness.client.text(user, "hi", create_time=created)))
    metadata = bot.calls[0].metadata
    # The server's clock decides "today"; WeChat's CreateTime is not passed on as a date.
    assert not {"date", "timestamp", "sent_at", "CreateTime"} & set(metadata)
    assert metadata["client"] == f"wechat:{user}"


def test_a_replayed_message_runs_the_bot_once_and_repeats_the_same_reply(any_db_harness: Harness) -> None:
    harness = any_db_harness
    bot = FakeBot()
    webhook = harness.webhook(bot)
    xml = harness.client.text(openid(), "我想报修", msg_id=WeChatClient.new_msg_id())

    async def scenario() -> List[Reply]:
        return [await harness.post(webhook, xml) for _ in range(3)]  # WeChat re-signs every retry

    replies = asyncio.run(scenario())
    assert len(bot.calls) == 1
    assert [reply.content for reply in replies] == ["收到：我想报修"] * 3
    assert len(harness.inbound()) == 1


def test_concurrent_retries_run_the_bot_once_and_deliver_once(any_db_harness: Harness) -> None:
    harness = any_db_harness
    bot = FakeBot(delay=0.3)
    webhook = harness.webhook(bot, budget=3.0)
    user = openid()
    xml = harness.client.text(user, "暖气不热", msg_id=WeChatClient.new_msg_id())

    async def scenario() -> List[Reply]:
        replies = await asyncio.gather(*(harness.post(webhook, xml) for _ in range(3)))
        await webhook.drain()
        return list(replies)

    replies = asyncio.run(scenario())
    assert len(bot.calls) == 1
    assert all(reply.status == 200 for reply in replies)
    passive = [reply.content for reply in replies if reply.content]
    by_api = harness.fake_api.texts_for(user)
    assert passive + by_api == ["收到：暖气不热"], "delivered exactly once, passively or by API"
    [row] = harness.inbound()
    assert row.status in (models.WeChatDelivery.REPLIED, models.WeChatDelivery.DELIVERED)


def test_a_slow_bot_gets_success_now_and_the_reply_by_api(harness: Harness) -> None:
    bot = FakeBot(delay=0.8)
    webhook = harness.webhook(bot, budget=0.2)
    user = openid()

    async def scenario() -> tuple:
        started = time.monotonic()
        reply = await harness.post(webhook, harness.client.text(user, "我欠多少物业费"))
        elapsed = time.monotonic() - started
        assert harness.fake_api.texts_for(user) == []
        await webhook.drain()
        return reply, elapsed

    reply, elapsed = asyncio.run(scenario())
    assert reply.is_success and elapsed < 0.7
    assert harness.fake_api.texts_for(user) == ["收到：我欠多少物业费"]
    assert harness.inbound()[0].status is models.WeChatDelivery.DELIVERED


def test_a_retry_while_the_slow_bot_runs_gets_success_and_no_second_run(any_db_harness: Harness) -> None:
    harness = any_db_harness
    bot = FakeBot(delay=1.0)
    webhook = harness.webhook(bot, budget=0.2)
    user = openid()
    xml = harness.client.text(user, "下周五交", msg_id=WeChatClient.new_msg_id())

    async def scenario() -> List[Reply]:
        first = await harness.post(webhook, xml)
        retry = await harness.post(webhook, xml)
        await webhook.drain()
        late_retry = await harness.post(webhook, xml)
        return [first, retry, late_retry]

    replies = asyncio.run(scenario())
    assert all(reply.is_success for reply in replies)
    assert len(bot.calls) == 1
    assert harness.fake_api.texts_for(user) == ["收到：下周五交"]
    assert len(harness.inbound()) == 1


def test_a_retry_that_arrives_before_the_bot_finishes_within_budget_moves_delivery_to_the_api(
    harness: Harness,
) -> None:
    # WeChat retried, so it has hung up on the first request: its passive answer would be lost.
    bot = FakeBot(delay=0.5)
    webhook = harness.webhook(bot, budget=3.0)
    user = openid()
    xml = harness.client.text(user, "多少钱", msg_id=WeChatClient.new_msg_id())

    async def scenario() -> List[Reply]:
        first = asyncio.ensure_future(harness.post(webhook, xml))
        # the retry must arrive while the bot is still working on the first delivery
        await asyncio.wait_for(bot.started.wait(), timeout=10)
        retry = await harness.post(webhook, xml)
        replies = [await first, retry]
        await webhook.drain()
        return replies

    first, retry = asyncio.run(scenario())
    assert first.is_success and retry.is_success
    assert harness.fake_api.texts_for(user) == ["收到：多少钱"]
    assert len(bot.calls) == 1


def test_a_long_answer_is_split_first_part_passive_rest_by_api(harness: Harness) -> None:
    paragraph = "我们每个月都会公示物业费的收支明细，您可以随时查看。" * 20  # 1560 bytes
    bot = FakeBot(
        answer=lambda message: [{"text": paragraph}, {"text": paragraph}, {"text": "还有什么可以帮您？"}]
    )
    webhook = harness.webhook(bot)
    user = openid()

    async def scenario() -> Reply:
        reply = await harness.post(webhook, harness.client.text(user, "物业费花哪了"))
        await webhook.drain()
        return reply

    reply = asyncio.run(scenario())
    by_api = harness.fake_api.texts_for(user)
    assert reply.content == paragraph
    assert by_api == [paragraph + "\n\n还有什么可以帮您？"]
    assert all(utf8_len(text) <= MAX_TEXT_BYTES for text in [reply.content or "", *by_api])


def test_several_short_answers_are_combined_into_one_passive_reply(harness: Harness) -> None:
    bot = FakeBot(
        answer=lambda message: [{"text": "核对成功，王建国您好。"}, {"text": "您目前欠物业费2,460.00元。"}]
    )
    reply = asyncio.run(harness.post(harness.webhook(bot), harness.client.text(openid(), "6688")))
    assert reply.content == "核对成功，王建国您好。\n\n您目前欠物业费2,460.00元。"


def test_buttons_become_numbers_and_a_typed_number_sends_the_payload(harness: Harness) -> None:
    buttons = [{"title": "好的", "payload": "/affirm"}, {"title": "不用了", "payload": "/deny"}]

    def answer(message: UserMessage) -> List[Answer]:
        if message.text == "暖气不热":
            return [{"text": "需要帮您登记维修吗？", "buttons": buttons}]
        return [{"text": f"收到：{message.text}"}]

    bot = FakeBot(answer=answer)
    webhook = harness.webhook(bot)
    user = openid()

    async def scenario() -> List[Reply]:
        return [
            await harness.post(webhook, harness.client.text(user, "暖气不热")),
            await harness.post(webhook, harness.client.text(user, "1")),
            await harness.post(webhook, harness.client.text(user, "1")),
        ]

    offered, picked, plain = asyncio.run(scenario())
    assert offered.content == "需要帮您登记维修吗？\n回复数字选择：\n1. 好的\n2. 不用了"
    assert bot.calls[1].text == "/affirm"
    assert bot.calls[1].metadata["wechat"]["typed"] == "1"
    assert picked.content == "收到：/affirm"
    assert bot.calls[2].text == "1", "choices are cleared once the bot answers without buttons"
    assert plain.content == "收到：1"


def test_choices_belong_to_one_user(harness: Harness) -> None:
    bot = FakeBot(answer=lambda m: [{"text": "选吧", "buttons": [{"title": "好的", "payload": "/affirm"}]}])
    webhook = harness.webhook(bot)
    first, second = openid(), openid()

    async def scenario() -> None:
        await harness.post(webhook, harness.client.text(first, "暖气不热"))
        await harness.post(webhook, harness.client.text(second, "1"))

    asyncio.run(scenario())
    assert bot.calls[1].text == "1"


@pytest.mark.parametrize("kind", ["voice", "image"])
def test_non_text_messages_are_asked_to_type_and_skip_the_bot(harness: Harness, kind: str) -> None:
    bot = FakeBot()
    webhook = harness.webhook(bot)
    xml = getattr(harness.client, kind)(openid())

    async def scenario() -> List[Reply]:
        return [await harness.post(webhook, xml, encrypted=True) for _ in range(2)]

    replies = asyncio.run(scenario())
    assert [reply.content for reply in replies] == [PLEASE_TYPE_TEXT] * 2
    assert PLEASE_TYPE_TEXT.startswith("请直接打字告诉我")
    assert bot.calls == [] and len(harness.inbound()) == 1


def test_follow_gets_a_welcome_and_unfollow_is_recorded_once(any_db_harness: Harness) -> None:
    harness = any_db_harness
    bot = FakeBot()
    webhook = harness.webhook(bot)
    user = openid()
    moment = now()
    follow = harness.client.event(user, "subscribe", create_time=moment - 60)
    unfollow = harness.client.event(user, "unsubscribe", create_time=moment)

    async def scenario() -> List[Reply]:
        return [
            await harness.post(webhook, follow),
            await harness.post(webhook, unfollow),
            await harness.post(webhook, unfollow),  # WeChat's retry
            await harness.post(webhook, harness.client.event(user, "CLICK", event_key="MENU_1")),
        ]

    welcome, gone, gone_again, click = asyncio.run(scenario())
    assert welcome.content == WELCOME_TEXT
    assert gone.is_success and gone_again.is_success and click.is_success
    assert [event.event for event in harness.store.subscription_events(user)] == ["subscribe", "unsubscribe"]
    assert bot.calls == []
    with session_scope(harness.url) as session:
        count = session.execute(select(func.count()).select_from(models.WeChatSubscriptionEvent)).scalar_one()
    assert count == 2


def test_a_failing_bot_gets_an_apology(harness: Harness) -> None:
    reply = asyncio.run(
        harness.post(harness.webhook(FakeBot(fail=True)), harness.client.text(openid(), "hi"))
    )
    assert reply.content == SORRY_TEXT


def test_a_refused_api_delivery_is_recorded_as_failed(harness: Harness) -> None:
    harness.fake_api.fail_next_sends(45015)
    webhook = harness.webhook(FakeBot(delay=0.5), budget=0.1)

    async def scenario() -> Reply:
        reply = await harness.post(webhook, harness.client.text(openid(), "hi"))
        await webhook.drain()
        return reply

    assert asyncio.run(scenario()).is_success
    assert harness.inbound()[0].status is models.WeChatDelivery.FAILED


def test_the_channels_own_texts_are_compliant() -> None:
    for text in (WELCOME_TEXT, PLEASE_TYPE_TEXT, SORRY_TEXT):
        assert violations(text) == []
        assert utf8_len(text) <= MAX_TEXT_BYTES


# --- the Sanic blueprint, mounted the way Rasa mounts input channels --------------------------------------


class FakeAgent:
    def __init__(self, bot: FakeBot) -> None:
        self.bot = bot

    async def handle_message(self, message: UserMessage) -> None:
        await self.bot(message)


def test_the_blueprint_serves_webhooks_wechat_webhook(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Sanic, "test_mode", True)  # several apps per test process
    bot = FakeBot(delay=0.6)
    channel = harness.channel(budget=0.3)
    app = Sanic(f"wechat_test_{uuid.uuid4().hex[:8]}")
    app.ctx.agent = FakeAgent(bot)
    register([channel], app, route="/webhooks/")
    port = free_port()
    base = f"http://127.0.0.1:{port}/webhooks/wechat"
    user = openid()

    async def scenario() -> Dict[str, Any]:
        server = await app.create_server(
            host="127.0.0.1", port=port, return_asyncio_server=True, access_log=False
        )
        assert server is not None  # already listening (create_server awaits it)
        await server.startup()
        results: Dict[str, Any] = {}
        try:
            async with aiohttp.ClientSession() as http:
                async with http.get(base + "/") as response:
                    results["health"] = (response.status, await response.json())
                async with http.get(base + "/webhook", params=harness.client.verification("abc")) as response:
                    results["verify"] = (response.status, await response.text())
                for name, xml in (
                    ("voice", harness.client.voice(user)),
                    ("text", harness.client.text(user, "我欠多少物业费")),
                ):
                    request = harness.client.sign(xml, encrypted=True)
                    async with http.post(
                        base + "/webhook", params=request.params, data=request.body
                    ) as response:
                        results[name] = harness.client.read(
                            response.status, await response.text(), encrypted=True
                        )
                async with http.post(base + "/webhook", params=request.params, data=request.body) as response:
                    results["replayed"] = (response.status, await response.text())
                plaintext = harness.client.sign(harness.client.text(user, "我欠多少物业费"))
                async with http.post(base + "/webhook", params=plaintext.params, data=plaintext.body) as response:
                    results["plaintext"] = response.status
                forged = {**harness.client.sign(harness.client.text(user, "x")).params, "signature": "f" * 40}
                async with http.post(base + "/webhook", params=forged, data=b"<xml/>") as response:
                    results["forged"] = response.status
            results["delivered"] = await asyncio.get_running_loop().run_in_executor(
                None, harness.fake_api.wait_for_texts, user, 1, 10.0
            )
        finally:
            await server.close()
        return results

    results = asyncio.run(scenario())
    assert results["health"] == (200, {"status": "ok"})
    assert results["verify"] == (200, "abc")
    assert results["voice"].content == PLEASE_TYPE_TEXT
    assert results["text"].is_success  # slower than the budget ...
    assert results["delivered"] == ["收到：我欠多少物业费"]  # ... so it came by the customer-service API
    assert results["replayed"] == (403, "replayed callback")
    assert results["plaintext"] == 403  # safe mode is configured: plaintext is refused
    assert results["forged"] == 403
    assert len(bot.calls) == 1
    assert bot.calls[0].input_channel == "wechat" and bot.calls[0].sender_id == user


def test_credentials_entry_mounts_the_channel() -> None:
    import yaml

    from bot.settings import PROJECT_ROOT

    credentials = yaml.safe_load((PROJECT_ROOT / "credentials.yml").read_text(encoding="utf-8"))
    assert "bot.channels.wechat.WeChatInput" in credentials
    assert not credentials["bot.channels.wechat.WeChatInput"], "no secrets in credentials.yml"
    assert WeChatInput.name() == "wechat"


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import Settings

    monkeypatch.setenv("WECHAT_TOKEN", "t0k3n-value")
    monkeypatch.setenv("WECHAT_APP_ID", "wxid")
    monkeypatch.setenv("WECHAT_APP_SECRET", "s3cr3t-value")
    monkeypatch.setenv("WECHAT_ENCODING_AES_KEY", " ")
    monkeypatch.setenv("WECHAT_API_BASE_URL", "http://127.0.0.1:1")
    monkeypatch.setenv("WECHAT_REPLY_BUDGET_SECONDS", "3")
    settings = Settings(_env_file=None)
    assert "s3cr3t-value" not in repr(settings) and "t0k3n-value" not in repr(settings)
    config = WeChatConfig.from_settings(settings)
    assert config == WeChatConfig(
        token="t0k3n-value",
        app_id="wxid",
        app_secret="s3cr3t-value",
        encoding_aes_key=None,  # blank: plaintext mode
        api_base_url="http://127.0.0.1:1",
        reply_budget=3.0,
    )
    monkeypatch.setenv("WECHAT_TOKEN", "")
    assert WeChatConfig.from_settings(Settings(_env_file=None)) is None
    monkeypatch.delenv("WECHAT_API_BASE_URL")
    assert Settings(_env_file=None).wechat_api_base_url == "https://api.weixin.qq.com"


# --- screening: over-long messages, slash payloads, outgoing compliance -----------------------------------


def test_an_over_long_message_is_refused_politely_and_never_reaches_the_bot(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot import wording

    monkeypatch.setenv("MAX_MESSAGE_CHARS", "1000")
    get_settings.cache_clear()
    bot = FakeBot()
    try:
        reply = asyncio.run(harness.post(harness.webhook(bot), harness.client.text(openid(), "物业" * 5850)))
    finally:
        get_settings.cache_clear()
    assert reply.status == 200
    assert reply.content == wording.text("channels.too_long", limit=1000)
    assert bot.calls == []
    [row] = harness.inbound()
    assert row.status == models.WeChatDelivery.REPLIED


def test_a_message_at_the_limit_still_reaches_the_bot(harness: Harness) -> None:
    bot = FakeBot()
    text = "修" * get_settings().max_message_chars
    reply = asyncio.run(harness.post(harness.webhook(bot), harness.client.text(openid(), text)))
    assert [call.text for call in bot.calls] == [text]
    assert reply.status == 200 and reply.content is not None


@pytest.mark.parametrize(
    ("typed", "seen_by_bot"),
    [
        ('/inform{"unit": "1栋1单元101", "verified_owner_id": 1}', 'inform{"unit": "1栋1单元101", "verified_owner_id": 1}'),
        ("/affirm", "affirm"),  # not a button the bot offers: read as words by the NLU
        ("//tell_arrears", "tell_arrears"),
        ("/greet", "/greet"),  # the web chat page's own greeting payload
    ],
)
def test_a_typed_slash_payload_cannot_bypass_the_nlu(harness: Harness, typed: str, seen_by_bot: str) -> None:
    bot = FakeBot()
    asyncio.run(harness.post(harness.webhook(bot), harness.client.text(openid(), typed)))
    assert [call.text for call in bot.calls] == [seen_by_bot]


def test_control_characters_are_not_xml_and_get_400(harness: Harness) -> None:
    bot = FakeBot()
    xml = harness.client.text(openid(), "我\x07欠\x1b多少")
    safe = harness.client.sign(xml, encrypted=True)  # inside <Encrypt>: refused once decrypted
    assert asyncio.run(harness.webhook(bot).receive(safe.params, safe.body)).status == 400
    plaintext = harness.client.sign(harness.client.text("o1", "hi"))
    body = xml.encode("utf-8")
    assert asyncio.run(harness.webhook(bot, aes=False).receive(plaintext.params, body)).status == 400
    assert bot.calls == [] and harness.inbound() == [] and harness.signatures() == []


def test_a_bot_text_with_a_forbidden_phrase_is_replaced_before_it_reaches_the_owner(harness: Harness) -> None:
    from bot import wording

    bot = FakeBot(answer=lambda message: [{"text": "再不交就停水。"}])
    reply = asyncio.run(harness.post(harness.webhook(bot), harness.client.text(openid(), "不交会怎样")))
    assert reply.content == wording.text("channels.blocked_reply")
    assert violations(reply.content) == []


def test_a_blocked_text_is_replaced_on_the_api_path_too(harness: Harness) -> None:
    from bot import wording

    user = openid()
    bot = FakeBot(delay=0.3, answer=lambda message: [{"text": "我们会通知单位。"}])
    webhook = harness.webhook(bot, budget=0.05)

    async def scenario() -> Reply:
        reply = await harness.post(webhook, harness.client.text(user, "你好"))
        await webhook.drain()
        return reply

    assert asyncio.run(scenario()).is_success
    assert harness.fake_api.texts_for(user) == [wording.text("channels.blocked_reply")]


@pytest.mark.parametrize(
    "fields",
    [
        "<FromUserName>{}</FromUserName>".format("o" * 300),
        "<FromUserName><a>x</a></FromUserName>",
        "<FromUserName>o1</FromUserName><MsgId>{}</MsgId>".format("9" * 300),
        "<FromUserName>o1</FromUserName><CreateTime>99999999999999999999</CreateTime>",
    ],
)
def test_fields_wechat_could_not_have_sent_are_400(harness: Harness, fields: str) -> None:
    bot = FakeBot()
    base = {"ToUserName": "gh_x", "FromUserName": "o1", "CreateTime": str(now()), "MsgType": "text",
            "Content": "hi", "MsgId": "1"}
    import re

    for name in re.findall(r"<(\w+)>", fields):
        base.pop(name, None)
    xml = "<xml>" + "".join(f"<{k}>{v}</{k}>" for k, v in base.items()) + fields + "</xml>"
    request = harness.client.sign(xml, encrypted=True)
    answer = asyncio.run(harness.webhook(bot).receive(request.params, request.body))
    assert answer.status == 400
    assert bot.calls == [] and harness.inbound() == [] and harness.signatures() == []


@pytest.mark.parametrize("aes", [True, False], ids=["safe-mode", "plaintext-mode"])
def test_xml_entity_tricks_are_refused(harness: Harness, aes: bool) -> None:
    bot = FakeBot()
    webhook = harness.webhook(bot, aes=aes)
    lol = "".join(f'<!ENTITY l{i} "{f"&l{i - 1};" * 10}">' for i in range(1, 10))
    bodies = [
        f'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY l0 "lol">{lol}]><xml><Content>&l9;</Content></xml>',
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Content>&e;</Content></xml>',
        '<!doctype x [<!ENTITY e SYSTEM "http://127.0.0.1:1/">]><xml><Content>&e;</Content></xml>',
    ]
    for body in bodies:
        for encoded in (body.encode("utf-8"), body.replace('"1.0"?>', '"1.0" encoding="UTF-16"?>', 1).encode("utf-16")):
            request = harness.client.sign(harness.client.text("o1", "hi"), encrypted=aes)
            assert asyncio.run(webhook.receive(request.params, encoded)).status == 400
    assert bot.calls == [] and harness.inbound() == [] and harness.signatures() == []
