"""The work-order screens (工单记录): repair orders, complaints, bill checks, instalment requests and payment promises.

A thin adapter over :mod:`bot.casework.follow_up`: tabs with a status filter, each record's page with its
status change, assignee and notes, and the approve / reject forms for instalment requests (supervisors and
managers only). Every view and change is an audit row; a refused change is a polite page and changes nothing.
"""

from __future__ import annotations

import functools
from typing import Any, Dict, List, Optional

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from apps.staff.api import sender_of
from apps.staff.deps import current_session, current_user, get_db, require_role
from apps.staff.pages import refused_page, render
from bot import clock
from bot.casework import follow_up, owner_view
from bot.casework.owner_view import RecordKind
from bot.conversations import handles
from bot.db import audit
from bot.db.staff_models import StaffRole, StaffUser
from bot.services import staff_auth

router = APIRouter(include_in_schema=False)
SUPERVISOR_OR_MANAGER = require_role(StaffRole.SUPERVISOR, StaffRole.MANAGER)

TABS = ("repairs", "complaints", "bill_checks", "instalments", "promises")
# Each tab's status filter (the first is the default: what still needs someone).
FILTERS: Dict[str, tuple[str, ...]] = {
    **{kind.value: ("active", "open", "in_progress", "done", "cancelled", "all") for kind in follow_up.WORKFLOW_KINDS},
    "instalments": ("pending", "approved", "rejected", "all"),
    "promises": ("due_today", "overdue", "open", "kept", "broken", "partial", "all"),
}
DETAIL_KINDS = tuple(kind.value for kind in follow_up.WORKFLOW_KINDS) + ("instalments",)


def _actor(user: StaffUser) -> str:
    return str(user.username)


def _role(user: StaffUser) -> str:
    role = user.role
    return str(getattr(role, "value", role))


def _list(db: Session, tab: str, status: str) -> List[Any]:
    if tab == "promises":
        return follow_up.promises(db, bucket=None if status == "all" else status)
    kind = RecordKind(tab)
    if status == "all":
        return owner_view.list_records(db, kind=kind)
    if status == "active":
        return owner_view.list_records(db, kind=kind, status="open") + owner_view.list_records(
            db, kind=kind, status="in_progress"
        )
    return owner_view.list_records(db, kind=kind, status=status)


