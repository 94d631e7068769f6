"""A web chat session expires through the real servers (issue 16 point 4): servers of their own with
``WEBCHAT_SESSION_IDLE_MINUTES=1``, an owner verified over the socket as the page does it, a minute of silence,
then a message. The message never reaches Rasa, the socket is told ``session_ended`` (idle) and given a new,
unverified session, the old conversation's verified link is closed on the one clock, and its tracker marks
where the session ended. The idle and absolute limits themselves are tested with a frozen clock in
``tests/unit/test_webchat_session_lifetime.py``."""

from __future__ import annotations

import dataclasses
import json
import queue
import time
from pathlib import Path
from typing import Iterator, List
from urllib.parse import quote

import pytest
import requests
from sqlalchemy import select, text

from bot.cli import stop
from bot.db import models
from bot.db.session import session_scope
from tests.conftest import Servers, demo_database, server_plan, start_and_wait
from tests.e2e.test_webchat_socket import WebChatClient
from tests.fakes.wording import says

pytestmark = [pytest.mark.e2e, pytest.mark.model]
IDLE_SECONDS = 60


@pytest.fixture(scope="module")
def quick_servers(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """The three servers on a fresh SQLite demo estate, web chat sessions idling out after a minute."""
    work = tmp_path_factory.mktemp("quick-expiry")
    plan = server_plan(trained_model, work, demo_database(work))
    plan = dataclasses.replace(plan, env={**plan.env, "WEBCHAT_SESSION_IDLE_MINUTES": "1"})
    processes = start_and_wait(plan)
    try:
        yield Servers(plan.rasa_url, plan.actions_url, work, plan.database_url, plan.token, processes[1].pid, plan.staff_url)
    finally:
        stop(processes)


def user_texts(rasa_url: str, sender_id: str) -> List[str]:
    response = requests.get(f"{rasa_url}/conversations/{quote(sender_id)}/tracker", timeout=30)
    response.raise_for_status()
    return [event.get("text") for event in response.json()["events"] if event["event"] == "user"]


def test_a_silent_minute_ends_the_session_and_the_next_message_starts_unverified(quick_servers: Servers) -> None:
    owner = WebChatClient(quick_servers.rasa_url)
    ended: queue.Queue[dict] = queue.Queue()
    owner.sio.on("session_ended", ended.put)
    try:
        first_id = owner.session_id
        assert first_id is not None
        owner.say("我欠多少物业费")
        assert says(owner.replies(), "utter_ask_room")
        owner.say("3栋2单元501")
        assert says(owner.replies(), "utter_ask_phone_tail")
        owner.say("6688")
        assert says(owner.replies(), "utter_identity_verified", owner_name="王建国")
        with session_scope(quick_servers.database_url) as session:
            link = session.execute(
                select(models.ConversationLink).where(models.ConversationLink.sender_id == first_id)
            ).scalar_one()
            assert (link.channel, link.closed_at, link.closed_reason) == ("socketio", None, None)

        time.sleep(IDLE_SECONDS + 2)
        owner.say("我欠多少物业费")
        assert ended.get(timeout=30) == {"reason": "idle"}
        second_id = owner.next_confirmation(timeout=30)
        assert second_id not in (None, first_id)
        assert owner.replies(first_timeout=5) == []  # the message under the dead id was not answered
        assert user_texts(quick_servers.rasa_url, first_id) == ["我欠多少物业费", "3栋2单元501", "6688"]

        # The new session knows nobody: asked about arrears, the bot asks who is asking.
        owner.say("我欠多少物业费")
        assert says(owner.replies(), "utter_ask_room")
        assert user_texts(quick_servers.rasa_url, second_id) == ["我欠多少物业费"]
    finally:
        owner.close()
    with session_scope(quick_servers.database_url) as session:
        link = session.execute(
            select(models.ConversationLink).where(models.ConversationLink.sender_id == first_id)
        ).scalar_one()
        assert link.closed_reason == "session_ended:idle" and link.closed_at is not None
        markers = session.execute(
            text("SELECT data FROM events WHERE sender_id = :sender AND type_name = 'pause'"), {"sender": first_id}
        ).scalars().all()
        assert [json.loads(marker)["metadata"]["webchat_session_end"] for marker in markers] == ["idle"]
