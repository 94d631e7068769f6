"""What the WeChat webhook does with a callback, independent of the web framework.

WeChat waits five seconds for an answer and otherwise retries (up to three times), sometimes while the
first request is still being worked on. So:

1. Refuse what WeChat did not send: bad signature, stale or future timestamp (403). With an EncodingAESKey
   only safe mode is accepted: a plaintext callback is refused (403, logged) — its ``signature`` covers no
   body, so anyone who saw one callback URL could post any message as anyone for five minutes — and the
   ``<Encrypt>`` element is decrypted once its ``msg_signature`` checks out. Compatibility mode (兼容模式)
   sends the message in plaintext beside ``<Encrypt>``: the plaintext copy is ignored.
2. Claim the message in the database (insert first; a retry hits the unique key and runs nothing), and in
   the same transaction remember the callback's ``signature`` and nonce until the timestamp window closes:
   a replay of a captured callback hits that unique key and is refused (403, logged), whatever its body or
   MsgId. Only a callback that passed every check (in safe mode ``msg_signature``, which covers the body) is
   remembered, so a captured URL posted with another body cannot use up the pair before WeChat's request.
3. Run the bot. Done within the budget (4.5 s): answer passively with the first WeChat message, send the
   rest by the customer-service API. Not done: answer ``success`` and send everything by the API later.
4. A retry answers ``success``, and moves a message still being worked on to "deliver by API" — the first
   request's connection is gone, so its passive answer would be lost — or repeats a passive answer that
   was already given (WeChat retries only when it did not get it).

Who answers is decided by compare-and-set on the claimed row, so exactly one of the passive reply and the
API delivery happens, across server processes too.

The typed text is screened like on every channel (:mod:`bot.channels.inbound`): an over-long message gets a
polite refusal and never reaches the NLU, a leading ``/`` cannot smuggle an intent with entities past it,
and the metadata carries no date (WeChat's ``CreateTime`` is the client's word, not the server's clock) and
``client = wechat:<openid>``. Every text sent to the owner passes the compliance check.

Each openid may send only so many messages (:mod:`bot.channels.floods`): checked once the callback is proved
WeChat's and before anything is claimed or stored, so a flood writes nothing. The first refused message of a run
gets the polite answer as the passive reply, later ones ``success``. Events (following, delivery reports) are
WeChat's own and are not counted; WeChat's retry of a message already claimed goes on whatever the count.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable, Coroutine, Dict, List, Mapping, Optional, Sequence, Set, TypeVar

from bot import clock as bot_clock
from bot import wording
from bot.channels import floods
from bot.channels.inbound import screen_text, wechat_client
from bot.channels.wechat_security import (
    MAX_CLOCK_SKEW_SECONDS,
    SafeModeCipher,
    WeChatRequestError,
    check_signature,
    check_timestamp,
    parse_xml,
    text_reply_xml,
)
from bot.db.models import WeChatDelivery
from bot.services.refused_texts import checked_outgoing
from bot.wechat.api import WeChatAPI, WeChatAPIError
from bot.wechat.format import match_choice, pack_messages, render_bot_messages
from bot.wechat.store import (
    DatabaseTokenCache,
    ReplayedCallback,
    SeenSignature,
    SubscriptionEvent,
    WeChatStore,
)

logger = logging.getLogger(__name__)

CHANNEL_NAME = "wechat"
SUCCESS = "success"  # WeChat's "received, no passive reply, do not retry"
WELCOME_TEXT = wording.text("channels.wechat_welcome")
PLEASE_TYPE_TEXT = wording.text("channels.wechat_please_type")
SORRY_TEXT = wording.text("channels.busy")
# WeChat's own formats (openids are 28 characters, MsgIds 64-bit numbers); anything else is not from
# WeChat, and would not fit the database columns the message is claimed in.
_OPENID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_MSG_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_MSG_TYPE = re.compile(r"^[a-z_]{1,32}$")
MAX_CREATE_TIME = 2**40  # far in the future, and still a valid datetime
SUBSCRIBE_EVENTS = frozenset({"subscribe", "unsubscribe"})
NOT_CONFIGURED = (
    "WeChat channel is not configured: set WECHAT_TOKEN (and WECHAT_APP_ID, WECHAT_APP_SECRET; "
    "WECHAT_ENCODING_AES_KEY for safe mode)"
)
PURGE_EVERY_SECONDS = 3600
KEEP_MESSAGES_FOR = dt.timedelta(days=3)
MAX_NONCE_CHARS = 64  # WeChat's nonces are about ten digits; the replay memory's column holds 64
# A signature is remembered this long past its timestamp's window, for server processes whose clocks differ.
REMEMBER_SIGNATURES_EXTRA = dt.timedelta(minutes=1)

T = TypeVar("T")


def epoch_now() -> float:
    """Epoch seconds now, on the bot's one clock (:mod:`bot.clock`)."""
    return bot_clock.utc_now().timestamp()


