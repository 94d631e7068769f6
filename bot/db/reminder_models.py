"""Scheduled reminders, owners' opt-outs and collectors' call tasks.

A reminder is a row, not a job in a scheduler's memory: it survives every restart, staff see and cancel it,
and the worker (``python -m apps.worker``) claims due rows with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, so
two workers never send the same one (see ``bot.reminders.worker``). Times are stored in UTC from
:mod:`bot.clock`.
"""

from __future__ import annotations

import enum

from sqlalchemy import Column, DateTime, Enum, ForeignKey, Index, Integer, String, Text, UniqueConstraint

from bot.db.models import Base


def _status(enum_type: type[enum.Enum], name: str) -> Enum:
    return Enum(enum_type, name=name, native_enum=False, length=16, validate_strings=True)


class ReminderPurpose(str, enum.Enum):
    """Why a reminder is sent."""

    DAY_BEFORE = "day_before"  # the day before a promised date
    DUE_MORNING = "due_morning"  # the morning of the promised date
    BROKEN_FOLLOWUP = "broken_followup"  # after a promise was broken
    MONTHLY_BILL = "monthly_bill"  # the start-of-month notice to owners in arrears


class ReminderState(str, enum.Enum):
    """Where a reminder stands. ``scheduled`` and ``moved`` rows are still to be sent."""

    SCHEDULED = "scheduled"
    SENT = "sent"
    # Handed to the outbox (``outbox_id``), its WeChat send not yet confirmed: never claimed again; the worker
    # reads the row's outcome back (bot.reminders.worker.settle_handed_over). Without an outbox row: left by an
    # earlier version's worker that died during its own call, it becomes a call task (recover_unconfirmed).
    SENDING = "sending"
    MOVED = "moved"  # the policy moved it (quiet hours, holiday, weekly cap): ``due_at`` is the new time
    CANCELLED = "cancelled"  # no longer needed (paid, promise kept or rescheduled) or cancelled by staff
    SKIPPED = "skipped"  # must not be sent (the owner opted out, the conversation is not verified)
    FAILED = "failed"
    CALL_TASK = "call_task"  # could not go out in writing: a collector calls instead (``CallTask``)


PENDING_STATES = (ReminderState.SCHEDULED, ReminderState.MOVED)


class CallTaskState(str, enum.Enum):
    """A collector's call task."""

    OPEN = "open"
    DONE = "done"


class Reminder(Base):
    """One proactive message to an owner, due at ``due_at``.

    ``dedupe_key`` makes scheduling idempotent (``promise:<id>:day_before:<date>``, ``monthly:<owner>:<YYYY-MM>``,
    ``broken:<promise id>``). ``locked_by`` / ``locked_at`` name the worker that last claimed it.
    """

    __tablename__ = "reminders"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_reminders_dedupe_key"),
        Index("ix_reminders_state_due", "state", "due_at"),
        Index("ix_reminders_owner", "owner_id", "sent_at"),
        Index("ix_reminders_promise", "promise_id"),
    )

    id = Column(Integer, primary_key=True)
    owner_id = Column(Integer, ForeignKey("owners.id"), nullable=False)
    unit_id = Column(Integer, ForeignKey("units.id"), nullable=False)
    sender_id = Column(String(128), nullable=True)  # the conversation it goes to (openid on WeChat)
    channel = Column(String(32), nullable=True)  # wechat, socketio; None: no verified conversation
    purpose = Column(_status(ReminderPurpose, "reminder_purpose"), nullable=False)
    due_at = Column(DateTime(timezone=True), nullable=False)
    first_due_at = Column(DateTime(timezone=True), nullable=False)  # as first scheduled, before any move
    state = Column(_status(ReminderState, "reminder_state"), nullable=False, default=ReminderState.SCHEDULED)
    reason = Column(String(64), nullable=True)  # why it was moved, cancelled, skipped, failed or became a call
    promise_id = Column(Integer, ForeignKey("payment_promises.id"), nullable=True)
    period = Column(String(7), nullable=True)  # YYYY-MM of a monthly bill notice
    dedupe_key = Column(String(128), nullable=False)
    attempts = Column(Integer, nullable=False, default=0)
    delivered_via = Column(String(32), nullable=True)  # wechat_custom, wechat_template, webchat_outbox
    outbox_id = Column(Integer, nullable=True)  # the web chat outbox row that carries it
    locked_by = Column(String(64), nullable=True)
    locked_at = Column(DateTime(timezone=True), nullable=True)
    sent_at = Column(DateTime(timezone=True), nullable=True)
    created_at = Column(DateTime(timezone=True), nullable=False)
    updated_at = Column(DateTime(timezone=True), nullable=True)
    cancelled_by = Column(String(64), nullable=True)  # a staff username, or "system"


class ReminderOptOut(Base):
    """An owner (by unit) or a conversation (by sender) asked not to be reminded again."""

    __tablename__ = "reminder_opt_outs"
    __table_args__ = (
        Index("ix_reminder_opt_outs_unit", "unit_id"),
        Index("ix_reminder_opt_outs_sender", "sender_id"),
    )

    id = Column(Integer, primary_key=True)
    unit_id = Column(Integer, ForeignKey("units.id"), nullable=True)
    owner_id = Column(Integer, ForeignKey("owners.id"), nullable=True)
    sender_id = Column(String(128), nullable=True)
    channel = Column(String(32), nullable=True)
    how = Column(String(32), nullable=False)  # chat (the owner said so), staff (recorded by a person)
    text = Column(Text, nullable=True)  # what the owner wrote
    opted_out_at = Column(DateTime(timezone=True), nullable=False)


class CallTask(Base):
    """A collector should call the owner: a reminder could not go out in writing, or a case needs a person."""

    __tablename__ = "call_tasks"
    __table_args__ = (
        UniqueConstraint("reminder_id", name="uq_call_tasks_reminder"),
        Index("ix_call_tasks_state", "state", "created_at"),
    )

    id = Column(Integer, primary_key=True)
    unit_id = Column(Integer, ForeignKey("units.id"), nullable=False)
    owner_id = Column(Integer, ForeignKey("owners.id"), nullable=True)
    reason = Column(String(64), nullable=False)
    purpose = Column(String(32), nullable=True)  # the reminder's purpose, when it came from one
    reminder_id = Column(Integer, ForeignKey("reminders.id"), nullable=True)
    promise_id = Column(Integer, ForeignKey("payment_promises.id"), nullable=True)
    state = Column(_status(CallTaskState, "call_task_state"), nullable=False, default=CallTaskState.OPEN)
    assignee = Column(String(64), nullable=True)
    note = Column(Text, nullable=True)
    created_at = Column(DateTime(timezone=True), nullable=False)
    closed_at = Column(DateTime(timezone=True), nullable=True)
    closed_by = Column(String(64), nullable=True)


__all__ = [
    "CallTask",
    "CallTaskState",
    "PENDING_STATES",
    "Reminder",
    "ReminderOptOut",
    "ReminderPurpose",
    "ReminderState",
]
