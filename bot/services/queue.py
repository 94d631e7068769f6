"""The escalation queue: what the bot could not settle, who holds each conversation, and how long owners wait.

A conversation is in one of three states (Chatwoot's agent-bot model), kept on its escalations:

* ``pending`` — the bot holds it: nobody has taken it over yet, or a person handed it back;
* ``open`` — a person (``assignee``, a staff username) holds it, and the bot must stay silent;
* ``resolved`` — settled.

Being responsible for a case and holding its chat are two steps, as a team works: claiming (认领) or being
assigned (分派) an escalation makes a person its ``assignee`` — the one who follows it up — but leaves the
conversation with the bot; only an explicit takeover (接管, :func:`take_over`, called by
:func:`bot.conversations.handoff.take_over`, which also tells the owner a person joined and pauses Rasa) makes
it ``open`` and silences the bot. So the bot is never silenced without the owner being told. Claiming or
assigning a conversation a person already holds moves the hold to the new assignee (the owner was told when
the first person joined, and a person keeps answering).

The bot may escalate one conversation (one sender id) several times. A conversation is held by at most one
person, so taking or giving away one of its escalations takes every unresolved one of that conversation with
it, and a hand-back returns them all to the bot. Resolving settles one escalation; the person keeps the
conversation while another of its escalations is still open.

Transitions (anything else raises :class:`InvalidTransition`; taking what another person holds raises
:class:`HeldByAnother`; claiming what another person claimed or was assigned raises :class:`ClaimedByAnother`)::

    claim       pending → pending       (the claimant becomes the assignee — refused while another person is
                                         the assignee, a supervisor reassigns with ``assign``; open → open with
                                         ``reassign=True``, or when the claimant holds it)
    assign      pending → pending, open → open   (a supervisor names the assignee; an open one's hold moves)
    take_over   pending → open          (the person holds the chat; open → open when they already hold it)
    reply       open → open             (only the holder; sets ``first_response_at`` once)
    hand_back   open → pending          (only the holder; ``assignee`` and the times stay)
    resolve     pending | open → resolved   (open: only the holder; with a note of the outcome)

Every change is written to ``escalation_events`` with who did it and when; times come from
:mod:`bot.clock`. The caller owns the session and commits.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Union

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from bot import clock
from bot.db.models import Escalation, EscalationAction, EscalationEvent, EscalationState, Owner, Unit
from bot.services.rate_limits import serialise

STAFF_NAME_MAX = 64


class QueueError(Exception):
    """Base of every refusal by the queue."""


class EscalationNotFound(QueueError, LookupError):
    """No escalation has this id."""

    def __init__(self, escalation_id: int) -> None:
        super().__init__(f"escalation {escalation_id} does not exist")
        self.escalation_id = escalation_id


class InvalidTransition(QueueError):
    """The action is not allowed in the escalation's current state (e.g. claiming a resolved one)."""

    def __init__(self, escalation_id: int, action: EscalationAction, state: EscalationState) -> None:
        super().__init__(f"cannot {action.value} escalation {escalation_id}: it is {state.value}")
        self.escalation_id = escalation_id
        self.action = action
        self.state = state


class HeldByAnother(QueueError):
    """Another person holds the conversation (claim it with ``reassign=True``, or have it assigned)."""

    def __init__(self, escalation_id: int, action: EscalationAction, holder: str) -> None:
        super().__init__(f"cannot {action.value} escalation {escalation_id}: {holder} holds the conversation")
        self.escalation_id = escalation_id
        self.action = action
        self.holder = holder


class ClaimedByAnother(QueueError):
    """Another person is responsible for the pending conversation (claimed it, was assigned it or last held it).

    Claiming never silently takes a case from a colleague: a supervisor or manager reassigns it (``assign``).
    """

    def __init__(self, escalation_id: int, action: EscalationAction, assignee: str) -> None:
        super().__init__(f"cannot {action.value} escalation {escalation_id}: {assignee} is responsible for it")
        self.escalation_id = escalation_id
        self.action = action
        self.assignee = assignee


