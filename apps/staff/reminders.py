"""The reminders screen (提醒计划, supervisors and managers) and the collectors' call list (催缴电话, everyone).

A thin adapter over :mod:`bot.reminders`: the reminders with due time, purpose, owner, channel and state,
cancelled one by one (CSRF-protected, audited); the public holiday schedules the policy knows, a warning for each
year reminders wait on, and (managers) a form to load a year's schedule; the call list with a 完成 form that
takes a note. Every view and change is an audit row.

The full phone number of a call task is shown on request (显示号码), one task at a time: to a collector only for a
task assigned to them (403 otherwise), to supervisors and managers for any, and to nobody more than
``STAFF_PHONE_REVEALS_PER_HOUR`` times an hour (429); every reveal and every refusal is an audit row. Supervisors
and managers (re)assign open tasks to collectors (分派).
"""

from __future__ import annotations

from typing import Dict, List, Optional

from fastapi import APIRouter, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from apps.staff.deps import current_session, current_user, get_db, require_role
from apps.staff.pages import MANAGER_ONLY, render
from bot.db import audit
from bot.db.models import Owner, Unit
from bot.db.reminder_models import CallTaskState, ReminderState
from bot.db.staff_models import StaffRole, StaffUser
from bot.reminders import calls, holidays, schedule
from bot.services import staff_auth

router = APIRouter(include_in_schema=False)
SUPERVISOR_OR_MANAGER = require_role(StaffRole.SUPERVISOR, StaffRole.MANAGER)
# A year's schedule is a few dozen rows; a paste far longer is not one (refused before parsing).
MAX_SCHEDULE_CHARS = 20_000


# Path ids beyond a 32-bit integer column are refused with 422 before any query (SQLite raises OverflowError
# on them, PostgreSQL a DataError).
MAX_ID = 2**31 - 1
REMINDER_ID = Path(..., ge=1, le=MAX_ID)
TASK_ID = Path(..., ge=1, le=MAX_ID)
PAGE_SIZE = 500
PAGE = Query(1, ge=1, le=100_000)
# Filters that are history: newest first. What is still to go out (or going out) comes soonest first.
HISTORY = {"sent", "not_sent", "all"}

# The reminder screen's filters: what is still to go out (default), what went out, what did not, everything.
FILTERS: Dict[str, Optional[List[ReminderState]]] = {
    "pending": [ReminderState.SCHEDULED, ReminderState.MOVED],
    "sending": [ReminderState.SENDING],
    "sent": [ReminderState.SENT],
    "not_sent": [ReminderState.CANCELLED, ReminderState.SKIPPED, ReminderState.FAILED, ReminderState.CALL_TASK],
    "all": None,
}


def _units(db: Session, owner_ids: List[int]) -> Dict[int, str]:
    if not owner_ids:
        return {}
    rows = db.execute(select(Owner.id, Unit.code).join(Unit, Unit.id == Owner.unit_id).where(Owner.id.in_(set(owner_ids))))
    return {int(owner_id): str(code) for owner_id, code in rows}


