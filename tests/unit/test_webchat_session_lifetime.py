"""Web chat sessions end (issue 16 point 4): idle and absolute expiry on the one clock, 退出, the end written
where the conversation keeps its state (its verified link closed, a marker in its tracker), the sweep of
sessions that expired unseen, and the channel starting a fresh unverified session for an ended id. On SQLite and
PostgreSQL, with the events Rasa's own SQLTrackerStore writes to the test database."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, Iterator, List, Optional

import pytest
from sqlalchemy import select, text

from bot import clock
from bot.channels.webchat import SESSION_ENDED_EVENT
from bot.channels.webchat_lifetime import SessionLifetimeGuard, mark_ended
from bot.conversations import transcripts, webchat_sessions
from bot.conversations.session_ids import SessionIdSigner
from bot.conversations.transcripts import EntryKind
from bot.conversations.webchat_sessions import SEEN_KEY, Lifetime, SessionEnd
from bot.db import models
from bot.db.session import get_engine, session_scope
from bot.owners import identity as owners
from bot.owners import importer
from bot.rasa.endpoints import tracker_store_config
from bot.services import identity as identity_service
from tests.unit.test_webchat_channel import Server

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo" / "arrears.csv"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)
LIFETIME = Lifetime(idle=dt.timedelta(minutes=60), max_age=dt.timedelta(hours=12))
SECRET = "lifetime-test-secret"


def minutes(count: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=count)


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
    yield store
    store.engine.dispose()
    with get_engine(database_url).begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS events"))


class Agent:
    """The parts of Rasa's agent the channel uses to mark a tracker: its tracker store and lock store."""

    def __init__(self, store: Any) -> None:
        from rasa.core.lock_store import InMemoryLockStore

        self.tracker_store = store
        self.lock_store = InMemoryLockStore()
        self.processor = SimpleNamespace(get_tracker=store.get_or_create_tracker)


def rasa_app(store: Any) -> Any:
    return SimpleNamespace(ctx=SimpleNamespace(agent=Agent(store)))


def owner_says(store: Any, domain: Any, sender_id: str, moment: dt.datetime, text: str = "你好") -> None:
    """An owner message as the web chat hands it to Rasa: stamped with the moment it arrived."""
    from rasa.shared.core.events import UserUttered
    from rasa.shared.core.trackers import DialogueStateTracker

    existing = asyncio.run(store.retrieve_full_tracker(sender_id))
    before = list(existing.events) if existing is not None else []
    message = UserUttered(
        text,
        intent={"name": "greet", "confidence": 0.9},
        input_channel="socketio",
        metadata={"client": "ip:203.0.113.7", SEEN_KEY: webchat_sessions.seen_stamp(moment)},
    )
    asyncio.run(store.save(DialogueStateTracker.from_events(sender_id, [*before, message], domain.slots)))


def issue(at: dt.datetime = T0) -> str:
    with clock.frozen(at):
        return SessionIdSigner(SECRET).issue()


def verified(database_url: str, sender_id: str) -> int:
    """Verify the conversation for 王建国 (3栋2单元501) as the identity service does; his owner id."""
    with session_scope(database_url) as session:
        if session.execute(select(models.Owner.id)).first() is None:
            importer.import_arrears(session, DEMO)
    with session_scope(database_url) as session:
        owner_id = session.execute(select(models.Owner.id).where(models.Owner.name == "王建国")).scalar_one()
        owners.link_conversation(session, channel="socketio", sender_id=sender_id, owner_id=owner_id)
    return int(owner_id)


def link_of(database_url: str, sender_id: str) -> Dict[str, Any]:
    with session_scope(database_url) as session:
        link = session.execute(
            select(models.ConversationLink).where(models.ConversationLink.sender_id == sender_id)
        ).scalar_one()
        closed_at = link.closed_at
        return {
            "channel": link.channel,
            "owner_id": link.owner_id,
            "closed_at": None if closed_at is None else closed_at.replace(tzinfo=closed_at.tzinfo or dt.timezone.utc),
            "closed_reason": link.closed_reason,
        }


