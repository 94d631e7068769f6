"""While a person holds a conversation, the channels' own automatic answers (the over-long refusal, WeChat's
"please type") are not sent: the channel asks the hold gate (``refused_while_held``) first and stays silent
when it says the conversation is held. The gate's own storing is tested with the real Rasa server in
tests/e2e/test_takeover.py; here a gate that records the question stands in for it."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from rasa.core.channels.channel import UserMessage

from bot import clock, wording
from bot.channels.inbound import ip_client, max_message_chars
from bot.channels.takeover import HELD_TEXT_CHARS, held_note_text
from bot.channels.wechat_handler import PLEASE_TYPE_TEXT
from bot.db import migrate, models
from bot.db.session import get_engine, session_scope
from tests.unit.test_webchat_channel import Server
from tests.unit.test_wechat_channel import FakeBot, Harness, make_harness, openid


class RecordingGate:
    """The hold gate's interface: handles messages, and answers ``refused_while_held`` with ``held``."""

    def __init__(self, held: bool) -> None:
        self.held = held
        self.asked: List[Dict[str, Any]] = []
        self.messages: List[UserMessage] = []

    async def __call__(self, message: UserMessage) -> None:
        self.messages.append(message)

    async def refused_while_held(self, sender_id: str, **details: Any) -> bool:
        self.asked.append({"sender_id": sender_id, **details})
        return self.held


# When the web chat received the message: the server stamps it (the session's last activity), whatever the owner sent.
ARRIVED = dt.datetime(2026, 11, 25, 2, 3, tzinfo=dt.timezone.utc)
FORGED = {
    "held_note": {"problem": "too long"},  # would keep the message out of the NLU inbox
    " HELD_NOTE ": 1,
    "ｈｅｌｄ＿ｎｏｔｅ": "x",  # full-width letters are still the key
    "wechat": {"msg_id": "1"},
    "staff": "zhao",
    "handoff": "left",
    "outbox_id": 7,
    "webchat_seen_at": "2099-01-01T00:00:00+00:00",  # would keep a web chat session from ever idling out
    "client": "ip:1.2.3.4",
    "language": "zh-CN",
}


def test_web_chat_drops_the_keys_only_the_server_writes_from_an_owners_metadata() -> None:
    server = Server()
    sid = "sock-2"
    server.connect(sid, "203.0.113.10")
    session_id = server.session_request(sid)

    with clock.frozen(ARRIVED):
        message = server.say(sid, session_id, "物业费太贵了", **FORGED)

    assert message is not None and message.metadata == {
        "language": "zh-CN", "client": ip_client("203.0.113.10"), "webchat_seen_at": ARRIVED.isoformat()
    }  # fmt: skip


def test_web_chat_keeps_only_the_gates_own_held_note_for_a_refused_message() -> None:
    server = Server()
    gate = RecordingGate(True)
    server.events.on_new_message = gate
    sid = "sock-3"
    server.connect(sid, "203.0.113.11")
    session_id = server.session_request(sid)

    with clock.frozen(ARRIVED):
        server.say(sid, session_id, "物" * (max_message_chars() + 5), **FORGED)

    # what the gate is handed to store beside its own note carries nothing the owner chose of the server's keys
    assert gate.asked[0]["metadata"] == {
        "language": "zh-CN", "client": ip_client("203.0.113.11"), "webchat_seen_at": ARRIVED.isoformat()
    }  # fmt: skip


def test_held_note_text_cuts_a_long_message_and_names_its_length_or_type() -> None:
    long = "暖气不热" * 400
    note = held_note_text(problem="too long", text=long)
    assert note == wording.text("handoff.held_too_long", chars=1600, text=long[:HELD_TEXT_CHARS])
    assert "1600" in note and long[:HELD_TEXT_CHARS] in note and long[: HELD_TEXT_CHARS + 1] not in note
    assert held_note_text(problem="not text", text=None, kind="voice") == wording.text("handoff.held_not_text", kind="voice")


