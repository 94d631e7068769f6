"""The web chat channel's socket events, bindings and routes, with a fake socket.io server (no Rasa)."""

import asyncio
import datetime as dt
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Dict, List, Optional, Tuple

import pytest
import yaml
from rasa.core.channels.channel import UserMessage

from bot import clock
from bot.channels.inbound import ip_client
from bot.channels.socket_sessions import SocketSessions
from bot.channels.webchat import SignedSessionEvents, SignedSocketIOInput
from bot.conversations.session_ids import SessionIdSigner

ROOT = Path(__file__).resolve().parents[2]
SECRET = "unit-test-secret"


class FakeSio:
    """Records what the handlers do to the socket.io server."""

    def __init__(self) -> None:
        self.rooms: Dict[str, set] = {}
        self.emitted: List[Tuple[str, Any, Optional[str]]] = []

    def enter_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        self.rooms.setdefault(sid, set()).add(room)

    def leave_room(self, sid: str, room: str, namespace: Optional[str] = None) -> None:
        self.rooms.get(sid, set()).discard(room)

    async def emit(self, event: str, data: Any = None, room: Optional[str] = None, **kwargs: Any) -> None:
        self.emitted.append((event, data, room))


async def admit_everyone(client: str) -> bool:
    return True


class SessionsThatLast:
    """Stands in for the database-backed SessionLifetimeGuard: every session works (tests of the bindings)."""

    async def check(self, session_id: str) -> None:
        return None


class Server:
    """One 'server process': its own bindings, the shared secret."""

    def __init__(self, secret: str = SECRET, admit: Any = admit_everyone, lifetime: Any = None) -> None:
        self.signer = SessionIdSigner(secret)
        self.sio = FakeSio()
        self.received: List[UserMessage] = []

        async def on_new_message(message: UserMessage) -> None:
            self.received.append(message)

        self.events = SignedSessionEvents(
            self.sio,  # type: ignore[arg-type]
            SocketSessions(self.signer),
            on_new_message,
            bot_message_evt="bot_uttered",
            metadata_key="customData",
            namespace=None,
            input_channel="socketio",
            admit_new_session=admit,
            lifetime=lifetime or SessionsThatLast(),
        )

    def connect(self, sid: str, ip: str) -> None:
        # What python-engineio's Sanic driver hands over: a constant REMOTE_ADDR, the real peer on the request.
        self.events.connected(sid, {"REMOTE_ADDR": "127.0.0.1", "sanic.request": SimpleNamespace(ip=ip)})

    def session_request(self, sid: str, session_id: Any = None) -> str:
        asyncio.run(self.events.session_request(sid, {"session_id": session_id}))
        event, confirmed, room = self.sio.emitted[-1]
        assert (event, room) == ("session_confirm", sid)
        return confirmed

    def say(self, sid: str, session_id: Any, text: str = "你好", **custom: Any) -> Optional[UserMessage]:
        before = len(self.received)
        asyncio.run(
            self.events.user_uttered(sid, {"message": text, "session_id": session_id, "customData": custom})
        )
        return self.received[-1] if len(self.received) > before else None


def test_a_new_visitor_gets_a_signed_id_and_joins_its_room() -> None:
    server = Server()
    session_id = server.session_request("socket-a")
    assert server.signer.is_valid(session_id)
    assert server.sio.rooms["socket-a"] == {session_id}


@pytest.mark.parametrize("forged", ["forged", "owner-42", "0" * 32 + "." + "f" * 64, ""])
def test_a_forged_or_unsigned_id_is_replaced(forged: str) -> None:
    server = Server()
    session_id = server.session_request("socket-a", forged)
    assert session_id != forged and server.signer.is_valid(session_id)
    assert forged not in server.sio.rooms["socket-a"]


def test_a_reload_keeps_the_conversation() -> None:
    server = Server()
    session_id = server.session_request("socket-a")
    assert server.session_request("socket-b", session_id) == session_id


def test_a_restarted_server_keeps_the_conversation_of_a_reconnecting_client() -> None:
    session_id = Server().session_request("socket-a")
    restarted = Server()
    assert restarted.session_request("socket-b", session_id) == session_id
    message = restarted.say("socket-b", session_id)
    assert message is not None and message.sender_id == session_id


def test_a_server_with_another_secret_starts_a_new_conversation() -> None:
    session_id = Server().session_request("socket-a")
    assert Server(secret="rotated").session_request("socket-b", session_id) != session_id