class OutcomeRequired(QueueError, ValueError):
    """Resolving needs a note of what came of it (1 to :data:`OUTCOME_MAX` characters)."""

    def __init__(self, escalation_id: int) -> None:
        super().__init__(f"escalation {escalation_id} is resolved with a note of its outcome")
        self.escalation_id = escalation_id


OUTCOME_MAX = 500


class Sort(str, enum.Enum):
    """Orders of the queue."""

    WAITING = "waiting"  # waiting longest first
    NEWEST = "newest"  # most recently escalated first
    REASON = "reason"  # by reason, then waiting longest first


@dataclass(frozen=True)
class QueueEntry:
    """One escalation as the queue shows it. Times are aware, in the estate's timezone.

    Attributes:
        id: The escalation's id.
        number: Its record number (RG...), as told to the owner.
        sender_id: The conversation (Rasa sender id).
        channel: The channel the owner wrote on (``socketio``, ``wechat``, ``rest``), if known.
        reason: Why the bot escalated (``bot.services.escalations.Reason`` values).
        detail: What the bot noted, if anything.
        state: ``pending``, ``open`` or ``resolved``.
        assignee: Who is responsible: holds it (``open``), or claimed, was assigned or last held it
            (``pending``); None if nobody ever took it.
        owner_id: The verified owner, if the conversation was verified.
        unit: The owner's unit code (e.g. ``3-2-501``), if known.
        created_at: When the bot escalated.
        claimed_at: When the current ``assignee`` took it.
        first_response_at: The first staff reply.
        resolved_at: When it was resolved.
        updated_at: The last change.
        waiting: How long the owner waited for a person: from ``created_at`` to the first response, or to
            the resolution, or to now.
        outcome: What came of it, as the person who resolved it wrote.
    """

    id: int
    number: Optional[str]
    sender_id: Optional[str]
    channel: Optional[str]
    reason: str
    detail: Optional[str]
    state: EscalationState
    assignee: Optional[str]
    owner_id: Optional[int]
    unit: Optional[str]
    created_at: dt.datetime
    claimed_at: Optional[dt.datetime]
    first_response_at: Optional[dt.datetime]
    resolved_at: Optional[dt.datetime]
    updated_at: dt.datetime
    waiting: dt.timedelta
    outcome: Optional[str] = None


@dataclass(frozen=True)
class HistoryEntry:
    """One recorded change of an escalation."""

    at: dt.datetime
    action: EscalationAction
    actor: str
    assignee: Optional[str]
    from_state: EscalationState
    to_state: EscalationState


StateLike = Union[EscalationState, str]


def list_escalations(
    session: Session,
    *,
    state: Union[StateLike, Iterable[StateLike], None] = None,
    reason: Optional[str] = None,
    channel: Optional[str] = None,
    assignee: Optional[str] = None,
    sender_id: Optional[str] = None,
    owner_id: Optional[int] = None,
    sort: Union[Sort, str] = Sort.WAITING,
) -> List[QueueEntry]:
    """The escalations matching every given filter, in the requested order.

    Args:
        session: The caller's session.
        state: One state (``"pending"`` or ``EscalationState.PENDING``) or several; None for all.
        reason: Only this reason.
        channel: Only this channel.
        assignee: Only escalations this person holds or last held.
        sender_id: Only this conversation.
        owner_id: Only this owner's escalations.
        sort: ``waiting`` (longest first), ``newest`` or ``reason``.

    Returns:
        The matching escalations as :class:`QueueEntry` values.

    Raises:
        ValueError: An unknown state or sort.
    """
    order = Sort(sort)
    query = (
        select(Escalation, Unit.code)
        .outerjoin(Owner, Escalation.owner_id == Owner.id)
        .outerjoin(Unit, Owner.unit_id == Unit.id)
    )
    if state is not None:
        states = [state] if isinstance(state, (EscalationState, str)) else list(state)
        query = query.where(Escalation.state.in_([EscalationState(value) for value in states]))
    for column, value in (
        (Escalation.reason, reason),
        (Escalation.channel, channel),
        (Escalation.assignee, assignee),
        (Escalation.sender_id, sender_id),
        (Escalation.owner_id, owner_id),
    ):
        if value is not None:
            query = query.where(column == value)
    now = clock.now()
    entries = [
        _entry(escalation, unit, now) for escalation, unit in session.execute(query.order_by(Escalation.id))
    ]
    if order is Sort.NEWEST:
        entries.sort(key=lambda entry: (entry.created_at, entry.id), reverse=True)
    elif order is Sort.REASON:
        entries.sort(key=lambda entry: (entry.reason, -entry.waiting, entry.id))
    else:
        entries.sort(key=lambda entry: (-entry.waiting, entry.id))
    return entries


