"""The signed socket.io channel on the real Rasa server, driven by a python-socketio client.

The client behaves like rasa-webchat: on every (re)connect it sends ``session_request`` with the id it
stored, and keeps whatever id the server confirms.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple
from urllib.parse import quote

import pytest
import requests
import socketio

from bot.conversations.session_ids import signer_from_settings
from tests.conftest import ROOT, free_port, wait_for
from tests.fakes.wording import says

pytestmark = [pytest.mark.e2e, pytest.mark.model]
TODAY = "2026-11-23"


class WebChatClient:
    """A socket.io client speaking rasa-webchat's protocol.

    Args:
        url: The Rasa server.
        stored_id: The session id "in local storage" (``None`` for a first visit).
        reconnection: Whether to reconnect by itself after the server goes away, as the page does.
    """

    def __init__(self, url: str, stored_id: Optional[str] = None, reconnection: bool = False) -> None:
        self.sio = socketio.Client(reconnection=reconnection, reconnection_delay=1, reconnection_delay_max=2)
        self.session_id = stored_id
        self.confirmed: queue.Queue[str] = queue.Queue()
        self.uttered: queue.Queue[Dict[str, Any]] = queue.Queue()
        self.sio.on("connect", lambda: self.sio.emit("session_request", {"session_id": self.session_id}))
        self.sio.on("session_confirm", self._confirmed)
        self.sio.on("bot_uttered", self.uttered.put)
        # long polling: the sync client's WebSocket transport needs websocket-client, not installed
        self.sio.connect(url, transports=["polling"], wait_timeout=20)
        self.next_confirmation()

    def _confirmed(self, session_id: str) -> None:
        self.session_id = session_id
        self.confirmed.put(session_id)

    def next_confirmation(self, timeout: float = 20) -> str:
        return self.confirmed.get(timeout=timeout)

    def session_request(self, session_id: Optional[str]) -> str:
        self.sio.emit("session_request", {"session_id": session_id})
        return self.next_confirmation()

    def say(self, text: str, session_id: Optional[str] = None) -> None:
        claimed = session_id if session_id is not None else self.session_id
        self.sio.emit("user_uttered", {"message": text, "session_id": claimed, "customData": {"date": TODAY}})

    def replies(self, first_timeout: float = 60, quiet: float = 3) -> List[str]:
        """Bot texts until none arrives for ``quiet`` seconds (empty if none within ``first_timeout``)."""
        texts: List[str] = []
        timeout = first_timeout
        while True:
            try:
                texts.append(self.uttered.get(timeout=timeout).get("text", ""))
            except queue.Empty:
                return texts
            timeout = quiet

    def close(self) -> None:
        self.sio.disconnect()


@pytest.fixture
def clients(servers) -> Iterator[Any]:
    opened: List[WebChatClient] = []

    def open_client(stored_id: Optional[str] = None, url: Optional[str] = None, **options: Any) -> WebChatClient:
        client = WebChatClient(url or servers.rasa_url, stored_id, **options)
        opened.append(client)
        return client

    yield open_client
    for client in opened:
        client.close()


def user_texts(rasa_url: str, sender_id: str) -> List[str]:
    response = requests.get(f"{rasa_url}/conversations/{quote(sender_id)}/tracker", timeout=30)
    response.raise_for_status()
    return [event.get("text") for event in response.json()["events"] if event["event"] == "user"]


def test_forged_ids_are_replaced_and_a_valid_id_is_kept(servers, clients) -> None:
    signer = signer_from_settings()  # the test and the server read the same SECRET_KEY
    for forged in ("forged", uuid.uuid4().hex, "0" * 32 + "." + "0" * 64, "owner-42"):
        client = clients(stored_id=forged)
        issued = client.session_id
        assert issued != forged and signer.is_valid(issued)
        assert client.session_request(forged) not in (forged, issued)

    visitor = clients()
    assert visitor.session_id is not None and signer.is_valid(visitor.session_id)
    visitor.say("你好")
    assert says(visitor.replies(), "utter_greet")

    # A reload (a new socket presenting the stored id) keeps the id and the conversation.
    reloaded = clients(stored_id=visitor.session_id)
    assert reloaded.session_id == visitor.session_id
    tracker = requests.get(f"{servers.rasa_url}/conversations/{quote(visitor.session_id)}/tracker", timeout=30)
    assert tracker.json()["latest_input_channel"] == "socketio"
    assert user_texts(servers.rasa_url, visitor.session_id) == ["你好"]


def test_a_message_under_another_owners_id_is_refused(servers, clients) -> None:
    owner = clients()
    owner.say("你好")
    assert owner.replies()
    assert owner.session_id is not None

    intruder = clients()
    assert intruder.session_id != owner.session_id
    intruder.say("我欠多少物业费", session_id=owner.session_id)  # someone else's valid id
    intruder.say("我欠多少物业费", session_id="forged-id")
    assert intruder.replies(first_timeout=8) == []
    assert owner.replies(first_timeout=2) == []
    assert user_texts(servers.rasa_url, owner.session_id) == ["你好"]
    assert user_texts(servers.rasa_url, "forged-id") == []

    # Under its own id the intruder is just another visitor.
    intruder.say("你好")
    assert says(intruder.replies(), "utter_greet")


class RestartableRasa:
    """A second Rasa server (same model, credentials and SECRET_KEY) that the test may restart."""

    def __init__(self, model: Path, endpoints: Path, log: Path, database_url: str) -> None:
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [
            sys.executable, "-m", "bot.rasa.runtime", "run",
            "--model", str(model),
            "--port", str(self.port),
            "--endpoints", str(endpoints),
            "--credentials", str(ROOT / "credentials.yml"),
            "--enable-api",
        ]  # fmt: skip
        self.log = log
        self.process: Optional[subprocess.Popen] = None

    def start(self) -> None:
        # The shared servers' database: new web chat ids are counted there (without one none are issued).
        env = {**os.environ, "PYTHONPATH": str(ROOT), "DATABASE_URL": self.database_url}
        with self.log.open("a") as log:
            self.process = subprocess.Popen(self.command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        wait_for(f"{self.url}/status", self.process)

    def stop(self) -> None:
        from bot.cli import stop

        if self.process is not None:
            stop([self.process])
            self.process = None


@pytest.fixture
def restartable_rasa(trained_model: Path, servers, tmp_path: Path) -> Iterator[RestartableRasa]:
    from bot.rasa.endpoints import write_endpoints

    endpoints = write_endpoints(
        tmp_path / "endpoints.yml",
        database_url=f"sqlite:///{tmp_path / 'trackers.db'}",
        action_server_url=f"{servers.actions_url}/webhook",
        action_server_token=servers.actions_token,
    )
    server = RestartableRasa(trained_model, endpoints, tmp_path / "rasa.log", servers.database_url)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def test_a_client_reconnects_to_its_conversation_after_a_server_restart(restartable_rasa, clients) -> None:
    server = restartable_rasa
    client = clients(url=server.url, reconnection=True)
    session_id = client.session_id
    assert session_id is not None
    client.say("你好")
    assert says(client.replies(), "utter_greet")

    server.stop()
    server.start()

    # The client reconnects by itself and presents its stored id; the new process accepts it (same
    # SECRET_KEY) and the conversation continues from the tracker store.
    assert client.next_confirmation(timeout=60) == session_id
    client.say("你好")
    assert says(client.replies(), "utter_greet")
    assert user_texts(server.url, session_id) == ["你好", "你好"]
    # a form runs its validation on the action server: the restarted server still holds the token
    client.say("我欠多少物业费")
    assert says(client.replies(), "utter_ask_room")


# --- new session ids are rate-limited per client address ------------------------------------------------


def fresh_session(url: str, timeout: float = 20) -> Tuple[Optional[str], List[str]]:
    """Open a socket as a first-time visitor: (the confirmed id or ``None``, the texts the channel sent)."""
    sio = socketio.Client(reconnection=False)
    answers: queue.Queue[Tuple[str, Any]] = queue.Queue()
    sio.on("session_confirm", lambda session_id: answers.put(("confirm", session_id)))
    sio.on("bot_uttered", lambda message: answers.put(("text", message.get("text", ""))))
    sio.on("connect", lambda: sio.emit("session_request", {"session_id": None}))
    sio.connect(url, transports=["polling"], wait_timeout=20)
    try:
        kind, value = answers.get(timeout=timeout)  # whichever the server sends first decides
        return (value, []) if kind == "confirm" else (None, [value])
    finally:
        sio.disconnect()


def test_fresh_sessions_are_rate_limited_per_address_and_existing_ones_keep_working(servers, clients) -> None:
    from sqlalchemy import delete, func, select

    from bot import wording
    from bot.channels.inbound import ip_client
    from bot.db.models import RateLimitHit
    from bot.db.session import session_scope
    from bot.settings import get_settings

    key = f"webchat-session:{ip_client('127.0.0.1')}"  # the servers share the suite's SECRET_KEY
    limit = get_settings().webchat_sessions_per_hour
    owner = clients()
    owner.say("你好")
    assert owner.replies()
    try:
        with session_scope(servers.database_url) as session:
            used = session.execute(select(func.count()).select_from(RateLimitHit).where(RateLimitHit.key == key)).scalar_one()
        assert used <= limit
        outcomes = [fresh_session(servers.rasa_url) for _ in range(limit - used + 3)]
        granted = [session_id for session_id, _ in outcomes if session_id is not None]
        assert len(granted) == limit - used, "the attacker got more (or fewer) fresh sessions than the limit"
        assert outcomes[: limit - used] == [(session_id, []) for session_id in granted]
        assert outcomes[limit - used :] == [(None, [wording.text("channels.session_limit")])] * 3

        # The owner's existing session is not limited: a reload presents it and the conversation goes on.
        reloaded = clients(stored_id=owner.session_id)
        assert reloaded.session_id == owner.session_id
        reloaded.say("你好")
        assert says(reloaded.replies(), "utter_greet")
        assert user_texts(servers.rasa_url, owner.session_id) == ["你好", "你好"]
    finally:
        # Later tests open web chat sessions from this same address.
        with session_scope(servers.database_url) as session:
            session.execute(delete(RateLimitHit).where(RateLimitHit.key == key))
