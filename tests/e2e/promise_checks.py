"""What the database must hold after an owner promised a date in a conversation (shared e2e server).

The e2e servers share one demo database for the whole session, so a demo owner may already hold an open
promise from an earlier test's conversation. A new date from that owner moves it (``reschedule_count`` up
when the date changed) and the promise, with its unsent reminders, follows the conversation the owner
promised in last. :func:`open_promise` is read before the conversation, :func:`assert_promised` after it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db import models
from bot.db.reminder_models import PENDING_STATES, Reminder, ReminderPurpose
from bot.db.session import session_scope
from bot.owners.units import parse_unit
from bot.reminders import schedule


@dataclass(frozen=True)
class Promised:
    """An open promise as stored."""

    id: int
    number: str
    sender_id: Optional[str]
    due_date: dt.date
    amount: Decimal
    reschedule_count: int


def _owner_id(session: Session, room: str) -> int:
    address = parse_unit(room)
    assert address is not None
    return int(
        session.execute(
            select(models.Owner.id).join(models.Unit).where(models.Unit.code == address.code)
        ).scalar_one()
    )


def open_promise(database_url: str, room: str) -> Optional[Promised]:
    """The open promise of the owner of ``room``, or None (there is at most one)."""
    with session_scope(database_url) as session:
        rows = session.execute(
            select(models.PaymentPromise).where(
                models.PaymentPromise.owner_id == _owner_id(session, room),
                models.PaymentPromise.status == models.PromiseStatus.OPEN,
            )
        ).scalars().all()
        assert len(rows) <= 1, [(row.id, row.sender_id, row.due_date) for row in rows]
        return None if not rows else Promised(
            int(rows[0].id), str(rows[0].number), rows[0].sender_id, rows[0].due_date, Decimal(rows[0].amount),
            int(rows[0].reschedule_count),
        )


def assert_promised(
    database_url: str, room: str, *, sender_id: str, due: dt.date, amount: Decimal, before: Optional[Promised]
) -> Promised:
    """The owner of ``room`` holds one open promise, made or moved in ``sender_id``'s conversation.

    Args:
        database_url: The e2e servers' database.
        room: The owner's unit as said in the conversation.
        sender_id: The conversation the owner promised in.
        due: The promised date.
        amount: The promised amount.
        before: :func:`open_promise` read before the conversation.

    Returns:
        The stored promise.
    """
    after = open_promise(database_url, room)
    assert after is not None
    assert (after.sender_id, after.due_date, after.amount) == (sender_id, due, amount)
    if before is None:
        assert after.reschedule_count == 0
    else:  # the earlier conversation's promise was moved, not a second one recorded
        assert after.id == before.id
        assert after.reschedule_count == before.reschedule_count + (1 if before.due_date != due else 0)
    with session_scope(database_url) as session:
        # the unsent reminders follow it too: to this conversation when it is verified on a channel that can
        # take them, else (REST) to the owner's verified conversation, or nowhere
        expected = schedule.target(session, owner_id=_owner_id(session, room), prefer_sender=sender_id, prefer_channel="rest")
        pending = session.execute(
            select(Reminder.purpose, Reminder.sender_id, Reminder.channel).where(
                Reminder.promise_id == after.id, Reminder.state.in_(PENDING_STATES)
            )
        ).all()
        assert sorted((ReminderPurpose(row[0]).value, row[1], row[2]) for row in pending) == [
            (ReminderPurpose.DAY_BEFORE.value, *expected),
            (ReminderPurpose.DUE_MORNING.value, *expected),
        ]
    return after
