"""A real human takeover: a staff member holds a conversation, answers the owner, and hands it back.

Who holds a conversation is the escalation queue's business (:mod:`bot.services.queue`: ``open`` with an
``assignee`` while a person holds it); this module adds what the owner and the Rasa server must learn about
it, written to the durable outbox (:mod:`bot.conversations.outbox`) in the caller's transaction:

* :func:`take_over` — the person holds the conversation. The owner is told a person has joined
  (``handoff.joined`` in ``data/wording.yml``), and a ``control`` row tells the Rasa server to pause the
  conversation (``ConversationPaused``). The Rasa channels also ask :func:`is_held` on every inbound message,
  so the bot is silent from the commit on, whichever Rasa process receives the message.
* :func:`staff_reply` — only the holder may answer; the text passes the same coercion guard as the bot's
  wording (:func:`bot.services.refused_texts.refusal_of`): a refused reply is neither sent nor queued, is
  raised with the guard's category and reason, and leaves a ``staff_reply_refused`` audit row (with the
  refused text, for the supervisors' QA view) in the caller's session; the first reply sets the escalation's
  first response time.
* :func:`hand_back` — the bot resumes (``ConversationResumed``) with the conversation's context; the owner is
  told the person has left (``handoff.left``).
* :func:`delivery_status` — how a reply would reach the owner: the channel and, on WeChat, whether the
  48-hour customer-service window is open, with the alternatives when it is not.

Nothing here imports Rasa or a web framework; the caller owns the session and commits.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from typing import Any, List, Optional

import sqlalchemy as sa
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import clock, wording
from bot.conversations import handles, outbox, webchat_sessions
from bot.conversations.outbox import OutboxEntry
from bot.conversations.session_ids import looks_like_session_id
from bot.db.models import (
    ConversationLink,
    Escalation,
    EscalationState,
    OutboxKind,
    WeChatInboundMessage,
)
from bot.rasa import events as rasa_events
from bot.services import escalations, queue
from bot.services.rate_limits import serialise
from bot.services.refused_texts import Refusal, record_staff_reply_refused, refusal_of

# The WeChat customer-service message window: 48 hours after the owner's last message or event.
WECHAT_WINDOW = dt.timedelta(hours=48)
WECHAT_CHANNEL = "wechat"
WEBCHAT_CHANNEL = "socketio"
REST_CHANNEL = "rest"
MAX_REPLY_CHARS = 1000
PAUSE = "pause"
RESUME = "resume"
TAKEOVER_REASON = "staff_takeover"

OutboxMessage = OutboxEntry  # the name the staff console imports



class HandoffError(Exception):
    """Base of every refusal by the takeover."""


class NotHeld(HandoffError):
    """The conversation is not held by the staff member acting on it.

    Attributes:
        sender_id: The conversation.
        holder: Who holds it (None: the bot does).
    """

    def __init__(self, sender_id: str, staff: str, holder: Optional[str]) -> None:
        who = f"{holder} holds it" if holder else "nobody holds it (the bot does)"
        super().__init__(f"{staff} does not hold conversation {sender_id}: {who}")
        self.sender_id = sender_id
        self.staff = staff
        self.holder = holder


class ReplyRefused(HandoffError):
    """A staff reply that may not be sent to the owner.

    The staff screen words ``empty`` and ``too_long`` itself; a ``forbidden`` reply carries the guard's
    category, label and reason sentence (:class:`bot.services.refused_texts.Refusal`).

    Attributes:
        reason: ``empty``, ``too_long`` (over :data:`MAX_REPLY_CHARS`) or ``forbidden``.
        refusal: Why the guard refused it (``forbidden``), else None.
        limit: The longest reply allowed, in characters.
    """

    def __init__(self, reason: str, refusal: Optional[Refusal] = None) -> None:
        detail = f": {refusal.category}" if refusal else ""
        super().__init__(f"reply refused ({reason}){detail}")
        self.reason = reason
        self.refusal = refusal
        self.limit = MAX_REPLY_CHARS


@dataclass(frozen=True)
class Handoff:
    """A conversation's holder after a takeover or hand-back.

    Attributes:
        sender_id: The conversation.
        staff: The staff member who took it over or handed it back.
        escalation_id: The escalation that records it.
        state: ``open`` (the person holds it) or ``pending`` (the bot does).
        channel: The owner's channel, if known.
        notice: The joined / left notice queued for the owner; None when nothing changed (taking over a
            conversation one already holds).
    """

    sender_id: str
    staff: str
    escalation_id: int
    state: EscalationState
    channel: Optional[str]
    notice: Optional[OutboxEntry]


class Alternative(str, enum.Enum):
    """Another way to reach the owner when the channel cannot carry a reply now (the screen words it)."""

    PHONE_CALL = "phone_call"  # call the owner (their phone is on the owner page)
    WAIT_FOR_OWNER = "wait_for_owner"  # reply once the owner writes again (WeChat reopens the window)
    NEXT_VISIT = "next_visit"  # settle it at the next visit to the owner or the owner's to the service centre


class Blocked(str, enum.Enum):
    """Why a reply cannot reach the owner through the channel now."""

    WECHAT_WINDOW_CLOSED = "wechat_window_closed"  # more than 48 hours since the owner's last WeChat message
    # No longer given for REST (its replies ride on the owner's next request); kept for rows failed before.
    NO_PUSH_CHANNEL = "no_push_channel"
    UNKNOWN_CHANNEL = "unknown_channel"  # nothing says how the owner wrote
    WEBCHAT_SESSION_ENDED = "webchat_session_ended"  # the owner signed out of the web chat, or it expired


@dataclass(frozen=True)
class DeliveryStatus:
    """What the staff screen needs to know before replying.

    Attributes:
        sender_id: The conversation.
        channel: The owner's channel (``socketio``, ``wechat``, ``rest``), if known.
        holder: Who holds the conversation, if anyone.
        can_deliver: Whether a reply can reach the owner through the channel (web chat: now when the owner
            is connected, otherwise on their next visit; REST: with the answer to the owner's next message).
        window_open: On WeChat, whether the 48-hour customer-service window is open; None elsewhere.
        last_inbound_at: On WeChat, the owner's last message or event.
        window_closes_at: On WeChat, when the window closes (closed) if it is known.
        blocked: Why the reply cannot go out, when ``can_deliver`` is false.
        alternatives: Other ways to reach the owner when ``can_deliver`` is false.
    """

    sender_id: str
    channel: Optional[str]
    holder: Optional[str]
    can_deliver: bool
    window_open: Optional[bool]
    last_inbound_at: Optional[dt.datetime]
    window_closes_at: Optional[dt.datetime]
    blocked: Optional[Blocked] = None
    alternatives: List[Alternative] = field(default_factory=list)


def take_over(session: Session, *, sender_id: str, staff: str) -> Handoff:
    """``staff`` holds the conversation from now; the bot stays silent in it until :func:`hand_back`.

    The conversation's pending escalations become ``open``, held by ``staff``
    (:func:`bot.services.queue.take_over`; whoever had claimed or been assigned them, ``staff`` is now the
    assignee); when it has none, one is opened with reason ``staff_takeover``. The owner is told a person has joined, and the Rasa server
    is told to pause the conversation (both through the outbox). Taking over what one already holds changes
    nothing.

    Args:
        session: The caller's session; commit to make the takeover effective.
        sender_id: The conversation (Rasa sender id).
        staff: The staff username.

    Returns:
        The takeover, with the joined notice queued for the owner.

    Raises:
        ValueError: An empty sender id or staff username.
        bot.services.queue.HeldByAnother: Another person holds the conversation (a supervisor reassigns it
            with :func:`bot.services.queue.assign`).
    """
    staff = _name(staff)
    sender_id = _sender(sender_id)
    serialise(session, f"escalation-conversation:{sender_id}")
    unresolved = _unresolved(session, sender_id)
    held = [row for row in unresolved if row.state is EscalationState.OPEN]
    if held and all(row.assignee == staff for row in held):
        row = held[-1]
        return Handoff(sender_id, staff, int(row.id), EscalationState.OPEN, _channel(session, sender_id, row), None)
    if held:
        raise queue.HeldByAnother(int(held[-1].id), queue.EscalationAction.CLAIM, str(held[-1].assignee))
    channel = _channel(session, sender_id, unresolved[-1] if unresolved else None)
    if unresolved:
        escalation_id = int(unresolved[-1].id)
    else:
        escalation_id = int(_open_takeover(session, sender_id=sender_id, staff=staff, channel=channel).id)
    entry = queue.take_over(session, escalation_id=escalation_id, staff=staff)
    outbox.enqueue(session, sender_id=sender_id, channel=channel, kind=OutboxKind.CONTROL, text=PAUSE, staff=staff)
    notice = outbox.enqueue(
        session,
        sender_id=sender_id,
        channel=channel,
        kind=OutboxKind.JOINED,
        text=wording.text("handoff.joined"),
        staff=staff,
    )
    return Handoff(sender_id, staff, entry.id, entry.state, channel, notice)


def staff_reply(session: Session, *, sender_id: str, staff: str, text: str) -> OutboxEntry:
    """Queue ``staff``'s reply to the owner; only the person holding the conversation may reply.

    Args:
        session: The caller's session; commit to send.
        sender_id: The conversation.
        staff: The staff username.
        text: The reply.

    Returns:
        The queued message (``pending`` until a Rasa process delivers it).

    Raises:
        ReplyRefused: The text is empty, too long, or the guard refuses it (``forbidden``: nothing queued, a
            ``staff_reply_refused`` audit row written in ``session``, kept when the caller commits).
        NotHeld: ``staff`` does not hold the conversation.
    """
    staff = _name(staff)
    sender_id = _sender(sender_id)
    reply = _checked_reply(text)
    refusal = refusal_of(reply)
    if refusal is not None:
        record_staff_reply_refused(
            session, staff=staff, handle=handles.handle_of(sender_id), refusal=refusal, text=reply
        )
        raise ReplyRefused("forbidden", refusal)
    serialise(session, f"escalation-conversation:{sender_id}")
    row = _held_by(session, sender_id, staff)
    queue.record_staff_reply(session, escalation_id=int(row.id), staff=staff)
    return outbox.enqueue(
        session,
        sender_id=sender_id,
        channel=_channel(session, sender_id, row),
        kind=OutboxKind.TEXT,
        text=reply,
        staff=staff,
    )


def hand_back(session: Session, *, sender_id: str, staff: str, outcome: Optional[str] = None) -> Handoff:
    """``staff`` hands the conversation back: the bot answers the owner's next message, with its context.

    With an ``outcome`` (交还并解决) the conversation's escalations are also resolved with that note, in the
    same transaction.

    Args:
        session: The caller's session; commit to make it effective.
        sender_id: The conversation.
        staff: The staff username holding it.
        outcome: What came of it, to resolve the conversation's escalations with; None: they stay pending.

    Returns:
        The hand-back, with the left notice queued for the owner.

    Raises:
        NotHeld: ``staff`` does not hold the conversation.
        bot.services.queue.OutcomeRequired: ``outcome`` is given but empty or too long (nothing changed).
    """
    staff = _name(staff)
    sender_id = _sender(sender_id)
    serialise(session, f"escalation-conversation:{sender_id}")
    row = _held_by(session, sender_id, staff)
    note = None if outcome is None else outcome.strip()
    if note is not None and not 0 < len(note) <= queue.OUTCOME_MAX:
        raise queue.OutcomeRequired(int(row.id))
    entry = queue.hand_back(session, escalation_id=int(row.id), staff=staff)
    if note is not None:
        for pending in _unresolved(session, sender_id):
            entry = queue.resolve(session, escalation_id=int(pending.id), staff=staff, outcome=note)
    channel = _channel(session, sender_id, row)
    notice = outbox.enqueue(
        session,
        sender_id=sender_id,
        channel=channel,
        kind=OutboxKind.LEFT,
        text=wording.text("handoff.left"),
        staff=staff,
    )
    outbox.enqueue(session, sender_id=sender_id, channel=channel, kind=OutboxKind.CONTROL, text=RESUME, staff=staff)
    return Handoff(sender_id, staff, entry.id, entry.state, channel, notice)


def is_held(session: Session, *, sender_id: str) -> Optional[str]:
    """The username of the person holding the conversation, or None when the bot holds it."""
    return queue.holder(session, sender_id=sender_id)


def conversation_channel(session: Session, *, sender_id: str) -> Optional[str]:
    """The channel the owner last wrote on (``socketio``, ``wechat``, ``rest``), if known."""
    return _channel(session, sender_id, None)


# Events that open WeChat's 48-hour customer-service window besides a message (WeChat's customer-service docs):
# following, scanning a QR code, and the menu types that push to the server. A template's delivery report
# (TEMPLATESENDJOBFINISH), a menu link (VIEW), the automatic location report and an unfollow open nothing.
WINDOW_OPENING_EVENTS = ("event:subscribe", "event:scan", "event:click", "event:scancode_push", "event:scancode_waitmsg")


def last_wechat_inbound(session: Session, *, openid: str) -> Optional[dt.datetime]:
    """When the WeChat user last wrote or did something that opens the 48-hour window, in the estate's zone."""
    msg_type = WeChatInboundMessage.msg_type
    received = session.execute(
        select(sa.func.max(WeChatInboundMessage.received_at)).where(
            WeChatInboundMessage.openid == openid,
            sa.or_(sa.not_(msg_type.like("event:%")), sa.func.lower(msg_type).in_(WINDOW_OPENING_EVENTS)),
        )
    ).scalar_one_or_none()
    if received is None:
        return None
    return _utc(received).astimezone(clock.zone())


def wechat_window_open(session: Session, *, openid: str) -> bool:
    """Whether a customer-service message may be sent to ``openid`` now (48 hours after its last message)."""
    last = last_wechat_inbound(session, openid=openid)
    return last is not None and clock.now() < last + WECHAT_WINDOW


def delivery_status(session: Session, *, sender_id: str) -> DeliveryStatus:
    """How a staff reply would reach the owner of ``sender_id`` now.

    Args:
        session: The caller's session.
        sender_id: The conversation.

    Returns:
        The channel, the WeChat window (from the owner's last inbound WeChat message) and, when the reply
        cannot go out, the alternatives.
    """
    channel = _channel(session, sender_id, None)
    holder = queue.holder(session, sender_id=sender_id)
    if channel == WECHAT_CHANNEL:
        last = last_wechat_inbound(session, openid=sender_id)
        closes = None if last is None else last + WECHAT_WINDOW
        if closes is not None and clock.now() < closes:
            return DeliveryStatus(sender_id, channel, holder, True, True, last, closes)
        return DeliveryStatus(
            sender_id, channel, holder, False, False, last, closes, Blocked.WECHAT_WINDOW_CLOSED, list(Alternative)
        )
    if channel == WEBCHAT_CHANNEL and looks_like_session_id(sender_id) and webchat_sessions.judge(
        session, sender_id=sender_id
    ):
        # The session ended (signed out, idle, too old): its id is dead, so nothing sent to it is ever read.
        alternatives = [Alternative.PHONE_CALL, Alternative.NEXT_VISIT]
        return DeliveryStatus(
            sender_id, channel, holder, False, None, None, None, Blocked.WEBCHAT_SESSION_ENDED, alternatives
        )
    if channel in (WEBCHAT_CHANNEL, REST_CHANNEL):
        # Web chat: now if the owner is connected, else on their next visit. REST cannot push: the reply goes
        # out in the response to the owner's next message (bot.channels.rest).
        return DeliveryStatus(sender_id, channel, holder, True, None, None, None)
    return DeliveryStatus(
        sender_id, channel, holder, False, None, None, None, Blocked.UNKNOWN_CHANNEL, list(Alternative)
    )


# --- internals ------------------------------------------------------------------------------------------


def _name(staff: str) -> str:
    name = (staff or "").strip()
    if not name or len(name) > queue.STAFF_NAME_MAX:
        raise ValueError(f"a staff username of 1 to {queue.STAFF_NAME_MAX} characters is required")
    return name


def _sender(sender_id: str) -> str:
    if not sender_id or len(sender_id) > 128:
        raise ValueError("a sender id of 1 to 128 characters is required")
    return sender_id


def _checked_reply(text: str) -> str:
    reply = (text or "").strip()
    if not reply:
        raise ReplyRefused("empty")
    if len(reply) > MAX_REPLY_CHARS:
        raise ReplyRefused("too_long")
    return reply


def _unresolved(session: Session, sender_id: str) -> List[Escalation]:
    return list(
        session.execute(
            select(Escalation)
            .where(Escalation.sender_id == sender_id, Escalation.state != EscalationState.RESOLVED)
            .order_by(Escalation.id)
            .execution_options(populate_existing=True)
        ).scalars()
    )


def _held_by(session: Session, sender_id: str, staff: str) -> Escalation:
    held = [row for row in _unresolved(session, sender_id) if row.state is EscalationState.OPEN]
    mine = [row for row in held if row.assignee == staff]
    if not mine:
        raise NotHeld(sender_id, staff, held[-1].assignee if held else None)
    return mine[-1]


def _open_takeover(session: Session, *, sender_id: str, staff: str, channel: Optional[str]) -> Escalation:
    """A new escalation for a conversation a person takes over on their own initiative."""
    owner_id = session.execute(
        select(ConversationLink.owner_id)
        .where(ConversationLink.sender_id == sender_id)
        .order_by(ConversationLink.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if owner_id is None:
        owner_id = session.execute(
            select(Escalation.owner_id)
            .where(Escalation.sender_id == sender_id, Escalation.owner_id.is_not(None))
            .order_by(Escalation.id.desc())
            .limit(1)
        ).scalar_one_or_none()
    made = escalations.escalate(
        session,
        reason=escalations.Reason.STAFF_TAKEOVER,
        detail=f"taken over by {staff} at {clock.now():%Y-%m-%d %H:%M:%S}",
        owner_id=owner_id,
        channel=channel,
        sender_id=sender_id,
        message_id=None,
    )
    return made


def _channel(session: Session, sender_id: str, escalation: Optional[Escalation]) -> Optional[str]:
    """The owner's channel: from the tracker's last owner message, else the escalation, else WeChat's log."""
    latest = rasa_events.latest_data(session, sender_id=sender_id, type_name="user", limit=1)
    if latest:
        channel = _input_channel(latest[0])
        if channel:
            return channel
    if escalation is not None and escalation.channel:
        return str(escalation.channel)
    known = session.execute(
        select(Escalation.channel)
        .where(Escalation.sender_id == sender_id, Escalation.channel.is_not(None))
        .order_by(Escalation.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if known:
        return str(known)
    wechat = session.execute(
        select(WeChatInboundMessage.id).where(WeChatInboundMessage.openid == sender_id).limit(1)
    ).scalar_one_or_none()
    return WECHAT_CHANNEL if wechat is not None else None


def _input_channel(raw: Any) -> Optional[str]:
    import json

    try:
        data = json.loads(raw) if isinstance(raw, (str, bytes)) else raw
    except ValueError:
        return None
    channel = data.get("input_channel") if isinstance(data, dict) else None
    return str(channel) if channel else None


def _utc(value: dt.datetime) -> dt.datetime:
    """A stored WeChat time as aware UTC (SQLite keeps the naive UTC wall time of ``now()``)."""
    return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