def judge(database_url: str, sender_id: str, at: dt.datetime) -> Optional[SessionEnd]:
    with clock.frozen(at), session_scope(database_url) as session:
        return webchat_sessions.judge(session, sender_id=sender_id, lifetime=LIFETIME)


def linked_owner(database_url: str, sender_id: str) -> Optional[int]:
    with session_scope(database_url) as session:
        return identity_service.verified_owner_id(session, claimed=None, channel="socketio", sender_id=sender_id)


# --- the rules --------------------------------------------------------------------------------------------


def test_a_session_ends_an_idle_hour_after_the_owners_last_message(
    database_url: str, tracker_store: Any, domain: Any
) -> None:
    session_id = issue()
    assert judge(database_url, session_id, minutes(59)) is None  # no message yet: idle since it was issued
    assert judge(database_url, session_id, minutes(60)) is SessionEnd.IDLE
    owner_says(tracker_store, domain, session_id, minutes(10))
    owner_says(tracker_store, domain, session_id, minutes(50))
    assert judge(database_url, session_id, minutes(109)) is None
    assert judge(database_url, session_id, minutes(110)) is SessionEnd.IDLE
    with session_scope(database_url) as session:
        assert webchat_sessions.last_message_at(session, sender_id=session_id) == minutes(50)


def test_a_session_ends_twelve_hours_after_it_was_issued_however_active(
    database_url: str, tracker_store: Any, domain: Any
) -> None:
    session_id = issue()
    for half_hour in range(24):
        owner_says(tracker_store, domain, session_id, minutes(30 * half_hour + 29))
    assert judge(database_url, session_id, minutes(12 * 60 - 1)) is None
    assert judge(database_url, session_id, minutes(12 * 60)) is SessionEnd.MAX_AGE


def test_an_id_without_an_issue_time_has_no_age_left(database_url: str) -> None:
    first_form = "ab" * 16 + "." + "cd" * 32
    assert judge(database_url, first_form, T0) is SessionEnd.MAX_AGE


def test_the_limits_come_from_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import Settings, get_settings

    monkeypatch.setenv("WEBCHAT_SESSION_IDLE_MINUTES", "15")
    monkeypatch.setenv("WEBCHAT_SESSION_MAX_HOURS", "4")
    get_settings.cache_clear()
    try:
        assert Lifetime.from_settings() == Lifetime(idle=dt.timedelta(minutes=15), max_age=dt.timedelta(hours=4))
    finally:
        get_settings.cache_clear()
    monkeypatch.setenv("WEBCHAT_SESSION_IDLE_MINUTES", "0")
    with pytest.raises(ValueError):
        Settings()
    monkeypatch.delenv("WEBCHAT_SESSION_IDLE_MINUTES")
    monkeypatch.delenv("WEBCHAT_SESSION_MAX_HOURS")
    assert (Settings().webchat_session_idle_minutes, Settings().webchat_session_max_hours) == (60, 12)


def test_an_expired_verified_session_closes_its_link_and_is_no_longer_verified(
    database_url: str, tracker_store: Any, domain: Any
) -> None:
    session_id = issue()
    owner_id = verified(database_url, session_id)
    owner_says(tracker_store, domain, session_id, minutes(5))
    assert linked_owner(database_url, session_id) == owner_id
    with clock.frozen(minutes(64)), session_scope(database_url) as session:
        assert webchat_sessions.check(session, sender_id=session_id, lifetime=LIFETIME) is None
    assert link_of(database_url, session_id)["closed_at"] is None
    with clock.frozen(minutes(65)), session_scope(database_url) as session:
        assert webchat_sessions.check(session, sender_id=session_id, lifetime=LIFETIME) is SessionEnd.IDLE
    assert link_of(database_url, session_id) == {
        "channel": "socketio",
        "owner_id": owner_id,
        "closed_at": minutes(65),
        "closed_reason": "session_ended:idle",
    }
    assert linked_owner(database_url, session_id) is None
    # A closed link says the session ended, whatever the clock says later.
    assert judge(database_url, session_id, minutes(66)) is SessionEnd.IDLE


