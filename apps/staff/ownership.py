"""Recording a transfer (登记过户) on the owner page: the owner becomes a former owner from the date given.

A thin adapter over :func:`bot.owners.ownership.transfer`, for supervisors and managers (as voiding a
payment: it changes who may verify as the unit's owner). The form carries the session's CSRF token like every
other; the date is required (not after today, not before the owner's own start); a new owner's name and phone
are optional, given together. The transfer closes the former owner's conversation links, cancels their pending
reminders and open call tasks, and is one audit row (``owner_transferred``) with who, what and when. A refused
transfer is a polite page (400 or 409) and changes nothing.
"""

from __future__ import annotations

import datetime as dt
import functools
from typing import Optional

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from apps.staff.deps import current_session, get_db, require_role
from apps.staff.pages import refused_page
from bot.db import audit
from bot.db.models import Owner, mask_phone
from bot.db.staff_models import StaffRole, StaffUser
from bot.owners import ownership
from bot.services import staff_auth

router = APIRouter(include_in_schema=False)

SUPERVISORS = require_role(StaffRole.SUPERVISOR, StaffRole.MANAGER)
OWNER_ID = Path(..., ge=1, le=2**31 - 1)
# Refusals that are about the owner's state rather than what was typed: 409.
CONFLICTS = frozenset({"not_current", "phone_taken"})


@router.post("/owners/{owner_id}/transfer")
def transfer_owner(
    request: Request,
    owner_id: int = OWNER_ID,
    transfer_date: str = Form(""),
    new_name: str = Form(""),
    new_phone: str = Form(""),
    user: StaffUser = SUPERVISORS,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """登记过户: retire the owner from ``transfer_date`` (and create the new owner if named); audited."""
    owner = db.get(Owner, owner_id)
    if owner is None:
        raise HTTPException(status_code=404)
    back = f"/owners/{owner_id}"
    on = _date(transfer_date)
    if on is None:
        return _refused(request, user, active, "bad_date", back, 400)
    try:
        done = ownership.transfer(
            db, owner_id=owner_id, on=on, actor=str(user.username), new_name=new_name, new_phone=new_phone
        )
    except ownership.TransferError as error:
        return _refused(request, user, active, error.code, back, 409 if error.code in CONFLICTS else 400)
    audit.record(
        db,
        actor=str(user.username),
        action=audit.OWNER_TRANSFERRED,
        target=f"owner:{owner_id}",
        detail={
            "unit": str(owner.unit.code),
            "transfer_date": on.isoformat(),
            "new_owner_id": done.new_owner_id,
            "new_owner_phone": _masked_phone(db, done.new_owner_id),
            "links_closed": done.retired.links_closed,
            "reminders_cancelled": done.retired.reminders_cancelled,
            "calls_closed": done.retired.calls_closed,
        },
    )
    return RedirectResponse(f"/owners/{done.new_owner_id or owner_id}", status_code=303)


def _masked_phone(db: Session, owner_id: Optional[int]) -> Optional[str]:
    """The masked phone of the owner just created, for the audit row (never the whole number)."""
    created = db.get(Owner, owner_id) if owner_id is not None else None
    return None if created is None else mask_phone(str(created.phone))


def _date(text: str) -> Optional[dt.date]:
    """``YYYY-MM-DD`` (what a date input sends), or None."""
    try:
        return dt.date.fromisoformat((text or "").strip())
    except ValueError:
        return None


_refused = functools.partial(refused_page, template="transfer_refused.html", section="owners")