def get(session: Session, *, escalation_id: int) -> QueueEntry:
    """One escalation as the queue shows it.

    Raises:
        EscalationNotFound: No escalation has this id.
    """
    return _as_entry(session, _load(session, escalation_id))


def holder(session: Session, *, sender_id: str) -> Optional[str]:
    """Who holds the conversation ``sender_id`` (the bot must stay silent), or None when the bot does."""
    return session.execute(
        select(Escalation.assignee)
        .where(Escalation.sender_id == sender_id, Escalation.state == EscalationState.OPEN)
        .order_by(Escalation.id.desc())
        .limit(1)
    ).scalar_one_or_none()


@dataclass(frozen=True)
class Holds:
    """Who holds which conversation, as one read of the queue saw it (:func:`holds`).

    Attributes:
        holders: Each held conversation's holder (the assignee of its latest ``open`` escalation).
        last_event_id: The newest escalation change (``escalation_events.id``) the read saw; 0 for none.
        changes: The changes after the ``changed_after`` the read was given: event id → conversation.
    """

    holders: Dict[str, str]
    last_event_id: int
    changes: Dict[int, str]


def holds(session: Session, *, changed_after: Optional[int] = None) -> Holds:
    """Every held conversation and, optionally, the escalation changes after event ``changed_after``.

    One read of the open escalations (few: only those a person holds now) and of the newest changes, for a
    process that keeps the holders in memory (:class:`bot.conversations.holds.HoldWatch`).

    Args:
        session: The caller's session.
        changed_after: An ``escalation_events.id``; the changes after it are returned in ``changes``. None: no
            changes are read.
    """
    holders: Dict[str, str] = {}
    rows = session.execute(
        select(Escalation.sender_id, Escalation.assignee)
        .where(Escalation.state == EscalationState.OPEN)
        .order_by(Escalation.id)
    )
    for sender_id, assignee in rows:
        holders[str(sender_id)] = str(assignee)  # the latest open escalation names the holder, as in holder()
    last = int(session.execute(select(func.max(EscalationEvent.id))).scalar_one_or_none() or 0)
    changes: Dict[int, str] = {}
    if changed_after is not None and last > changed_after:
        changes = {
            int(event_id): str(sender_id)
            for event_id, sender_id in session.execute(
                select(EscalationEvent.id, Escalation.sender_id)
                .join(Escalation, EscalationEvent.escalation_id == Escalation.id)
                .where(EscalationEvent.id > changed_after)
            )
        }
    return Holds(holders, last, changes)


def history(session: Session, *, escalation_id: int) -> List[HistoryEntry]:
    """Every recorded change of an escalation, oldest first.

    Raises:
        EscalationNotFound: No escalation has this id.
    """
    _load(session, escalation_id)
    rows = session.execute(
        select(EscalationEvent)
        .where(EscalationEvent.escalation_id == escalation_id)
        .order_by(EscalationEvent.id)
    ).scalars()
    return [
        HistoryEntry(
            at=_aware(row.at),
            action=row.action,
            actor=row.actor,
            assignee=row.assignee,
            from_state=row.from_state,
            to_state=row.to_state,
        )
        for row in rows
    ]