@router.get("/reminders", response_class=HTMLResponse)
def reminders_page(
    request: Request,
    status: str = "pending",
    page: int = PAGE,
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Reminders by due time, filtered: still to go out, sent, not sent, all."""
    if status not in FILTERS:
        status = "pending"
    items = schedule.listing(db, states=FILTERS[status], newest_first=status in HISTORY, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    more, items = len(items) > PAGE_SIZE, items[:PAGE_SIZE]
    audit.record(
        db, actor=str(user.username), action=audit.REMINDERS_VIEWED, target="reminders",
        detail={"status": status, "rows": len(items), **({"page": page} if page > 1 else {})},
    )  # fmt: skip
    return render(
        request, "reminders.html", user=user, active=active, section="reminders", items=items, status=status,
        page=page, more=more,
        filters=list(FILTERS), units=_units(db, [item.owner_id for item in items]),
        pending=(ReminderState.SCHEDULED, ReminderState.MOVED),
        waiting=holidays.waiting_for_schedule(db), schedules=holidays.loaded(db),
        can_load=user.role is StaffRole.MANAGER,
    )  # fmt: skip


@router.post("/reminders/holidays", response_class=HTMLResponse)
def load_holidays(
    request: Request,
    source: str = Form(""),
    schedule_text: str = Form("", alias="schedule"),
    user: StaffUser = MANAGER_ONLY,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """载入节假日安排 (managers): one year's schedule pasted as CSV, from the State Council's notice; audited.

    A file with any bad row is refused whole (400, each problem listed) and nothing is stored.
    """
    try:
        if len(schedule_text) > MAX_SCHEDULE_CHARS:
            raise holidays.ScheduleError([f"at most {MAX_SCHEDULE_CHARS} characters"])
        holidays.load_schedule(db, text=schedule_text, source=source, actor=str(user.username))
    except holidays.ScheduleError as error:
        db.rollback()
        return render(
            request, "holidays_refused.html", user=user, active=active, section="reminders",
            problems=error.problems, status_code=400,
        )  # fmt: skip
    return RedirectResponse("/reminders#holidays", status_code=303)


@router.post("/reminders/{reminder_id}/cancel")
def cancel_reminder(
    reminder_id: int = REMINDER_ID,
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    db: Session = get_db,
) -> Response:
    """Cancel a reminder still to be sent; one already sent or closed stays as it is (409)."""
    if not schedule.cancel(db, reminder_id=reminder_id, actor=str(user.username)):
        raise HTTPException(status_code=409 if _exists(db, reminder_id) else 404)
    audit.record(db, actor=str(user.username), action=audit.REMINDER_CANCELLED, target=f"reminder:{reminder_id}", detail={"reminder_id": reminder_id})
    return RedirectResponse("/reminders", status_code=303)


def _exists(db: Session, reminder_id: int) -> bool:
    from bot.db.reminder_models import Reminder

    return db.get(Reminder, reminder_id) is not None


@router.get("/calls", response_class=HTMLResponse)
def calls_page(
    request: Request,
    status: str = "open",
    page: int = PAGE,
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """The collectors' call list: open tasks oldest first, done / all newest first; phones masked for collectors."""
    return _calls_view(request, status=status, page=page, user=user, active=active, db=db, revealed=None)


@router.post("/calls/{task_id}/reveal", response_class=HTMLResponse)
def reveal_phone(
    request: Request,
    task_id: int = TASK_ID,
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Show a collector the full number of an open call task, audited with the task and the owner.

    The call list exists so collectors can phone owners, but a masked list keeps numbers from being read off
    in bulk: each number is shown on request, one task at a time, and every reveal is an audit row. Done
    tasks stay masked (409). A collector sees only the numbers of tasks assigned to them (403), and nobody more
    than ``STAFF_PHONE_REVEALS_PER_HOUR`` an hour (429); each refusal is audited, and counts nothing.
    """
    task = calls.get(db, task_id=task_id)
    if task is None:
        raise HTTPException(status_code=404)
    if task.state is not CallTaskState.OPEN:
        raise HTTPException(status_code=409)
    username = str(user.username)
    refusal = None
    if not calls.may_reveal(task, username=username, role=StaffRole(user.role)):
        refusal = ("not_assigned", 403)
    elif not calls.count_reveal(db, username=username):
        refusal = ("too_many", 429)
    if refusal is not None:
        code, status = refusal
        audit.record(
            db, actor=username, action=audit.CALL_PHONE_REVEAL_REFUSED, target=f"call:{task_id}",
            detail={"task_id": task_id, "reason": code},
        )  # fmt: skip
        headers = {"Retry-After": str(int(calls.REVEAL_WINDOW.total_seconds()))} if status == 429 else None
        return _refused(request, user=user, active=active, code=code, status=status, headers=headers)
    audit.record(
        db, actor=str(user.username), action=audit.CALL_PHONE_REVEALED, target=f"call:{task_id}",
        detail={"task_id": task_id, "owner_id": task.owner_id},
    )  # fmt: skip
    return _calls_view(request, status="open", page=1, user=user, active=active, db=db, revealed=task_id)


@router.post("/calls/{task_id}/assign")
def assign_call(
    request: Request,
    task_id: int = TASK_ID,
    assignee: str = Form(""),
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """分派: give an open call task to an active collector (supervisors and managers; audited)."""
    try:
        assigned = calls.assign(db, task_id=task_id, assignee=assignee.strip())
    except ValueError:
        return _refused(request, user=user, active=active, code="unknown_assignee", status=400)
    if not assigned:
        raise HTTPException(status_code=409 if calls.get(db, task_id=task_id) is not None else 404)
    audit.record(
        db, actor=str(user.username), action=audit.CALL_ASSIGNED, target=f"call:{task_id}",
        detail={"task_id": task_id, "assignee": assignee.strip()},
    )  # fmt: skip
    return RedirectResponse("/calls", status_code=303)


def _refused(
    request: Request,
    *,
    user: StaffUser,
    active: Optional[staff_auth.ActiveSession],
    code: str,
    status: int,
    headers: Optional[Dict[str, str]] = None,
) -> Response:
    """The polite page for a refused reveal or assignment (nothing was changed or shown)."""
    page = render(
        request, "call_refused.html", user=user, active=active, section="calls", code=code,
        limit=calls.reveals_per_hour(), status_code=status,
    )  # fmt: skip
    if headers:
        page.headers.update(headers)
    return page


def _calls_view(
    request: Request,
    *,
    status: str,
    page: int,
    user: StaffUser,
    active: Optional[staff_auth.ActiveSession],
    db: Session,
    revealed: Optional[int],
) -> Response:
    if status not in ("open", "done", "all"):
        status = "open"
    state = None if status == "all" else CallTaskState(status)
    items = calls.listing(db, state=state, limit=PAGE_SIZE + 1, offset=(page - 1) * PAGE_SIZE)
    more, items = len(items) > PAGE_SIZE, items[:PAGE_SIZE]
    audit.record(
        db, actor=str(user.username), action=audit.CALLS_VIEWED, target="calls",
        detail={"status": status, "rows": len(items), **({"page": page} if page > 1 else {})},
    )  # fmt: skip
    can_assign = user.role is not StaffRole.COLLECTOR
    return render(
        request, "calls.html", user=user, active=active, section="calls", items=items, status=status,
        mask=user.role is StaffRole.COLLECTOR, revealed=revealed, page=page, more=more,
        collectors=calls.collectors(db) if can_assign else [], can_assign=can_assign,
    )  # fmt: skip


@router.post("/calls/{task_id}/done")
def call_done(
    task_id: int = TASK_ID,
    note: str = Form(""),
    user: StaffUser = current_user,
    db: Session = get_db,
) -> Response:
    """Close a call task with what the call gave (a note is required)."""
    try:
        closed = calls.mark_done(db, task_id=task_id, actor=str(user.username), note=note)
    except ValueError:
        raise HTTPException(status_code=400, detail="note_required") from None
    if not closed:
        raise HTTPException(status_code=409)
    audit.record(db, actor=str(user.username), action=audit.CALL_DONE, target=f"call:{task_id}", detail={"record_id": task_id, "text": note.strip()[:200]})
    return RedirectResponse("/calls", status_code=303)
