"""What the WeCom callback URL does, independent of the web framework.

WeCom waits five seconds for an answer and otherwise retries the same message (three times), and the coach
may need longer than that on its first question. So a callback is checked, claimed and answered at once
with an empty body (WeCom's "received, no passive reply"), and the coach's answer goes out afterwards
through ``message/send`` (:meth:`WeComChannel.handle`, run by the web app after the response):

1. Refuse what WeCom did not send: a stale or future timestamp, a wrong ``msg_signature`` (403), another
   corporation's ``receiveid`` or another app's ``AgentID`` (403), garbage (400).
2. Claim the callback in the database (``wecom_callbacks``): the same ``MsgId`` (WeCom's retry) or the same
   ``msg_signature`` (a replay) a second time finds its row and runs nothing.
3. Who asks: the sender's UserID must be exactly the WeCom UserID a manager bound to an active staff account
   (``bot user set-wecom``, the users page; never a match on names); anyone else is told politely that the
   app is for staff. ``查 3-2-801`` looks owners up by unit (for the roles the console lets see
   owners; audited like the console's search; phones as the role may see them). Anything else is a question
   for the coach: ``plain_text(get_coach().answer(text))``, less any line it suggests saying to the owner
   that the coercion guard refuses (:func:`bot.services.refused_texts.guarded_coach_answer`, audited as
   ``outgoing_refused``). A lookup line followed by a note ("查 3-2-801"
   then, on the next lines, what the owner said) gets both, as two messages: the owner, and the coach's
   answer for that owner (old arrears: every card's next step is the project manager's). The lookup words are data
   (``data/coach/coach.yml`` ``wecom``).

Each UserID may send only so many messages (``wecom:<UserID>``, :mod:`bot.channels.floods`): a message over the
limits is checked before it is claimed and stored nothing; the first of a run gets the polite answer by
``message/send``, later ones nothing.
"""

from __future__ import annotations

import functools
import logging
import re
from dataclasses import dataclass
from typing import Any, Callable, FrozenSet, List, Mapping, Optional, Tuple

from sqlalchemy.orm import Session

from apps.staff.wecom.api import WeComAPI, WeComAPIError, split_text
from apps.staff.wecom.crypto import WeComCrypto
from apps.staff.wecom.store import WeComStore
from bot import clock, wording
from bot.casework import owner_view
from bot.channels import floods
from bot.channels.inbound import screen_text
from bot.channels.wechat_security import (
    MAX_CLOCK_SKEW_SECONDS,
    WeChatRequestError,
    check_timestamp,
    parse_xml,
)
from bot.db import audit
from bot.db.session import session_scope
from bot.db.staff_models import StaffRole, StaffUser
from bot.db.wecom_models import WeComCallbackStatus
from bot.services import refused_texts, staff_users
from bot.services.playbook_edits import current_playbook

logger = logging.getLogger(__name__)

CHANNEL_NAME = "wecom"
NOT_CONFIGURED = (
    "WeCom channel is not configured: set WECOM_CORP_ID, WECOM_AGENT_ID, WECOM_SECRET, WECOM_TOKEN and "
    "WECOM_ENCODING_AES_KEY"
)
# Audit rows use the console's own actions (bot.db.audit), so the audit screen names them the same way;
# ``detail.via`` says they came from WeCom (the coach page writes ``page`` or ``api`` there).
LOOKUP_LIMIT = 3  # owners briefed for one lookup (a chat message, not a list of the estate)
PROMISES_SHOWN = 3
REASONS_SHOWN = 3
# WeCom's formats: UserIDs are 1-64 characters of letters, digits and _-.@; MsgIds are 64-bit numbers.
_USER_ID = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")
_MSG_ID = re.compile(r"^[A-Za-z0-9_\-]{1,64}$")
_MSG_TYPE = re.compile(r"^[a-z_]{1,32}$")