@dataclass(frozen=True)
class WeChatConfig:
    """The channel's settings (from ``bot.settings``).

    Args:
        token: The Token entered in 公众平台 → 设置与开发 → 基本配置.
        app_id: AppID; needed for safe mode and the customer-service API.
        app_secret: AppSecret; needed for the customer-service API.
        encoding_aes_key: EncodingAESKey; unset means plaintext mode only.
        api_base_url: Where the WeChat API is (a fake server in tests).
        reply_budget: Seconds to wait for the bot before answering ``success`` (WeChat gives up at 5).
        max_clock_skew: Callbacks with a timestamp further than this from now are refused.
    """

    token: str
    app_id: Optional[str] = None
    app_secret: Optional[str] = None
    encoding_aes_key: Optional[str] = None
    api_base_url: str = "https://api.weixin.qq.com"
    reply_budget: float = 4.5
    max_clock_skew: float = MAX_CLOCK_SKEW_SECONDS

    @classmethod
    def from_settings(cls, settings: Any) -> Optional[WeChatConfig]:
        """The config from ``bot.settings.Settings``, or ``None`` when ``WECHAT_TOKEN`` is unset."""

        def secret(value: Any) -> Optional[str]:
            raw = value.get_secret_value() if hasattr(value, "get_secret_value") else value
            if raw is None:
                return None
            return str(raw).strip() or None

        token = secret(settings.wechat_token)
        if token is None:
            return None
        return cls(
            token=token,
            app_id=(settings.wechat_app_id or "").strip() or None,
            app_secret=secret(settings.wechat_app_secret),
            encoding_aes_key=secret(settings.wechat_encoding_aes_key),
            api_base_url=settings.wechat_api_base_url,
            reply_budget=float(settings.wechat_reply_budget_seconds),
        )


@dataclass(frozen=True)
class HttpAnswer:
    """What to answer WeChat with."""

    status: int
    body: str
    content_type: str = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class InboundMessage:
    """The fields of a WeChat message or event that the channel uses."""

    openid: str
    account: str
    msg_type: str
    create_time: int
    msg_id: Optional[str] = None
    content: Optional[str] = None
    event: Optional[str] = None

    @classmethod
    def from_fields(cls, fields: Mapping[str, Any]) -> InboundMessage:
        """Read a parsed ``<xml>`` message.

        Raises:
            WeChatRequestError: 400 when a field every message has is missing.
        """
        try:
            openid, account = fields["FromUserName"], fields["ToUserName"]
            msg_type = str(fields["MsgType"]).lower()
            create_time = int(fields["CreateTime"])
        except (KeyError, TypeError, ValueError):
            raise WeChatRequestError(
                400, "message lacks FromUserName, ToUserName, MsgType or CreateTime"
            ) from None
        if not isinstance(openid, str) or not _OPENID.match(openid):
            raise WeChatRequestError(400, "FromUserName is not an openid")
        if not isinstance(account, str) or not _OPENID.match(account):
            raise WeChatRequestError(400, "ToUserName is not an account id")
        if not _MSG_TYPE.match(msg_type) or not 0 <= create_time < MAX_CREATE_TIME:
            raise WeChatRequestError(400, "bad MsgType or CreateTime")
        msg_id = fields.get("MsgId")
        if msg_type != "event" and not msg_id:
            raise WeChatRequestError(400, "message lacks MsgId")
        if msg_id is not None and not (isinstance(msg_id, str) and _MSG_ID.match(msg_id)):
            raise WeChatRequestError(400, "bad MsgId")
        event = fields.get("Event")
        content = fields.get("Content")
        return cls(
            openid=openid,
            account=account,
            msg_type=msg_type,
            create_time=create_time,
            msg_id=msg_id or None,
            # An element with attributes or children parses to a dict: not a text anyone typed.
            content=content if isinstance(content, str) else None,
            event=str(event).lower()[:16] if isinstance(event, str) and event else None,
        )

    @property
    def dedupe_key(self) -> str:
        """``msg:<MsgId>`` for messages, ``event:<openid>:<CreateTime>`` for events (they have no MsgId)."""
        if self.msg_type == "event" or not self.msg_id:
            return f"event:{self.openid}:{self.create_time}"
        return f"msg:{self.msg_id}"

    @property
    def kind(self) -> str:
        """``text``, ``voice``, … or ``event:<name>``, as recorded."""
        return f"event:{self.event}" if self.msg_type == "event" else self.msg_type


