"""Rasa's socket.io channel with server-issued, signed sender ids, plus the web chat page.

Listed in ``credentials.yml`` as ``bot.channels.webchat.SignedSocketIOInput``. It keeps Rasa's
channel name ``socketio`` (the tracker's input channel), its events (``session_request`` →
``session_confirm``, ``user_uttered`` → ``bot_uttered``) and its output, and changes who picks the
sender id:

* ``session_request``: a ``session_id`` the server signed earlier (stored by the browser, presented again
  after a reload or a reconnect, also after a server restart: the key is ``SECRET_KEY``) is kept; anything
  else — none, an unsigned id, a forged or tampered one — is replaced by a freshly issued id.
* ``user_uttered``: handled only under the id the socket was confirmed with; a message naming another
  ``session_id`` is refused.

The same Rasa server serves the page at ``/chat/`` (see ``bot.channels.webchat_page``).
"""

from __future__ import annotations

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

from bot.channels.session_ids import SessionIdSigner, signer_from_settings
from bot.channels.socket_sessions import SocketSessions
from bot.channels.webchat_page import register_page

logger = logging.getLogger(__name__)

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


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
    ) -> None:
        self.sio = sio
        self.sessions = sessions
        self.on_new_message = on_new_message
        self.bot_message_evt = bot_message_evt
        self.metadata_key = metadata_key
        self.namespace = namespace
        self.input_channel = input_channel

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
        session_id = self.sessions.request(sid, presented)
        if previous is not None and previous != session_id:
            self.sio.leave_room(sid, previous, namespace=self.namespace)
        self._join(sid, session_id)
        if presented and presented != session_id:
            logger.info("web chat: replaced an invalid session id for socket %s with %s", sid, _short(session_id))
        await self.sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)

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
        await self.on_new_message(
            UserMessage(
                str(data.get("message") or ""),
                SocketIOOutput(self.sio, self.bot_message_evt),
                sender_id,
                input_channel=self.input_channel,
                metadata=_metadata(data.get(self.metadata_key)),
            )
        )

    async def disconnect(self, sid: str) -> None:
        """Forget a closed socket's binding.

        Args:
            sid: The socket.io id of the connection.
        """
        self.sessions.forget(sid)


def _metadata(raw: Any) -> Dict[str, Any]:
    """The message metadata as a dict (rasa-webchat sends an object; other clients may send JSON text)."""
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
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
            on_new_message,
            bot_message_evt=self.bot_message_evt,
            metadata_key=self.metadata_key or "metadata",
            namespace=self.namespace,
            input_channel=self.name(),
        )

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        sio.on("connect", handler=self._connect, namespace=self.namespace)
        sio.on("disconnect", handler=events.disconnect, namespace=self.namespace)
        sio.on("session_request", handler=events.session_request, namespace=self.namespace)
        sio.on(self.user_message_evt, handler=events.user_uttered, namespace=self.namespace)
        return blueprint

    async def _connect(self, sid: str, environ: Dict[str, Any], auth: Optional[Dict[str, Any]] = None) -> bool:
        """Accept a connection; with a ``jwt_key``, only one carrying a valid token (as Rasa does)."""
        if not self.jwt_key:
            return True
        token = auth.get("token") if isinstance(auth, dict) else None
        if not token:
            return False
        payload = rasa.core.channels.channel.decode_bearer_token(token, self.jwt_key, self.jwt_algorithm)
        return bool(payload)
