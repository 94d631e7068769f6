"""Writing reminder rows: when a promise is recorded, moved or broken, and at the start of each month.

Scheduling is idempotent: every row has a ``dedupe_key`` (unique), so running a job twice, or in two
workers, writes each reminder once. Times are chosen in the estate's zone and stored in UTC. The target
conversation is the owner's verified one (a ``ConversationLink`` on a trusted channel), preferring the
conversation the promise was made in; without one the row is still written and the send-time policy skips it
as ``unverified``, so staff see why nothing went out. Nothing is scheduled for a former owner (retired by the
import's roster or a transfer, :mod:`bot.owners.ownership`), and a closed link is no target.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import List, Optional, Tuple

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import clock
from bot.db.models import ConversationLink, Owner, PaymentPromise, PromiseStatus
from bot.db.reminder_models import PENDING_STATES, Reminder, ReminderOptOut, ReminderPurpose, ReminderState
from bot.owners import arrears
from bot.owners.ownership import CURRENT
from bot.services.identity import TRUSTED_LINK_CHANNELS

DAY_BEFORE_AT = dt.time(10, 0)
DUE_MORNING_AT = dt.time(9, 0)
FOLLOWUP_AT = dt.time(10, 0)
FOLLOWUP_MAX_AGE_DAYS = 7  # a broken promise is followed up only when its window ended at most this long ago
MONTHLY_AT = dt.time(10, 0)
# A monthly notice not scheduled by this day of the month (the worker was down) is not sent that month.
MONTHLY_LATEST_DAY = 7
SYSTEM = "system"


@dataclass(frozen=True)
class ReminderView:
    """A reminder as plain data (staff screens, tests)."""

    id: int
    owner_id: int
    unit_id: int
    sender_id: Optional[str]
    channel: Optional[str]
    purpose: ReminderPurpose
    due_at: dt.datetime
    first_due_at: dt.datetime
    state: ReminderState
    reason: Optional[str]
    promise_id: Optional[int]
    attempts: int
    delivered_via: Optional[str]
    sent_at: Optional[dt.datetime]
    created_at: dt.datetime
    cancelled_by: Optional[str]


def view(row: Reminder) -> ReminderView:
    """Plain data of a row, times in the estate's zone."""
    return ReminderView(
        id=int(row.id),
        owner_id=int(row.owner_id),
        unit_id=int(row.unit_id),
        sender_id=row.sender_id,
        channel=row.channel,
        purpose=ReminderPurpose(row.purpose),
        due_at=local(row.due_at),
        first_due_at=local(row.first_due_at),
        state=ReminderState(row.state),
        reason=row.reason,
        promise_id=None if row.promise_id is None else int(row.promise_id),
        attempts=int(row.attempts or 0),
        delivered_via=row.delivered_via,
        sent_at=None if row.sent_at is None else local(row.sent_at),
        created_at=local(row.created_at),
        cancelled_by=row.cancelled_by,
    )


def local(value: dt.datetime) -> dt.datetime:
    """A time stored by this package (UTC; naive on SQLite) in the estate's zone."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(clock.zone())


def at(day: dt.date, time: dt.time) -> dt.datetime:
    """``day`` at ``time`` in the estate's zone."""
    return dt.datetime.combine(day, time, tzinfo=clock.zone())


def target(
    session: Session, *, owner_id: int, prefer_sender: Optional[str] = None, prefer_channel: Optional[str] = None
) -> Tuple[Optional[str], Optional[str]]:
    """The owner's verified conversation (sender id, channel), the preferred one if it is verified.

    ``prefer_channel`` narrows the preferred conversation to one channel (a sender id is only unique per
    channel); None: any trusted channel.
    """
    links = list(
        session.execute(
            select(ConversationLink)
            .join(Owner, Owner.id == ConversationLink.owner_id)
            .where(
                ConversationLink.owner_id == owner_id,
                ConversationLink.channel.in_(sorted(TRUSTED_LINK_CHANNELS)),
                ConversationLink.closed_at.is_(None),
                CURRENT,
            )
            .order_by(ConversationLink.verified_at.desc(), ConversationLink.id.desc())
        ).scalars()
    )
    for link in links:
        if prefer_sender and link.sender_id == prefer_sender and prefer_channel in (None, link.channel):
            return str(link.sender_id), str(link.channel)
    if links:
        return str(links[0].sender_id), str(links[0].channel)
    return None, None