def claim(session: Session, *, escalation_id: int, staff: str, reassign: bool = False) -> QueueEntry:
    """``staff`` takes responsibility for the conversation: its unresolved escalations get them as assignee.

    The state does not change: a pending conversation stays with the bot until someone takes it over
    (:func:`take_over`); an open one (with ``reassign``) stays held, now by ``staff``. Claiming what one
    already holds or is assigned changes nothing.

    Args:
        session: The caller's session.
        escalation_id: The escalation chosen in the queue.
        staff: The staff username taking it.
        reassign: Take it even when another person holds the conversation.

    Returns:
        The escalation after the claim.

    Raises:
        EscalationNotFound: No escalation has this id.
        InvalidTransition: It is resolved.
        HeldByAnother: Another person holds the conversation and ``reassign`` is false.
        ClaimedByAnother: Another person is the assignee of the pending conversation and ``reassign`` is false.
    """
    return _take(
        session,
        escalation_id,
        staff=_name(staff),
        actor=_name(staff),
        action=EscalationAction.CLAIM,
        reassign=reassign,
    )


def assign(session: Session, *, escalation_id: int, staff: str, by: str) -> QueueEntry:
    """``by`` makes ``staff`` the assignee (also instead of another person); the state does not change.

    A pending conversation stays with the bot; an open one is now held by ``staff``.

    Raises:
        EscalationNotFound: No escalation has this id.
        InvalidTransition: It is resolved.
    """
    return _take(
        session,
        escalation_id,
        staff=_name(staff),
        actor=_name(by),
        action=EscalationAction.ASSIGN,
        reassign=True,
    )


def take_over(session: Session, *, escalation_id: int, staff: str) -> QueueEntry:
    """``staff`` holds the conversation: its unresolved escalations become ``open`` with them as assignee.

    Call it through :func:`bot.conversations.handoff.take_over`, which tells the owner and pauses Rasa in
    the same transaction. Taking over what one already holds changes nothing.

    Raises:
        EscalationNotFound: No escalation has this id.
        InvalidTransition: It is resolved.
        HeldByAnother: Another person holds the conversation.
    """
    return _take(
        session,
        escalation_id,
        staff=_name(staff),
        actor=_name(staff),
        action=EscalationAction.TAKE_OVER,
        reassign=False,
    )


def record_staff_reply(session: Session, *, escalation_id: int, staff: str) -> QueueEntry:
    """Note that ``staff`` answered the owner; the first answer sets ``first_response_at`` (once).

    The answer counts for every escalation of the conversation that ``staff`` holds.

    Raises:
        EscalationNotFound: No escalation has this id.
        InvalidTransition: It is not ``open`` (a person must hold the conversation to answer in it).
        HeldByAnother: Another person holds it.
    """
    staff = _name(staff)
    escalation, siblings = _lock_conversation(session, escalation_id)
    _require_holder(escalation, staff, EscalationAction.REPLY)
    now = clock.now()
    for held in siblings:
        if held.state is EscalationState.OPEN and held.assignee == staff:
            if held.first_response_at is None:
                held.first_response_at = now
            _record(
                session, held, EscalationAction.REPLY, actor=staff, to_state=EscalationState.OPEN, now=now
            )
    session.flush()
    return _as_entry(session, escalation)


