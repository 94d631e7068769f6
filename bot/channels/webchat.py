"""Rasa's socket.io channel with server-issued, signed sender ids, plus the web chat page.

Listed in ``credentials.yml`` as ``bot.channels.webchat.SignedSocketIOInput``. It keeps Rasa's
channel name ``socketio`` (the tracker's input channel), its events (``session_request`` →
``session_confirm``, ``user_uttered`` → ``bot_uttered``) and its output, and changes who picks the
sender id:

* ``session_request``: a ``session_id`` the server signed earlier (stored by the browser, presented again
  after a reload or a reconnect, also after a server restart: the key is ``SECRET_KEY``) is kept; anything
  else — none, an unsigned id, a forged or tampered one — is replaced by a freshly issued id.
  Issuing a new id is rate-limited per client address (``WEBCHAT_SESSIONS_PER_HOUR``, counted in the
  database so every server process and restart shares it): a client over the limit is told so politely
  and gets no id, so it cannot open fresh conversations to reset per-conversation counters. Presenting an
  id it already holds is never limited.
* ``user_uttered``: handled only under the id the socket was confirmed with; a message naming another
  ``session_id`` is refused. The text is screened and the metadata rebuilt by the server
  (:mod:`bot.channels.inbound`): ``customData`` can never set the date, and ``client`` is the socket's
  remote address.
* Every text sent to the page passes the compliance check.
* While a staff member holds the conversation the bot is silent (``bot.channels.takeover.HoldGate``), and
  every server process delivers the outbox (staff replies, joined / left notices) to the sockets it holds,
  also right after a socket confirms its session (``bot.channels.takeover.OutboxDeliverer``).

The same Rasa server serves the page at ``/chat/`` (see ``bot.channels.webchat_page``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from typing import Any, Awaitable, Callable, Dict, Optional

import rasa.core.channels.channel
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from bot import wording
from bot.channels.inbound import checked_message, ip_client, request_client, screen_text, server_metadata
from bot.channels.session_ids import SessionIdSigner, signer_from_settings
from bot.channels.socket_sessions import SocketSessions
from bot.channels.takeover import HoldGate, OutboxDeliverer
from bot.channels.webchat_page import register_page

logger = logging.getLogger(__name__)

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]
AdmitNewSession = Callable[[str], Awaitable[bool]]
SESSION_WINDOW = dt.timedelta(hours=1)


class DatabaseSessionLimit:
    """Whether a client may be issued one more session id: ``rate_limits.allow`` in the database.

    Args:
        per_hour: New ids one client may obtain per hour; default ``WEBCHAT_SESSIONS_PER_HOUR``.
        database_url: The database; default ``DATABASE_URL``.
    """

    def __init__(self, per_hour: Optional[int] = None, database_url: Optional[str] = None) -> None:
        self.per_hour = per_hour
        self.database_url = database_url

    def _allow(self, client: str) -> bool:
        from bot.db.session import session_scope
        from bot.services import rate_limits
        from bot.settings import get_settings

        limit = self.per_hour if self.per_hour is not None else get_settings().webchat_sessions_per_hour
        with session_scope(self.database_url) as session:
            return rate_limits.allow(
                session, key=f"webchat-session:{client}", limit=limit, window=SESSION_WINDOW
            )

    async def __call__(self, client: str) -> bool:
        """Record one new id for ``client`` and say whether it is within the limit.

        Args:
            client: The client's accounting key (``ip:<address>``).

        Returns:
            ``False`` over the limit, and also when the database cannot be asked: without the count an
            attacker could open sessions freely, and without the database the bot cannot verify anyone.
        """
        try:
            return await asyncio.get_running_loop().run_in_executor(None, self._allow, client)
        except Exception:
            logger.exception("web chat: could not count new sessions of %s; refusing a new one", client)
            return False


class CheckedSocketIOOutput(SocketIOOutput):
    """Rasa's socket.io output with every text checked by ``bot.compliance`` before it is emitted."""

    async def _send_message(self, socket_id: str, response: Any) -> None:
        if isinstance(response, dict):
            response = checked_message(response, source="webchat")
        await super()._send_message(socket_id, response)


def _short(session_id: str) -> str:
    """A loggable prefix of a session id (the whole id is a bearer token)."""
    return session_id[:8] + "…"


