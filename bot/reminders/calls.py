"""The collectors' call list: owners to phone because a reminder could not go out in writing.

A former owner (retired by the import's roster or a transfer, :mod:`bot.records.ownership`) is on no open
list: retiring closes their open tasks, and the open list leaves out any task of theirs still open.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import List, Optional

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session
from sqlalchemy.sql.selectable import Select

from bot import clock
from bot.db.models import Owner, Unit
from bot.db.reminder_models import CallTask, CallTaskState
from bot.records.ownership import CURRENT
from bot.reminders.schedule import local

MAX_NOTE_CHARS = 1000


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
        created_at=clock.utc_now(),
    )
    session.add(task)
    session.flush()
    return task


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
