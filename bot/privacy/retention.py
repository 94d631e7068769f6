"""How long personal data is kept, and the daily job that deletes what is older (PIPL art. 19 and 47).

The 个人信息保护法 keeps personal information only as long as its purpose needs. Each kind has its horizon
(settings, in days, :class:`RetentionPolicy`):

* **conversations** (``RETENTION_CONVERSATION_DAYS``, 365): a conversation nobody wrote in for that long loses
  its transcript (Rasa's events, client addresses in their metadata included) and its verified links, and
  WeChat message keys that old go; the records it made (promises, repairs, complaints) stay,
  they are the company's accounts;
* **audit** (``RETENTION_AUDIT_DAYS``, 1095): audit rows; three years, the period in which a claim about
  a collection can still be brought (民法典 art. 188), and more than the six months 网络安全法 art. 21 asks;
* **attempts** (``RETENTION_ATTEMPT_DAYS``, 30): identity attempts, failed staff logins and rate-limit
  counters, which only ever look back a day (a staff member's successful logins stay: the home page shows
  the last one);
* **outbox** (``RETENTION_OUTBOX_DAYS``, 90): messages delivered or failed, and call tasks done;
* **former owners** (``RETENTION_FORMER_OWNER_DAYS``, 1095): an owner retired (the flat changed hands)
  that long ago is erased as on request (:func:`bot.privacy.subject.erase`), the amounts kept.

:func:`apply` runs in the reminder worker's daily run; every step is idempotent, and it logs what it deleted.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Dict

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.expression import Delete

from bot import clock
from bot.db import models
from bot.db.reminder_models import CallTask, CallTaskState
from bot.db.staff_models import AuditEntry
from bot.rasa import events as rasa_events
from bot.services import identity, rate_limits, staff_auth

logger = logging.getLogger(__name__)
RETENTION_ACTOR = "retention"
# Conversations purged per run at most (the rest the next day): one run never holds the database for long.
MAX_CONVERSATIONS_PER_RUN = 5000


@dataclass(frozen=True)
class RetentionPolicy:
    """Days each kind of personal data is kept (see the module)."""

    conversation_days: int = 365
    audit_days: int = 1095
    attempt_days: int = 30
    outbox_days: int = 90
    former_owner_days: int = 1095

    @classmethod
    def from_settings(cls) -> RetentionPolicy:
        """The configured horizons."""
        from bot.settings import get_settings

        settings = get_settings()
        return cls(
            conversation_days=settings.retention_conversation_days,
            audit_days=settings.retention_audit_days,
            attempt_days=settings.retention_attempt_days,
            outbox_days=settings.retention_outbox_days,
            former_owner_days=settings.retention_former_owner_days,
        )


def apply(session: Session, *, policy: RetentionPolicy) -> Dict[str, int]:
    """Delete what is older than the policy allows, as of :func:`bot.clock.now`; the counts, by kind.

    Args:
        session: The caller's unit of work (the caller commits).
        policy: The horizons.

    Returns:
        Rows deleted (or owners erased) per kind, every key present.
    """
    now = clock.utc_now()
    counts: Dict[str, int] = {}
    counts.update(_conversations(session, before=now - dt.timedelta(days=policy.conversation_days)))
    counts["audit_rows"] = _deleted(session, delete(AuditEntry).where(AuditEntry.at < now - dt.timedelta(days=policy.audit_days)))
    attempts_before = now - dt.timedelta(days=policy.attempt_days)
    counts["identity_attempts"] = identity.prune_attempts(session, before=attempts_before)
    counts["staff_login_attempts"] = staff_auth.prune_login_attempts(session, before=attempts_before)
    counts["rate_limit_hits"] = rate_limits.prune(session, before=attempts_before)
    outbox_before = now - dt.timedelta(days=policy.outbox_days)
    counts["outbox_messages"] = _deleted(
        session,
        delete(models.OutboxMessage).where(
            models.OutboxMessage.state.in_([models.OutboxState.DELIVERED, models.OutboxState.FAILED]),
            func.coalesce(models.OutboxMessage.delivered_at, models.OutboxMessage.created_at) < outbox_before,
        ),
    )
    counts["call_tasks"] = _deleted(
        session,
        delete(CallTask).where(CallTask.state == CallTaskState.DONE, func.coalesce(CallTask.closed_at, CallTask.created_at) < outbox_before),
    )
    counts["former_owners"] = _former_owners(session, before=now - dt.timedelta(days=policy.former_owner_days))
    session.flush()
    logger.info("retention: deleted %s", counts)
    return counts


def _deleted(session: Session, statement: Delete) -> int:
    result = session.execute(statement.execution_options(synchronize_session=False))
    return int(result.rowcount or 0)


def _conversations(session: Session, *, before: dt.datetime) -> Dict[str, int]:
    """Transcripts and verified links of conversations silent since ``before``; WeChat message keys older."""
    counts = {"conversations": 0, "events": 0, "conversation_links": 0, "wechat_messages": 0}
    counts["wechat_messages"] = _deleted(
        session, delete(models.WeChatInboundMessage).where(models.WeChatInboundMessage.received_at < before)
    )
    silent = rasa_events.idle_conversations(session, before=before.timestamp(), limit=MAX_CONVERSATIONS_PER_RUN)
    for start in range(0, len(silent), 500):
        chunk = silent[start : start + 500]
        counts["events"] += rasa_events.delete_conversations(session, chunk)
        counts["conversation_links"] += _deleted(
            session, delete(models.ConversationLink).where(models.ConversationLink.sender_id.in_(chunk))
        )
    counts["conversations"] = len(silent)
    return counts


def _former_owners(session: Session, *, before: dt.datetime) -> int:
    """Erase owners retired before ``before`` who still carry their name (erased ones are skipped)."""
    from bot.privacy import subject

    due = list(
        session.execute(
            select(models.Owner.id).where(
                models.Owner.retired_at.is_not(None), models.Owner.retired_at < before, models.Owner.name != subject.ERASED_NAME
            )
        ).scalars()
    )
    for owner_id in due:
        subject.erase(session, owner_id=int(owner_id), actor=RETENTION_ACTOR)
    return len(due)
