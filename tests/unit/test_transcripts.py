"""Transcripts (bot/conversations/transcripts.py) on SQLite and PostgreSQL, read from events that Rasa's own
SQLTrackerStore wrote to the test database, configured the way `bot run` configures it."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from pathlib import Path
from typing import Any, Iterator, List

import pytest
from sqlalchemy import select, text

from bot import clock
from bot.conversations import transcripts
from bot.conversations.transcripts import Entity, EntryKind, Speaker
from bot.db import models
from bot.db.session import get_engine, session_scope
from bot.owners import identity as owners
from bot.owners import importer
from bot.rasa.endpoints import tracker_store_config
from bot.services import escalations, owner_requests

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo" / "arrears.csv"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)


def second(offset: float) -> float:
    """A Rasa event timestamp ``offset`` seconds after T0."""
    return T0.timestamp() + offset


def at(offset: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=offset)


@pytest.fixture(scope="module")
def domain() -> Any:
    from rasa.shared.core.domain import Domain

    return Domain.load(str(ROOT / "domain.yml"))


@pytest.fixture
def tracker_store(database_url: str, domain: Any) -> Iterator[Any]:
    """Rasa's SQLTrackerStore on the test database; its ``events`` table is dropped afterwards."""
    from rasa.core.tracker_store import TrackerStore
    from rasa.utils.endpoints import EndpointConfig

    store = TrackerStore.create(EndpointConfig.from_dict(tracker_store_config(database_url)), domain)
    assert type(store).__name__ == "SQLTrackerStore"
    yield store
    store.engine.dispose()
    with get_engine(database_url).begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS events"))


def save(store: Any, domain: Any, sender_id: str, events: List[Any]) -> None:
    """Save ``events`` as the tracker of ``sender_id`` (appended to what the store already holds)."""
    from rasa.shared.core.trackers import DialogueStateTracker

    existing = asyncio.run(store.retrieve_full_tracker(sender_id))
    before = list(existing.events) if existing is not None else []
    tracker = DialogueStateTracker.from_events(sender_id, before + events, domain.slots)
    asyncio.run(store.save(tracker))


def opening(offset: float) -> List[Any]:
    from rasa.shared.core.events import ActionExecuted, SessionStarted

    return [
        ActionExecuted("action_session_start", timestamp=second(offset)),
        SessionStarted(timestamp=second(offset)),
        ActionExecuted("action_listen", timestamp=second(offset)),
    ]