def test_messages_go_to_rasa_under_the_sockets_own_id() -> None:
    server = Server()
    server.connect("socket-a", "203.0.113.7")
    session_id = server.session_request("socket-a")
    arrived = dt.datetime(2026, 11, 25, 10, 3, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with clock.frozen(arrived):
        # the client cannot say when it was last active: the server stamps the moment itself
        message = server.say("socket-a", session_id, "我欠多少物业费", language="zh-CN", webchat_seen_at="2099-01-01")
    assert message is not None
    assert message.sender_id == session_id
    assert message.text == "我欠多少物业费"
    assert message.input_channel == "socketio"
    assert message.metadata == {
        "language": "zh-CN",
        "client": ip_client("203.0.113.7"),
        "webchat_seen_at": "2026-11-25T02:03:00+00:00",
    }
    assert message.output_channel.name() == "socketio"


def test_another_owners_id_in_a_message_is_refused() -> None:
    server = Server()
    mine = server.session_request("socket-a")
    other_owner = server.session_request("socket-b")
    assert server.say("socket-a", other_owner) is None
    assert server.say("socket-a", "forged") is None
    assert server.say("socket-a", None) is None
    assert server.sio.rooms["socket-a"] == {mine}
    assert server.say("socket-a", mine) is not None


def test_a_message_that_overtakes_its_session_request_is_accepted_only_with_a_signed_id() -> None:
    server = Server()
    session_id = Server().session_request("elsewhere")
    assert server.say("socket-a", "forged") is None
    message = server.say("socket-a", session_id)
    assert message is not None and message.sender_id == session_id
    assert server.sio.rooms["socket-a"] == {session_id}
    assert server.say("socket-a", server.signer.issue()) is None  # now bound: only its own id


def test_a_new_session_request_moves_the_socket_to_the_new_room() -> None:
    server = Server()
    first = server.session_request("socket-a")
    second = server.session_request("socket-a", "forged")
    assert server.sio.rooms["socket-a"] == {second} and first != second
    assert server.say("socket-a", first) is None


def test_a_disconnected_socket_is_forgotten() -> None:
    server = Server()
    session_id = server.session_request("socket-a")
    asyncio.run(server.events.disconnect("socket-a"))
    assert server.events.sessions.bound("socket-a") is None
    assert server.say("socket-a", "forged") is None
    assert server.say("socket-a", session_id) is not None  # a signed id rebinds (reconnect race)


def test_malformed_messages_are_ignored() -> None:
    server = Server()
    server.session_request("socket-a")
    asyncio.run(server.events.user_uttered("socket-a", "just text"))
    asyncio.run(server.events.session_request("socket-b", None))
    assert server.received == []
    assert server.signer.is_valid(server.sio.emitted[-1][1])


def test_metadata_may_arrive_as_json_text() -> None:
    server = Server()
    session_id = server.session_request("socket-a")
    asyncio.run(
        server.events.user_uttered(
            "socket-a", {"message": "hi", "session_id": session_id, "customData": '{"date": "2026-11-23"}'}  # dropped
        )
    )
    asyncio.run(
        server.events.user_uttered("socket-a", {"message": "hi", "session_id": session_id, "customData": "{"})
    )
    assert [{**m.metadata, "webchat_seen_at": "…"} for m in server.received] == [
        {"client": "ip:unknown", "webchat_seen_at": "…"},
        {"client": "ip:unknown", "webchat_seen_at": "…"},
    ]


def credentials() -> Dict[str, Any]:
    return yaml.safe_load((ROOT / "credentials.yml").read_text(encoding="utf-8"))


def test_credentials_list_the_signed_channel() -> None:
    config = credentials()["bot.channels.webchat.SignedSocketIOInput"]
    assert config["user_message_evt"] == "user_uttered"
    assert config["bot_message_evt"] == "bot_uttered"
    assert config["session_persistence"] is True
    assert config["metadata_key"] == "customData"  # rasa-webchat sends its metadata as customData
    assert "socketio" not in credentials()  # Rasa's unsigned channel would share the socket.io path


def test_the_channel_keeps_rasas_socketio_name_and_registers_its_events() -> None:
    channel = SignedSocketIOInput.from_credentials(credentials()["bot.channels.webchat.SignedSocketIOInput"])
    assert isinstance(channel, SignedSocketIOInput)
    assert channel.name() == "socketio" and channel.url_prefix() == "socketio"
    assert channel.metadata_key == "customData"

    async def on_new_message(message: UserMessage) -> None:
        pass

    channel.blueprint(on_new_message)
    assert channel.sio is not None
    events = set(channel.sio.handlers["/"])
    assert {"connect", "disconnect", "session_request", "user_uttered"} <= events
    assert channel.get_output_channel() is not None


def test_the_channel_serves_the_page_and_socketio_on_the_rasa_app() -> None:
    from rasa.core.channels.channel import register
    from sanic import Sanic

    app = Sanic("webchat_unit_test")
    channel = SignedSocketIOInput(signer=SessionIdSigner(SECRET))
    register([channel], app, route="/webhooks/")
    paths = {route.path for route in app.router.routes}
    assert {"chat/", "chat", "chat/<name:str>", "chat/session/end", "webhooks/socketio", "socket.io"} <= paths
    sign_out = next(route for route in app.router.routes if route.path == "chat/session/end")
    assert set(sign_out.methods) == {"POST"}  # 退出 (the page's POST); nothing else is served there


def test_a_jwt_key_makes_the_token_mandatory() -> None:
    channel = SignedSocketIOInput(jwt_key="k", signer=SessionIdSigner(SECRET))
    assert asyncio.run(channel._connect("sid", {}, None)) is False
    assert asyncio.run(channel._connect("sid", {}, {"token": "not-a-jwt"})) is False
    assert asyncio.run(SignedSocketIOInput(signer=SessionIdSigner(SECRET))._connect("sid", {}, None)) is True