def hand_back(session: Session, *, escalation_id: int, staff: str) -> QueueEntry:
    """``staff`` hands the conversation back to the bot: its open escalations become ``pending``.

    ``assignee``, ``claimed_at`` and ``first_response_at`` stay as they were; the history keeps the change.

    Raises:
        EscalationNotFound: No escalation has this id.
        InvalidTransition: It is not ``open``.
        HeldByAnother: Another person holds it.
    """
    staff = _name(staff)
    escalation, siblings = _lock_conversation(session, escalation_id)
    _require_holder(escalation, staff, EscalationAction.HAND_BACK)
    now = clock.now()
    for held in siblings:
        if held.state is EscalationState.OPEN and held.assignee == staff:
            _record(
                session,
                held,
                EscalationAction.HAND_BACK,
                actor=staff,
                to_state=EscalationState.PENDING,
                now=now,
            )
    session.flush()
    return _as_entry(session, escalation)


def resolve(session: Session, *, escalation_id: int, staff: str, outcome: str) -> QueueEntry:
    """``staff`` settles the escalation with a note of its outcome: it becomes ``resolved`` with ``resolved_at``.

    A pending one may be resolved by anyone (settled outside the chat, e.g. by phone); an open one only by
    the person who holds it.

    Args:
        session: The caller's session.
        escalation_id: The escalation.
        staff: Who resolves it.
        outcome: What came of it (1 to :data:`OUTCOME_MAX` characters, surrounding space dropped).

    Raises:
        EscalationNotFound: No escalation has this id.
        OutcomeRequired: The note is empty or too long.
        InvalidTransition: It is already resolved.
        HeldByAnother: Another person holds it.
    """
    staff = _name(staff)
    escalation, _ = _lock_conversation(session, escalation_id)
    if escalation.state is EscalationState.OPEN:
        _require_holder(escalation, staff, EscalationAction.RESOLVE)
    elif escalation.state is not EscalationState.PENDING:
        raise InvalidTransition(escalation.id, EscalationAction.RESOLVE, escalation.state)
    note = (outcome or "").strip()
    if not note or len(note) > OUTCOME_MAX:
        raise OutcomeRequired(escalation_id)
    now = clock.now()
    escalation.resolved_at = now
    escalation.outcome = note
    _record(
        session, escalation, EscalationAction.RESOLVE, actor=staff, to_state=EscalationState.RESOLVED, now=now
    )
    session.flush()
    return _as_entry(session, escalation)


# --- internals ------------------------------------------------------------------------------------------


def _name(staff: str) -> str:
    name = (staff or "").strip()
    if not name or len(name) > STAFF_NAME_MAX:
        raise ValueError(f"a staff username of 1 to {STAFF_NAME_MAX} characters is required, not {staff!r}")
    return name


def _load(session: Session, escalation_id: int) -> Escalation:
    escalation = session.get(Escalation, escalation_id)
    if escalation is None:
        raise EscalationNotFound(escalation_id)
    return escalation


def _lock_conversation(session: Session, escalation_id: int) -> tuple[Escalation, List[Escalation]]:
    """The escalation and its conversation's unresolved escalations, read fresh after taking the lock.

    On PostgreSQL a transaction-scoped advisory lock per conversation makes two people acting on one
    conversation take turns (SQLite's write transactions already do).
    """
    escalation = _load(session, escalation_id)
    conversation = escalation.sender_id or f"#{escalation.id}"
    serialise(session, f"escalation-conversation:{conversation}")
    query = select(Escalation).execution_options(populate_existing=True)
    if escalation.sender_id is None:
        query = query.where(Escalation.id == escalation_id)
    else:
        query = query.where(
            Escalation.sender_id == escalation.sender_id,
            or_(Escalation.state != EscalationState.RESOLVED, Escalation.id == escalation_id),
        )
    rows = list(session.execute(query.order_by(Escalation.id)).scalars())
    current = next(row for row in rows if row.id == escalation_id)
    return current, [row for row in rows if row.state is not EscalationState.RESOLVED]


def _require_holder(escalation: Escalation, staff: str, action: EscalationAction) -> None:
    if escalation.state is not EscalationState.OPEN:
        raise InvalidTransition(escalation.id, action, escalation.state)
    if escalation.assignee != staff:
        raise HeldByAnother(escalation.id, action, str(escalation.assignee))


