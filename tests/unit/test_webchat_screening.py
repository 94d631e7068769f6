"""The web chat socket screens what browsers send: new-session rate limit, metadata, long texts, payloads.

Runs the channel's event handlers with a fake socket.io server (as ``test_webchat_channel``) and, for the
rate limit, a real database on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from types import SimpleNamespace
from typing import Any, List, Optional

import pytest
from sqlalchemy import func, select

from bot import clock, wording
from bot.channels.inbound import ip_client
from bot.channels.webchat import CheckedSocketIOOutput, DatabaseSessionLimit
from bot.compliance import violations
from bot.db.models import RateLimitHit
from bot.db.session import session_scope
from bot.settings import get_settings
from tests.unit.test_webchat_channel import FakeSio, Server

LIMIT = 5


def connect(server: Server, sid: str, ip: str) -> None:
    server.events.connected(sid, {"REMOTE_ADDR": "127.0.0.1", "sanic.request": SimpleNamespace(ip=ip)})


def request_session(server: Server, sid: str, presented: Any = None) -> Optional[str]:
    """The id confirmed to ``sid``, or ``None`` when the server refused to issue one."""
    before = len(server.sio.emitted)
    asyncio.run(server.events.session_request(sid, {"session_id": presented}))
    confirmed = [data for event, data, room in server.sio.emitted[before:] if event == "session_confirm"]
    return confirmed[0] if confirmed else None


def texts_to(server: Server, room: str) -> List[str]:
    return [data["text"] for event, data, to in server.sio.emitted if event == "bot_uttered" and to == room]


# --- new session ids are rate-limited per client address ------------------------------------------------


def test_an_attacker_opening_fresh_sessions_is_stopped_at_the_limit(database_url: str) -> None:
    server = Server(admit=DatabaseSessionLimit(per_hour=LIMIT, database_url=database_url))
    owner_socket = "owner"
    connect(server, owner_socket, "198.51.100.20")
    owners_session = request_session(server, owner_socket)
    assert owners_session is not None

    issued = []
    for attempt in range(LIMIT + 10):  # a new socket each time, as a script would open them
        sid = f"attacker-{attempt}"
        connect(server, sid, "203.0.113.66")
        issued.append(request_session(server, sid))
    granted = [session_id for session_id in issued if session_id is not None]
    assert len(granted) == LIMIT and all(server.signer.is_valid(s) for s in granted)
    assert issued[LIMIT:] == [None] * 10
    refused_socket = f"attacker-{LIMIT}"
    assert texts_to(server, refused_socket) == [wording.text("channels.session_limit")]
    assert server.events.sessions.bound(refused_socket) is None
    assert server.say(refused_socket, None) is None and server.say(refused_socket, "forged") is None

    # The owner on another address is not affected: a reload keeps the session, and messages go through.
    connect(server, "owner-reload", "198.51.100.20")
    assert request_session(server, "owner-reload", owners_session) == owners_session
    message = server.say("owner-reload", owners_session, "我欠多少物业费")
    assert message is not None and message.sender_id == owners_session
    # The attacker's own existing sessions keep working too (a reconnect is never limited) …
    connect(server, "attacker-reconnect", "203.0.113.66")
    assert request_session(server, "attacker-reconnect", granted[0]) == granted[0]
    # … and the count is in the database: another server process refuses the same address as well.
    other_process = Server(admit=DatabaseSessionLimit(per_hour=LIMIT, database_url=database_url))
    connect(other_process, "attacker-elsewhere", "203.0.113.66")
    assert request_session(other_process, "attacker-elsewhere") is None
    with session_scope(database_url) as session:
        hits = session.execute(
            select(func.count()).select_from(RateLimitHit).where(RateLimitHit.key == f"webchat-session:{ip_client('203.0.113.66')}")
        ).scalar_one()
    assert hits == LIMIT


def test_the_limit_comes_from_settings(monkeypatch: pytest.MonkeyPatch, database_url: str) -> None:
    monkeypatch.setenv("WEBCHAT_SESSIONS_PER_HOUR", "2")
    get_settings.cache_clear()
    try:
        server = Server(admit=DatabaseSessionLimit(database_url=database_url))
        results = []
        for attempt in range(4):
            connect(server, f"s{attempt}", "192.0.2.1")
            results.append(request_session(server, f"s{attempt}") is not None)
    finally:
        get_settings.cache_clear()
    assert results == [True, True, False, False]


def test_without_the_database_no_new_session_is_issued(tmp_path) -> None:
    broken = DatabaseSessionLimit(per_hour=LIMIT, database_url=f"sqlite:///{tmp_path / 'no-tables.db'}")
    server = Server(admit=broken)
    connect(server, "s", "192.0.2.2")
    assert request_session(server, "s") is None
    assert texts_to(server, "s") == [wording.text("channels.session_limit")]


def test_the_client_key_is_the_sockets_peer_address_not_engineios_constant() -> None:
    seen: List[str] = []

    async def admit(client: str) -> bool:
        seen.append(client)
        return True

    server = Server(admit=admit)
    connect(server, "s", "192.0.2.77")
    request_session(server, "s")
    server.events.connected("no-request", {"REMOTE_ADDR": "192.0.2.9"})
    request_session(server, "no-request")
    request_session(server, "never-connected")
    assert seen == [ip_client("192.0.2.77"), ip_client("192.0.2.9"), "ip:unknown"]


def test_behind_a_trusted_proxy_each_visitor_is_counted_under_their_own_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: List[str] = []

    async def admit(client: str) -> bool:
        seen.append(client)
        return True

    monkeypatch.setenv("TRUSTED_PROXIES", '["10.0.0.0/8"]')
    get_settings.cache_clear()
    try:
        server = Server(admit=admit)
        for sid, peer, forwarded in [
            ("a", "10.0.0.2", "203.0.113.1"),
            ("b", "10.0.0.2", "203.0.113.2"),
            ("c", "198.51.100.5", "203.0.113.3"),  # not our proxy: its header proves nothing
        ]:
            request = SimpleNamespace(ip=peer, headers={"x-forwarded-for": forwarded})
            server.events.connected(sid, {"REMOTE_ADDR": "127.0.0.1", "sanic.request": request})
            request_session(server, sid)
    finally:
        get_settings.cache_clear()
    assert seen == [ip_client("203.0.113.1"), ip_client("203.0.113.2"), ip_client("198.51.100.5")]


# --- what reaches Rasa -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "custom",
    [
        {"date": "2020-01-01"},
        {"timestamp": 1577836800},
        {"sent_at": "2020-01-01T09:00:00"},
        {"client": "wechat:o-someone-else"},
        {"date": "2020-01-01", "client": "ip:10.0.0.1", "timestamp": 1, "sent_at": "x"},
        {"webchat_seen_at": "2099-01-01T00:00:00+00:00"},  # would keep the session from ever idling out
    ],
)
def test_custom_data_can_neither_set_the_date_nor_choose_the_client(custom: dict) -> None:
    server = Server()
    connect(server, "s", "203.0.113.5")
    session_id = request_session(server, "s")
    with clock.frozen(dt.datetime(2026, 11, 25, 2, 0, tzinfo=dt.timezone.utc)):
        message = server.say("s", session_id, "下周五交", **custom)
    assert message is not None
    assert message.metadata == {"client": ip_client("203.0.113.5"), "webchat_seen_at": "2026-11-25T02:00:00+00:00"}


def test_an_over_long_message_gets_a_polite_refusal_and_never_reaches_rasa() -> None:
    server = Server()
    session_id = request_session(server, "s")
    assert session_id is not None
    assert server.say("s", session_id, "物" * 11_700) is None
    limit = get_settings().max_message_chars
    assert texts_to(server, session_id) == [wording.text("channels.too_long", limit=limit)]


@pytest.mark.parametrize("message", [None, 5, ["hi"], {"text": "hi"}, "", "   ", "\x00\x01"])
def test_messages_that_are_not_text_are_ignored(message: Any) -> None:
    server = Server()
    session_id = request_session(server, "s")
    asyncio.run(server.events.user_uttered("s", {"message": message, "session_id": session_id}))
    assert server.received == []


@pytest.mark.parametrize(
    ("typed", "seen"),
    [
        ('/inform{"unit": "2栋1单元302", "phone_tail": "0000"}', 'inform{"unit": "2栋1单元302", "phone_tail": "0000"}'),
        ('/greet{"verified_owner_id": 3}', 'greet{"verified_owner_id": 3}'),
        ("/tell_arrears", "tell_arrears"),
        ("/greet", "/greet"),  # the page's initPayload
        ("\ud800你好\U0001f600 مرحبا", "\ufffd你好\U0001f600 مرحبا"),
    ],
)
def test_only_the_pages_own_payloads_skip_the_nlu(typed: str, seen: str) -> None:
    server = Server()
    session_id = request_session(server, "s")
    message = server.say("s", session_id, typed)
    assert message is not None and message.text == seen


# --- what reaches the page --------------------------------------------------------------------------------


def test_every_text_sent_to_the_page_passes_the_compliance_check() -> None:
    sio = FakeSio()
    output = CheckedSocketIOOutput(sio, "bot_uttered")  # type: ignore[arg-type]
    asyncio.run(output.send_text_message("room", "不交就停水。"))
    asyncio.run(output.send_text_message("room", "您好，请问有什么可以帮您？"))
    asyncio.run(
        output.send_text_with_buttons("room", "请选择", [{"title": "上门堵人", "payload": "/deny"}])
    )
    texts = [data.get("text") for _, data, _ in sio.emitted]
    assert texts[:2] == [wording.text("channels.blocked_reply"), "您好，请问有什么可以帮您？"]
    buttons = [data for _, data, _ in sio.emitted if data.get("quick_replies") or data.get("buttons")]
    titles = [b["title"] for data in buttons for b in (data.get("quick_replies") or data.get("buttons"))]
    assert titles and all(violations(title) == [] for title in titles)