def conversation() -> List[Any]:
    """Verification, an objection with a button, a staff member stepping in, then the bot again."""
    from rasa.shared.core.events import (
        ActionExecuted,
        BotUttered,
        ConversationPaused,
        ConversationResumed,
        SlotSet,
        UserUttered,
    )

    identity = "3栋2单元501，尾号6688"
    heating = "暖气不热，物业费不交"
    return [
        *opening(0),
        UserUttered(
            identity,
            intent={"name": "provide_identity", "confidence": 0.97},
            entities=[
                {
                    "entity": "room",
                    "value": "3-2-501",
                    "start": 0,
                    "end": 8,
                    "extractor": "RuleEntityExtractorComponent",
                },
                {
                    "entity": "phone_tail",
                    "value": "6688",
                    "start": 11,
                    "end": 15,
                    "extractor": "RuleEntityExtractorComponent",
                },
            ],
            input_channel="socketio",
            message_id="m-1",
            timestamp=second(10),
        ),
        ActionExecuted("action_verify_identity", policy="RulePolicy", confidence=1.0, timestamp=second(11)),
        SlotSet("verified_owner_id", 1, timestamp=second(11)),
        BotUttered("王先生您好，已核实您的身份。", timestamp=second(11.5)),
        ActionExecuted("action_listen", timestamp=second(12)),
        UserUttered(
            heating,
            intent={"name": "objection_heating", "confidence": 0.81},
            entities=[
                {
                    "entity": "repair_item",
                    "value": "暖气",
                    "start": 0,
                    "end": 2,
                    "extractor": "DIETClassifier",
                    "confidence_entity": 0.93,
                    "additional_info": {"source": "lexicon"},
                }
            ],
            input_channel="socketio",
            message_id="m-2",
            timestamp=second(20),
        ),
        ActionExecuted("action_objection", policy="RulePolicy", confidence=1.0, timestamp=second(21)),
        BotUttered(
            "暖气不热确实难受，我先帮您报修。",
            data={
                "buttons": [
                    {"title": "好的，报修", "payload": "/affirm"},
                    {"title": "不用了", "payload": "/deny"},
                ]
            },
            timestamp=second(21.5),
        ),
        SlotSet("last_objection", "objection_heating", timestamp=second(21.5)),
        ActionExecuted("action_listen", timestamp=second(22)),
        ConversationPaused(timestamp=second(60)),
        BotUttered(
            "您好，我是客服小张，我来帮您看看暖气的事。", metadata={"staff": "zhang"}, timestamp=second(61)
        ),
        UserUttered(
            "好的谢谢",
            intent={"name": "thank", "confidence": 0.99},
            input_channel="socketio",
            timestamp=second(70),
        ),
        ConversationResumed(timestamp=second(90)),
        ActionExecuted("utter_thank", policy="RulePolicy", confidence=1.0, timestamp=second(91)),
        BotUttered("不客气！", metadata={"utter_action": "utter_thank"}, timestamp=second(91.5)),
        ActionExecuted("action_listen", timestamp=second(92)),
    ]


def read(url: str, sender_id: str, **options: Any) -> List[transcripts.TranscriptEntry]:
    with session_scope(url) as session:
        return transcripts.transcript(session, sender_id=sender_id, **options)


def test_the_whole_conversation_in_order_with_speakers_nlu_and_actions(
    database_url: str, tracker_store: Any, domain: Any
) -> None:
    save(tracker_store, domain, "web-1", conversation())
    save(tracker_store, domain, "someone-else", [*opening(5)])

    entries = read(database_url, "web-1")

    assert [(entry.kind, entry.speaker, entry.staff, entry.text, entry.action) for entry in entries] == [
        (EntryKind.SESSION_STARTED, None, None, None, None),
        (EntryKind.MESSAGE, Speaker.OWNER, None, "3栋2单元501，尾号6688", None),
        (EntryKind.ACTION, None, None, None, "action_verify_identity"),
        (EntryKind.MESSAGE, Speaker.BOT, None, "王先生您好，已核实您的身份。", "action_verify_identity"),
        (EntryKind.MESSAGE, Speaker.OWNER, None, "暖气不热，物业费不交", None),
        (EntryKind.ACTION, None, None, None, "action_objection"),
        (EntryKind.MESSAGE, Speaker.BOT, None, "暖气不热确实难受，我先帮您报修。", "action_objection"),
        (EntryKind.PAUSED, None, None, None, None),
        (EntryKind.MESSAGE, Speaker.STAFF, "zhang", "您好，我是客服小张，我来帮您看看暖气的事。", None),
        (EntryKind.MESSAGE, Speaker.OWNER, None, "好的谢谢", None),
        (EntryKind.RESUMED, None, None, None, None),
        (EntryKind.ACTION, None, None, None, "utter_thank"),
        (EntryKind.MESSAGE, Speaker.BOT, None, "不客气！", "utter_thank"),
    ]
    assert [entry.at for entry in entries] == [
        at(s) for s in (0, 10, 11, 11.5, 20, 21, 21.5, 60, 61, 70, 90, 91, 91.5)
    ]
    assert all(entry.at is not None and entry.at.utcoffset() == dt.timedelta(hours=8) for entry in entries)
    assert [entry.event_id for entry in entries] == sorted(entry.event_id for entry in entries)