@functools.lru_cache(maxsize=1)
def _lookup_patterns() -> Tuple[re.Pattern[str], re.Pattern[str]]:
    """The owner-lookup command ("查 3-2-801") and a unit as people write it, from the coach's data.

    A unit is digits and the words around them only (3-2-801, 3栋2单元801, 5号楼1203, A座808), so
    "查一下他为什么不交" stays a question for the coach.
    """
    from bot.coach.data import coach_data

    data = coach_data()
    commands = "|".join(re.escape(c) for c in sorted(data.wecom_lookup_commands, key=len, reverse=True))
    colons = re.escape(":" + data.mark("colon"))
    lookup = re.compile(rf"^\s*(?:{commands})\s*[{colons}]?\s*(?P<unit>\S.*?)?\s*$")
    unit = re.compile(rf"^(?=.*[0-9])[0-9A-Za-z\-#/ {re.escape(data.wecom_unit_words)}]{{1,40}}$")
    return lookup, unit


def _lookup_of(line: str) -> Optional[re.Match[str]]:
    """``line``'s lookup command when it is one (a unit or nothing after it), else None."""
    lookup, unit = _lookup_patterns()
    match = lookup.match(line)
    if match is None or (match.group("unit") is not None and not unit.match(match.group("unit"))):
        return None
    return match

Coach = Callable[[str], str]
"""The coach as this channel sees it: what a collector typed → the answer as plain text."""


@dataclass(frozen=True)
class WeComConfig:
    """The channel's settings (from ``bot.settings``).

    Args:
        corp_id: The CorpID (我的企业 → 企业信息).
        agent_id: The self-built app's AgentId.
        secret: The app's Secret (for ``gettoken``).
        token: The Token set on the app's 接收消息 page.
        encoding_aes_key: The EncodingAESKey set there.
        api_base_url: Where the WeCom API is (a local fake in tests).
        max_clock_skew: Callbacks with a timestamp further than this from now are refused.
    """

    corp_id: str
    agent_id: int
    secret: str
    token: str
    encoding_aes_key: str
    api_base_url: str = "https://qyapi.weixin.qq.com"
    max_clock_skew: float = MAX_CLOCK_SKEW_SECONDS

    @classmethod
    def from_settings(cls, settings: Any) -> Optional[WeComConfig]:
        """The config from ``bot.settings.Settings``, or ``None`` unless all five WeCom values are set."""

        def value(raw: Any) -> Optional[str]:
            raw = raw.get_secret_value() if hasattr(raw, "get_secret_value") else raw
            return (str(raw).strip() or None) if raw is not None else None

        corp_id, secret = value(settings.wecom_corp_id), value(settings.wecom_secret)
        token, key = value(settings.wecom_token), value(settings.wecom_encoding_aes_key)
        agent_id = settings.wecom_agent_id
        if corp_id is None or secret is None or token is None or key is None or agent_id is None:
            return None
        return cls(
            corp_id=corp_id,
            agent_id=int(agent_id),
            secret=secret,
            token=token,
            encoding_aes_key=key,
            api_base_url=settings.wecom_api_base_url,
        )


@dataclass(frozen=True)
class HttpAnswer:
    """What to answer WeCom with."""

    status: int
    body: str = ""


@dataclass(frozen=True)
class Job:
    """A claimed message still to be answered (after the HTTP answer)."""

    key: str
    user_id: str
    text: Optional[str]  # None: not a text message
    notice: Optional[str] = None  # set: the message was refused as a flood; send only this, record nothing


@dataclass(frozen=True)
class Reply:
    """What to send back and how the callback's row ends."""

    texts: List[str]
    status: WeComCallbackStatus


def _promise_status(status: str) -> str:
    try:
        return wording.text(f"wecom.promise_{status}")
    except KeyError:  # a status added later: its code beats no answer
        return status


