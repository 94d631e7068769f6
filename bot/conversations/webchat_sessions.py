"""How long a web chat session lasts, and how it ends.

A web chat session id (:mod:`bot.conversations.session_ids`) is a bearer credential: whoever presents it speaks in
that conversation, verified or not. So it ends:

* **idle** — ``WEBCHAT_SESSION_IDLE_MINUTES`` after the owner's last message (or after it was issued, before
  the first). Every owner message the web chat hands to Rasa carries the moment it arrived, read from
  :mod:`bot.clock`, in its metadata (:data:`SEEN_KEY`); the latest one in Rasa's tracker store is the last
  activity, whichever server process received it;
* **too old** — ``WEBCHAT_SESSION_MAX_HOURS`` after it was issued (the id carries its signed issue time), however
  active it is;
* **signed out** — the owner pressed 退出 on the page.

An ended session is recorded where the conversation already keeps its state: its verified link
(``ConversationLink``) is closed with ``closed_at`` and ``closed_reason`` ``session_ended:<reason>`` (the
conversation is no longer verified; the reminder and call paths skip it), and the channel appends a marker to
the conversation's tracker (a ``ConversationPaused`` whose metadata holds :data:`END_MARK`; the staff transcript
shows it as the end of the session). An id presented again after it ended gets a fresh, unverified session; the
old conversation's history stays for staff. Expiry needs no record to be permanent (the clock only moves on,
and a message under an expired id is never stored), so links of sessions that expired unseen are closed by
:func:`close_expired_links`, which the channel runs every minute.

Nothing here imports Rasa; the caller owns the session and commits.
"""

from __future__ import annotations

import datetime as dt
import enum
import json
from dataclasses import dataclass
from typing import Any, Iterable, List, Optional

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot import clock
from bot.conversations.session_ids import issued_at
from bot.db.models import ConversationLink
from bot.rasa import events as rasa_events

WEBCHAT_CHANNEL = "socketio"
# The metadata key of an owner message holding the moment the web chat received it (ISO 8601, UTC).
SEEN_KEY = "webchat_seen_at"
# The metadata key of the tracker event marking the end of a session; its value is the reason.
END_MARK = "webchat_session_end"
CLOSED_REASON_PREFIX = "session_ended:"


class SessionEnd(str, enum.Enum):
    """Why a web chat session ended."""

    SIGNED_OUT = "signed_out"  # the owner pressed 退出
    IDLE = "idle"  # no message for WEBCHAT_SESSION_IDLE_MINUTES
    MAX_AGE = "max_age"  # issued more than WEBCHAT_SESSION_MAX_HOURS ago (or an id without an issue time)

    @property
    def closed_reason(self) -> str:
        """The ``closed_reason`` written on the conversation's link."""
        return f"{CLOSED_REASON_PREFIX}{self.value}"


@dataclass(frozen=True)
class Lifetime:
    """How long a session may last.

    Attributes:
        idle: Since the owner's last message (or the issue time).
        max_age: Since the issue time.
    """

    idle: dt.timedelta = dt.timedelta(minutes=60)
    max_age: dt.timedelta = dt.timedelta(hours=12)

    @classmethod
    def from_settings(cls) -> Lifetime:
        """``WEBCHAT_SESSION_IDLE_MINUTES`` and ``WEBCHAT_SESSION_MAX_HOURS``."""
        from bot.settings import get_settings

        settings = get_settings()
        return cls(
            idle=dt.timedelta(minutes=settings.webchat_session_idle_minutes),
            max_age=dt.timedelta(hours=settings.webchat_session_max_hours),
        )


def seen_stamp(moment: Optional[dt.datetime] = None) -> str:
    """The value of :data:`SEEN_KEY` for a message received at ``moment`` (default: the clock's now)."""
    return (moment or clock.utc_now()).astimezone(dt.timezone.utc).isoformat()


def _aware(moment: Any) -> Optional[dt.datetime]:
    if isinstance(moment, str):
        try:
            moment = dt.datetime.fromisoformat(moment)
        except ValueError:
            return None
    if not isinstance(moment, dt.datetime):
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.timezone.utc)


def _data(raw: Any) -> dict:
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def last_message_at(session: Session, *, sender_id: str) -> Optional[dt.datetime]:
    """When the web chat received the owner's latest message in this conversation, or None.

    Read from the latest owner message in Rasa's tracker store that carries :data:`SEEN_KEY`.
    """
    for data in rasa_events.latest_data(session, sender_id=sender_id, type_name="user", limit=20):
        metadata = data.get("metadata")
        if isinstance(metadata, dict):
            moment = _aware(metadata.get(SEEN_KEY))
            if moment is not None:
                return moment
    return None


def end_marked(session: Session, *, sender_id: str) -> Optional[SessionEnd]:
    """The reason of the end marker in the conversation's tracker, if the channel wrote one."""
    for data in rasa_events.data_containing(session, sender_id=sender_id, type_name="pause", text=END_MARK):
        metadata = data.get("metadata")
        if isinstance(metadata, dict) and metadata.get(END_MARK) in {end.value for end in SessionEnd}:
            return SessionEnd(metadata[END_MARK])
    return None


