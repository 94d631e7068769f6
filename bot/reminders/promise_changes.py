"""A payment promise written or moved, and its reminders with it (day before, due morning).

The promise's rules (the date window, the amount, how a date is said) are :mod:`bot.services.promises`;
what follows from a promise for the reminders lives here, beside the schedule it changes.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.models import PaymentPromise, PromiseStatus
from bot.reminders import schedule


def recorded(session: Session, *, promise: PaymentPromise) -> None:
    """After a promise is written (same transaction): schedule its reminders (day before, due morning)."""
    schedule.schedule_for_promise(session, promise=promise)


def reschedule(session: Session, *, promise: PaymentPromise, new_date: dt.date) -> PaymentPromise:
    """Move an open promise to ``new_date``, counting how often it moved, and move its reminders too."""
    if PromiseStatus(promise.status) is PromiseStatus.KEPT:
        raise ValueError("a kept promise is not rescheduled")
    promise.due_date = new_date
    promise.status = PromiseStatus.OPEN
    promise.reschedule_count = int(promise.reschedule_count or 0) + 1
    schedule.reschedule_promise(session, promise=promise, new_date=new_date)
    session.flush()
    return promise


def reschedule_latest(
    session: Session,
    *,
    owner_id: int,
    new_date: dt.date,
    amount: Optional[Decimal] = None,
    sender_id: Optional[str] = None,
    channel: Optional[str] = None,
) -> Optional[PaymentPromise]:
    """A new date from an owner with an open promise moves that promise (a broken one stays as it was).

    The promise follows the conversation the owner last promised in: when ``sender_id`` is another
    conversation than the one the promise was made in, the promise takes it over and so do its unsent
    reminders (on ``channel``, when that conversation is verified for the owner; otherwise the owner's
    verified conversation, as for a new promise). A person reads the promise where it was last confirmed.

    Args:
        session: The caller's session.
        owner_id: The verified owner.
        new_date: The date the owner now promises.
        amount: The amount now promised (None: unchanged).
        sender_id: The conversation the owner promised in now (None: the promise keeps its own).
        channel: That conversation's channel.

    Returns:
        The moved promise, or None when the owner has no open promise (the caller records a new one).
    """
    promise = session.execute(
        select(PaymentPromise)
        .where(PaymentPromise.owner_id == owner_id, PaymentPromise.status == PromiseStatus.OPEN)
        .order_by(PaymentPromise.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if promise is None:
        return None
    if amount is not None:
        promise.amount = amount
    if sender_id and promise.sender_id != sender_id:
        promise.sender_id = sender_id
    if promise.due_date != new_date:  # the same date again (or a retried message): the date does not move
        reschedule(session, promise=promise, new_date=new_date)
    schedule.retarget_promise(session, promise=promise, channel=channel)
    session.flush()
    return promise