def schedule_for_promise(session: Session, *, promise: PaymentPromise) -> List[Reminder]:
    """The day-before (10:00) and due-morning (09:00) reminders of a newly recorded promise.

    A time already past when the promise is made is not scheduled (a promise for tomorrow made at 11:00
    gets no "due tomorrow" notice). Idempotent.

    Args:
        session: The caller's session (the promise's transaction).
        promise: The stored promise (with its id).

    Returns:
        The reminders of the promise that are still to be sent.
    """
    if PromiseStatus(promise.status) is not PromiseStatus.OPEN:
        return []
    owner = session.get(Owner, promise.owner_id)
    if owner is None or not owner.current:
        return []
    sender, channel = target(session, owner_id=int(owner.id), prefer_sender=promise.sender_id)
    written = []
    for purpose, moment in _promise_times(promise.due_date):
        if moment <= clock.now():
            continue
        written.append(
            _add(
                session,
                owner=owner,
                sender_id=sender,
                channel=channel,
                purpose=purpose,
                due_at=moment,
                promise_id=int(promise.id),
                dedupe_key=f"promise:{promise.id}:{purpose.value}:{promise.due_date.isoformat()}",
            )
        )
    return [row for row in written if ReminderState(row.state) in PENDING_STATES]


def reschedule_promise(session: Session, *, promise: PaymentPromise, new_date: dt.date) -> List[Reminder]:
    """Move a promise's unsent day-before and due-morning reminders to ``new_date`` (state ``moved``).

    The caller changes the promise itself (its date and reschedule count); reminders already sent stay as
    history, and a purpose with nothing left to move gets a new row.

    Returns:
        The promise's reminders still to be sent, at their new times.
    """
    now = clock.now()
    pending = {
        ReminderPurpose(row.purpose): row
        for row in session.execute(
            select(Reminder).where(
                Reminder.promise_id == promise.id,
                Reminder.state.in_(PENDING_STATES),
                Reminder.purpose.in_([ReminderPurpose.DAY_BEFORE, ReminderPurpose.DUE_MORNING]),
            )
        ).scalars()
    }
    result: List[Reminder] = []
    for purpose, moment in _promise_times(new_date):
        row = pending.pop(purpose, None)
        key = f"promise:{promise.id}:{purpose.value}:{new_date.isoformat()}"
        if moment <= now:
            if row is not None:
                _finish(row, ReminderState.CANCELLED, "promise_rescheduled", SYSTEM)
            continue
        _free_key(session, key=key, keep=row)
        if row is not None:
            row.due_at = moment.astimezone(dt.timezone.utc)
            row.state = ReminderState.MOVED
            row.reason = "promise_rescheduled"
            row.dedupe_key = key
            row.updated_at = clock.utc_now()
            result.append(row)
            continue
        owner = session.get(Owner, promise.owner_id)
        if owner is None or not owner.current:
            continue
        sender, channel = target(session, owner_id=int(owner.id), prefer_sender=promise.sender_id)
        result.append(
            _add(
                session, owner=owner, sender_id=sender, channel=channel, purpose=purpose, due_at=moment,
                promise_id=int(promise.id), dedupe_key=key,
            )
        )
    session.flush()
    return result


def retarget_promise(session: Session, *, promise: PaymentPromise, channel: Optional[str] = None) -> List[Reminder]:
    """Point a promise's unsent reminders at the promise's conversation (``promise.sender_id`` on ``channel``).

    When that conversation is not verified for the owner on a trusted channel, the owner's newest verified
    conversation is the target, as for a new promise (:func:`target`).

    Returns:
        The promise's reminders still to be sent.
    """
    owner = session.get(Owner, promise.owner_id)
    if owner is None or not owner.current:
        return []
    sender, to = target(session, owner_id=int(owner.id), prefer_sender=promise.sender_id, prefer_channel=channel)
    pending = list(
        session.execute(
            select(Reminder).where(Reminder.promise_id == promise.id, Reminder.state.in_(PENDING_STATES))
        ).scalars()
    )
    for row in pending:
        if (row.sender_id, row.channel) != (sender, to):
            row.sender_id, row.channel = sender, to
            row.updated_at = clock.utc_now()
    session.flush()
    return pending


