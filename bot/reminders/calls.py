"""The collectors' call list: owners to phone because a reminder could not go out in writing.

A former owner (retired by the import's roster or a transfer, :mod:`bot.owners.ownership`) is on no open
list: retiring closes their open tasks, and the open list leaves out any task of theirs still open.

Each task is assigned to a collector when it is made (:func:`responsible_collector`: whoever of the active
collectors had this owner's last call task, else the one with the fewest open tasks); a supervisor or manager
reassigns it (:func:`assign`). A collector sees the owner's full phone number only for a task assigned to them,
supervisors and managers for any (:func:`may_reveal`), and everyone at most ``STAFF_PHONE_REVEALS_PER_HOUR``
times an hour (:func:`count_reveal`), so nobody harvests the numbers of every open task.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import List, Optional

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import Select

from bot import clock
from bot.db.models import Owner, Unit
from bot.db.reminder_models import CallTask, CallTaskState
from bot.db.staff_models import StaffRole, StaffUser
from bot.owners.ownership import CURRENT
from bot.reminders.schedule import local
from bot.services import rate_limits

MAX_NOTE_CHARS = 1000
REVEAL_WINDOW = dt.timedelta(hours=1)


@dataclass(frozen=True)
class CallView:
    """A call task as the call list shows it (the phone is the owner's, masked by the screen per role)."""

    id: int
    unit_id: int
    unit_code: str
    owner_id: Optional[int]
    owner_name: Optional[str]
    phone: Optional[str]
    reason: str
    purpose: Optional[str]
    reminder_id: Optional[int]
    promise_id: Optional[int]
    state: CallTaskState
    assignee: Optional[str]
    note: Optional[str]
    created_at: dt.datetime
    closed_at: Optional[dt.datetime]
    closed_by: Optional[str]


def create(
    session: Session,
    *,
    unit_id: int,
    owner_id: Optional[int],
    reason: str,
    purpose: Optional[str] = None,
    reminder_id: Optional[int] = None,
    promise_id: Optional[int] = None,
) -> CallTask:
    """Put an owner on the call list (one task per reminder)."""
    if reminder_id is not None:
        existing = session.execute(select(CallTask).where(CallTask.reminder_id == reminder_id)).scalar_one_or_none()
        if existing is not None:
            return existing
    task = CallTask(
        unit_id=unit_id,
        owner_id=owner_id,
        reason=reason[:64],
        purpose=purpose,
        reminder_id=reminder_id,
        promise_id=promise_id,
        state=CallTaskState.OPEN,
        assignee=responsible_collector(session, owner_id=owner_id),
        created_at=clock.utc_now(),
    )
    session.add(task)
    session.flush()
    return task


def _active_collectors() -> Select:
    return select(StaffUser.username).where(StaffUser.role == StaffRole.COLLECTOR, StaffUser.active.is_(True))


def responsible_collector(session: Session, *, owner_id: Optional[int]) -> Optional[str]:
    """The active collector a new call task for ``owner_id`` goes to, or ``None`` when there is none.

    Whoever had this owner's last assigned call task and is still an active collector; else the active collector
    with the fewest open tasks (then the earliest account, so the choice is stable).
    """
    if owner_id is not None:
        previous = session.execute(
            select(CallTask.assignee)
            .where(CallTask.owner_id == owner_id, CallTask.assignee.in_(_active_collectors()))
            .order_by(CallTask.id.desc())
            .limit(1)
        ).scalar_one_or_none()
        if previous is not None:
            return str(previous)
    load = (
        select(CallTask.assignee, func.count().label("tasks"))
        .where(CallTask.state == CallTaskState.OPEN, CallTask.assignee.is_not(None))
        .group_by(CallTask.assignee)
        .subquery()
    )
    least_busy = session.execute(
        select(StaffUser.username)
        .outerjoin(load, load.c.assignee == StaffUser.username)
        .where(StaffUser.role == StaffRole.COLLECTOR, StaffUser.active.is_(True))
        .order_by(func.coalesce(load.c.tasks, 0), StaffUser.id)
        .limit(1)
    ).scalar_one_or_none()
    return None if least_busy is None else str(least_busy)


def collectors(session: Session) -> List[str]:
    """The active collectors' usernames (whom a task may be assigned to), in account order."""
    rows = session.execute(_active_collectors().order_by(StaffUser.id)).scalars()
    return [str(name) for name in rows]


def assign(session: Session, *, task_id: int, assignee: str) -> bool:
    """Give an open call task to ``assignee``; whether the task was open.

    Raises:
        ValueError: ``assignee`` is not an active collector.
    """
    if assignee not in collectors(session):
        raise ValueError(f"{assignee!r} is not an active collector")
    result = session.execute(
        update(CallTask)
        .where(CallTask.id == task_id, CallTask.state == CallTaskState.OPEN)
        .values(assignee=assignee)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)


def may_reveal(task: CallView, *, username: str, role: StaffRole) -> bool:
    """Whether ``username`` may see the task's full phone number: a collector only their own task's."""
    return role is not StaffRole.COLLECTOR or task.assignee == username


def reveals_per_hour() -> int:
    """``STAFF_PHONE_REVEALS_PER_HOUR``."""
    from bot.settings import get_settings

    return int(get_settings().staff_phone_reveals_per_hour)


def count_reveal(session: Session, *, username: str, per_hour: Optional[int] = None) -> bool:
    """Count one full number shown to ``username``, or refuse it (uncounted) past the hour's limit."""
    limit = reveals_per_hour() if per_hour is None else per_hour
    return rate_limits.allow(session, key=f"phone-reveal:{username}", limit=limit, window=REVEAL_WINDOW)


def get(session: Session, *, task_id: int) -> Optional[CallView]:
    """One call task as the call list shows it, or ``None``."""
    found = _views(session, _query().where(CallTask.id == task_id))
    return found[0] if found else None


def listing(
    session: Session,
    *,
    state: Optional[CallTaskState] = CallTaskState.OPEN,
    limit: int = 500,
    offset: int = 0,
) -> List[CallView]:
    """The call list, ``limit`` rows from ``offset``.

    Open tasks come oldest first (the longest waiting on top); done tasks or all (``state=None``) newest
    first, as history.
    """
    query = _query()
    if state is not None:
        query = query.where(CallTask.state == state)
    if state is CallTaskState.OPEN:
        query = query.where(or_(CallTask.owner_id.is_(None), CURRENT))
        query = query.order_by(CallTask.created_at, CallTask.id)
    else:
        query = query.order_by(CallTask.created_at.desc(), CallTask.id.desc())
    return _views(session, query.limit(limit).offset(max(offset, 0)))


def _query() -> Select:
    return (
        select(CallTask, Unit.code, Owner.name, Owner.phone)
        .join(Unit, Unit.id == CallTask.unit_id)
        .outerjoin(Owner, Owner.id == CallTask.owner_id)
    )


def _views(session: Session, query: Select) -> List[CallView]:
    rows = session.execute(query).all()
    return [
        CallView(
            id=int(task.id),
            unit_id=int(task.unit_id),
            unit_code=str(code),
            owner_id=None if task.owner_id is None else int(task.owner_id),
            owner_name=name,
            phone=phone,
            reason=str(task.reason),
            purpose=task.purpose,
            reminder_id=None if task.reminder_id is None else int(task.reminder_id),
            promise_id=None if task.promise_id is None else int(task.promise_id),
            state=CallTaskState(task.state),
            assignee=task.assignee,
            note=task.note,
            created_at=local(task.created_at),
            closed_at=None if task.closed_at is None else local(task.closed_at),
            closed_by=task.closed_by,
        )
        for task, code, name, phone in rows
    ]


def mark_done(session: Session, *, task_id: int, actor: str, note: str) -> bool:
    """Close an open call task with what the call gave. Whether it was open.

    Raises:
        ValueError: An empty note or one over :data:`MAX_NOTE_CHARS` characters.
    """
    text = (note or "").strip()
    if not text or len(text) > MAX_NOTE_CHARS:
        raise ValueError(f"a note of 1 to {MAX_NOTE_CHARS} characters is required")
    result = session.execute(
        update(CallTask)
        .where(CallTask.id == task_id, CallTask.state == CallTaskState.OPEN)
        .values(state=CallTaskState.DONE, note=text, closed_at=clock.utc_now(), closed_by=actor[:64], assignee=actor[:64])
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)
