"""The reminders screen (提醒计划, supervisors and managers) and the collectors' call list (催缴电话, everyone).

A thin adapter over :mod:`bot.reminders`: the reminders with due time, purpose, owner, channel and state,
cancelled one by one (CSRF-protected, audited); the call list with a 完成 form that takes a note. Every view and
change is an audit row.
"""

from __future__ import annotations

from typing import Dict, List, Optional

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from apps.staff.deps import current_session, current_user, get_db, require_role
from apps.staff.pages import render
from bot.db.models import Owner, Unit
from bot.db.reminder_models import CallTaskState, ReminderState
from bot.db.staff_models import StaffRole, StaffUser
from bot.reminders import calls, schedule
from bot.services import audit, staff_auth

router = APIRouter(include_in_schema=False)
SUPERVISOR_OR_MANAGER = require_role(StaffRole.SUPERVISOR, StaffRole.MANAGER)

REMINDERS_VIEWED = "reminders_viewed"
REMINDER_CANCELLED = "reminder_cancelled"
CALLS_VIEWED = "calls_viewed"
CALL_DONE = "call_done"

# The reminder screen's filters: what is still to go out (default), what went out, what did not, everything.
FILTERS: Dict[str, Optional[List[ReminderState]]] = {
    "pending": [ReminderState.SCHEDULED, ReminderState.MOVED],
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
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Reminders by due time, filtered: still to go out, sent, not sent, all."""
    if status not in FILTERS:
        status = "pending"
    items = schedule.listing(db, states=FILTERS[status])
    audit.record(db, actor=str(user.username), action=REMINDERS_VIEWED, target="reminders", detail={"status": status, "rows": len(items)})
    return render(
        request, "reminders.html", user=user, active=active, section="reminders", items=items, status=status,
        filters=list(FILTERS), units=_units(db, [item.owner_id for item in items]),
        pending=(ReminderState.SCHEDULED, ReminderState.MOVED),
    )  # fmt: skip


@router.post("/reminders/{reminder_id}/cancel")
def cancel_reminder(
    reminder_id: int,
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    db: Session = get_db,
) -> Response:
    """Cancel a reminder still to be sent; one already sent or closed stays as it is (409)."""
    if not schedule.cancel(db, reminder_id=reminder_id, actor=str(user.username)):
        raise HTTPException(status_code=409 if _exists(db, reminder_id) else 404)
    audit.record(db, actor=str(user.username), action=REMINDER_CANCELLED, target=f"reminder:{reminder_id}", detail={"reminder_id": reminder_id})
    return RedirectResponse("/reminders", status_code=303)


def _exists(db: Session, reminder_id: int) -> bool:
    from bot.db.reminder_models import Reminder

    return db.get(Reminder, reminder_id) is not None


@router.get("/calls", response_class=HTMLResponse)
def calls_page(
    request: Request,
    status: str = "open",
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """The collectors' call list: open tasks (or done / all), oldest first; phones masked for collectors."""
    if status not in ("open", "done", "all"):
        status = "open"
    state = None if status == "all" else CallTaskState(status)
    items = calls.listing(db, state=state)
    audit.record(db, actor=str(user.username), action=CALLS_VIEWED, target="calls", detail={"status": status, "rows": len(items)})
    return render(
        request, "calls.html", user=user, active=active, section="calls", items=items, status=status,
        mask=user.role is StaffRole.COLLECTOR,
    )  # fmt: skip


@router.post("/calls/{task_id}/done")
def call_done(
    task_id: int,
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
    audit.record(db, actor=str(user.username), action=CALL_DONE, target=f"call:{task_id}", detail={"record_id": task_id, "text": note.strip()[:200]})
    return RedirectResponse("/calls", status_code=303)