class SignedSessionEvents:
    """The socket.io event handlers; separate from the channel so they can be tested without a server.

    Args:
        sio: The socket.io server.
        sessions: Socket → session id bindings.
        on_new_message: Rasa's handler for user messages.
        bot_message_evt: The event bot messages are emitted as.
        metadata_key: The key of the message payload that carries metadata (``customData`` for
            rasa-webchat).
        namespace: The socket.io namespace, if any.
        input_channel: The input channel name recorded on the tracker.
        admit_new_session: Whether a client (``ip:<address>``) may be issued one more session id; default
            the database-backed per-hour limit.
    """

    def __init__(
        self,
        sio: AsyncServer,
        sessions: SocketSessions,
        on_new_message: OnNewMessage,
        *,
        bot_message_evt: str,
        metadata_key: str,
        namespace: Optional[str],
        input_channel: str,
        admit_new_session: Optional[AdmitNewSession] = None,
    ) -> None:
        self.sio = sio
        self.sessions = sessions
        self.on_new_message = on_new_message
        self.bot_message_evt = bot_message_evt
        self.metadata_key = metadata_key
        self.namespace = namespace
        self.input_channel = input_channel
        self.admit_new_session = admit_new_session or DatabaseSessionLimit()
        self._clients: Dict[str, str] = {}
        # Called with the session id once a socket has confirmed it (the outbox delivers what waits for it).
        self.on_session: Optional[Callable[[str], None]] = None

    def connected(self, sid: str, environ: Dict[str, Any]) -> None:
        """Remember the remote address of a new socket: the client key its conversations are counted under.

        Args:
            sid: The socket.io id of the connection.
            environ: The WSGI-like environ python-engineio made from the Sanic request.
        """
        # engineio's Sanic driver writes REMOTE_ADDR as a constant 127.0.0.1; the request knows the peer.
        request = environ.get("sanic.request")
        address = getattr(request, "ip", None) or environ.get("REMOTE_ADDR")
        if address:
            self._clients[sid] = request_client(str(address), getattr(request, "headers", None))

    def client_of(self, sid: str) -> str:
        """The accounting key of the client behind ``sid`` (``ip:<address>``)."""
        return self._clients.get(sid) or ip_client(None)

    async def _say(self, sid: str, text: str) -> None:
        """Send one text from the channel itself to the socket ``sid``."""
        output = CheckedSocketIOOutput(self.sio, self.bot_message_evt)
        await output.send_text_message(sid, text)

    def _join(self, sid: str, session_id: str) -> None:
        # Bot messages are emitted to the room named after the session id.
        self.sio.enter_room(sid, session_id, namespace=self.namespace)

    async def session_request(self, sid: str, data: Any = None) -> None:
        """Confirm the presented session id if the server signed it, otherwise issue a new one.

        Args:
            sid: The socket.io id of the connection.
            data: The event payload, ``{"session_id": ...}`` or nothing.
        """
        presented = data.get("session_id") if isinstance(data, dict) else None
        previous = self.sessions.bound(sid)
        session_id = self.sessions.resume(sid, presented)
        if session_id is None:
            client = self.client_of(sid)
            if not await self.admit_new_session(client):
                logger.warning("web chat: %s asked for too many new sessions; refused socket %s", client, sid)
                await self._say(sid, wording.text("channels.session_limit"))
                return
            session_id = self.sessions.issue(sid)
        if previous is not None and previous != session_id:
            self.sio.leave_room(sid, previous, namespace=self.namespace)
        self._join(sid, session_id)
        if presented and presented != session_id:
            logger.info("web chat: replaced an invalid session id for socket %s with %s", sid, _short(session_id))
        await self.sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)
        if self.on_session is not None:
            self.on_session(session_id)

    async def user_uttered(self, sid: str, data: Any) -> None:
        """Hand a message to Rasa under the socket's own session id; refuse any other id.

        Args:
            sid: The socket.io id of the connection.
            data: ``{"message": ..., "session_id": ..., <metadata_key>: {...}}``.
        """
        if not isinstance(data, dict):
            logger.warning("web chat: ignored a malformed message from socket %s", sid)
            return
        was_bound = self.sessions.bound(sid) is not None
        sender_id = self.sessions.sender_for(sid, data.get("session_id"))
        if sender_id is None:
            logger.warning("web chat: refused a message from socket %s under a session id it was not given", sid)
            return
        if not was_bound:
            self._join(sid, sender_id)
        screened = screen_text(data.get("message"))
        if screened.refusal is None and screened.text is None:
            logger.info("web chat: ignored a message of %s: %s", _short(sender_id), screened.problem)
            return
        metadata = server_metadata(_metadata(data.get(self.metadata_key)), client=self.client_of(sid), trusted=False)
        if screened.refusal is not None:
            logger.info("web chat: refused a message of %s: %s", _short(sender_id), screened.problem)
            if not await self._held(sender_id, str(screened.problem), data.get("message"), metadata):
                await self._say(sender_id, screened.refusal)
            return
        assert screened.text is not None
        await self.on_new_message(
            UserMessage(
                screened.text,
                CheckedSocketIOOutput(self.sio, self.bot_message_evt),
                sender_id,
                input_channel=self.input_channel,
                metadata=metadata,
            )
        )

    async def _held(self, sender_id: str, problem: str, raw: Any, metadata: Dict[str, Any]) -> bool:
        """Whether a person holds the conversation (then the refused message is kept for them, unanswered)."""
        refused_while_held = getattr(self.on_new_message, "refused_while_held", None)  # the HoldGate's
        if refused_while_held is None:
            return False
        return bool(
            await refused_while_held(
                sender_id,
                input_channel=self.input_channel,
                problem=problem,
                text=raw if isinstance(raw, str) else None,
                metadata=metadata,
            )
        )

    async def disconnect(self, sid: str) -> None:
        """Forget a closed socket's binding.

        Args:
            sid: The socket.io id of the connection.
        """
        self.sessions.forget(sid)
        self._clients.pop(sid, None)