def test_owner_messages_carry_intent_confidence_entities_and_channel(
    database_url: str, tracker_store: Any, domain: Any
) -> None:
    save(tracker_store, domain, "web-1", conversation())

    owner_messages = [entry for entry in read(database_url, "web-1") if entry.speaker is Speaker.OWNER]

    assert [(m.intent, m.confidence, m.channel, m.message_id) for m in owner_messages] == [
        ("provide_identity", 0.97, "socketio", "m-1"),
        ("objection_heating", 0.81, "socketio", "m-2"),
        ("thank", 0.99, "socketio", None),
    ]
    assert owner_messages[0].entities == (
        Entity(
            "room", "3-2-501", "3栋2单元501", 0, 8, "RuleEntityExtractorComponent", None, None, None, None
        ),
        Entity("phone_tail", "6688", "6688", 11, 15, "RuleEntityExtractorComponent", None, None, None, None),
    )
    assert owner_messages[1].entities == (
        Entity(
            "repair_item", "暖气", "暖气", 0, 2, "DIETClassifier", 0.93, None, None, {"source": "lexicon"}
        ),
    )
    assert owner_messages[2].entities == ()


def test_bot_messages_carry_buttons_and_actions_their_policy(
    database_url: str, tracker_store: Any, domain: Any
) -> None:
    save(tracker_store, domain, "web-1", conversation())

    entries = read(database_url, "web-1")

    offer = next(entry for entry in entries if entry.text == "暖气不热确实难受，我先帮您报修。")
    assert offer.buttons == ("好的，报修", "不用了")
    action = next(
        entry for entry in entries if entry.action == "action_objection" and entry.kind is EntryKind.ACTION
    )
    assert (action.policy, action.confidence) == ("RulePolicy", 1.0)
    assert not any(entry.action in ("action_listen", "action_session_start") for entry in entries)


def test_following_a_conversation_live_returns_only_newer_entries_with_their_action(
    database_url: str, tracker_store: Any, domain: Any
) -> None:
    from rasa.shared.core.events import ActionExecuted, BotUttered, UserUttered

    # up to the first bot reply, before its action_listen
    save(tracker_store, domain, "web-1", conversation()[:7])
    seen = read(database_url, "web-1")
    assert seen[-1].text == "王先生您好，已核实您的身份。"
    save(
        tracker_store,
        domain,
        "web-1",
        [
            BotUttered(
                "请问还有什么可以帮您？", timestamp=second(11.8)
            ),  # same action, after the last one seen
            ActionExecuted("action_listen", timestamp=second(12)),
            UserUttered("没有了", intent={"name": "deny", "confidence": 0.9}, timestamp=second(30)),
        ],
    )

    newer = read(database_url, "web-1", after_event_id=seen[-1].event_id)

    assert [(entry.speaker, entry.text, entry.action, entry.at) for entry in newer] == [
        (Speaker.BOT, "请问还有什么可以帮您？", "action_verify_identity", at(11.8)),
        (Speaker.OWNER, "没有了", None, at(30)),
    ]
    assert read(database_url, "web-1", after_event_id=newer[-1].event_id) == []


def test_a_conversation_over_several_sessions_is_read_whole(
    database_url: str, tracker_store: Any, domain: Any
) -> None:
    from rasa.shared.core.events import UserUttered

    save(
        tracker_store,
        domain,
        "wx-1",
        [*opening(0), UserUttered("你好", intent={"name": "greet", "confidence": 0.9}, timestamp=second(1))],
    )
    save(
        tracker_store,
        domain,
        "wx-1",
        [
            *opening(86400),
            UserUttered("又是我", intent={"name": "greet", "confidence": 0.8}, timestamp=second(86401)),
        ],
    )

    entries = read(database_url, "wx-1")

    assert [(entry.kind, entry.text, entry.at) for entry in entries] == [
        (EntryKind.SESSION_STARTED, None, at(0)),
        (EntryKind.MESSAGE, "你好", at(1)),
        (EntryKind.SESSION_STARTED, None, at(86400)),
        (EntryKind.MESSAGE, "又是我", at(86401)),
    ]