# --- 退出 -----------------------------------------------------------------------------------------------


def test_signing_out_closes_the_link_marks_the_tracker_and_the_id_is_dead(
    database_url: str, tracker_store: Any, domain: Any
) -> None:
    session_id = issue()
    owner_id = verified(database_url, session_id)
    owner_says(tracker_store, domain, session_id, minutes(1))
    guard = SessionLifetimeGuard(database_url=database_url, lifetime=LIFETIME, app=rasa_app(tracker_store))
    with clock.frozen(minutes(2)):
        assert asyncio.run(guard.end(session_id)) is SessionEnd.SIGNED_OUT
        assert asyncio.run(guard.end(session_id)) is SessionEnd.SIGNED_OUT  # again: no error, no second marker
    assert link_of(database_url, session_id) == {
        "channel": "socketio",
        "owner_id": owner_id,
        "closed_at": minutes(2),
        "closed_reason": "session_ended:signed_out",
    }
    assert linked_owner(database_url, session_id) is None
    with clock.frozen(minutes(3)):
        assert asyncio.run(guard.check(session_id)) is SessionEnd.SIGNED_OUT
    # The history stays for staff, ended where it ended.
    with session_scope(database_url) as session:
        entries = transcripts.transcript(session, sender_id=session_id)
        markers = session.execute(
            text("SELECT data FROM events WHERE sender_id = :sender AND type_name = 'pause'"), {"sender": session_id}
        ).scalars().all()
    assert [entry.text for entry in entries if entry.kind is EntryKind.MESSAGE] == ["你好"]
    assert [(entry.kind, entry.reason) for entry in entries][-1] == (EntryKind.SESSION_ENDED, "signed_out")
    assert [json.loads(marker)["metadata"] for marker in markers] == [{"webchat_session_end": "signed_out"}]


def test_an_unverified_session_signed_out_is_dead_too(database_url: str, tracker_store: Any, domain: Any) -> None:
    session_id = issue()
    owner_says(tracker_store, domain, session_id, minutes(1))
    guard = SessionLifetimeGuard(database_url=database_url, lifetime=LIFETIME, app=rasa_app(tracker_store))
    with clock.frozen(minutes(2)):
        asyncio.run(guard.end(session_id))
    with session_scope(database_url) as session:
        assert session.execute(select(models.ConversationLink)).first() is None  # nothing to close
    assert judge(database_url, session_id, minutes(3)) is SessionEnd.SIGNED_OUT


def test_the_marker_is_written_once_and_never_for_a_conversation_that_does_not_exist(
    database_url: str, tracker_store: Any
) -> None:
    agent = Agent(tracker_store)
    session_id = issue()
    assert asyncio.run(mark_ended(agent, session_id, SessionEnd.IDLE, create=False)) is False
    assert asyncio.run(tracker_store.exists(session_id)) is False
    assert asyncio.run(mark_ended(agent, session_id, SessionEnd.SIGNED_OUT, create=True)) is True
    assert asyncio.run(mark_ended(agent, session_id, SessionEnd.SIGNED_OUT, create=True)) is False
    with session_scope(database_url) as session:
        assert webchat_sessions.end_marked(session, sender_id=session_id) is SessionEnd.SIGNED_OUT


def test_staff_are_told_a_reply_cannot_reach_a_session_that_ended(
    database_url: str, tracker_store: Any, domain: Any
) -> None:
    from bot.conversations import handoff
    from bot.conversations.handoff import Alternative, Blocked

    session_id = issue()
    verified(database_url, session_id)
    owner_says(tracker_store, domain, session_id, minutes(1))
    with clock.frozen(minutes(30)), session_scope(database_url) as session:
        alive = handoff.delivery_status(session, sender_id=session_id)
    assert (alive.channel, alive.can_deliver, alive.blocked) == ("socketio", True, None)
    guard = SessionLifetimeGuard(database_url=database_url, lifetime=LIFETIME, app=rasa_app(tracker_store))
    with clock.frozen(minutes(31)):
        asyncio.run(guard.end(session_id))
    with clock.frozen(minutes(32)), session_scope(database_url) as session:
        ended = handoff.delivery_status(session, sender_id=session_id)
    assert (ended.channel, ended.can_deliver, ended.blocked) == ("socketio", False, Blocked.WEBCHAT_SESSION_ENDED)
    assert ended.alternatives == [Alternative.PHONE_CALL, Alternative.NEXT_VISIT]