@pytest.mark.parametrize("held", [True, False])
def test_web_chat_refuses_an_over_long_message_only_when_the_bot_holds_the_conversation(held: bool) -> None:
    server = Server()
    gate = RecordingGate(held)
    server.events.on_new_message = gate
    sid = "sock-1"
    server.connect(sid, "203.0.113.9")
    session_id = server.session_request(sid)
    before = len(server.sio.emitted)
    too_long = "物" * (max_message_chars() + 5)

    assert server.say(sid, session_id, too_long) is None
    emitted = server.sio.emitted[before:]
    assert gate.messages == []  # never parsed
    assert [(asked["sender_id"], asked["problem"], asked["text"], asked["input_channel"]) for asked in gate.asked] == [
        (session_id, "too long", too_long, "socketio")
    ]
    assert gate.asked[0]["metadata"]["client"] == ip_client("203.0.113.9")
    if held:
        assert emitted == []  # the person answers, not the channel
    else:
        assert [(event, data["text"]) for event, data, _ in emitted] == [
            ("bot_uttered", wording.text("channels.too_long", limit=max_message_chars()))
        ]


@pytest.fixture
def harness(tmp_path: Path) -> Iterator[Harness]:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    migrate.upgrade(url)
    yield from make_harness(url)
    get_engine(url).dispose()


@pytest.mark.parametrize("held", [True, False])
def test_wechat_asks_before_please_type_and_the_refusal_and_stays_silent_when_held(harness: Harness, held: bool) -> None:
    gate = RecordingGate(held)
    channel = harness.channel()
    webhook = channel.webhook(gate)
    user = openid()
    too_long = "费" * (max_message_chars() + 1)

    async def scenario() -> List[Any]:
        voice = await harness.post(webhook, harness.client.voice(user), encrypted=True)
        text = await harness.post(webhook, harness.client.text(user, too_long), encrypted=True)
        await webhook.drain()
        return [voice, text]

    voice, text = asyncio.run(scenario())
    assert [(asked["problem"], asked.get("kind"), asked.get("text")) for asked in gate.asked] == [
        ("not text", "voice", None),
        ("too long", None, too_long),
    ]
    assert all(asked["sender_id"] == user and asked["input_channel"] == "wechat" for asked in gate.asked)
    assert gate.messages == []
    with session_scope(harness.url) as session:
        statuses = [row.status for row in session.query(models.WeChatInboundMessage).order_by(models.WeChatInboundMessage.id)]
    if held:
        assert (voice.status, voice.content, text.status, text.content) == (200, None, 200, None)
        assert statuses == [models.WeChatDelivery.IGNORED, models.WeChatDelivery.IGNORED]
    else:
        assert (voice.content, text.content) == (
            PLEASE_TYPE_TEXT,
            wording.text("channels.too_long", limit=max_message_chars()),
        )
        assert statuses == [models.WeChatDelivery.REPLIED, models.WeChatDelivery.REPLIED]
    assert harness.fake_api.texts_for(user) == []  # nothing by the customer-service API either


def test_a_failing_gate_question_still_answers_on_wechat(harness: Harness) -> None:
    class Broken(RecordingGate):
        async def refused_while_held(self, sender_id: str, **details: Any) -> bool:
            raise RuntimeError("database down")

    webhook = harness.channel().webhook(Broken(True))
    reply = asyncio.run(harness.post(webhook, harness.client.voice(openid()), encrypted=True))
    assert reply.content == PLEASE_TYPE_TEXT


def test_without_a_gate_the_fake_bot_handler_keeps_the_old_behaviour(harness: Harness) -> None:
    webhook = harness.channel().webhook(FakeBot())
    reply = asyncio.run(harness.post(webhook, harness.client.voice(openid()), encrypted=True))
    assert reply.content == PLEASE_TYPE_TEXT


# --- the database cannot be asked who holds the conversation ---------------------------------------------

UNREACHABLE = "postgresql+psycopg2://postgres@127.0.0.1:1/nowhere"  # nothing listens on port 1


