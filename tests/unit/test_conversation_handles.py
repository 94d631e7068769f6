"""Staff see handles, never conversation ids (issue 16 point 4): the handle itself, the handle → conversation
map, every console screen, URL, API answer, audit row and export for a real web chat session, the audit page's
older rows, and the staff console's access log (captured from a real uvicorn serving the console). SQLite and
PostgreSQL."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
import threading
import time
from typing import Any, Dict, Iterator, List

import pytest
import requests
from sqlalchemy import select

from apps.staff.access_log import RedactedAccessLog, log_config
from bot import clock
from bot.conversations import handles
from bot.conversations.handles import AmbiguousHandle, handle_of, normalise, resolve
from bot.conversations.redaction import redact_ids, redact_path
from bot.conversations.session_ids import SessionIdSigner
from bot.db import audit, models
from bot.db.session import session_scope
from bot.db.staff_models import AuditEntry
from bot.owners import identity, importer
from bot.services import escalations, owner_requests
from bot.services.escalations import Reason
from tests.conftest import free_port
from tests.unit.test_staff_app import (  # noqa: F401  (fixtures)
    PASSWORD,
    app,
    client,
    csrf_of,
    local_settings,
    log_in,
    staff_db,
)
from tests.unit.test_staff_screens import as_user, audit_of  # noqa: F401  (fixtures)
from tests.unit.test_transcripts import DEMO, domain, save, tracker_store  # noqa: F401  (fixtures)

SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)
OPENID = "oWxAbCdEfGhIjKlMnOpQrStUvW12"  # a WeChat openid's shape: 28 characters from "o"


# --- the handle -----------------------------------------------------------------------------------------


def test_a_handle_is_short_stable_keyed_and_says_what_kind_of_conversation() -> None:
    session_id = SessionIdSigner("k").issue()
    handle = handle_of(session_id, key=b"one key")
    assert re.fullmatch(r"W-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}", handle)
    assert handle_of(session_id, key=b"one key") == handle  # the same conversation, the same handle
    assert handle_of(session_id, key=b"another key") != handle  # unknowable without the key
    assert handle_of(OPENID, key=b"one key").startswith("C-") and handle_of("rest-7", key=b"one key").startswith("C-")
    # Nothing of the id is in the handle.
    assert not any(part.lower() in session_id for part in handle.split("-")[1:])
    handles_of_many = {handle_of(SessionIdSigner("k").issue(), key=b"one key") for _ in range(2000)}
    assert len(handles_of_many) == 2000


@pytest.mark.parametrize(
    "typed, expected",
    [
        ("W-3F9K-2A7Q", "W-3F9K-2A7Q"),
        (" w-3f9k-2a7q ", "W-3F9K-2A7Q"),
        ("w3f9k2a7q", "W-3F9K-2A7Q"),
        ("W 3F9K 2A7Q", "W-3F9K-2A7Q"),
        ("C-O0IL-1234", "C-0011-1234"),  # Crockford's look-alikes read as digits
        ("W-3F9K-2A7U", None),  # U is not in the alphabet
        ("X-3F9K-2A7Q", None),
        ("W-3F9K-2A7", None),
        ("web-1", None),
        ("", None),
        (None, None),
    ],
)
def test_typed_handles_are_normalised(typed: Any, expected: Any) -> None:
    assert normalise(typed) == expected


def test_a_handle_leads_to_its_conversation_and_nothing_else(
    database_url: str, tracker_store: Any, domain: Any  # noqa: F811
) -> None:
    from rasa.shared.core.events import UserUttered

    session_id = SessionIdSigner("k").issue()
    save(tracker_store, domain, session_id, [UserUttered("你好", input_channel="socketio")])
    with session_scope(database_url) as session:
        escalations.escalate(
            session, reason=Reason.FALLBACK, detail=None, owner_id=None, channel="wechat", sender_id=OPENID,
            message_id="m-1",
        )  # fmt: skip
    key = b"resolve-test-key"
    with session_scope(database_url) as session:
        assert resolve(session, handle_of(session_id, key=key), key=key) == session_id  # from Rasa's tracker store
        assert resolve(session, handle_of(OPENID, key=key).lower(), key=key) == OPENID  # from an escalation
        assert resolve(session, handle_of("never-seen", key=key), key=key) is None
        assert resolve(session, session_id, key=key) is None  # an id is not a handle
        assert resolve(session, "web", key=key) is None


def test_two_conversations_sharing_a_handle_are_refused_not_guessed(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with session_scope(database_url) as session:
        for sender in ("rest-a", "rest-b"):
            escalations.escalate(
                session, reason=Reason.FALLBACK, detail=None, owner_id=None, channel="rest", sender_id=sender,
                message_id=f"m-{sender}",
            )  # fmt: skip
    monkeypatch.setattr(handles, "handle_of", lambda sender_id, key=None: "C-AAAA-AAAA")
    with session_scope(database_url) as session, pytest.raises(AmbiguousHandle):
        resolve(session, "C-AAAA-AAAA", key=b"collision-test-key")


def test_ids_in_text_and_paths_are_redacted() -> None:
    session_id = SessionIdSigner("k").issue()
    first_form = "ab" * 16 + "." + "cd" * 32
    assert redact_ids(session_id) == handle_of(session_id)
    assert redact_ids(f"会话 {first_form} 已查看") == f"会话 {handle_of(first_form)} 已查看"
    assert redact_ids(OPENID) == handle_of(OPENID)
    assert redact_ids("owner:12") == "owner:12" and redact_ids("3-2-501") == "3-2-501"
    handle = handle_of(session_id)
    assert redact_path(f"/api/conversations/{handle}?after=12") == f"/api/conversations/{handle}?…"
    assert redact_path(f"/conversations/{session_id}") == "/conversations/…"
    assert redact_path(f"/conversations/{OPENID}/take-over") == "/conversations/…/take-over"
    assert redact_path(f"/conversations/{handle}/reply") == f"/conversations/{handle}/reply"
    assert redact_path(f"/login?next=/conversations/{session_id}") == "/login?…"
    assert redact_path(f"/api/escalations?sender_id={session_id}") == "/api/escalations?…"
    assert redact_path(f"/somewhere/{OPENID}") == "/somewhere/…"
    assert redact_path("/owners/12") == "/owners/12" and redact_path("/static/conversation.js") == "/static/conversation.js"
    assert redact_path("/x/%E4%BD%A0") == "/x/…"


# --- the console, for a real web chat session ------------------------------------------------------------


@pytest.fixture
def web_session(staff_db: str, tracker_store: Any, domain: Any) -> Iterator[Dict[str, Any]]:  # noqa: F811
    """A verified web chat conversation of 王建国 with an objection, an escalation and a complaint; and an
    unverified one with an objection."""
    from rasa.shared.core.events import UserUttered

    verified_id, unverified_id = SessionIdSigner("change-me").issue(), SessionIdSigner("change-me").issue()
    with session_scope(staff_db) as session:
        importer.import_arrears(session, DEMO)
        wang = session.execute(select(models.Owner).where(models.Owner.name == "王建国")).scalar_one()
        identity.link_conversation(session, channel="socketio", sender_id=verified_id, owner_id=wang.id)
        owner_id = int(wang.id)
    for sender, text in ((verified_id, "暖气不热，物业费不交"), (unverified_id, "物业费太贵了")):
        intent = "objection_heating" if sender == verified_id else "objection_fee_too_high"
        save(
            tracker_store,
            domain,
            sender,
            [UserUttered(text, intent={"name": intent, "confidence": 0.9}, input_channel="socketio", timestamp=NOW.timestamp())],
        )
    with clock.frozen(NOW), session_scope(staff_db) as session:
        escalations.escalate(
            session, reason=Reason.REQUEST_HUMAN, detail=None, owner_id=owner_id, channel="socketio",
            sender_id=verified_id, message_id="m-e",
        )  # fmt: skip
        complaint = owner_requests.create(
            session, models.Complaint, message_id="m-c", sender_id=verified_id, owner_id=owner_id, description="保安态度差"
        )
        complaint_id = int(complaint.id)
    with session_scope(staff_db) as session:
        session.execute(AuditEntry.__table__.delete())
    yield {
        "id": verified_id,
        "unverified": unverified_id,
        "handle": handle_of(verified_id),
        "unverified_handle": handle_of(unverified_id),
        "owner_id": owner_id,
        "complaint_id": complaint_id,
        "url": staff_db,
    }


def test_no_screen_url_api_answer_audit_row_or_export_shows_the_session_id(
    web_session: Dict[str, Any], as_user: Any  # noqa: F811
) -> None:
    session_id, handle = web_session["id"], web_session["handle"]
    manager = as_user("li")
    with clock.frozen(NOW + dt.timedelta(minutes=5)):
        shown = {
            "queue": manager.get("/queue"),
            "conversations": manager.get("/conversations"),
            "conversation": manager.get(f"/conversations/{handle}"),
            "owner": manager.get(f"/owners/{web_session['owner_id']}"),
            "record": manager.get(f"/records/complaints/{web_session['complaint_id']}"),
            "api conversation": manager.get(f"/api/conversations/{handle}"),
            "api escalations": manager.get("/api/escalations"),
            "api owner": manager.get(f"/api/owners/{web_session['owner_id']}"),
            "api complaints": manager.get("/api/complaints", params={"conversation": handle}),
            "review csv": manager.get("/review/export.csv", params={"day": NOW.date().isoformat()}),
            "review": manager.get("/review", params={"day": NOW.date().isoformat()}),
        }
        token = csrf_of(shown["conversation"].text)
        taken = manager.post(f"/conversations/{handle}/take-over", data={"csrf_token": token}, follow_redirects=False)
        replied = manager.post(
            f"/conversations/{handle}/reply", data={"csrf_token": token, "text": "您好，我来跟进。"}, follow_redirects=False
        )
        shown["audit"] = manager.get("/audit")
    assert {name: response.status_code for name, response in shown.items()} == {name: 200 for name in shown}
    for name, response in shown.items():
        body = response.content.decode("utf-8-sig")
        assert session_id not in body and session_id.split(".")[0] not in body, name
        assert web_session["unverified"] not in body, name
    for name in ("queue", "conversations", "conversation", "owner", "api conversation", "api escalations", "api owner"):
        assert handle in shown[name].text, name
    assert f'href="/conversations/{handle}"' in shown["queue"].text
    assert f'href="/conversations/{handle}"' in shown["owner"].text
    assert f'href="/conversations/{handle}"' in shown["record"].text
    assert shown["api conversation"].json()["handle"] == handle
    assert [item["conversation"] for item in shown["api complaints"].json()] == [handle]
    assert (taken.status_code, taken.headers["location"]) == (303, f"/conversations/{handle}")
    assert (replied.status_code, replied.headers["location"]) == (303, f"/conversations/{handle}")
    # The review export names the unverified conversation by its handle.
    rows = list(csv.reader(io.StringIO(shown["review csv"].content.decode("utf-8-sig"), newline="")))
    unverified_rows = [row for row in rows if row[1].startswith("未核实")]
    assert [row[1] for row in unverified_rows] == [f"未核实（{web_session['unverified_handle']}）"]
    assert f"未核实（{web_session['unverified_handle']}）" in shown["review"].text
    # Every audit row of these views and changes names the conversation by its handle.
    with session_scope(web_session["url"]) as session:
        stored = [(row.action, row.target, row.detail) for row in session.execute(select(AuditEntry)).scalars()]
    assert session_id not in json.dumps(stored, ensure_ascii=False)
    assert [(action, target) for action, target, _ in stored if action.startswith(("conversation_", "staff_"))] == [
        ("conversation_viewed", handle),
        ("conversation_viewed", handle),
        ("conversation_taken_over", handle),
        ("staff_replied", handle),
    ]
    # The session id in the console's URL finds nothing.
    assert manager.get(f"/conversations/{session_id}").status_code == 404
    assert manager.get(f"/api/conversations/{session_id}").status_code == 404


def test_the_audit_page_shows_handles_for_ids_older_rows_hold(web_session: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    session_id = web_session["id"]
    with session_scope(web_session["url"]) as session:
        audit.record(session, actor="li", action="conversation_viewed", target=session_id, detail={"via": "api"})
        audit.record(
            session, actor="li", action="escalation_claimed", target="RG1",
            detail={"escalation_id": 1, "sender_id": session_id, "state": "pending"},
        )  # fmt: skip
        audit.record(session, actor="li", action="conversation_viewed", target=OPENID, detail={})
    page = as_user("li").get("/audit").text
    assert session_id not in page and OPENID not in page
    assert page.count(web_session["handle"]) == 2 and handle_of(OPENID) in page


# --- the staff console's access log ---------------------------------------------------------------------


class Collected(logging.Handler):
    """Keeps each access log line as uvicorn's access formatter writes it."""

    def __init__(self) -> None:
        from uvicorn.logging import AccessFormatter

        super().__init__()
        self.lines: List[str] = []
        self.setFormatter(AccessFormatter('%(client_addr)s - "%(request_line)s" %(status_code)s', use_colors=False))

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def test_the_access_log_of_the_running_console_holds_no_id_query_or_cookie(
    app: Any, web_session: Dict[str, Any]  # noqa: F811
) -> None:
    import uvicorn

    session_id, handle = web_session["id"], web_session["handle"]
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=log_config(), http="h11", ws="none", lifespan="off")
    )
    access = logging.getLogger("uvicorn.access")
    collected = Collected()
    access.addHandler(collected)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:  # up when /health answers; a loaded machine may take more than a second to answer at first
            try:
                if requests.get(f"{base}/health", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "the console did not come up within 60 s"
            time.sleep(0.1)
        browser = requests.Session()
        login = browser.get(f"{base}/login", params={"next": f"/conversations/{session_id}"})
        browser.post(
            f"{base}/login",
            data={"username": "li", "password": PASSWORD, "csrf_token": csrf_of(login.text), "next": "/"},
            allow_redirects=False,
        )
        cookies = "; ".join(f"{name}={value}" for name, value in browser.cookies.items())
        assert cookies
        assert browser.get(f"{base}/conversations/{handle}").status_code == 200
        for after in (1, 2, 3):  # the live view's polls
            assert browser.get(f"{base}/api/conversations/{handle}", params={"after": after}).status_code == 200
        assert browser.get(f"{base}/api/conversations/{session_id}").status_code == 404
        assert browser.get(f"{base}/api/escalations", params={"conversation": handle}).status_code == 200
        browser.get(f"{base}/conversations/{OPENID}")
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        access.removeHandler(collected)
    log = "\n".join(collected.lines)
    assert f'"GET /api/conversations/{handle}?… HTTP/1.1" 200' in log
    assert f'"GET /conversations/{handle} HTTP/1.1" 200' in log
    assert '"GET /api/conversations/… HTTP/1.1" 404' in log and '"GET /login?… HTTP/1.1" 200' in log
    assert session_id not in log and session_id.split(".")[0] not in log and OPENID not in log
    for value in browser.cookies.values():
        assert value not in log
    assert "after=" not in log and "next=" not in log and "conversation=" not in log
    assert len(collected.lines) >= 9


def test_the_filter_only_rewrites_the_path() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/conversations/" + "ab" * 16 + ".1795572000." + "cd" * 32 + "?x=1", "1.1", 404),
        None,
    )  # fmt: skip
    assert RedactedAccessLog().filter(record) is True
    assert record.getMessage() == '127.0.0.1:5000 - "GET /conversations/…?… HTTP/1.1" 404'