def schedule_broken_followups(session: Session) -> List[Reminder]:
    """One follow-up (10:00, today or tomorrow) for every broken promise that has none. Idempotent."""
    now = clock.now()
    moment = at(now.date(), FOLLOWUP_AT)
    if moment <= now:
        moment = at(now.date() + dt.timedelta(days=1), FOLLOWUP_AT)
    from bot.owners import payments

    written = []
    followed = select(Reminder.promise_id).where(
        Reminder.purpose == ReminderPurpose.BROKEN_FOLLOWUP, Reminder.promise_id.is_not(None)
    )
    broken = session.execute(
        select(PaymentPromise).where(
            PaymentPromise.status == PromiseStatus.BROKEN, PaymentPromise.id.not_in(followed.scalar_subquery())
        ).order_by(PaymentPromise.id)
    ).scalars().all()
    for promise in broken:
        # Only a promise broken lately: after a first deployment, or a voided payment re-judging an old promise,
        # nobody is told about a date months ago.
        if (now.date() - payments.window(promise)[1]).days > FOLLOWUP_MAX_AGE_DAYS:
            continue
        owner = session.get(Owner, promise.owner_id)
        if owner is None or not owner.current:
            continue
        cancel_for_promise(session, promise_id=int(promise.id), reason="promise_broken")
        sender, channel = target(session, owner_id=int(owner.id), prefer_sender=promise.sender_id)
        written.append(
            _add(
                session, owner=owner, sender_id=sender, channel=channel, purpose=ReminderPurpose.BROKEN_FOLLOWUP,
                due_at=moment, promise_id=int(promise.id), dedupe_key=f"broken:{promise.id}",
            )
        )
    return written


def schedule_monthly(session: Session, *, today: dt.date) -> List[Reminder]:
    """The monthly bill notice (the 1st, 10:00) to every current owner in arrears. Idempotent; run daily.

    Only in the first :data:`MONTHLY_LATEST_DAY` days of a month: a worker that was down longer does not
    send the start-of-month notice in the middle of the month.

    Returns:
        The notices written by this call (none when they already exist).
    """
    if today.day > MONTHLY_LATEST_DAY:
        return []
    period = f"{today:%Y-%m}"
    moment = at(today.replace(day=1), MONTHLY_AT)
    existing = set(
        session.execute(
            select(Reminder.owner_id).where(
                Reminder.purpose == ReminderPurpose.MONTHLY_BILL, Reminder.period == period
            )
        ).scalars()
    )
    written = []
    for owner in session.execute(select(Owner).where(CURRENT).order_by(Owner.id)).scalars().all():
        if owner.id in existing:
            continue
        if arrears.summary(session, owner_id=int(owner.id), today=today).amount <= 0:
            continue
        sender, channel = target(session, owner_id=int(owner.id))
        written.append(
            _add(
                session, owner=owner, sender_id=sender, channel=channel, purpose=ReminderPurpose.MONTHLY_BILL,
                due_at=moment, period=period, dedupe_key=f"monthly:{owner.id}:{period}",
            )
        )
    return written