def link_closed_for(session: Session, *, sender_id: str) -> Optional[SessionEnd]:
    """The reason a web chat session ended, as its closed link says (None: no link closed by a session end)."""
    reason = session.execute(
        sa.select(ConversationLink.closed_reason).where(
            ConversationLink.channel == WEBCHAT_CHANNEL,
            ConversationLink.sender_id == sender_id,
            ConversationLink.closed_at.is_not(None),
        )
    ).scalar_one_or_none()
    if reason and str(reason).startswith(CLOSED_REASON_PREFIX):
        value = str(reason)[len(CLOSED_REASON_PREFIX) :]
        if value in {end.value for end in SessionEnd}:
            return SessionEnd(value)
    return None


def expiry(
    session: Session, *, sender_id: str, now: Optional[dt.datetime] = None, lifetime: Optional[Lifetime] = None
) -> Optional[SessionEnd]:
    """Whether the session ``sender_id`` has run out of time at ``now``, and why (None: it has not).

    Args:
        session: The caller's session.
        sender_id: The session id (already checked to be signed by this server).
        now: The moment to judge at; default the clock's now.
        lifetime: The limits; default from the settings.
    """
    lifetime = lifetime or Lifetime.from_settings()
    now = now or clock.now()
    issued = issued_at(sender_id)
    if issued is None or now - issued >= lifetime.max_age:
        return SessionEnd.MAX_AGE
    last = last_message_at(session, sender_id=sender_id)
    active = max(issued, last) if last is not None else issued
    if now - active >= lifetime.idle:
        return SessionEnd.IDLE
    return None


def judge(
    session: Session, *, sender_id: str, now: Optional[dt.datetime] = None, lifetime: Optional[Lifetime] = None
) -> Optional[SessionEnd]:
    """Why the session ``sender_id`` no longer works, or None while it does.

    It has ended when its tracker holds the end marker or its link was closed by a session end; otherwise it
    may have expired (:func:`expiry`).
    """
    return (
        end_marked(session, sender_id=sender_id)
        or link_closed_for(session, sender_id=sender_id)
        or expiry(session, sender_id=sender_id, now=now, lifetime=lifetime)
    )


def close_link(
    session: Session, *, sender_id: str, reason: SessionEnd, now: Optional[dt.datetime] = None
) -> bool:
    """Close the conversation's open verified link because its session ended.

    Returns:
        Whether an open link was closed (False: none, or already closed).
    """
    closed = session.execute(
        sa.update(ConversationLink)
        .where(
            ConversationLink.channel == WEBCHAT_CHANNEL,
            ConversationLink.sender_id == sender_id,
            ConversationLink.closed_at.is_(None),
        )
        .values(closed_at=(now or clock.now()).astimezone(dt.timezone.utc), closed_reason=reason.closed_reason)
        .execution_options(synchronize_session=False)
    ).rowcount
    session.flush()
    return bool(closed)


def check(
    session: Session, *, sender_id: str, now: Optional[dt.datetime] = None, lifetime: Optional[Lifetime] = None
) -> Optional[SessionEnd]:
    """:func:`judge` the session, and close its verified link when it has ended (in the caller's transaction).

    Returns:
        Why it ended, or None while it works.
    """
    now = now or clock.now()
    ended = judge(session, sender_id=sender_id, now=now, lifetime=lifetime)
    if ended is not None:
        close_link(session, sender_id=sender_id, reason=ended, now=now)
    return ended


def open_links(session: Session) -> List[str]:
    """The sender ids of the web chat conversations with an open verified link."""
    return [
        str(sender_id)
        for sender_id in session.execute(
            sa.select(ConversationLink.sender_id).where(
                ConversationLink.channel == WEBCHAT_CHANNEL, ConversationLink.closed_at.is_(None)
            )
        ).scalars()
    ]


def close_expired_links(
    session: Session,
    *,
    now: Optional[dt.datetime] = None,
    lifetime: Optional[Lifetime] = None,
    sender_ids: Optional[Iterable[str]] = None,
) -> int:
    """Close the open verified links of web chat sessions that have expired or ended.

    Args:
        session: The caller's session.
        now: The moment to judge at; default the clock's now.
        lifetime: The limits; default from the settings.
        sender_ids: Only these conversations; default every web chat conversation with an open link.

    Returns:
        How many links were closed.
    """
    now = now or clock.now()
    lifetime = lifetime or Lifetime.from_settings()
    closed = 0
    for sender_id in list(sender_ids) if sender_ids is not None else open_links(session):
        ended = judge(session, sender_id=sender_id, now=now, lifetime=lifetime)
        if ended is not None and close_link(session, sender_id=sender_id, reason=ended, now=now):
            closed += 1
    return closed