def _take(
    session: Session, escalation_id: int, *, staff: str, actor: str, action: EscalationAction, reassign: bool
) -> QueueEntry:
    escalation, siblings = _lock_conversation(session, escalation_id)
    if escalation.state is EscalationState.RESOLVED:
        raise InvalidTransition(escalation.id, action, escalation.state)
    others = [row for row in siblings if row.state is EscalationState.OPEN and row.assignee != staff]
    if others and not reassign:
        raise HeldByAnother(escalation.id, action, str(others[0].assignee))
    if action is EscalationAction.CLAIM and not reassign:
        # A pending case a colleague claimed (or was assigned, or handed back) stays theirs: taking it is
        # a supervisor's 分派, never a silent claim.
        claimed = [row for row in siblings if row.assignee is not None and row.assignee != staff]
        if claimed:
            raise ClaimedByAnother(escalation.id, action, str(claimed[0].assignee))
    now = clock.now()
    holds = action is EscalationAction.TAKE_OVER
    for row in siblings:
        to_state = EscalationState.OPEN if holds else row.state
        if row.assignee == staff and row.state is to_state:
            continue  # already theirs, in this state
        if row.assignee != staff or row.claimed_at is None:
            row.claimed_at = now
        row.assignee = staff
        _record(session, row, action, actor=actor, to_state=to_state, now=now)
    session.flush()
    return _as_entry(session, escalation)


def _record(
    session: Session,
    escalation: Escalation,
    action: EscalationAction,
    *,
    actor: str,
    to_state: EscalationState,
    now: dt.datetime,
) -> None:
    session.add(
        EscalationEvent(
            escalation_id=escalation.id,
            at=now,
            action=action,
            actor=actor,
            assignee=escalation.assignee,
            from_state=escalation.state,
            to_state=to_state,
        )
    )
    escalation.state = to_state
    escalation.updated_at = now


def _as_entry(session: Session, escalation: Escalation) -> QueueEntry:
    unit = None
    if escalation.owner_id is not None:
        unit = session.execute(
            select(Unit.code).join(Owner, Owner.unit_id == Unit.id).where(Owner.id == escalation.owner_id)
        ).scalar_one_or_none()
    return _entry(escalation, unit, clock.now())


def _entry(escalation: Escalation, unit: Optional[str], now: dt.datetime) -> QueueEntry:
    created_at = _aware(escalation.created_at)
    first_response_at = _maybe_aware(escalation.first_response_at)
    resolved_at = _maybe_aware(escalation.resolved_at)
    until = first_response_at or resolved_at or now
    return QueueEntry(
        id=escalation.id,
        number=escalation.number,
        sender_id=escalation.sender_id,
        channel=escalation.channel,
        reason=escalation.reason,
        detail=escalation.detail,
        state=escalation.state,
        assignee=escalation.assignee,
        owner_id=escalation.owner_id,
        unit=unit,
        created_at=created_at,
        claimed_at=_maybe_aware(escalation.claimed_at),
        first_response_at=first_response_at,
        resolved_at=resolved_at,
        updated_at=_aware(escalation.updated_at),
        outcome=escalation.outcome,
        waiting=max(until - created_at, dt.timedelta(0)),
    )


def _aware(value: Any) -> dt.datetime:
    """A stored time in the estate's timezone.

    PostgreSQL returns aware values. SQLite keeps the wall time of the aware value written, which is always
    :func:`bot.clock.now` (the estate's zone) for these columns, so a naive value is read in that zone.
    """
    moment: dt.datetime = value
    if moment.tzinfo is None:
        return moment.replace(tzinfo=clock.zone())
    return moment.astimezone(clock.zone())


def _maybe_aware(value: Any) -> Optional[dt.datetime]:
    return None if value is None else _aware(value)