# --- the sweep --------------------------------------------------------------------------------------------


def test_the_sweep_closes_the_links_of_sessions_that_expired_unseen(
    database_url: str, tracker_store: Any, domain: Any
) -> None:
    active, idle, old = issue(minutes(0)), issue(minutes(0)), issue(minutes(-12 * 60))
    first_form = "ab" * 16 + "." + "cd" * 32
    for sender_id in (active, idle, old, first_form):
        verified(database_url, sender_id)
    owner_says(tracker_store, domain, active, minutes(50))
    owner_says(tracker_store, domain, idle, minutes(5))
    owner_says(tracker_store, domain, old, minutes(-1))
    with session_scope(database_url) as session:
        owner_id = session.execute(select(models.Owner.id).where(models.Owner.name == "王建国")).scalar_one()
        owners.link_conversation(session, channel="wechat", sender_id="oWX-wang", owner_id=owner_id)
    with clock.frozen(minutes(70)), session_scope(database_url) as session:
        assert webchat_sessions.close_expired_links(session, lifetime=LIFETIME) == 3
    with clock.frozen(minutes(71)), session_scope(database_url) as session:
        assert webchat_sessions.close_expired_links(session, lifetime=LIFETIME) == 0  # idempotent
    assert link_of(database_url, active)["closed_at"] is None
    assert [link_of(database_url, sender)["closed_reason"] for sender in (idle, old, first_form)] == [
        "session_ended:idle",
        "session_ended:max_age",
        "session_ended:max_age",
    ]
    assert {link_of(database_url, sender)["closed_at"] for sender in (idle, old, first_form)} == {minutes(70)}
    assert link_of(database_url, "oWX-wang")["closed_at"] is None  # WeChat openids are not web chat sessions


# --- the channel ------------------------------------------------------------------------------------------


def server_on(database_url: str, store: Any = None) -> Server:
    app = rasa_app(store) if store is not None else None
    return Server(secret=SECRET, lifetime=SessionLifetimeGuard(database_url=database_url, lifetime=LIFETIME, app=app))


def ended_events(server: Server, sid: str) -> List[Any]:
    return [data for event, data, room in server.sio.emitted if event == SESSION_ENDED_EVENT and room == sid]


def test_an_expired_id_presented_again_gets_a_fresh_unverified_session(
    database_url: str, tracker_store: Any, domain: Any
) -> None:
    server = server_on(database_url, tracker_store)
    with clock.frozen(T0):
        session_id = server.session_request("socket-a")
    owner_id = verified(database_url, session_id)
    owner_says(tracker_store, domain, session_id, minutes(1))
    with clock.frozen(minutes(30)):
        assert server.session_request("socket-b", session_id) == session_id  # a reload within the hour
    with clock.frozen(minutes(61)):
        fresh = server.session_request("socket-c", session_id)
    assert fresh != session_id and server.signer.is_valid(fresh)
    assert ended_events(server, "socket-c") == [{"reason": "idle"}]
    assert server.sio.rooms["socket-c"] == {fresh}
    assert link_of(database_url, session_id)["closed_reason"] == "session_ended:idle"
    assert linked_owner(database_url, fresh) is None and owner_id is not None
    with clock.frozen(minutes(62)), session_scope(database_url) as session:
        assert webchat_sessions.end_marked(session, sender_id=session_id) is SessionEnd.IDLE


