"""An owner's personal information on request, on the owner page (managers only; 个人信息保护法 art. 45 and 47).

A thin adapter over :mod:`bot.privacy.subject`:

* 导出个人信息: ``GET /owners/{id}/privacy/export.json`` and ``.../export.txt`` download everything held on the
  owner as an attachment (JSON, or readable Chinese text); each download is an audit row ``privacy_exported``
  (``via: console``, the format, counts only).
* 删除个人信息: ``POST /owners/{id}/privacy/erase`` with the session's CSRF token and the unit's code typed into
  ``confirm_unit`` (as stored, ``3-2-501``, or as people write it, ``3栋2单元501``) erases it in the request's one
  transaction, audited ``privacy_erased`` by :func:`bot.privacy.subject.erase`; then back to the owner page. A
  wrong or missing confirmation (400) or an owner erased already (409) is a polite page and changes nothing.

Collectors and supervisors get 403; an unknown owner is 404.
"""

from __future__ import annotations

import functools
from typing import Optional

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from apps.staff.deps import current_session, get_db
from apps.staff.pages import MANAGER_ONLY, refused_page
from bot import clock
from bot.db.models import Owner
from bot.db.staff_models import StaffUser
from bot.owners.units import parse_unit
from bot.privacy import readable, subject
from bot.services import staff_auth

router = APIRouter(include_in_schema=False)

OWNER_ID = Path(..., ge=1, le=2**31 - 1)
FORMATS = {
    "json": "application/json; charset=utf-8",
    "txt": "text/plain; charset=utf-8",
}


@router.get("/owners/{owner_id}/privacy/export.{kind}")
def export_owner(
    owner_id: int = OWNER_ID,
    kind: str = Path(..., pattern="^(json|txt)$"),
    user: StaffUser = MANAGER_ONLY,
    db: Session = get_db,
) -> Response:
    """导出个人信息: everything held on the owner, as a JSON or text attachment; audited."""
    try:
        data = subject.collect(db, owner_id=owner_id)
    except subject.SubjectError:
        raise HTTPException(status_code=404) from None
    subject.record_export(db, owner_id=owner_id, actor=str(user.username), via="console", data=data, file_format=kind)
    body = subject.to_json(data) + "\n" if kind == "json" else readable.render(data)
    name = f"owner-{owner_id}-{clock.now():%Y%m%d-%H%M%S}.{kind}"
    return Response(
        content=body.encode("utf-8"),
        media_type=FORMATS[kind],
        headers={"content-disposition": f'attachment; filename="{name}"'},
    )


@router.post("/owners/{owner_id}/privacy/erase")
def erase_owner(
    request: Request,
    owner_id: int = OWNER_ID,
    confirm_unit: str = Form(""),
    user: StaffUser = MANAGER_ONLY,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """删除个人信息: erase everything held on the owner once the unit's code is typed to confirm; audited."""
    owner = db.get(Owner, owner_id)
    if owner is None:
        raise HTTPException(status_code=404)
    back = f"/owners/{owner_id}"
    unit_code = str(owner.unit.code)
    if subject.is_erased(owner):
        return _refused(request, user, active, "already_erased", back, 409)
    typed = parse_unit(confirm_unit or "")
    if (typed.code if typed else (confirm_unit or "").strip()) != unit_code:
        return _refused(request, user, active, "wrong_confirmation", back, 400, unit=unit_code)
    try:
        subject.erase(db, owner_id=owner_id, actor=str(user.username))
    except subject.SubjectError as error:  # erased by someone else meanwhile
        return _refused(request, user, active, error.code, back, 409)
    return RedirectResponse(f"{back}#privacy", status_code=303)


_refused = functools.partial(refused_page, template="privacy_refused.html", section="owners")