@dataclass(frozen=True)
class BotTurn:
    """One owner message for the bot."""

    openid: str
    text: str
    message_id: str
    metadata: Dict[str, Any]


@dataclass(frozen=True)
class TurnResult:
    """The WeChat messages the bot's answer became; ``failed`` when the bot raised."""

    chunks: List[str] = field(default_factory=list)
    failed: bool = False


BotRunner = Callable[[BotTurn], Awaitable[Sequence[Mapping[str, Any]]]]
# Asked before the channel answers a message by itself: True when a person holds the conversation (the
# message is then kept for them and the channel stays silent). ``HoldGate.refused_while_held``'s signature.
RefusedWhileHeld = Callable[..., Awaitable[bool]]


class WeChatWebhook:
    """Handles WeChat's GET (URL verification) and POST (messages) callbacks.

    Args:
        config: The settings; ``None`` answers 503 (not configured).
        run_bot: Runs one turn of the bot and returns its messages (Rasa's collected output).
        store: The database state (deduplication, choices, subscriptions).
        api: The WeChat API client; ``None`` built from ``config`` when AppID and AppSecret are set.
        follow_up_delay: Seconds between a passive answer and the customer-service messages that follow
            it, so WeChat shows them in order.
        clock: Epoch seconds now (for timestamp checks).
        refused_while_held: Asked before a refusal or "please type" is sent (see :data:`RefusedWhileHeld`);
            None: always answer.
        limiter: The per-openid message limits; default from settings.
    """

    def __init__(
        self,
        config: Optional[WeChatConfig],
        run_bot: BotRunner,
        store: Optional[WeChatStore] = None,
        api: Optional[WeChatAPI] = None,
        *,
        follow_up_delay: float = 0.5,
        clock: Callable[[], float] = epoch_now,
        refused_while_held: Optional[RefusedWhileHeld] = None,
        limiter: Optional[floods.MessageLimiter] = None,
    ) -> None:
        self.config = config
        self.limiter = floods.limiter(limiter)
        self.refused_while_held = refused_while_held
        self.store = store or WeChatStore()
        self.run_bot = run_bot
        self.follow_up_delay = follow_up_delay
        self._clock = clock
        self._tasks: Set[asyncio.Task] = set()
        self._last_purge = 0.0
        self.config_error: Optional[str] = NOT_CONFIGURED if config is None else None
        self._cipher: Optional[SafeModeCipher] = None
        if config is not None and config.encoding_aes_key:
            if not config.app_id:
                self.config_error = (
                    "WECHAT_ENCODING_AES_KEY is set but WECHAT_APP_ID is not (safe mode needs both)"
                )
            else:
                try:
                    self._cipher = SafeModeCipher(config.token, config.encoding_aes_key, config.app_id)
                except ValueError as error:
                    self.config_error = str(error)
        if api is None and config is not None and config.app_id and config.app_secret:
            api = WeChatAPI(
                config.api_base_url, config.app_id, config.app_secret, DatabaseTokenCache(self.store)
            )
        self.api = api
        if self.config_error:
            log = logger.warning if config is None else logger.error  # unused channel vs. broken settings
            log("wechat: %s; the webhook answers 503", self.config_error)
        elif self.api is None:
            logger.warning("wechat: WECHAT_APP_ID/WECHAT_APP_SECRET unset; slow replies cannot be delivered")

    # --- HTTP entry points ----------------------------------------------------------------------------

    async def verify(self, args: Mapping[str, Optional[str]]) -> HttpAnswer:
        """GET: WeChat checks the URL while the operator saves 服务器配置; answer ``echostr`` if signed."""
        try:
            config = self._configured()
            check_signature(config.token, args.get("signature"), args.get("timestamp"), args.get("nonce"))
        except WeChatRequestError as error:
            logger.warning("wechat: refused URL verification: %s", error.reason)
            return HttpAnswer(error.status, error.reason)
        echostr = args.get("echostr")
        if not echostr:
            return HttpAnswer(400, "missing echostr")
        return HttpAnswer(200, echostr)

    async def receive(self, args: Mapping[str, Optional[str]], body: bytes) -> HttpAnswer:
        """POST: a message or event; answers passively, with ``success``, or refuses."""
        started = time.monotonic()
        try:
            config = self._configured()
            timestamp, nonce = args.get("timestamp") or "", args.get("nonce") or ""
            check_signature(config.token, args.get("signature"), timestamp, nonce)
            stamp = check_timestamp(timestamp, self._clock(), config.max_clock_skew)
            if len(nonce) > MAX_NONCE_CHARS:
                raise WeChatRequestError(400, "nonce too long")
            encrypted = (args.get("encrypt_type") or "raw").lower() == "aes"
            if self._cipher is not None and not encrypted:
                raise WeChatRequestError(
                    403, "plaintext callback refused: safe mode is configured (WECHAT_ENCODING_AES_KEY)"
                )
            envelope = parse_xml(body)
            if encrypted:
                if self._cipher is None:
                    raise WeChatRequestError(503, "encrypted callback but WECHAT_ENCODING_AES_KEY is not set")
                # Only what <Encrypt> says counts: compatibility mode's plaintext copy beside it is unsigned.
                fields = parse_xml(
                    self._cipher.decrypt(envelope, args.get("msg_signature"), timestamp, nonce)
                )
            else:
                fields = envelope
            message = InboundMessage.from_fields(fields)
        except WeChatRequestError as error:
            logger.warning("wechat: refused a callback: %s", error.reason)
            return HttpAnswer(error.status, error.reason)
        flooded = await self._refused_as_flood(message, encrypted, nonce)
        if flooded is not None:
            return flooded
        remember_until = stamp + config.max_clock_skew + REMEMBER_SIGNATURES_EXTRA.total_seconds()
        # Written only now that everything checked out (in safe mode msg_signature, which covers the body):
        # a captured URL posted with another body never gets this far, so it cannot use up WeChat's pair.
        seen = SeenSignature(
            str(args.get("signature")).lower(), nonce, dt.datetime.fromtimestamp(remember_until, dt.timezone.utc)
        )
        # Shielded: WeChat hanging up must not stop the bookkeeping half-way (the row would stay claimed).
        try:
            reply = await asyncio.shield(self._spawn(self._answer(message, started, seen)))
        except ReplayedCallback:
            logger.warning(
                "wechat: refused a replayed callback (signature and nonce used before) for %s from %s",
                message.dedupe_key,
                message.openid,
            )
            return HttpAnswer(403, "replayed callback")
        except Exception:  # the database is down, most likely; WeChat will retry
            logger.exception("wechat: could not handle %s", message.dedupe_key)
            return HttpAnswer(500, "internal error")
        if reply is None:
            return HttpAnswer(200, SUCCESS)
        return self._passive(message, reply, encrypted, nonce)

    async def _refused_as_flood(self, message: InboundMessage, encrypted: bool, nonce: str) -> Optional[HttpAnswer]:
        """The answer to a message over the openid's limits (nothing claimed or stored), or ``None`` to go on.

        WeChat's retry of a message already claimed goes on whatever the count: it may have to move that message's
        answer to the customer-service API (the first request's connection is gone).
        """
        if message.msg_type == "event":
            return None
        decision = self.limiter.check(wechat_client(message.openid))
        if not decision.refused:
            return None
        try:
            if await self._db(self.store.state, message.dedupe_key) is not None:
                return None
        except Exception:
            logger.exception("wechat: could not tell whether %s is a retry; refusing it", message.dedupe_key)
        logger.info("wechat: refused %s from %s: too many messages", message.dedupe_key, message.openid)
        notice = floods.refusal_text(decision, source="wechat")
        return HttpAnswer(200, SUCCESS) if notice is None else self._passive(message, notice, encrypted, nonce)

    def _passive(self, message: InboundMessage, reply: str, encrypted: bool, nonce: str) -> HttpAnswer:
        """``reply`` as the passive answer to ``message`` (encrypted when the callback was)."""
        xml = text_reply_xml(
            to_user=message.openid, from_user=message.account, content=reply, create_time=int(self._clock())
        )
        if encrypted:
            assert self._cipher is not None
            xml = self._cipher.encrypt(xml, nonce, str(int(self._clock())))
        return HttpAnswer(200, xml, "application/xml; charset=utf-8")

    async def drain(self) -> None:
        """Wait for every background task (bot runs, deliveries); for tests and shutdown."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # --- the work ---------------------------------------------------------------------------------------

    def _configured(self) -> WeChatConfig:
        if self.config_error or self.config is None:
            raise WeChatRequestError(503, self.config_error or NOT_CONFIGURED)
        return self.config

    def _spawn(self, coroutine: Coroutine[Any, Any, T]) -> asyncio.Task[T]:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _db(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a (short, blocking) database call off the event loop."""
        return await asyncio.get_running_loop().run_in_executor(
            None, functools.partial(function, *args, **kwargs)
        )

    async def _answer(self, message: InboundMessage, started: float, seen: SeenSignature) -> Optional[str]:
        """The passive reply for ``message``, or ``None`` for ``success``.

        Raises:
            ReplayedCallback: The callback's signature and nonce were used before; nothing was written.
        """
        subscription = None
        if message.msg_type == "event" and message.event in SUBSCRIBE_EVENTS:
            event_time = dt.datetime.fromtimestamp(message.create_time, dt.timezone.utc)
            subscription = SubscriptionEvent(event=str(message.event), event_time=event_time)
        key = message.dedupe_key
        claimed = await self._db(
            self.store.claim,
            key,
            openid=message.openid,
            msg_type=message.kind[:32],
            subscription=subscription,
            seen=seen,
        )
        self._purge_now_and_then()
        if not claimed:
            logger.info("wechat: retry of %s", key)
            return await self._answer_retry(key)
        if message.msg_type == "text" and (message.content or "").strip():
            screened = screen_text(message.content)
            if screened.refusal is not None:
                logger.info("wechat: refused %s: %s", key, screened.problem)
                if await self._held(message, str(screened.problem), text=message.content):
                    return None
                return await self._answer_fixed(message, screened.refusal)
            if screened.text is not None:
                return await self._answer_text(message, screened.text, started)
        if message.msg_type == "event":
            if message.event == "subscribe":
                return await self._answer_fixed(message, WELCOME_TEXT)
            if message.event == "unsubscribe":
                logger.info("wechat: %s unfollowed the account", message.openid)
            await self._db(self.store.finish, key, WeChatDelivery.IGNORED)
            return None
        if await self._held(message, "not text", kind=message.msg_type):
            return None
        return await self._answer_fixed(message, PLEASE_TYPE_TEXT)

    async def _held(self, message: InboundMessage, problem: str, *, text: Optional[str] = None, kind: Optional[str] = None) -> bool:
        """Whether a person holds the conversation: then the message is kept for them and nothing is answered."""
        if self.refused_while_held is None:
            return False
        try:
            held = await self.refused_while_held(
                message.openid,
                input_channel=CHANNEL_NAME,
                problem=problem,
                text=text,
                kind=kind,
                metadata={"wechat": {"msg_id": message.msg_id}, "client": wechat_client(message.openid)},
            )
        except Exception:
            logger.exception("wechat: could not ask whether %s is held; answering", message.openid)
            return False
        if held:
            await self._db(self.store.finish, message.dedupe_key, WeChatDelivery.IGNORED)
        return bool(held)

    async def _answer_retry(self, key: str) -> Optional[str]:
        state = await self._db(self.store.state, key)
        if state is not None and state.status is WeChatDelivery.PROCESSING:
            if await self._db(self.store.defer, key):
                return None  # the first request will deliver by the customer-service API
            state = await self._db(self.store.state, key)
        if state is not None and state.status is WeChatDelivery.REPLIED and state.reply:
            return state.reply
        return None

    async def _answer_fixed(self, message: InboundMessage, text: str) -> Optional[str]:
        text = checked_outgoing(text, source="wechat")
        if await self._db(self.store.answer_passively, message.dedupe_key, text):
            return text
        self._spawn(self._deliver(message.dedupe_key, message.openid, [text]))
        return None

    async def _answer_text(self, message: InboundMessage, typed: str, started: float) -> Optional[str]:
        assert self.config is not None
        key = message.dedupe_key
        turn = await self._turn(message, typed)
        bot = self._spawn(self._run_turn(turn))
        remaining = self.config.reply_budget - (time.monotonic() - started)
        await asyncio.wait({bot}, timeout=max(0.0, remaining))
        if not bot.done():
            await self._db(self.store.defer, key)
            logger.info(
                "wechat: bot slower than %.1fs for %s; replying by API", self.config.reply_budget, key
            )
            self._spawn(self._deliver_when_done(key, message.openid, bot))
            return None
        result = bot.result()
        if not result.chunks:
            await self._db(self.store.finish, key, WeChatDelivery.IGNORED)
            return None
        first, rest = result.chunks[0], result.chunks[1:]
        if await self._db(self.store.answer_passively, key, first):
            if rest:
                self._spawn(
                    self._deliver(key, message.openid, rest, delay=self.follow_up_delay, record=False)
                )
            return first
        self._spawn(self._deliver(key, message.openid, result.chunks, failed=result.failed))
        return None

    async def _turn(self, message: InboundMessage, typed: str) -> BotTurn:
        """The bot's turn for ``typed`` (already screened): a typed choice number becomes its payload."""
        wechat: Dict[str, Any] = {"msg_id": message.msg_id, "to_user": message.account}
        text = typed
        try:
            picked = match_choice(typed, await self._db(self.store.pending_choices, message.openid))
        except Exception:
            logger.exception("wechat: could not read pending choices of %s", message.openid)
            picked = None
        if picked is not None:
            text = picked.payload  # the bot's own button, stored by the server: not the client's words
            wechat.update(typed=typed, choice=picked.title)
        return BotTurn(
            openid=message.openid,
            text=text,
            message_id=f"wechat-{message.msg_id}",
            # Built here, never from the callback's fields: no date key, and the client is the openid.
            metadata={"wechat": wechat, "client": wechat_client(message.openid)},
        )

    async def _run_turn(self, turn: BotTurn) -> TurnResult:
        try:
            messages = await self.run_bot(turn)
        except Exception:
            logger.exception("wechat: the bot failed on %s", turn.message_id)
            return TurnResult([SORRY_TEXT], failed=True)
        texts, choices = render_bot_messages(messages)
        texts = [checked_outgoing(text, source="wechat") for text in texts]
        try:
            await self._db(self.store.set_pending_choices, turn.openid, choices)
        except Exception:
            logger.exception("wechat: could not store the choices offered to %s", turn.openid)
        return TurnResult(pack_messages(texts))

    async def _deliver_when_done(self, key: str, openid: str, bot: asyncio.Task[TurnResult]) -> None:
        result = await bot
        if not result.chunks:
            await self._db(self.store.finish, key, WeChatDelivery.IGNORED)
            return
        await self._deliver(key, openid, result.chunks, failed=result.failed)

    async def _deliver(
        self,
        key: str,
        openid: str,
        chunks: Sequence[str],
        *,
        delay: float = 0.0,
        record: bool = True,
        failed: bool = False,
    ) -> None:
        """Send ``chunks`` by the customer-service API; record the outcome unless ``record`` is off."""
        if delay:
            await asyncio.sleep(delay)
        if self.api is None:
            logger.error("wechat: cannot send %d message(s) to %s: no AppID/AppSecret", len(chunks), openid)
            failed = True
        else:
            try:
                await self.api.send_texts(openid, chunks)
            except WeChatAPIError as error:
                logger.error("wechat: customer-service message to %s failed: %s", openid, error)
                failed = True
        if record:
            status = WeChatDelivery.FAILED if failed else WeChatDelivery.DELIVERED
            try:
                await self._db(self.store.finish, key, status)
            except Exception:
                logger.exception("wechat: could not record the delivery of %s", key)

    def _purge_now_and_then(self) -> None:
        if time.monotonic() - self._last_purge < PURGE_EVERY_SECONDS:
            return
        self._last_purge = time.monotonic()

        async def purge() -> None:
            try:
                now = dt.datetime.fromtimestamp(self._clock(), dt.timezone.utc)
                deleted = await self._db(self.store.purge, now - KEEP_MESSAGES_FOR, now)
                if deleted:
                    logger.info("wechat: forgot %d old message keys and signatures", deleted)
            except Exception:
                logger.exception("wechat: purging old message keys and signatures failed")

        self._spawn(purge())
