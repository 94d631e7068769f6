"""The seeds' escalation ladder for promises: after the second broken promise the case goes to a person.

A collector takes it (an escalation in the queue, reason ``broken_promises``); when the unit's arrears are
older than ``REMINDERS_MANAGER_ARREARS_MONTHS`` the project manager does (reason ``old_arrears``). Each is
written once per owner and count of broken promises (the record's ``source_message_id`` is the key), so the
daily run may repeat freely.

The case is assigned to a named person at once, so it lands on someone's list rather than in the open
queue: whoever of the right role already looks after this owner's cases, else the active one of that role
with the fewest unresolved cases (then the earliest account, so the choice is stable). With nobody of that
role it stays unassigned in the queue, where a supervisor sees it.
"""

from __future__ import annotations

from typing import List, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from bot import clock
from bot.db import models
from bot.db.models import EscalationState, PaymentPromise, PromiseStatus
from bot.db.staff_models import StaffRole, StaffUser
from bot.owners import arrears
from bot.owners.ownership import CURRENT
from bot.services import escalations, queue
from bot.services.escalations import Reason

BROKEN_BEFORE_ESCALATION = 2
LADDER_ACTOR = "system:reminders"  # who the queue's history says assigned the case
ROLE_FOR_REASON = {Reason.BROKEN_PROMISES: StaffRole.COLLECTOR, Reason.OLD_ARREARS: StaffRole.MANAGER}


def manager_months() -> int:
    """``REMINDERS_MANAGER_ARREARS_MONTHS``."""
    from bot.settings import get_settings

    return get_settings().reminders_manager_arrears_months


def escalate_repeat_breakers(session: Session, *, months: Optional[int] = None) -> List[models.Escalation]:
    """Escalate every current owner with at least two broken promises who still owes something (idempotent).

    A former owner (retired by the roster or a transfer) is nobody's case any more: the unit's arrears are the
    current owner's.

    Returns:
        The escalations of those owners (new or already written by an earlier run).
    """
    months = manager_months() if months is None else months
    counts = session.execute(
        select(PaymentPromise.owner_id, func.count())
        .join(models.Owner, models.Owner.id == PaymentPromise.owner_id)
        .where(PaymentPromise.status == PromiseStatus.BROKEN, CURRENT)
        .group_by(PaymentPromise.owner_id)
        .having(func.count() >= BROKEN_BEFORE_ESCALATION)
        .order_by(PaymentPromise.owner_id)
    ).all()
    written = []
    for owner_id, broken in counts:
        summary = arrears.summary(session, owner_id=int(owner_id), today=clock.today())
        if summary.amount <= 0:
            # Paid up since the promises broke: nothing left to collect, so no case for a person.
            continue
        reason = Reason.OLD_ARREARS if summary.months >= months else Reason.BROKEN_PROMISES
        sender = session.execute(
            select(PaymentPromise.sender_id)
            .where(PaymentPromise.owner_id == owner_id, PaymentPromise.sender_id.is_not(None))
            .order_by(PaymentPromise.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        escalation = escalations.escalate(
            session,
            reason=reason,
            detail=f"broken_promises={broken}; arrears_months={summary.months}",
            owner_id=int(owner_id),
            channel=None,
            sender_id=str(sender or f"owner:{owner_id}"),
            message_id=f"ladder:{owner_id}:{broken}",
        )
        if escalation.assignee is None and escalation.state is not EscalationState.RESOLVED:
            person = responsible_person(session, role=ROLE_FOR_REASON[reason], owner_id=int(owner_id))
            if person is not None:
                queue.assign(session, escalation_id=int(escalation.id), staff=person, by=LADDER_ACTOR)
                session.refresh(escalation)
        written.append(escalation)
    return written


def responsible_person(session: Session, *, role: StaffRole, owner_id: int) -> Optional[str]:
    """The active staff member of ``role`` who should take this owner's case (see the module docstring)."""
    active = select(StaffUser.username).where(StaffUser.role == role, StaffUser.active.is_(True))
    previous = session.execute(
        select(models.Escalation.assignee)
        .where(models.Escalation.owner_id == owner_id, models.Escalation.assignee.in_(active))
        .order_by(models.Escalation.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if previous is not None:
        return str(previous)
    load = (
        select(models.Escalation.assignee, func.count().label("cases"))
        .where(models.Escalation.state != EscalationState.RESOLVED, models.Escalation.assignee.is_not(None))
        .group_by(models.Escalation.assignee)
        .subquery()
    )
    least_busy = session.execute(
        select(StaffUser.username)
        .outerjoin(load, load.c.assignee == StaffUser.username)
        .where(StaffUser.role == role, StaffUser.active.is_(True))
        .order_by(func.coalesce(load.c.cases, 0), StaffUser.id)
        .limit(1)
    ).scalar_one_or_none()
    return None if least_busy is None else str(least_busy)