def _metadata(raw: Any) -> Dict[str, Any]:
    """The message metadata as a dict (rasa-webchat sends an object; other clients may send JSON text)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except (ValueError, RecursionError):
            return {}
    return dict(raw) if isinstance(raw, dict) else {}


class _WebChatBlueprint(SocketBlueprint):
    """Rasa's socket.io blueprint that also adds the chat page's routes to the app."""

    def register(self, app: Sanic, options: Dict[str, Any]) -> None:
        """Attach socket.io and the page to the app.

        Args:
            app: The Rasa server's Sanic app.
            options: Blueprint options (the ``/webhooks/socketio`` prefix).
        """
        super().register(app, options)
        register_page(app)


class SignedSocketIOInput(SocketIOInput):
    """Socket.io input channel whose sender ids are issued and signed by the server.

    Takes Rasa's ``socketio`` credentials (``user_message_evt``, ``bot_message_evt``, ``namespace``,
    ``socketio_path``, ``jwt_key``, ``jwt_method``, ``metadata_key``). Sessions always persist: the sender
    id is the signed session id, never the socket id, whatever ``session_persistence`` says.
    """

    def __init__(self, *args: Any, signer: Optional[SessionIdSigner] = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.session_persistence = True
        self.sessions = SocketSessions(signer or signer_from_settings())
        self.events: Optional[SignedSessionEvents] = None
        self.deliverer: Optional[OutboxDeliverer] = None

    @classmethod
    def name(cls) -> str:
        """The input channel name on the tracker: Rasa's ``socketio``."""
        return "socketio"

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        """The socket.io server, the health route ``/webhooks/socketio/`` and the chat page.

        Args:
            on_new_message: Rasa's handler for user messages.

        Returns:
            The blueprint Rasa registers under ``/webhooks/socketio``.
        """
        # As in Rasa: CORS is left to Sanic (``--cors``); a foreign page can connect but never learns a
        # session id other than the fresh one it is given.
        sio = AsyncServer(async_mode="sanic", cors_allowed_origins=[])
        self.sio = sio
        blueprint = _WebChatBlueprint(sio, self.socketio_path, "socketio_webhook", __name__)
        events = SignedSessionEvents(
            sio,
            self.sessions,
            HoldGate(on_new_message),  # silent while a person holds the conversation
            bot_message_evt=self.bot_message_evt,
            metadata_key=self.metadata_key or "metadata",
            namespace=self.namespace,
            input_channel=self.name(),
        )
        self.events = events

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @blueprint.listener("after_server_start")
        async def start_outbox(app: Sanic, _loop: Any) -> None:
            # Every Rasa process delivers the outbox: web chat rows to the sockets it holds, the rest to anyone.
            self.deliverer = OutboxDeliverer(
                app, sio=sio, senders=self.sessions.senders, bot_message_evt=self.bot_message_evt
            )
            events.on_session = lambda _session_id: self.deliverer.kick() if self.deliverer else None
            self.deliverer.start()

        @blueprint.listener("before_server_stop")
        async def stop_outbox(_app: Sanic, _loop: Any) -> None:
            if self.deliverer is not None:
                await self.deliverer.stop()

        sio.on("connect", handler=self._connect, namespace=self.namespace)
        sio.on("disconnect", handler=events.disconnect, namespace=self.namespace)
        sio.on("session_request", handler=events.session_request, namespace=self.namespace)
        sio.on(self.user_message_evt, handler=events.user_uttered, namespace=self.namespace)
        return blueprint

    async def _connect(self, sid: str, environ: Dict[str, Any], auth: Optional[Dict[str, Any]] = None) -> bool:
        """Accept a connection; with a ``jwt_key``, only one carrying a valid token (as Rasa does)."""
        if self.jwt_key:
            token = auth.get("token") if isinstance(auth, dict) else None
            if not token:
                return False
            if not rasa.core.channels.channel.decode_bearer_token(token, self.jwt_key, self.jwt_algorithm):
                return False
        if self.events is not None:
            self.events.connected(sid, environ)
        return True

    def get_output_channel(self) -> Optional[SocketIOOutput]:
        """The output for messages Rasa sends on its own (e.g. scheduled reminders), checked like the rest."""
        if self.sio is None:
            return None
        return CheckedSocketIOOutput(self.sio, self.bot_message_evt)