def test_an_unknown_sender_or_a_missing_tracker_store_reads_as_empty(database_url: str) -> None:
    assert read(database_url, "nobody") == []
    with session_scope(database_url) as session:
        assert transcripts.conversations_of_owner(session, owner_id=1) == []


def test_a_transcript_is_read_in_the_configured_timezone(
    database_url: str, tracker_store: Any, domain: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.settings import get_settings

    save(tracker_store, domain, "web-1", conversation())
    monkeypatch.setenv("TIMEZONE", "Europe/Berlin")
    get_settings.cache_clear()
    try:
        first = read(database_url, "web-1")[0]
    finally:
        monkeypatch.delenv("TIMEZONE")
        get_settings.cache_clear()
    assert first.at == at(0)
    assert first.at is not None and first.at.utcoffset() == dt.timedelta(hours=1)


# --- an owner's conversations ---------------------------------------------------------------------------


def test_every_conversation_of_an_owner_on_every_channel_with_first_and_last_message(
    database_url: str, tracker_store: Any, domain: Any
) -> None:
    from rasa.shared.core.events import BotUttered, UserUttered

    with session_scope(database_url) as session:
        importer.import_arrears(session, DEMO)
    with session_scope(database_url) as session:
        wang, li = (
            session.execute(select(models.Owner.id).where(models.Owner.name == name)).scalar_one()
            for name in ("王建国", "李秀英")
        )
        linked_before = clock.utc_now() - dt.timedelta(seconds=5)
        owners.link_conversation(session, channel="socketio", sender_id="web-1", owner_id=wang)
        owners.link_conversation(session, channel="wechat", sender_id="oWX-quiet", owner_id=wang)
        owners.link_conversation(session, channel="wechat", sender_id="oWX-li", owner_id=li)
    with clock.frozen(at(0)), session_scope(database_url) as session:
        # REST conversations are never linked; the records the bot made for the owner name them.
        owner_requests.create(
            session,
            models.PaymentPromise,
            message_id="rest-m1",
            sender_id="rest-9",
            owner_id=wang,
            amount=2460,
            due_date=dt.date(2026, 11, 30),
        )
        escalations.escalate(
            session,
            reason=escalations.Reason.REQUEST_HUMAN,
            detail=None,
            owner_id=wang,
            channel="wechat",
            sender_id="oWX-escalated",
            message_id="wx-m1",
        )
    linked_after = clock.utc_now() + dt.timedelta(seconds=5)
    save(tracker_store, domain, "web-1", conversation())
    save(
        tracker_store,
        domain,
        "rest-9",
        [
            *opening(3600),
            UserUttered(
                "月底前交",
                intent={"name": "promise_to_pay", "confidence": 0.9},
                input_channel="rest",
                timestamp=second(3601),
            ),
            BotUttered("好的，记下了。", timestamp=second(3602)),
        ],
    )
    save(tracker_store, domain, "oWX-li", [*opening(7200), UserUttered("你好", timestamp=second(7201))])

    with session_scope(database_url) as session:
        summaries = transcripts.conversations_of_owner(session, owner_id=wang)

    assert [
        (s.sender_id, s.channel, s.first_message_at, s.last_message_at, s.messages, s.verified_at is not None)
        for s in summaries
    ] == [
        ("rest-9", "rest", at(3601), at(3602), 2, False),
        ("web-1", "socketio", at(10), at(91.5), 7, True),
        ("oWX-quiet", "wechat", None, None, 0, True),
        ("oWX-escalated", "wechat", None, None, 0, False),
    ]
    verified = next(s.verified_at for s in summaries if s.sender_id == "web-1")
    assert verified is not None and linked_before <= verified <= linked_after
    assert verified.utcoffset() == dt.timedelta(hours=8)
