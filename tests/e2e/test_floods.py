"""Floods refused through the real servers (issue 16 point 6): the action server and two Rasa processes with
the trained model, sharing a database and Redis (``REDIS_URL``: Rasa's lock store and the message counts), with
low limits (3 messages a minute per client, 1 record without identity a day).

* REST: the same sender over both processes: its fourth message gets 429 and the polite answer once, the fifth
  429 and none; the tracker holds the three admitted messages only.
* Web chat: a socket's fourth message gets the polite answer once, the fifth nothing; neither reaches Rasa.
* Records without identity: a second request for a person from an anonymous REST sender is answered with
  ``floods.enough_today``, writes no escalation of its own, and staff get one ``flood`` escalation.
"""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Tuple
from urllib.parse import quote

import pytest
import redis
import requests
from sqlalchemy import select

from bot import wording
from bot.cli import start_action_server, start_rasa_server, stop
from bot.db import models
from bot.db.session import get_engine, session_scope
from bot.services.message_limits import REDIS_PREFIX
from tests.conftest import REST_TOKEN, demo_database, server_plan, wait_for
from tests.e2e.test_webchat_socket import WebChatClient

pytestmark = [pytest.mark.e2e, pytest.mark.model]
REDIS_URL = "redis://127.0.0.1:6379/5"
LIMITS = {"CHANNEL_MESSAGES_PER_MINUTE": "3", "UNVERIFIED_RECORDS_PER_DAY": "1", "REDIS_URL": REDIS_URL}


def notice(minutes: int) -> str:
    return wording.text("floods.too_many_messages", minutes=minutes)


@dataclasses.dataclass
class TwoProcesses:
    first_url: str
    second_url: str
    database_url: str


@pytest.fixture(scope="module")
def flood_servers(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TwoProcesses]:
    # Counts left in Redis by an earlier run of this module would be counted again: start from none.
    stale = redis.Redis.from_url(REDIS_URL)
    for key in stale.scan_iter(f"{REDIS_PREFIX}*"):
        stale.delete(key)
    stale.close()
    work = tmp_path_factory.mktemp("floods")
    base = server_plan(trained_model, work, demo_database(work))
    plan = dataclasses.replace(base, env={**base.env, **LIMITS}, worker=False)
    (work / "second").mkdir()
    second_plan = dataclasses.replace(plan, workdir=work / "second", log_dir=work / "second", rasa_port=base.staff_port)
    processes = [start_action_server(plan)]
    try:
        processes.append(start_rasa_server(plan))
        processes.append(start_rasa_server(second_plan))
        wait_for(f"{plan.actions_url}/health", processes[0], 180)
        wait_for(f"{plan.rasa_url}/status", processes[1], 240)
        wait_for(f"{second_plan.rasa_url}/status", processes[2], 240)
        yield TwoProcesses(plan.rasa_url, second_plan.rasa_url, plan.database_url)
    finally:
        stop(processes)
        get_engine(plan.database_url).dispose()


def rest(url: str, sender: str, text: str) -> requests.Response:
    return requests.post(
        f"{url}/webhooks/rest/webhook",
        json={"sender": sender, "message": text},
        headers={"Authorization": f"Bearer {REST_TOKEN}"},
        timeout=60,
    )


def user_texts(url: str, sender: str) -> List[str]:
    response = requests.get(f"{url}/conversations/{quote(sender)}/tracker", timeout=30)
    response.raise_for_status()
    return [event.get("text") for event in response.json()["events"] if event["event"] == "user"]


def escalations_of(database_url: str, sender: str) -> List[Tuple[str, Any, Any]]:
    with session_scope(database_url) as session:
        rows = session.execute(
            select(models.Escalation).where(models.Escalation.sender_id == sender).order_by(models.Escalation.id)
        ).scalars()
        return [(row.reason, row.owner_id, row.channel) for row in rows]


def test_rest_counts_a_sender_across_processes_and_refuses_politely_once(flood_servers: TwoProcesses) -> None:
    sender = f"flood-{uuid.uuid4().hex[:8]}"
    urls = [flood_servers.first_url, flood_servers.second_url, flood_servers.first_url]
    admitted = [rest(url, sender, text) for url, text in zip(urls, ["你好", "物业费怎么交", "谢谢"], strict=True)]
    assert [response.status_code for response in admitted] == [200, 200, 200]
    assert all(response.json() for response in admitted)  # the bot answered each
    fourth = rest(flood_servers.second_url, sender, "在吗")
    fifth = rest(flood_servers.first_url, sender, "在吗在吗")
    assert fourth.status_code == 429 and int(fourth.headers["Retry-After"]) >= 1
    body: Dict[str, Any] = fourth.json()
    minutes = -(-body["retry_after"] // 60)
    assert body == {
        "error": "too many messages",
        "retry_after": body["retry_after"],
        "messages": [{"recipient_id": sender, "text": notice(minutes)}],
    }
    assert fifth.status_code == 429 and fifth.json()["messages"] == []
    # Nothing of the refused messages reached Rasa, in either process.
    assert user_texts(flood_servers.first_url, sender) == ["你好", "物业费怎么交", "谢谢"]
    assert user_texts(flood_servers.second_url, sender) == ["你好", "物业费怎么交", "谢谢"]


def test_web_chat_refuses_a_sockets_flood_politely_once(flood_servers: TwoProcesses) -> None:
    owner = WebChatClient(flood_servers.first_url)
    try:
        session_id = owner.session_id
        assert session_id is not None
        for text in ("你好", "物业费怎么交"):
            owner.say(text)
            assert owner.replies(first_timeout=60, quiet=2), "the bot did not answer an admitted message"
        owner.say("谢谢")
        owner.replies(first_timeout=60, quiet=2)
        owner.say("在吗")
        refused = owner.replies(first_timeout=20, quiet=2)
        assert len(refused) == 1 and refused[0] in {notice(1), notice(2)}  # 3 a minute: one more within 2 minutes
        owner.say("在吗在吗")
        assert owner.replies(first_timeout=5, quiet=1) == []
        assert user_texts(flood_servers.first_url, session_id) == ["你好", "物业费怎么交", "谢谢"]
    finally:
        owner.close()


def test_an_anonymous_client_past_the_days_records_gets_enough_today_and_staff_a_flag(
    flood_servers: TwoProcesses,
) -> None:
    sender = f"anon-{uuid.uuid4().hex[:8]}"
    first = rest(flood_servers.first_url, sender, "我要找人工客服")
    assert first.status_code == 200
    with session_scope(flood_servers.database_url) as session:
        asked = session.execute(select(models.Escalation).where(models.Escalation.sender_id == sender)).scalar_one()
        number = str(asked.number)
    assert any(number in m.get("text", "") for m in first.json())  # the confirmation quotes the stored number
    second = rest(flood_servers.second_url, sender, "转人工")
    assert second.status_code == 200
    assert [m.get("text") for m in second.json()] == [wording.text("floods.enough_today")]
    assert escalations_of(flood_servers.database_url, sender) == [
        ("request_human", None, "rest"), ("flood", None, "rest"),
    ]  # fmt: skip
    with session_scope(flood_servers.database_url) as session:
        flag = session.execute(
            select(models.Escalation).where(models.Escalation.sender_id == sender, models.Escalation.reason == "flood")
        ).scalar_one()
        assert flag.detail is not None and f"client rest:{sender} went past 1 records" in flag.detail
        assert flag.state is models.EscalationState.PENDING and flag.assignee is None