class Responder:
    """Who is asking and what they are told: a refusal, an owner lookup, or the coach's answer.

    The coach is the process's (:func:`bot.coach.get_coach`: the bot's model, loaded once) with the playbook
    staff edit (:func:`bot.services.playbook_edits.current_playbook`), as on the console's coach page; its
    answers are audited the same way, without the note's text. The lookup is :func:`bot.coach.owner.lookup`.

    Args:
        database_url: Where staff accounts and owners are (default ``DATABASE_URL``).
        coach: Answers a note as plain text instead of the coach (tests of the other paths).
        lookup_roles: The roles that may look owners up (the console's ``owners`` section's).
    """

    def __init__(
        self,
        database_url: Optional[str] = None,
        *,
        coach: Optional[Coach] = None,
        lookup_roles: FrozenSet[StaffRole] = frozenset(StaffRole),
    ) -> None:
        self.database_url = database_url
        self.coach = coach
        self.lookup_roles = lookup_roles

    def reply(self, user_id: str, text: Optional[str]) -> Reply:
        """The answer to ``text`` from the WeCom member ``user_id`` (``None`` text: not a text message)."""
        with session_scope(self.database_url) as session:
            user = staff_users.find_by_wecom_user_id(session, wecom_user_id=user_id)
            if user is None or not user.active:
                logger.warning("wecom: refused %s, not bound to an active staff account", user_id)
                return Reply([wording.text("wecom.unknown_user")], WeComCallbackStatus.REFUSED)
            if text is None:
                return Reply([wording.text("wecom.not_text")], WeComCallbackStatus.SENT)
            screened = screen_text(text)
            if screened.text is None:
                return Reply([screened.refusal or wording.text("wecom.not_text")], WeComCallbackStatus.SENT)
            first, _, rest = screened.text.strip().partition("\n")
            lookup = _lookup_of(screened.text)
            if lookup is not None:
                return Reply([self._lookup(session, user, lookup.group("unit"))], WeComCallbackStatus.SENT)
            lookup = _lookup_of(first) if rest.strip() else None
            if lookup is not None and lookup.group("unit") and self.coach is None:
                # "查 3-2-801" and then the note: the owner, and the coach's answer for that owner.
                briefs: List[Any] = []
                looked_up = self._lookup(session, user, lookup.group("unit"), found=briefs)
                old_arrears = any(brief.old_arrears for brief in briefs)
                answer = self._coach_answer(session, user, rest.strip(), old_arrears=old_arrears)
                return Reply([looked_up, *split_text(answer)], WeComCallbackStatus.SENT)
            if self.coach is not None:
                question = screened.text
            else:
                return Reply(
                    split_text(self._coach_answer(session, user, screened.text)), WeComCallbackStatus.SENT
                )
        return Reply(split_text(self.coach(question)), WeComCallbackStatus.SENT)

    @staticmethod
    def _coach_answer(session: Session, user: StaffUser, text: str, *, old_arrears: bool = False) -> str:
        # Imported here: the coach brings Rasa in, which a console without WeCom messages never needs.
        from bot.coach import get_coach
        from bot.coach.render import as_json, plain_text
        from bot.rasa.agent import RasaParser

        answer = get_coach(parser_factory=RasaParser, playbook=current_playbook(session)).answer(
            text, old_arrears=old_arrears
        )
        # What the coach suggests saying to the owner passes the guard like any text for owners.
        answer, refusals = refused_texts.guarded_coach_answer(answer)
        for refusal in refusals:
            refused_texts.record_outgoing_refused(
                session, actor=str(user.username), refusal=refusal, source=refused_texts.WECOM_COACH
            )
        summary = as_json(answer)
        audit.record(
            session,
            actor=str(user.username),
            action=audit.COACH_ANSWERED,
            detail={
                "via": CHANNEL_NAME,
                "status": summary["status"],
                "intents": [t["intent"] for t in summary["types"]],
            },
        )
        return str(plain_text(answer))

    def _lookup(
        self, session: Session, user: StaffUser, unit: Optional[str], *, found: Optional[List[Any]] = None
    ) -> str:
        """The owners of ``unit`` as text (the briefs are appended to ``found`` when given)."""
        from bot.coach.data import coach_data
        from bot.coach.owner import lookup

        if not staff_users.has_role(user.role, self.lookup_roles):
            return wording.text("wecom.lookup_not_allowed")
        if not unit:
            return wording.text("wecom.lookup_usage")
        wanted = unit[:40]
        matching = owner_view.search_owners(session, unit=wanted, limit=LOOKUP_LIMIT + 1)
        briefs = lookup(
            session,
            unit=wanted,
            playbook=current_playbook(session),
            old_arrears_months=coach_data().old_arrears_months,
            limit=LOOKUP_LIMIT,
        )
        audit.record(
            session,
            actor=str(user.username),
            action=audit.OWNERS_SEARCHED,
            detail={"via": CHANNEL_NAME, "unit": wanted, "rows": len(briefs)},
        )
        if not briefs:
            return wording.text("wecom.lookup_none", unit=wanted)
        parts = []
        if found is not None:
            found.extend(briefs)
        if len(matching) > LOOKUP_LIMIT:
            parts.append(wording.text("wecom.lookup_many", unit=wanted, shown=LOOKUP_LIMIT))
        for brief in briefs:
            audit.record(
                session,
                actor=str(user.username),
                action=audit.OWNER_VIEWED,
                target=f"owner:{brief.owner_id}",
                detail={"via": CHANNEL_NAME},
            )
            parts.append(self._brief_lines(brief, user, coach_data()))
        return "\n\n".join(parts)

    @staticmethod
    def _brief_lines(brief: Any, user: StaffUser, data: Any) -> str:
        old_arrears_label, items, colon = data.label("old_arrears"), data.mark("items"), data.mark("colon")
        phone = staff_users.phone_for(brief.phone, role=user.role)
        lines = [wording.text("wecom.lookup_owner", unit=brief.unit, name=brief.name, phone=phone)]
        if brief.outstanding > 0:
            arrears = wording.text(
                "wecom.lookup_arrears",
                amount=f"{brief.outstanding:.2f}",
                since=brief.arrears_since or "",
                months=brief.arrears_months,
            )
            lines.append(arrears + (f" {old_arrears_label}" if brief.old_arrears else ""))
        else:
            lines.append(wording.text("wecom.lookup_no_arrears"))
        promises = [
            wording.text(
                "wecom.lookup_promise",
                due_date=promise.due_date.isoformat() if promise.due_date else "",
                amount=f"{promise.amount:.2f}" if promise.amount is not None else "",
                status=_promise_status(str(promise.status)),
            )
            for promise in brief.promises[:PROMISES_SHOWN]
        ]
        if promises:
            lines.append(wording.text("wecom.lookup_promises", items=items.join(promises)))
        said = []
        for reason in brief.reasons:
            words = (reason.text or "").strip()
            said_text = f"{reason.title}{colon}{words}" if reason.title and words else (reason.title or words)
            if said_text:
                said.append(said_text)
            if len(said) == REASONS_SHOWN:
                break
        if said:
            lines.append(wording.text("wecom.lookup_reasons", items=items.join(said)))
        return "\n".join(lines)


