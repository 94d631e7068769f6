"""Two Rasa processes sharing PostgreSQL and Redis (Rasa's lock store, from ``LOCK_STORE_URL`` as ``bot run``
writes it): the owner's web chat socket is held by the second process; a staff takeover, the owner's message
while held and a staff reply are all handled there — the joined notice and the reply are delivered by the
process holding the socket (``claimed_by`` names it), once, and the first process never sends them.
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from pathlib import Path
from typing import Iterator, List

import pytest
import yaml
from sqlalchemy import create_engine, select, text

from bot import wording
from bot.cli import start_rasa_server, stop
from bot.conversations import handoff
from bot.db import models
from bot.db.models import OutboxKind, OutboxState
from bot.db.session import get_engine, session_scope
from tests.conftest import free_port, server_plan, start_and_wait, wait_for
from tests.db_fixtures import POSTGRES_ADMIN_URL
from tests.e2e.test_takeover import REPLY, tracker_events
from tests.e2e.test_webchat_socket import WebChatClient
from tests.fakes.wording import says

pytestmark = [pytest.mark.e2e, pytest.mark.model]
REDIS_URL = "redis://127.0.0.1:6379/4"


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database with the demo estate, dropped afterwards."""
    from bot.cli import DEMO_ESTATE
    from bot.db import migrate
    from bot.owners.importer import import_arrears

    name = f"bot_two_rasa_{uuid.uuid4().hex[:8]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    migrate.upgrade(url)
    with session_scope(url) as session:
        import_arrears(session, DEMO_ESTATE)
    try:
        yield url
    finally:
        get_engine(url).dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def outbox_rows(database_url: str, sender_id: str) -> List[models.OutboxMessage]:
    with session_scope(database_url) as session:
        rows = session.execute(
            select(models.OutboxMessage).where(models.OutboxMessage.sender_id == sender_id).order_by(models.OutboxMessage.id)
        ).scalars().all()
        session.expunge_all()
        return list(rows)


def test_a_staff_message_is_delivered_by_the_process_holding_the_owners_socket(
    trained_model: Path, tmp_path: Path, fresh_postgres: str
) -> None:
    first_plan = dataclasses.replace(
        server_plan(trained_model, tmp_path / "first", fresh_postgres), lock_store_url=REDIS_URL
    )
    (tmp_path / "first").mkdir()
    (tmp_path / "second").mkdir()
    processes = start_and_wait(first_plan)  # action server, the first Rasa process, the staff console
    second_plan = dataclasses.replace(first_plan, workdir=tmp_path / "second", log_dir=tmp_path / "second", rasa_port=free_port())
    second = start_rasa_server(second_plan)
    processes.append(second)
    owner = None
    try:
        wait_for(f"{second_plan.rasa_url}/status", second, 240)
        for plan in (first_plan, second_plan):  # both use Rasa's Redis lock store on the shared Redis
            assert yaml.safe_load((plan.workdir / "endpoints.yml").read_text())["lock_store"] == {
                "type": "redis", "url": "127.0.0.1", "port": 6379, "db": 4,
            }  # fmt: skip

        owner = WebChatClient(second_plan.rasa_url)  # the owner's socket: held by the second process
        sender = owner.session_id
        assert sender is not None
        owner.say("你好")
        assert says(owner.replies(), "utter_greet")

        with session_scope(fresh_postgres) as session:
            handoff.take_over(session, sender_id=sender, staff="wang")
        assert owner.replies(first_timeout=15, quiet=2) == [wording.text("handoff.joined")]
        owner.say("暖气不热，物业费我不交了")
        assert owner.replies(first_timeout=6, quiet=1) == []  # held: the bot is silent in every process
        with session_scope(fresh_postgres) as session:
            handoff.staff_reply(session, sender_id=sender, staff="wang", text=REPLY)
        assert owner.replies(first_timeout=15, quiet=3) == [REPLY]

        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            found = outbox_rows(fresh_postgres, sender)
            if all(row.state is OutboxState.DELIVERED for row in found):
                break
            time.sleep(0.3)
        by_kind = {row.kind: row for row in found}
        assert [row.state for row in found] == [OutboxState.DELIVERED] * 3
        for kind in (OutboxKind.JOINED, OutboxKind.TEXT):  # delivered by the process with the socket, once
            assert by_kind[kind].claimed_by.endswith(f":{second.pid}"), by_kind[kind].claimed_by
            assert by_kind[kind].attempts == 1
        # The tracker (shared, written under the Redis lock by both processes) has everything exactly once.
        events = tracker_events(second_plan.rasa_url, sender)
        assert [event["text"] for event in events if event["event"] == "user"][-1] == "暖气不热，物业费我不交了"
        delivered = [
            (event.get("metadata") or {}).get("outbox_id")
            for event in events
            if event["event"] == "bot" and (event.get("metadata") or {}).get("outbox_id")
        ]
        assert delivered == [by_kind[OutboxKind.JOINED].id, by_kind[OutboxKind.TEXT].id]
        assert tracker_events(first_plan.rasa_url, sender) == events  # the first process reads the same tracker
    finally:
        if owner is not None:
            owner.close()
        stop(processes)
