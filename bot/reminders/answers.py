"""Answers to a reminder that the services check: "已经交了" against the payments received.

An owner who answers a reminder with "I have paid" is first checked against the payments
(:func:`bot.owners.payments.paid_since`) since the promise was made, or for a monthly notice since the start
of its month: a payment found is confirmed to the (verified) owner instead of opening a bill check.
"""

from __future__ import annotations

import datetime as dt
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import clock, wording
from bot.db.models import Owner, PaymentPromise
from bot.db.payment_models import Payment
from bot.db.reminder_models import Reminder, ReminderState
from bot.owners import payments
from bot.owners.arrears import as_utc
from bot.reminders.schedule import local

# A reminder older than this is no longer what the owner is answering.
ANSWER_WINDOW = dt.timedelta(days=14)


def payment_found(session: Session, *, owner_id: int) -> Optional[str]:
    """What to tell a verified owner who says they paid after a reminder, or None (open a bill check).

    Args:
        session: The caller's session.
        owner_id: The verified owner.

    Returns:
        The confirmation (``reminders.payment_found``) naming the payment found, or None when no reminder was
        sent lately or nothing was paid since.
    """
    owner = session.get(Owner, owner_id)
    if owner is None:
        return None
    since_sent = (clock.now() - ANSWER_WINDOW).astimezone(dt.timezone.utc)
    reminder = session.execute(
        select(Reminder)
        .where(Reminder.owner_id == owner_id, Reminder.state == ReminderState.SENT, Reminder.sent_at >= since_sent)
        .order_by(Reminder.sent_at.desc())
        .limit(1)
    ).scalar_one_or_none()
    if reminder is None:
        return None
    start: dt.datetime
    promise = session.get(PaymentPromise, reminder.promise_id) if reminder.promise_id is not None else None
    if promise is not None and promise.created_at is not None:
        made = promise.created_at
        start = made.replace(tzinfo=clock.zone()) if made.tzinfo is None else made
    else:
        due = local(reminder.first_due_at)
        start = due.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    paid = payments.paid_since(session, unit=int(owner.unit_id), since=start)
    if paid <= 0:
        return None
    # The date named is that of a payment in the sum: the latest not voided at or after ``start`` (not a voided
    # one, nor one from before the promise or month that the owner is not answering about).
    counted = [
        as_utc(paid_at)
        for (paid_at,) in session.execute(
            select(Payment.paid_at).where(Payment.unit_id == owner.unit_id, Payment.voided_at.is_(None))
        )
        if as_utc(paid_at) >= start.astimezone(dt.timezone.utc)
    ]
    when = clock.local_date(max(counted)) if counted else clock.today()
    return wording.text("reminders.payment_found", amount=f"{paid:,.2f}", month=when.month, day=when.day)
