"""The durable outbox: messages to owners (and instructions to the Rasa server) that go out exactly once.

A staff member's reply is written here by the staff console's process, in the same transaction as the
queue's bookkeeping, and delivered by a Rasa process: the one that holds the owner's web chat socket, or any
one for WeChat (customer-service messages) and ``control`` rows (pause / resume the conversation in Rasa's
tracker). The table is the only thing the processes share, so nothing is lost when one of them restarts.

Life of a row::

    pending ──claim──▶ delivering ──mark_delivered──▶ delivered
                           │  └────────mark_failed────▶ failed   (``failure`` says why)
                           └─release─▶ pending         (e.g. the socket closed before the emit)

:func:`claim` moves rows to ``delivering`` atomically: on PostgreSQL the candidates are read with
``FOR UPDATE SKIP LOCKED`` (two processes claiming at once skip each other's rows instead of waiting), and on
every database the move is a conditional ``UPDATE … WHERE state = 'pending'`` that only one claimant can win
(SQLite runs write transactions one at a time). A row claimed by a process that died is claimable again
once its lease (``claimed_at`` + ``lease``) has run out; the deliverer then checks whether the row reached
the owner before the crash (see :mod:`bot.conversations.delivery.deliverer`). Times come from :mod:`bot.clock`. The
caller owns the session and commits — a claim should be committed at once, before delivering.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Union

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from bot import clock
from bot.db.models import OutboxKind, OutboxMessage, OutboxState

DEFAULT_LEASE = dt.timedelta(seconds=60)
MAX_TEXT_CHARS = 2000
WORKER_NAME_MAX = 64
VIA_MAX = 32


@dataclass(frozen=True)
class TemplateMessage:
    """A WeChat template message to send instead of the text when the 48-hour window is closed.

    Attributes:
        template_id: The template's id in the Official Account.
        data: Each template field's value.
    """

    template_id: str
    data: Dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboxEntry:
    """One outbox row as plain data.

    Attributes:
        id: The row's id.
        sender_id: The conversation (Rasa sender id; the openid on WeChat).
        channel: The channel it goes out on (``socketio``, ``wechat``, ``rest``), if known.
        kind: ``text``, ``joined``, ``left`` or ``control``.
        text: What the owner reads (for ``control``: ``pause`` or ``resume``).
        staff: The staff member it comes from, if any.
        state: ``pending``, ``delivering``, ``delivered`` or ``failed``.
        attempts: How many times it was claimed.
        failure: Why it failed, if it did.
        created_at: When it was written.
        delivered_at: When it was delivered (or given up on).
        template: On WeChat, the template message for a closed window (reminders), if any.
        delivered_via: How it went out (``wechat_custom``, ``wechat_template``, ``socketio`` …), once delivered.
    """

    id: int
    sender_id: str
    channel: Optional[str]
    kind: OutboxKind
    text: str
    staff: Optional[str]
    state: OutboxState
    attempts: int
    failure: Optional[str]
    created_at: dt.datetime
    delivered_at: Optional[dt.datetime]
    template: Optional[TemplateMessage] = None
    delivered_via: Optional[str] = None


KindLike = Union[OutboxKind, str]


def enqueue(
    session: Session,
    *,
    sender_id: str,
    channel: Optional[str],
    kind: KindLike,
    text: str,
    staff: Optional[str] = None,
    template: Optional[TemplateMessage] = None,
) -> OutboxEntry:
    """Write one message to the outbox, ``pending``.

    Args:
        session: The caller's session (commit to make the row visible to the deliverers).
        sender_id: The conversation.
        channel: The channel to deliver on.
        kind: ``text``, ``joined``, ``left`` or ``control``.
        text: The message (or the control word).
        staff: Who it comes from.
        template: On WeChat, the template message to send instead when the 48-hour window is closed.

    Returns:
        The new row.

    Raises:
        ValueError: An empty sender id or text, or a text over :data:`MAX_TEXT_CHARS`.
    """
    if not sender_id:
        raise ValueError("a sender id is required")
    if not text or len(text) > MAX_TEXT_CHARS:
        raise ValueError(f"an outbox text of 1 to {MAX_TEXT_CHARS} characters is required")
    row = OutboxMessage(
        sender_id=sender_id,
        channel=channel,
        kind=OutboxKind(kind),
        text=text,
        staff=staff,
        state=OutboxState.PENDING,
        attempts=0,
        created_at=clock.now(),
        template_id=None if template is None else template.template_id,
        template_data=None if template is None else json.dumps(template.data, ensure_ascii=False),
    )
    session.add(row)
    session.flush()
    return _entry(row)


def claim(
    session: Session,
    *,
    worker: str,
    kinds: Optional[Iterable[KindLike]] = None,
    channels: Optional[Iterable[Optional[str]]] = None,
    sender_ids: Optional[Iterable[str]] = None,
    limit: int = 20,
    lease: dt.timedelta = DEFAULT_LEASE,
) -> List[OutboxEntry]:
    """Claim due rows for delivery by ``worker``: they become ``delivering``, oldest first.

    Due rows are ``pending`` ones and ``delivering`` ones whose claimant has held them longer than
    ``lease`` (it died). Each returned row was moved by this call alone: a concurrent claimant never gets
    the same row.

    Args:
        session: The caller's session; commit right after, then deliver.
        worker: Who claims (e.g. ``rasa:<host>:<pid>``), kept in ``claimed_by``.
        kinds: Only these kinds; None for all.
        channels: Only these channels (None in the list matches rows without a channel); None for all.
        sender_ids: Only these conversations (e.g. the owners whose sockets this process holds); an empty
            list claims nothing.
        limit: At most this many rows.
        lease: How long a claim lasts before another worker may take the row over.

    Returns:
        The claimed rows.
    """
    worker = worker[:WORKER_NAME_MAX]
    filters: List[Any] = []
    if kinds is not None:
        filters.append(OutboxMessage.kind.in_([OutboxKind(kind) for kind in kinds]))
    if channels is not None:
        wanted = list(channels)
        named = [channel for channel in wanted if channel is not None]
        conditions = [OutboxMessage.channel.in_(named)] if named else []
        if None in wanted:
            conditions.append(OutboxMessage.channel.is_(None))
        if not conditions:
            return []
        filters.append(or_(*conditions))
    if sender_ids is not None:
        senders = list(sender_ids)
        if not senders:
            return []
        filters.append(OutboxMessage.sender_id.in_(senders))
    now = clock.now()
    due = or_(
        OutboxMessage.state == OutboxState.PENDING,
        and_(OutboxMessage.state == OutboxState.DELIVERING, OutboxMessage.claimed_at < now - lease),
    )
    query = select(OutboxMessage.id).where(due, *filters).order_by(OutboxMessage.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    claimed: List[int] = []
    for row_id in session.execute(query).scalars().all():
        result = session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id == row_id, due)
            .values(
                state=OutboxState.DELIVERING,
                attempts=OutboxMessage.attempts + 1,
                claimed_by=worker,
                claimed_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        if result.rowcount:
            claimed.append(row_id)
    if not claimed:
        return []
    rows = session.execute(
        select(OutboxMessage)
        .where(OutboxMessage.id.in_(claimed))
        .order_by(OutboxMessage.id)
        .execution_options(populate_existing=True)
    ).scalars()
    return [_entry(row) for row in rows]


def mark_delivered(session: Session, *, message_id: int, worker: str, via: Optional[str] = None) -> bool:
    """``delivering`` → ``delivered``, if ``worker`` still holds the claim.

    Args:
        session: The caller's session.
        message_id: The row.
        worker: The claimant.
        via: How it went out (``wechat_custom``, ``wechat_template``, ``socketio``, ``rest`` …).

    Returns:
        Whether the row moved (False: another worker took it over after the lease ran out).
    """
    return _finish(session, message_id, worker, OutboxState.DELIVERED, None, via)


def mark_failed(session: Session, *, message_id: int, worker: str, reason: str) -> bool:
    """``delivering`` → ``failed`` with ``reason`` (shown to staff), if ``worker`` still holds the claim.

    Returns:
        Whether the row moved.
    """
    return _finish(session, message_id, worker, OutboxState.FAILED, reason[:1000] or "failed")


def release(session: Session, *, message_id: int, worker: str) -> bool:
    """``delivering`` → ``pending`` (not delivered, try again later), if ``worker`` holds the claim.

    Returns:
        Whether the row moved.
    """
    result = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.state == OutboxState.DELIVERING,
            OutboxMessage.claimed_by == worker[:WORKER_NAME_MAX],
        )
        .values(state=OutboxState.PENDING, claimed_by=None, claimed_at=None)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def get(session: Session, *, message_id: int) -> Optional[OutboxEntry]:
    """One row, or None."""
    row = session.execute(
        select(OutboxMessage).where(OutboxMessage.id == message_id).execution_options(populate_existing=True)
    ).scalar_one_or_none()
    return None if row is None else _entry(row)


def messages(
    session: Session, *, sender_id: str, include_control: bool = False
) -> List[OutboxEntry]:
    """Every outbox row of a conversation, oldest first (what the staff screen shows as sent / failed).

    Args:
        session: The caller's session.
        sender_id: The conversation.
        include_control: Also list the pause / resume instructions.
    """
    query = select(OutboxMessage).where(OutboxMessage.sender_id == sender_id)
    if not include_control:
        query = query.where(OutboxMessage.kind != OutboxKind.CONTROL)
    rows = session.execute(query.order_by(OutboxMessage.id).execution_options(populate_existing=True)).scalars()
    return [_entry(row) for row in rows]


def waiting_senders(session: Session, *, channel: str) -> List[str]:
    """The conversations on ``channel`` with rows still ``pending``."""
    return list(
        session.execute(
            select(OutboxMessage.sender_id)
            .where(OutboxMessage.channel == channel, OutboxMessage.state == OutboxState.PENDING)
            .distinct()
        ).scalars()
    )


# --- internals ------------------------------------------------------------------------------------------


def _finish(
    session: Session, message_id: int, worker: str, state: OutboxState, failure: Optional[str], via: Optional[str] = None
) -> bool:
    result = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            OutboxMessage.state == OutboxState.DELIVERING,
            OutboxMessage.claimed_by == worker[:WORKER_NAME_MAX],
        )
        .values(state=state, failure=failure, delivered_at=clock.now(), delivered_via=None if via is None else via[:VIA_MAX])
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def _entry(row: OutboxMessage) -> OutboxEntry:
    return OutboxEntry(
        id=int(row.id),
        sender_id=str(row.sender_id),
        channel=row.channel,
        kind=OutboxKind(row.kind),
        text=str(row.text),
        staff=row.staff,
        state=OutboxState(row.state),
        attempts=int(row.attempts or 0),
        failure=row.failure,
        created_at=_aware(row.created_at),
        delivered_at=None if row.delivered_at is None else _aware(row.delivered_at),
        template=_template(row),
        delivered_via=row.delivered_via,
    )


def _template(row: OutboxMessage) -> Optional[TemplateMessage]:
    if not row.template_id:
        return None
    try:
        data = json.loads(row.template_data or "{}")
    except ValueError:
        data = {}
    values = {str(name): str(value) for name, value in data.items()} if isinstance(data, dict) else {}
    return TemplateMessage(str(row.template_id), values)


def _aware(value: Any) -> dt.datetime:
    """A stored time in the estate's zone (SQLite keeps the naive wall time of :func:`bot.clock.now`)."""
    moment: dt.datetime = value
    if moment.tzinfo is None:
        return moment.replace(tzinfo=clock.zone())
    return moment.astimezone(clock.zone())
