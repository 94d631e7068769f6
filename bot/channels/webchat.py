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
* **Sessions end** (:mod:`bot.conversations.webchat_sessions`): a signed id stops working
  ``WEBCHAT_SESSION_IDLE_MINUTES`` after the owner's last message, ``WEBCHAT_SESSION_MAX_HOURS`` after it was
  issued, or when the owner signs out (退出 on the page: ``POST /chat/session/end``). An ended id presented
  again, or used for a message, is told ``session_ended`` (with the reason) and gets a fresh, unverified session
  (the old conversation's verified link is closed, its history stays for staff); the message is not handed to
  Rasa. When the database cannot say whether an id still works, nothing is bound and the owner is asked to try
  again later. Every server process closes the links of sessions that expired unseen once a minute.
* ``user_uttered``: handled only under the id the socket was confirmed with; a message naming another
  ``session_id`` is refused. The text is screened and the metadata rebuilt by the server
  (:mod:`bot.channels.inbound`): ``customData`` can never set the date, ``client`` is the socket's
  remote address, and ``webchat_seen_at`` the moment the message arrived (the session's last activity).
* Every text sent to the page passes the compliance check.
* While a staff member holds the conversation the bot is silent (``bot.channels.takeover.HoldGate``), and
  every server process delivers the outbox (staff replies, joined / left notices) to the sockets it holds,
  also right after a socket confirms its session (:class:`WebChatSocketSender`, ``bot.rasa.delivery``).

The same Rasa server serves the page at ``/chat/`` (see ``bot.channels.webchat_page``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
from typing import Any, Awaitable, Callable, Dict, Iterable, Optional, Set

import rasa.core.channels.channel
from rasa.core.channels.channel import UserMessage
from rasa.core.channels.socketio import SocketBlueprint, SocketIOInput, SocketIOOutput
from sanic import Blueprint, Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse
from socketio import AsyncServer

from bot import wording
from bot.channels import floods
from bot.channels.inbound import ip_client, request_client, screen_text, server_metadata
from bot.channels.socket_sessions import SocketSessions
from bot.channels.takeover import HoldGate
from bot.channels.webchat_lifetime import SessionLifetimeGuard
from bot.channels.webchat_page import register_page
from bot.conversations import handoff
from bot.conversations.delivery.senders import DELIVERED, Outcome
from bot.conversations.handles import handle_of
from bot.conversations.outbox import TemplateMessage
from bot.conversations.session_ids import SessionIdSigner, signer_from_settings
from bot.conversations.webchat_sessions import SEEN_KEY, SessionEnd, seen_stamp
from bot.rasa import delivery
from bot.services.refused_texts import checked_message

logger = logging.getLogger(__name__)

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]
AdmitNewSession = Callable[[str], Awaitable[bool]]
SESSION_WINDOW = dt.timedelta(hours=1)
# Told to a socket whose session ended, with ``{"reason": "signed_out" | "idle" | "max_age"}``.
SESSION_ENDED_EVENT = "session_ended"
# The sign-out request carries one session id: anything larger is not from the page.
MAX_SIGN_OUT_BYTES = 1024


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
            client: The client's accounting key (``ip:<keyed hash of the address>``).

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
    """How a session is named in the log: its handle (the id itself is a bearer token)."""
    return handle_of(session_id)


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
        admit_new_session: Whether a client (``ip:<keyed hash of the address>``) may be issued one more session id; default
            the database-backed per-hour limit.
        lifetime: Whether a signed id still works, and ends sessions; default asks ``DATABASE_URL``.
        limiter: The per-client message limits (:mod:`bot.channels.floods`); default from settings.
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
        lifetime: Optional[SessionLifetimeGuard] = None,
        limiter: Optional[floods.MessageLimiter] = None,
    ) -> None:
        self.sio = sio
        self.sessions = sessions
        self.on_new_message = on_new_message
        self.bot_message_evt = bot_message_evt
        self.metadata_key = metadata_key
        self.namespace = namespace
        self.input_channel = input_channel
        self.admit_new_session = admit_new_session or DatabaseSessionLimit()
        self.lifetime = lifetime or SessionLifetimeGuard()
        self.limiter = floods.limiter(limiter)
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
        """The accounting key of the client behind ``sid`` (``ip:<keyed hash of the address>``)."""
        return self._clients.get(sid) or ip_client(None)

    async def _say(self, sid: str, text: str) -> None:
        """Send one text from the channel itself to the socket ``sid``."""
        output = CheckedSocketIOOutput(self.sio, self.bot_message_evt)
        await output.send_text_message(sid, text)

    def _join(self, sid: str, session_id: str) -> None:
        # Bot messages are emitted to the room named after the session id.
        self.sio.enter_room(sid, session_id, namespace=self.namespace)

    async def _tell_ended(self, sid: str, ended: SessionEnd) -> None:
        """Tell the socket its session ended, and why (the page starts over and says so)."""
        await self.sio.emit(SESSION_ENDED_EVENT, {"reason": ended.value}, room=sid, namespace=self.namespace)

    async def _unavailable(self, sid: str, session_id: str) -> None:
        """The database could not say whether the session works: bind nothing, ask the owner to retry."""
        logger.exception("web chat: could not ask whether session %s still works (socket %s)", _short(session_id), sid)
        await self._say(sid, wording.text("webchat_page.session_unavailable"))

    async def _start(self, sid: str, session_id: Optional[str], previous: Optional[str]) -> None:
        """Bind ``sid`` to ``session_id``, or to a freshly issued id when it is None (if the client may have one)."""
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
        await self.sio.emit("session_confirm", session_id, room=sid, namespace=self.namespace)
        if self.on_session is not None:
            self.on_session(session_id)

    async def session_request(self, sid: str, data: Any = None) -> None:
        """Confirm the presented session id if the server signed it and it still works, else issue a new one.

        Args:
            sid: The socket.io id of the connection.
            data: The event payload, ``{"session_id": ...}`` or nothing.
        """
        presented = data.get("session_id") if isinstance(data, dict) else None
        previous = self.sessions.bound(sid)
        session_id: Optional[str] = None
        if self.sessions.signed(presented):
            try:
                ended = await self.lifetime.check(str(presented))
            except Exception:
                await self._unavailable(sid, str(presented))
                return
            if ended is None:
                session_id = self.sessions.resume(sid, presented)
            else:
                logger.info("web chat: socket %s presented session %s, which ended (%s)", sid, _short(str(presented)), ended.value)
                await self._tell_ended(sid, ended)
        await self._start(sid, session_id, previous)
        confirmed = self.sessions.bound(sid)
        if presented and confirmed is not None and presented != confirmed:
            logger.info("web chat: replaced a session id presented by socket %s with %s", sid, _short(confirmed))

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
        try:
            ended = await self.lifetime.check(sender_id)
        except Exception:
            await self._unavailable(sid, sender_id)
            return
        if ended is not None:
            logger.info("web chat: refused a message of %s: the session ended (%s)", _short(sender_id), ended.value)
            await self._tell_ended(sid, ended)
            self.sessions.forget(sid)
            await self._start(sid, None, sender_id)
            return
        screened = screen_text(data.get("message"))
        if screened.refusal is None and screened.text is None:
            logger.info("web chat: ignored a message of %s: %s", _short(sender_id), screened.problem)
            return
        decision = self.limiter.check(self.client_of(sid))
        if decision.refused:  # a flood: nothing reaches Rasa; the first of a run is answered once, politely
            logger.info("web chat: refused a message of %s: too many messages", _short(sender_id))
            notice = floods.refusal_text(decision, source="webchat")
            if notice is not None:
                await self._say(sender_id, notice)
            return
        metadata = server_metadata(_metadata(data.get(self.metadata_key)), client=self.client_of(sid), trusted=False)
        metadata[SEEN_KEY] = seen_stamp()  # the session's last activity (after the client's keys: never theirs)
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

    async def sign_out(self, request: Request) -> HTTPResponse:
        """``POST /chat/session/end`` with ``{"session_id": ...}``: the owner ends their session (退出).

        The link is closed, the tracker marked, and this process's sockets bound to the id are told
        ``session_ended`` and unbound (another process's at their next message). Ending an ended session
        again is not an error. Presenting the id is the proof: it is the credential being given up.

        Returns:
            200 ``{"ended": true, "reason": ...}``; 400 for a body that is not one signed session id; 413 for
            a larger one; 200 ``{"ended": false}`` when the database cannot be asked (the page forgets the id
            all the same, and the session expires on its own).
        """
        if len(request.body or b"") > MAX_SIGN_OUT_BYTES:
            return response.json({"ended": False, "error": "too_large"}, status=413)
        try:
            payload = json.loads(request.body or b"null")
        except (ValueError, RecursionError):
            payload = None
        session_id = payload.get("session_id") if isinstance(payload, dict) else None
        if not self.sessions.signed(session_id):
            return response.json({"ended": False, "error": "not_a_session"}, status=400)
        try:
            ended = await self.lifetime.end(str(session_id))
        except Exception:
            logger.exception("web chat: could not end session %s", _short(str(session_id)))
            return response.json({"ended": False, "error": "try_again"})
        for sid in self.sessions.sockets_of(str(session_id)):
            self.sessions.forget(sid)
            self.sio.leave_room(sid, str(session_id), namespace=self.namespace)
            await self._tell_ended(sid, ended)
        return response.json({"ended": True, "reason": ended.value})

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


class WebChatSocketSender:
    """The outbox's web chat sender: the owner's socket, from the process that holds it.

    Args:
        sio: The channel's socket.io server.
        senders: The sender ids whose sockets this process holds now.
        bot_message_evt: The socket.io event bot messages are emitted as.
    """

    channel = handoff.WEBCHAT_CHANNEL

    def __init__(self, sio: AsyncServer, senders: Callable[[], Iterable[str]], bot_message_evt: str) -> None:
        self.sio = sio
        self.senders = senders
        self.bot_message_evt = bot_message_evt

    def reachable(self) -> Set[str]:
        """The owners connected to this process."""
        return set(self.senders())

    async def send(
        self, sender_id: str, text: str, *, attempts: int, template: Optional[TemplateMessage] = None
    ) -> Outcome:
        """Emit ``text`` as a bot message on the owner's socket (a WeChat template does not apply here)."""
        await CheckedSocketIOOutput(self.sio, self.bot_message_evt).send_text_message(sender_id, text)
        return DELIVERED


class _WebChatBlueprint(SocketBlueprint):
    """Rasa's socket.io blueprint that also adds the chat page's routes to the app (``ctx.sign_out``: 退出)."""

    def register(self, app: Sanic, options: Dict[str, Any]) -> None:
        """Attach socket.io and the page to the app.

        Args:
            app: The Rasa server's Sanic app.
            options: Blueprint options (the ``/webhooks/socketio`` prefix).
        """
        super().register(app, options)
        register_page(app, sign_out=getattr(self.ctx, "sign_out", None))


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
        self.sweeper: Optional[asyncio.Task] = None

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
        gate = HoldGate(on_new_message)  # silent while a person holds the conversation
        lifetime = SessionLifetimeGuard(app=gate.app)
        events = SignedSessionEvents(
            sio,
            self.sessions,
            gate,
            bot_message_evt=self.bot_message_evt,
            metadata_key=self.metadata_key or "metadata",
            namespace=self.namespace,
            input_channel=self.name(),
            lifetime=lifetime,
        )
        self.events = events
        blueprint.ctx.sign_out = events.sign_out

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        # The process's deliverer (bot.rasa.delivery) sends staff replies and notices to the sockets held here,
        # and is woken the moment a socket confirms its session.
        delivery.register_sender(WebChatSocketSender(sio, self.sessions.senders, self.bot_message_evt))
        events.on_session = lambda _session_id: delivery.kick()

        @blueprint.listener("after_server_start")
        async def start_sweeper(_app: Sanic, _loop: Any) -> None:
            # Every Rasa process closes the verified links of sessions that expired unseen (idempotent).
            self.sweeper = asyncio.get_running_loop().create_task(lifetime.sweep_forever())

        @blueprint.listener("before_server_stop")
        async def stop_sweeper(_app: Sanic, _loop: Any) -> None:
            if self.sweeper is not None:
                self.sweeper.cancel()
                await asyncio.gather(self.sweeper, return_exceptions=True)
                self.sweeper = None

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
