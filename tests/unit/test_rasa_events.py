"""Our reading of Rasa's events table (bot/rasa/events.py) against rows Rasa's own SQLTrackerStore wrote."""

from __future__ import annotations

import asyncio
from pathlib import Path

from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.domain import Domain
from rasa.shared.core.events import BotUttered, ConversationPaused, UserUttered
from rasa.shared.core.trackers import DialogueStateTracker

from bot.db.session import read_scope, session_scope
from bot.rasa import events as rasa_events


def stored_by_rasa(path: Path) -> str:
    store = SQLTrackerStore(Domain.empty(), dialect="sqlite", db=str(path))
    first = DialogueStateTracker("owner-1", slots=[])
    first.update(UserUttered("暖气不热", intent={"name": "objection_heating"}, input_channel="socketio", timestamp=100.0))
    first.update(BotUttered("抱歉，我们今天派师傅去看。", timestamp=101.0))
    first.update(UserUttered("好的", input_channel="socketio", metadata={"seen": "x"}, timestamp=102.0))
    first.update(ConversationPaused(timestamp=103.0, metadata={"session_end": "signed_out"}))
    second = DialogueStateTracker("owner-2", slots=[])
    second.update(UserUttered("我要交费", input_channel="rest", timestamp=5000.0))
    asyncio.run(store.save(first))
    asyncio.run(store.save(second))
    return f"sqlite:///{path}"


def test_the_domain_reads_what_rasa_wrote(tmp_path: Path) -> None:
    url = stored_by_rasa(tmp_path / "rasa.db")
    with read_scope(url) as session:
        assert sorted(rasa_events.sender_ids(session)) == ["owner-1", "owner-2"]
        latest = rasa_events.latest_data(session, sender_id="owner-1", type_name="user", limit=5)
        assert [data["text"] for data in latest] == ["好的", "暖气不热"]
        assert latest[0]["metadata"] == {"seen": "x"} and latest[1]["input_channel"] == "socketio"
        marked = rasa_events.data_containing(session, sender_id="owner-1", type_name="pause", text="session_end")
        assert [data["metadata"] for data in marked] == [{"session_end": "signed_out"}]
        assert rasa_events.has_conversation(session, sender_id="owner-2")
        assert not rasa_events.has_conversation(session, sender_id="nobody")
        assert rasa_events.idle_conversations(session, before=1000.0, limit=10) == ["owner-1"]
        said = rasa_events.conversation_events(session, sender_id="owner-1", types=("user", "bot"))
        assert [(row.type_name, row.timestamp, row.intent_name, row.data.get("text")) for row in said] == [
            ("user", 100.0, "objection_heating", "暖气不热"),
            ("bot", 101.0, None, "抱歉，我们今天派师傅去看。"),
            ("user", 102.0, None, "好的"),
        ]
        later = rasa_events.conversation_events(session, sender_id="owner-1", types=("user", "bot"), after_id=said[0].id)
        assert [row.id for row in later] == [said[1].id, said[2].id]
        assert rasa_events.last_id_of(session, sender_id="owner-1", types=("user",), at_most=said[1].id) == said[0].id
        assert rasa_events.spans(session, ["owner-1", "owner-2"], types=("user", "bot")) == {
            "owner-1": (100.0, 102.0, 3), "owner-2": (5000.0, 5000.0, 1),
        }  # fmt: skip
        assert (rasa_events.first_data(session, sender_id="owner-2", type_name="user") or {})["input_channel"] == "rest"
        assert rasa_events.first_data(session, sender_id="owner-2", type_name="bot") is None
        between = rasa_events.user_messages_between(session, start=100.0, stop=5000.0)
        assert [(row.sender_id, row.data["text"]) for row in between] == [("owner-1", "暖气不热"), ("owner-1", "好的")]
        objections = rasa_events.user_messages_between(session, start=0.0, stop=1e10, intent_prefix="objection_")
        assert [row.data["text"] for row in objections] == ["暖气不热"]
        since = rasa_events.events_since(session, sender_id="owner-1", types=("user", "bot"), since=101.0)
        assert [row.type_name for row in since] == ["bot", "user"]
        newest = list(rasa_events.user_messages_newest_first(session))
        assert [row.data["text"] for row in newest] == ["我要交费", "好的", "暖气不热"]
        skipped = list(rasa_events.user_messages_newest_first(session, excluding=[newest[0].id], sender_id="owner-1"))
        assert [row.data["text"] for row in skipped] == ["好的", "暖气不热"]
        one = rasa_events.event_by_id(session, event_id=newest[1].id, type_name="user")
        assert one is not None and one.data["text"] == "好的"
        assert rasa_events.event_by_id(session, event_id=newest[1].id, type_name="bot") is None
        assert sorted(rasa_events.event_ids(session, sender_ids=["owner-1"], type_name="user")) == sorted(
            [newest[1].id, newest[2].id]
        )
        assert rasa_events.latest_activity(session, types=("user", "bot"), limit=5) == [
            ("owner-2", 5000.0, 1), ("owner-1", 102.0, 3),
        ]  # fmt: skip
    with session_scope(url) as session:
        assert rasa_events.delete_conversations(session, ["owner-1"]) == 4
    with read_scope(url) as session:
        assert rasa_events.sender_ids(session) == ["owner-2"]


def test_before_rasa_made_its_table_every_answer_is_empty(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    with session_scope(url) as session:
        assert rasa_events.sender_ids(session) == []
        assert rasa_events.latest_data(session, sender_id="a", type_name="user", limit=1) == []
        assert rasa_events.data_containing(session, sender_id="a", type_name="pause", text="x") == []
        assert not rasa_events.has_conversation(session, sender_id="a")
        assert rasa_events.idle_conversations(session, before=1e12, limit=10) == []
        assert rasa_events.delete_conversations(session, ["a"]) == 0
