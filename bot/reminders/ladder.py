"""The seeds' escalation ladder for promises: after the second broken promise the case goes to a person.

A collector takes it (an escalation in the queue, reason ``broken_promises``); when the unit's arrears are
older than ``REMINDERS_MANAGER_ARREARS_MONTHS`` the project manager does (reason ``old_arrears``). Each is
written once per owner and count of broken promises (the record's ``source_message_id`` is the key), so the
daily run may repeat freely.
"""

from __future__ import annotations

from typing import List, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import clock
from bot.db import models
from bot.db.models import PaymentPromise, PromiseStatus
from bot.records import arrears
from bot.services import escalations
from bot.services.escalations import Reason

BROKEN_BEFORE_ESCALATION = 2


def manager_months() -> int:
    """``REMINDERS_MANAGER_ARREARS_MONTHS``."""
    from bot.settings import get_settings

    return get_settings().reminders_manager_arrears_months


def escalate_repeat_breakers(session: Session, *, months: Optional[int] = None) -> List[models.Escalation]:
    """Escalate every owner with at least two broken promises (idempotent).

    Returns:
        The escalations of those owners (new or already written by an earlier run).
    """
    months = manager_months() if months is None else months
    counts = session.execute(
        select(PaymentPromise.owner_id, func.count())
        .where(PaymentPromise.status == PromiseStatus.BROKEN)
        .group_by(PaymentPromise.owner_id)
        .having(func.count() >= BROKEN_BEFORE_ESCALATION)
        .order_by(PaymentPromise.owner_id)
    ).all()
    written = []
    for owner_id, broken in counts:
        summary = arrears.summary(session, owner_id=int(owner_id), today=clock.today())
        reason = Reason.OLD_ARREARS if summary.months >= months else Reason.BROKEN_PROMISES
        sender = session.execute(
            select(PaymentPromise.sender_id)
            .where(PaymentPromise.owner_id == owner_id, PaymentPromise.sender_id.is_not(None))
            .order_by(PaymentPromise.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        written.append(
            escalations.escalate(
                session,
                reason=reason,
                detail=f"broken_promises={broken}; arrears_months={summary.months}",
                owner_id=int(owner_id),
                channel=None,
                sender_id=str(sender or f"owner:{owner_id}"),
                message_id=f"ladder:{owner_id}:{broken}",
            )
        )
    return written