def cancel(session: Session, *, reminder_id: int, actor: str, reason: str = "staff") -> bool:
    """Cancel a reminder still to be sent (a staff member's decision). Whether it was cancelled."""
    result = session.execute(
        update(Reminder)
        .where(Reminder.id == reminder_id, Reminder.state.in_(PENDING_STATES))
        .values(state=ReminderState.CANCELLED, reason=reason, cancelled_by=actor[:64], updated_at=clock.utc_now())
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def cancel_for_promise(session: Session, *, promise_id: int, reason: str) -> int:
    """Cancel a promise's reminders still to be sent (it was kept, broken or withdrawn). How many."""
    result = session.execute(
        update(Reminder)
        .where(Reminder.promise_id == promise_id, Reminder.state.in_(PENDING_STATES))
        .values(state=ReminderState.CANCELLED, reason=reason, cancelled_by=SYSTEM, updated_at=clock.utc_now())
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount or 0)


def record_opt_out(
    session: Session,
    *,
    owner_id: Optional[int],
    sender_id: Optional[str],
    channel: Optional[str],
    how: str,
    text: Optional[str] = None,
) -> ReminderOptOut:
    """Record that an owner (with ``owner_id``: their unit) or a conversation wants no more reminders.

    The pending reminders it covers are skipped at once, so staff see it; the send-time policy also checks
    the opt-out, so a reminder scheduled later is skipped too.
    """
    unit_id = None
    if owner_id is not None:
        owner = session.get(Owner, owner_id)
        unit_id = None if owner is None else int(owner.unit_id)
    row = ReminderOptOut(
        unit_id=unit_id,
        owner_id=owner_id,
        sender_id=sender_id,
        channel=channel,
        how=how,
        text=None if text is None else text[:500],
        opted_out_at=clock.utc_now(),
    )
    session.add(row)
    covered = []
    if owner_id is not None:
        covered.append(Reminder.owner_id == owner_id)
    if unit_id is not None:
        covered.append(Reminder.unit_id == unit_id)
    if sender_id:
        covered.append(Reminder.sender_id == sender_id)
    if covered:
        from sqlalchemy import or_

        session.execute(
            update(Reminder)
            .where(Reminder.state.in_(PENDING_STATES), or_(*covered))
            .values(state=ReminderState.SKIPPED, reason="opted_out", updated_at=clock.utc_now())
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return row


def history(session: Session, *, owner_id: int, limit: int = 100) -> List[ReminderView]:
    """An owner's reminders, latest due first (the owner page)."""
    rows = session.execute(
        select(Reminder).where(Reminder.owner_id == owner_id).order_by(Reminder.due_at.desc(), Reminder.id.desc()).limit(limit)
    ).scalars()
    return [view(row) for row in rows]


def listing(
    session: Session,
    *,
    states: Optional[List[ReminderState]] = None,
    newest_first: bool = False,
    limit: int = 500,
    offset: int = 0,
) -> List[ReminderView]:
    """Reminders for the staff screen, ``limit`` rows from ``offset``.

    By due time: soonest first for what is still to go out, latest first (``newest_first``) for history.
    """
    query = select(Reminder)
    if states:
        query = query.where(Reminder.state.in_(states))
    order = (Reminder.due_at.desc(), Reminder.id.desc()) if newest_first else (Reminder.due_at, Reminder.id)
    rows = session.execute(query.order_by(*order).limit(limit).offset(max(offset, 0))).scalars()
    return [view(row) for row in rows]


# --- internals ------------------------------------------------------------------------------------------


def _promise_times(due_date: dt.date) -> List[Tuple[ReminderPurpose, dt.datetime]]:
    return [
        (ReminderPurpose.DAY_BEFORE, at(due_date - dt.timedelta(days=1), DAY_BEFORE_AT)),
        (ReminderPurpose.DUE_MORNING, at(due_date, DUE_MORNING_AT)),
    ]


def _free_key(session: Session, *, key: str, keep: Optional[Reminder]) -> None:
    """Retire the row holding ``key`` unless it is ``keep``, so a moved or new row can take the key.

    A promise moved back to a date it had before (A -> B -> A) finds its earlier rows for that date still
    holding ``promise:<id>:<purpose>:<A>`` (sent, skipped or cancelled). They stay as history under a
    retired key; one still pending is cancelled, the reschedule replacing it.
    """
    holder = session.execute(select(Reminder).where(Reminder.dedupe_key == key)).scalar_one_or_none()
    if holder is None or (keep is not None and holder.id == keep.id):
        return
    if ReminderState(holder.state) in PENDING_STATES:
        _finish(holder, ReminderState.CANCELLED, "promise_rescheduled", SYSTEM)
    holder.dedupe_key = f"{key}:retired:{holder.id}"[:128]
    holder.updated_at = clock.utc_now()
    # Flushed now: the unit of work may otherwise write the moved row's new key first and hit the constraint.
    session.flush()


def _finish(row: Reminder, state: ReminderState, reason: str, actor: Optional[str]) -> None:
    row.state = state
    row.reason = reason
    row.cancelled_by = actor if state is ReminderState.CANCELLED else row.cancelled_by
    row.updated_at = clock.utc_now()


def _add(
    session: Session,
    *,
    owner: Owner,
    sender_id: Optional[str],
    channel: Optional[str],
    purpose: ReminderPurpose,
    due_at: dt.datetime,
    dedupe_key: str,
    promise_id: Optional[int] = None,
    period: Optional[str] = None,
) -> Reminder:
    """Insert a reminder, or return the one with the same key (another worker may have just written it)."""
    existing = session.execute(select(Reminder).where(Reminder.dedupe_key == dedupe_key)).scalar_one_or_none()
    if existing is not None:
        return existing
    stored = due_at.astimezone(dt.timezone.utc)
    row = Reminder(
        owner_id=int(owner.id),
        unit_id=int(owner.unit_id),
        sender_id=sender_id,
        channel=channel,
        purpose=purpose,
        due_at=stored,
        first_due_at=stored,
        state=ReminderState.SCHEDULED,
        promise_id=promise_id,
        period=period,
        dedupe_key=dedupe_key,
        attempts=0,
        created_at=clock.utc_now(),
    )
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        winner = session.execute(select(Reminder).where(Reminder.dedupe_key == dedupe_key)).scalar_one_or_none()
        if winner is None:
            raise
        return winner
    return row
