"""退出 in headless Chromium against the real Rasa, action and staff console servers (issue 16 point 4).

An owner verifies on the web chat page while a supervisor follows the conversation in the console under its
handle; the owner presses 退出: the page starts over with a notice, a new session id and a new greeting, and the
next visitor on the same browser is asked who they are before any amount. The old id is dead (its verified link
closed as signed out, a socket presenting it gets a new session), the console's transcript shows where the session
ended, and neither the console's pages nor its access log ever held the id or the staff cookie. On the suite's
SQLite servers and on servers of their own on a fresh PostgreSQL database.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Iterator

import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, select, text

from bot import wording
from bot.conversations.handles import handle_of
from bot.conversations.session_ids import signer_from_settings
from bot.db import models
from bot.db.session import get_engine, session_scope
from tests.conftest import Servers, server_plan, start_and_wait
from tests.db_fixtures import POSTGRES_ADMIN_URL
from tests.e2e.browser import add_staff_user, chromium, staff_login, watched_page
from tests.e2e.test_takeover_browser import open_chat, verify
from tests.e2e.test_webchat_socket import WebChatClient
from tests.fakes.wording import response_variants

pytestmark = [pytest.mark.e2e, pytest.mark.model]
SUPERVISOR = "tuichu"


@pytest.fixture(scope="module")
def postgres_servers(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """The action server, the Rasa server and the console on a new PostgreSQL database with the demo estate."""
    from bot.cli import DEMO_ESTATE, stop
    from bot.db import migrate
    from bot.owners.importer import import_arrears

    name = f"bot_sign_out_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        migrate.upgrade(url)
        with session_scope(url) as session:
            import_arrears(session, DEMO_ESTATE)
        work = tmp_path_factory.mktemp("postgres-servers")
        plan = server_plan(trained_model, work, url)
        processes = start_and_wait(plan)
        try:
            yield Servers(plan.rasa_url, plan.actions_url, work, url, plan.token, processes[1].pid, plan.staff_url)
        finally:
            stop(processes)
    finally:
        get_engine(url).dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def any_servers(request: pytest.FixtureRequest) -> Any:
    """The suite's servers (SQLite), then servers of this module's own on PostgreSQL."""
    return request.getfixturevalue("servers" if request.param == "sqlite" else "postgres_servers")


def test_signing_out_ends_the_session_and_the_next_visitor_starts_unverified(any_servers: Any) -> None:
    servers = any_servers
    supervisor = f"{SUPERVISOR}{uuid.uuid4().hex[:6]}"
    add_staff_user(servers.database_url, supervisor, role="supervisor", name="涂主管")
    labels = wording.catalogue()["webchat_page"]
    with chromium() as browser:
        owner, chat, first_id = open_chat(servers, browser)
        verify(chat)
        handle = handle_of(first_id)

        # The supervisor follows the conversation under its handle; the id is nowhere on the page.
        staff = watched_page(browser)
        staff_login(staff.page, servers.staff_url, f"/conversations/{handle}", supervisor)
        expect(staff.page.locator("h1 code.handle")).to_have_text(handle)
        expect(staff.page.locator("#transcript .from-owner .text").last).to_have_text("6688")
        assert first_id not in staff.page.content()

        # 退出: the page starts over, says why, and greets a new, unverified session.
        button = owner.page.locator("#sign-out")
        expect(button).to_have_text(labels["sign_out"])
        expect(button).to_have_attribute("title", labels["sign_out_title"])
        with owner.page.expect_response("**/chat/session/end") as answered:
            button.click()
        assert answered.value.status == 200 and answered.value.request.method == "POST"
        expect(owner.page.locator("#session-notice")).to_have_text(labels["ended_signed_out"], timeout=30_000)
        greeting = chat.wait_for_bot(0, 1)
        assert len(greeting) == 1 and greeting[0].startswith("您好")
        second_id = chat.stored_session()["session_id"]
        assert second_id != first_id and signer_from_settings().is_valid(second_id)
        assert not any("6688" in line for line in chat.all_texts())  # the old transcript left the page too

        # The next visitor on this browser is asked who they are: nothing of the last owner carries over.
        assert chat.say("我欠多少物业费") == response_variants("utter_ask_room")
        assert owner.errors == [], owner.errors

        # The console shows where the session ended; the live view keeps polling under the handle.
        staff.page.reload()
        expect(staff.page.locator("#transcript .entry.marker").last).to_contain_text("业主点了退出")
        expect(staff.page.locator(".delivery.blocked")).to_contain_text("网页聊天已经结束")  # a reply cannot reach it
        assert first_id not in staff.page.content() and second_id not in staff.page.content()
        staff_cookies = [cookie["value"] for cookie in staff.page.context.cookies()]
        staff.page.wait_for_timeout(4_500)  # two polls of /api/conversations/<handle>

    # The old conversation's verified link is closed as signed out; the new one has none.
    with session_scope(servers.database_url) as session:
        link = session.execute(
            select(models.ConversationLink).where(models.ConversationLink.sender_id == first_id)
        ).scalar_one()
        wang = session.execute(select(models.Owner.id).where(models.Owner.name == "王建国")).scalar_one()
        assert (link.channel, link.owner_id, link.closed_reason) == ("socketio", wang, "session_ended:signed_out")
        assert link.closed_at is not None
        assert session.execute(
            select(models.ConversationLink).where(models.ConversationLink.sender_id == second_id)
        ).first() is None
        markers = session.execute(
            text("SELECT data FROM events WHERE sender_id = :sender AND type_name = 'pause'"), {"sender": first_id}
        ).scalars().all()
        assert [json.loads(marker)["metadata"]["webchat_session_end"] for marker in markers] == ["signed_out"]

    # The old id is dead: a socket presenting it gets a new session, and cannot speak under the old one.
    client = WebChatClient(servers.rasa_url, stored_id=first_id)
    try:
        assert client.session_id not in (first_id, second_id)
        client.say("我欠多少物业费", session_id=first_id)
        assert client.replies(first_timeout=5) == []
    finally:
        client.close()

    # The console's access log: the handle, never an id, a query string or the staff cookie.
    log = (servers.logs / "staff.log").read_text(encoding="utf-8", errors="replace")
    assert f"GET /conversations/{handle} HTTP/1.1" in log and f"GET /api/conversations/{handle}?… HTTP/1.1" in log
    for secret in (first_id, second_id, first_id.split(".")[0], *staff_cookies):
        assert secret not in log
    assert "after=" not in log
