"""The audit log: who did what to what, and when, for every staff action.

Written in the caller's unit of work, so an action and its audit row commit together or not at all.
Times come from :mod:`bot.clock`.
"""

from __future__ import annotations

from typing import Any, List, Mapping, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import clock
from bot.db.staff_models import AuditEntry

# Every action the audit log names (``audit_log.action``): sign-in and staff administration, then what the
# console's screens and API write (every view of an owner's data and every change of an escalation is one row).
LOGIN = "login"
LOGIN_FAILED = "login_failed"
LOGOUT = "logout"
USER_ADDED = "user_added"
AUDIT_VIEWED = "audit_viewed"
QUEUE_VIEWED = "queue_viewed"
ESCALATION_CLAIMED = "escalation_claimed"
ESCALATION_ASSIGNED = "escalation_assigned"
ESCALATION_RESOLVED = "escalation_resolved"
CONVERSATION_VIEWED = "conversation_viewed"
CONVERSATIONS_LISTED = "conversations_listed"
OWNER_VIEWED = "owner_viewed"
OWNERS_SEARCHED = "owners_searched"
RECORDS_VIEWED = "records_viewed"
CONVERSATION_TAKEN_OVER = "conversation_taken_over"
STAFF_REPLIED = "staff_replied"
CONVERSATION_HANDED_BACK = "conversation_handed_back"
NLU_INBOX_VIEWED = "nlu_inbox_viewed"
NLU_DECIDED = "nlu_decided"
RECORDS_LISTED = "records_listed"
RECORD_VIEWED = "record_viewed"
RECORD_STATUS_CHANGED = "record_status_changed"
RECORD_ASSIGNED = "record_assigned"
RECORD_NOTE_ADDED = "record_note_added"
RECORD_OPENED = "record_opened"
INSTALMENT_APPROVED = "instalment_approved"
INSTALMENT_REJECTED = "instalment_rejected"
REVIEW_VIEWED = "review_viewed"
REVIEW_EXPORTED = "review_exported"
COACH_ANSWERED = "coach_answered"
PRACTICE_STARTED = "practice_started"
PRACTICE_ANSWERED = "practice_answered"
PRACTICE_FINISHED = "practice_finished"
PRACTICE_VIEWED = "practice_viewed"
PRACTICE_RESULTS_VIEWED = "practice_results_viewed"
OWNER_TRANSFERRED = "owner_transferred"
PAYMENT_RECORDED = "payment_recorded"
PAYMENT_VOIDED = "payment_voided"
QUALITY_VIEWED = "quality_viewed"
QUALITY_EXPORTED = "quality_exported"
REMINDERS_VIEWED = "reminders_viewed"
REMINDER_CANCELLED = "reminder_cancelled"
CALLS_VIEWED = "calls_viewed"
CALL_DONE = "call_done"
CALL_PHONE_REVEALED = "call_phone_revealed"
CALL_PHONE_REVEAL_REFUSED = "call_phone_reveal_refused"
CALL_ASSIGNED = "call_assigned"

_ACTOR_LENGTH = AuditEntry.__table__.c.actor.type.length
_TARGET_LENGTH = AuditEntry.__table__.c.target.type.length


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: Optional[str] = None,
    detail: Optional[Mapping[str, Any]] = None,
) -> AuditEntry:
    """Write one audit row, stamped with the clock's now (stored in UTC).

    Args:
        session: The caller's unit of work (the row commits with it).
        actor: Who acted: a staff username, ``cli:<os user>``, or for a failed login the username typed.
        action: What was done (one of this module's constants, or a later screen's).
        target: What it was done to (a username, an owner id, a record number), if anything.
        detail: Specifics as JSON-serialisable values (never a password).

    Returns:
        The new row, flushed (it has its id).

    Raises:
        ValueError: If ``actor`` or ``action`` is empty.
    """
    if not actor or not action:
        raise ValueError("an audit row needs an actor and an action")
    entry = AuditEntry(
        at=clock.utc_now(),
        actor=actor[:_ACTOR_LENGTH],
        action=action,
        target=target[:_TARGET_LENGTH] if target is not None else None,
        detail=dict(detail) if detail is not None else None,
    )
    session.add(entry)
    session.flush()
    return entry


def recent(session: Session, *, limit: int = 200, actor: Optional[str] = None) -> List[AuditEntry]:
    """The latest audit rows, newest first.

    Args:
        session: The caller's unit of work.
        limit: At most this many rows.
        actor: Only this actor's rows, when given.

    Returns:
        The rows.
    """
    query = select(AuditEntry).order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    if actor is not None:
        query = query.where(AuditEntry.actor == actor)
    return list(session.execute(query).scalars())