class WeComChannel:
    """The callback URL's logic.

    Args:
        config: The settings.
        store: Where handled callbacks are remembered.
        api: The WeCom API client (default: one for ``config``).
        responder: Who answers (default: staff accounts, owner lookup and the coach on ``store``'s database).
        limiter: The per-UserID message limits; default from settings.
    """

    def __init__(
        self,
        config: WeComConfig,
        *,
        store: WeComStore,
        api: Optional[WeComAPI] = None,
        responder: Optional[Responder] = None,
        limiter: Optional[floods.MessageLimiter] = None,
    ) -> None:
        self.config = config
        self.limiter = floods.limiter(limiter)
        self.crypto = WeComCrypto(config.token, config.encoding_aes_key, config.corp_id)
        self.store = store
        self.api = api or WeComAPI(
            config.api_base_url, corp_id=config.corp_id, secret=config.secret, agent_id=config.agent_id
        )
        self.responder = responder or Responder(store.url)

    def _check_time(self, timestamp: Optional[str]) -> str:
        check_timestamp(timestamp, now=clock.utc_now().timestamp(), max_skew=self.config.max_clock_skew)
        return str(timestamp)

    def verify_url(self, params: Mapping[str, str]) -> HttpAnswer:
        """The GET WeCom sends when the URL is saved: answer the decrypted ``echostr``, as is."""
        try:
            timestamp = self._check_time(params.get("timestamp"))
            echostr = params.get("echostr") or ""
            if not echostr:
                raise WeChatRequestError(400, "missing echostr")
            # Base64 has no spaces: an unencoded '+' became one when the query was decoded.
            echostr = echostr.replace(" ", "+")
            plain = self.crypto.decrypt(
                params.get("msg_signature"), timestamp, params.get("nonce") or "", echostr
            )
        except WeChatRequestError as error:
            logger.warning("wecom: refused URL verification: %s", error.reason)
            return HttpAnswer(error.status, error.reason)
        logger.info("wecom: callback URL verified")
        return HttpAnswer(200, plain)

    def receive(self, params: Mapping[str, str], body: bytes) -> tuple[HttpAnswer, Optional[Job]]:
        """Check, decrypt and claim a POSTed callback.

        Returns:
            The HTTP answer, and the job to run after it (``None`` for refusals, replays and events).
        """
        try:
            timestamp = self._check_time(params.get("timestamp"))
            nonce = params.get("nonce") or ""
            envelope = parse_xml(body)
            encrypted = envelope.get("Encrypt")
            if not isinstance(encrypted, str) or not encrypted:
                raise WeChatRequestError(400, "callback without <Encrypt>")
            signature = str(params.get("msg_signature") or "").lower()
            message = parse_xml(self.crypto.decrypt(signature, timestamp, nonce, encrypted))
            job = self._claim(message, signature=signature, nonce=nonce)
        except WeChatRequestError as error:
            logger.warning("wecom: refused a callback: %s", error.reason)
            return HttpAnswer(error.status, error.reason), None
        return HttpAnswer(200, ""), job

    def _claim(self, message: Mapping[str, Any], *, signature: str, nonce: str) -> Optional[Job]:
        if str(message.get("ToUserName") or "") != self.config.corp_id:
            raise WeChatRequestError(403, "message for another corporation (ToUserName)")
        agent_id = str(message.get("AgentID") or "").strip()
        if agent_id and agent_id != str(self.config.agent_id):
            raise WeChatRequestError(403, "message for another app (AgentID)")
        user_id = str(message.get("FromUserName") or "")
        msg_type = str(message.get("MsgType") or "")
        if not _USER_ID.match(user_id) or not _MSG_TYPE.match(msg_type):
            raise WeChatRequestError(400, "not a WeCom message")
        if msg_type == "event":
            event = str(message.get("Event") or "")[:32]
            key = f"event:{user_id}:{str(message.get('CreateTime') or '')[:20]}:{event}"
            self.store.claim(
                key,
                msg_signature=signature,
                nonce=nonce[:64],
                user_id=user_id,
                agent_id=agent_id or None,
                msg_type=f"event:{event}"[:32],
                status=WeComCallbackStatus.IGNORED,
            )
            return None
        msg_id = str(message.get("MsgId") or "")
        if not _MSG_ID.match(msg_id):
            raise WeChatRequestError(400, "message without a MsgId")
        key = f"msg:{msg_id}"
        decision = self.limiter.check(f"wecom:{user_id}")
        if decision.refused:  # a flood: nothing claimed or stored; the first of a run is told once
            logger.info("wecom: refused %s from %s: too many messages", key, user_id)
            notice = floods.refusal_text(decision, source="wecom")
            return None if notice is None else Job(key=key, user_id=user_id, text=None, notice=notice)
        claimed = self.store.claim(
            key,
            msg_signature=signature,
            nonce=nonce[:64],
            user_id=user_id,
            agent_id=agent_id or None,
            msg_type=msg_type,
        )
        if not claimed:
            logger.info("wecom: %s from %s seen before (retry or replay); answered once", key, user_id)
            return None
        content = message.get("Content") if msg_type == "text" else None
        return Job(key=key, user_id=user_id, text=str(content) if content is not None else None)

    def handle(self, job: Job) -> None:
        """Answer a claimed message through ``message/send`` and record how it ended (never raises)."""
        if job.notice is not None:  # refused as a flood: tell the sender, store nothing
            try:
                self.api.send_texts(job.user_id, [job.notice])
            except WeComAPIError as failure:
                logger.error("wecom: the flood notice to %s was not sent: %s", job.user_id, failure)
            return
        try:
            reply = self.responder.reply(job.user_id, job.text)
        except Exception as error:  # the coach or the database failed: say so, keep the channel up
            logger.exception("wecom: could not answer %s", job.key)
            self._send(
                job, Reply([wording.text("wecom.busy")], WeComCallbackStatus.FAILED), repr(error)[:200]
            )
            return
        self._send(job, reply, None)

    def _send(self, job: Job, reply: Reply, error: Optional[str]) -> None:
        try:
            self.api.send_texts(job.user_id, reply.texts)
        except WeComAPIError as failure:
            logger.error("wecom: reply to %s (%s) not sent: %s", job.user_id, job.key, failure)
            self.store.finish(job.key, WeComCallbackStatus.FAILED, str(failure))
            return
        self.store.finish(job.key, reply.status, error)