@router.get("/records", response_class=HTMLResponse)
def records_page(
    request: Request,
    tab: str = "repairs",
    status: Optional[str] = None,
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """One tab of records, filtered by status (or, for promises, by how they stand today)."""
    if tab not in TABS:
        tab = "repairs"
    if status not in FILTERS[tab]:
        status = FILTERS[tab][0]
    items = _list(db, tab, status)
    assignees: Dict[int, Optional[str]] = {}
    if tab in DETAIL_KINDS and tab != "instalments":
        assignees = follow_up.assignees(db, kind=RecordKind(tab), record_ids=[item.id for item in items])
    names = owner_view.staff_names(db, usernames=[name for name in assignees.values() if name])
    audit.record(
        db, actor=_actor(user), action=audit.RECORDS_LISTED, target=tab, detail={"status": status, "rows": len(items)}
    )
    return render(
        request, "records.html", user=user, active=active, section="records", tab=tab, tabs=TABS,
        status=status, filters=FILTERS[tab], items=items, assignees=assignees, names=names,
        today=clock.today(),
    )  # fmt: skip


def _kind(kind: str) -> RecordKind:
    if kind not in DETAIL_KINDS:
        raise HTTPException(status_code=404)
    return RecordKind(kind)


_refused = functools.partial(refused_page, template="record_refused.html", section="records")


@router.get("/records/{kind}/{record_id}", response_class=HTMLResponse)
def record_page(
    request: Request,
    kind: str,
    record_id: int,
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """One record: what the owner asked, its status, assignee and notes, or (instalments) the decision."""
    record_kind = _kind(kind)
    try:
        detail = follow_up.record_detail(db, kind=record_kind, record_id=record_id)
    except follow_up.RecordNotFound:
        raise HTTPException(status_code=404) from None
    usernames = [detail.assignee or "", detail.decided_by or ""] + [note.author for note in detail.notes]
    audit.record(
        db, actor=_actor(user), action=audit.RECORD_VIEWED, target=detail.line.number or f"{kind}:{record_id}",
        detail={"kind": kind, "record_id": record_id, "owner_id": detail.line.owner_id},
    )  # fmt: skip
    return render(
        request, "record.html", user=user, active=active, section="records", kind=kind, detail=detail,
        line=detail.line, names=owner_view.staff_names(db, usernames=usernames), staff=owner_view.active_staff(db),
        may_decide=follow_up.may_decide(_role(user)),
    )  # fmt: skip


def _change(
    request: Request,
    *,
    kind: str,
    record_id: int,
    user: StaffUser,
    active: Optional[staff_auth.ActiveSession],
    db: Session,
    action: str,
    operation: Any,
    detail: Dict[str, Any],
    **arguments: Any,
) -> Response:
    record_kind = _kind(kind)
    back = f"/records/{kind}/{record_id}"
    try:
        result = operation(db, kind=record_kind, record_id=record_id, staff=_actor(user), **arguments)
    except follow_up.RecordNotFound:
        raise HTTPException(status_code=404) from None
    except follow_up.WorkflowError as error:
        return _refused(request, user, active, error.code, back, 409 if error.code in ("invalid_transition", "closed") else 400)
    number = getattr(result, "number", None) or follow_up.record_detail(db, kind=record_kind, record_id=record_id).line.number
    audit.record(
        db, actor=_actor(user), action=action, target=number or f"{kind}:{record_id}",
        detail={"kind": kind, "record_id": record_id, **detail},
    )  # fmt: skip
    return RedirectResponse(back, status_code=303)


@router.post("/conversations/{handle}/records")
def open_record(
    request: Request,
    handle: str,
    kind: str = Form(...),
    description: str = Form(""),
    item: str = Form(""),
    location: str = Form(""),
    preferred_time: str = Form(""),
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """登记: staff open a repair, complaint or bill check for the conversation's owner, and follow it up."""
    sender_id = sender_of(db, handle)
    record_kind = _kind(kind)
    back = f"/conversations/{handles.handle_of(sender_id)}"
    try:
        record = follow_up.open_from_conversation(
            db, kind=record_kind, sender_id=sender_id, staff=_actor(user), description=description, item=item,
            location=location, preferred_time=preferred_time,
        )  # fmt: skip
    except follow_up.SameFaultOpen as error:
        return _refused(request, user, active, error.code, f"/records/{kind}/{error.record_id}", 409, number=error.number)
    except follow_up.WorkflowError as error:
        return _refused(request, user, active, error.code, back, 400, kind=kind)
    audit.record(
        db, actor=_actor(user), action=audit.RECORD_OPENED, target=record.number,
        detail={"kind": kind, "record_id": int(record.id), "conversation": handles.handle_of(sender_id)},
    )  # fmt: skip
    return RedirectResponse(f"/records/{kind}/{int(record.id)}", status_code=303)


@router.post("/records/{kind}/{record_id}/status")
def change_status(
    request: Request,
    kind: str,
    record_id: int,
    status: str = Form(...),
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Move a repair order, complaint or bill check to the next status (处理中, 已完成, 已取消)."""
    return _change(
        request, kind=kind, record_id=record_id, user=user, active=active, db=db,
        action=audit.RECORD_STATUS_CHANGED, operation=follow_up.change_status, detail={"status": status},
        status=status,
    )  # fmt: skip


@router.post("/records/{kind}/{record_id}/assignee")
def set_assignee(
    request: Request,
    kind: str,
    record_id: int,
    assignee: str = Form(""),
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Give a repair order, complaint or bill check to a staff member (or to nobody)."""
    return _change(
        request, kind=kind, record_id=record_id, user=user, active=active, db=db,
        action=audit.RECORD_ASSIGNED, operation=follow_up.set_assignee,
        detail={"assignee": assignee.strip().lower() or None}, assignee=assignee,
    )  # fmt: skip


@router.post("/records/{kind}/{record_id}/notes")
def add_note(
    request: Request,
    kind: str,
    record_id: int,
    text: str = Form(""),
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Append a note to a repair order, complaint or bill check."""
    return _change(
        request, kind=kind, record_id=record_id, user=user, active=active, db=db,
        action=audit.RECORD_NOTE_ADDED, operation=follow_up.add_note, detail={"text": text.strip()},
        text=text,
    )  # fmt: skip


def _decide(
    request: Request,
    *,
    record_id: int,
    approve: bool,
    reason: str,
    user: StaffUser,
    active: Optional[staff_auth.ActiveSession],
    db: Session,
) -> Response:
    back = f"/records/instalments/{record_id}"
    try:
        decision = follow_up.decide_instalment(
            db, request_id=record_id, approve=approve, staff=_actor(user), role=_role(user), reason=reason
        )
    except follow_up.NotAllowed:
        raise HTTPException(status_code=403) from None
    except follow_up.RecordNotFound:
        raise HTTPException(status_code=404) from None
    except follow_up.NoticeRefused as error:
        # The guard refused the notice: shown with its category and reason, the typed reason kept; the
        # service wrote the audit row, which commits with this page.
        return _refused(request, user, active, error.code, back, 400, refusal=error.refusal, typed=reason)
    except follow_up.WorkflowError as error:
        return _refused(request, user, active, error.code, back, 409 if error.code == "already_decided" else 400)
    audit.record(
        db,
        actor=_actor(user),
        action=audit.INSTALMENT_APPROVED if approve else audit.INSTALMENT_REJECTED,
        target=decision.number or f"instalments:{record_id}",
        detail={
            "record_id": record_id,
            "reason": decision.decision_note,
            "outbox_id": decision.notice.id if decision.notice else None,
        },
    )
    return RedirectResponse(back, status_code=303)


@router.post("/records/instalments/{record_id}/approve")
def approve(
    request: Request,
    record_id: int,
    reason: str = Form(""),
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """A supervisor or manager approves an instalment request; the owner is told through their channel."""
    return _decide(request, record_id=record_id, approve=True, reason=reason, user=user, active=active, db=db)


@router.post("/records/instalments/{record_id}/reject")
def reject(
    request: Request,
    record_id: int,
    reason: str = Form(""),
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """A supervisor or manager rejects an instalment request with a reason; the owner is told it."""
    return _decide(request, record_id=record_id, approve=False, reason=reason, user=user, active=active, db=db)