def test_a_message_under_an_expired_id_never_reaches_rasa_and_the_socket_starts_over(
    database_url: str, tracker_store: Any, domain: Any
) -> None:
    server = server_on(database_url)
    with clock.frozen(T0):
        session_id = server.session_request("socket-a")
    with clock.frozen(minutes(59)):
        assert server.say("socket-a", session_id, "我欠多少物业费") is not None
    owner_says(tracker_store, domain, session_id, minutes(59))  # what Rasa stored for it
    with clock.frozen(minutes(59 + 60)):
        assert server.say("socket-a", session_id, "还在吗") is None
    assert ended_events(server, "socket-a") == [{"reason": "idle"}]
    event, fresh, room = server.sio.emitted[-1]
    assert (event, room) == ("session_confirm", "socket-a") and fresh != session_id
    assert server.events.sessions.bound("socket-a") == fresh
    assert [message.text for message in server.received] == ["我欠多少物业费"]


def test_sign_out_by_the_page_ends_the_session_for_every_socket_of_the_process(
    database_url: str, tracker_store: Any
) -> None:
    server = server_on(database_url, tracker_store)
    with clock.frozen(T0):
        session_id = server.session_request("socket-a")
        assert server.session_request("socket-b", session_id) == session_id  # a second tab
    owner_id = verified(database_url, session_id)
    body = json.dumps({"session_id": session_id}).encode()
    with clock.frozen(minutes(3)):
        answer = asyncio.run(server.events.sign_out(SimpleNamespace(body=body)))
    assert (answer.status, json.loads(answer.body)) == (200, {"ended": True, "reason": "signed_out"})
    assert ended_events(server, "socket-a") == ended_events(server, "socket-b") == [{"reason": "signed_out"}]
    assert server.events.sessions.sockets_of(session_id) == []
    assert link_of(database_url, session_id) == {
        "channel": "socketio",
        "owner_id": owner_id,
        "closed_at": minutes(3),
        "closed_reason": "session_ended:signed_out",
    }
    # The dead id: presented again, a new session; a message under it, refused.
    with clock.frozen(minutes(4)):
        assert server.session_request("socket-c", session_id) != session_id
        assert server.say("socket-d", session_id) is None
    assert server.received == []


@pytest.mark.parametrize(
    "body, status, error",
    [
        (b"", 400, "not_a_session"),
        (b"not json", 400, "not_a_session"),
        (b'{"session_id": "owner-42"}', 400, "not_a_session"),
        (json.dumps({"session_id": "0" * 32 + ".1795572000." + "0" * 64}).encode(), 400, "not_a_session"),
        (b"[1, 2]", 400, "not_a_session"),
        (b"{" * 5000, 413, "too_large"),
    ],
)
def test_a_sign_out_without_a_signed_id_is_refused_with_a_4xx(database_url: str, body: bytes, status: int, error: str) -> None:
    server = server_on(database_url)
    answer = asyncio.run(server.events.sign_out(SimpleNamespace(body=body)))
    assert (answer.status, json.loads(answer.body)) == (status, {"ended": False, "error": error})


class Unreachable:
    """A database that cannot be asked."""

    async def check(self, session_id: str) -> None:
        raise ConnectionError("database down")

    async def end(self, session_id: str, reason: Any = None) -> None:
        raise ConnectionError("database down")


def test_when_the_database_cannot_say_nothing_is_bound_and_the_owner_is_told_politely() -> None:
    from bot import wording

    server = Server(secret=SECRET, lifetime=Unreachable())
    session_id = issue()
    asyncio.run(server.events.session_request("socket-a", {"session_id": session_id}))
    assert server.events.sessions.bound("socket-a") is None
    assert [event for event, _, _ in server.sio.emitted] == ["bot_uttered"]
    assert server.sio.emitted[0][1]["text"] == wording.text("webchat_page.session_unavailable")
    assert server.say("socket-b", session_id) is None and server.received == []
    body = json.dumps({"session_id": session_id}).encode()
    answer = asyncio.run(server.events.sign_out(SimpleNamespace(body=body)))
    assert (answer.status, json.loads(answer.body)) == (200, {"ended": False, "error": "try_again"})