class TrackerOnlyAgent:
    """Rasa's in-memory tracker and lock stores in place of the agent; ``readable=False``: the store fails too."""

    def __init__(self, events: List[Any], readable: bool = True) -> None:
        import sqlalchemy as sa
        from rasa.core.lock_store import InMemoryLockStore
        from rasa.core.tracker_store import InMemoryTrackerStore
        from rasa.shared.core.domain import Domain
        from rasa.shared.core.trackers import DialogueStateTracker

        class Store(InMemoryTrackerStore):
            async def retrieve(self, sender_id: str) -> Any:
                if not readable:
                    raise sa.exc.OperationalError("SELECT", {}, Exception("connection refused"))
                return await super().retrieve(sender_id)

        self.tracker_store = Store(Domain.empty())
        self.lock_store = InMemoryLockStore()
        self.processor = self
        asyncio.run(self.tracker_store.save(DialogueStateTracker.from_events("owner-x", events)))

    async def get_tracker(self, sender_id: str) -> Any:
        return await self.tracker_store.get_or_create_tracker(sender_id)


def gate_with(agent: TrackerOnlyAgent) -> Any:
    from types import SimpleNamespace

    from bot.channels.takeover import HoldGate

    handled: List[UserMessage] = []

    async def on_new_message(message: UserMessage) -> None:
        handled.append(message)

    gate = HoldGate(on_new_message, database_url=UNREACHABLE, app=SimpleNamespace(ctx=SimpleNamespace(agent=agent)))
    return gate, handled


def user_events(agent: TrackerOnlyAgent) -> List[Any]:
    from rasa.shared.core.events import UserUttered

    tracker = asyncio.run(agent.tracker_store.retrieve("owner-x"))
    return [event for event in tracker.events if isinstance(event, UserUttered)]


def test_with_the_database_down_a_paused_tracker_keeps_the_channel_and_the_bot_silent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from rasa.shared.core.events import ConversationPaused, ConversationResumed

    from bot.conversations.handles import handle_of

    agent = TrackerOnlyAgent([ConversationPaused(), ConversationResumed(), ConversationPaused()])
    gate, handled = gate_with(agent)
    too_long = "物" * (max_message_chars() + 5)

    held = asyncio.run(gate.refused_while_held("owner-x", input_channel="rest", problem="too long", text=too_long))
    asyncio.run(gate(UserMessage("在吗", None, "owner-x", input_channel="rest")))

    assert held is True  # the channel sends no refusal: a person holds the conversation
    assert handled == []  # the bot is not asked
    [kept] = user_events(agent)  # the refused message is kept for the person, with the gate's note
    assert kept.text == held_note_text(problem="too long", text=too_long)
    assert kept.metadata["held_note"] == {"problem": "too long", "chars": len(too_long)}
    # The log names the conversation by its handle: a sender id (a web chat bearer token) never reaches it.
    takeover_lines = [r.getMessage() for r in caplog.records if r.getMessage().startswith("takeover:")]
    assert takeover_lines and all(handle_of("owner-x") in line for line in takeover_lines)
    assert not any("owner-x" in r.getMessage() for r in caplog.records)


def test_with_the_database_down_a_resumed_tracker_lets_the_bot_and_the_channel_answer() -> None:
    from rasa.shared.core.events import ConversationPaused, ConversationResumed

    agent = TrackerOnlyAgent([ConversationPaused(), ConversationResumed()])
    gate, handled = gate_with(agent)

    held = asyncio.run(gate.refused_while_held("owner-x", input_channel="rest", problem="too long", text="物" * 9000))
    asyncio.run(gate(UserMessage("你好", None, "owner-x", input_channel="rest")))

    assert held is False
    assert [message.text for message in handled] == ["你好"]
    assert user_events(agent) == []


def test_with_the_database_and_the_tracker_down_nothing_is_sent() -> None:
    from rasa.shared.core.events import ConversationPaused, ConversationResumed

    agent = TrackerOnlyAgent([ConversationPaused(), ConversationResumed()], readable=False)
    gate, handled = gate_with(agent)

    held = asyncio.run(gate.refused_while_held("owner-x", input_channel="socketio", problem="not text"))
    asyncio.run(gate(UserMessage("你好", None, "owner-x", input_channel="socketio")))

    assert held is True and handled == []  # fail closed: no refusal, no bot answer
