"""Recording a payment on the owner page (登记缴费), for a receipt the company's export has not brought in yet.

A thin adapter over :func:`bot.owners.payments.record_payment`: every signed-in staff member may record one
(collectors too: they are the ones handed receipts), but only with the payment's reference (流水号 or receipt
number), which keeps it unique, so the later import of the same payment adds nothing. The unit's promises are
evaluated at once. Every recorded payment is an audit row with who, what and when; a refused one (a bad amount
or time, an unknown or repeated reference) is a polite page and changes nothing. Supervisors and managers may
void a payment recorded in error, with a reason (:func:`bot.owners.payments.void_payment`), also audited.
"""

from __future__ import annotations

import functools
from typing import Optional

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from sqlalchemy.orm import Session

from apps.staff.deps import current_session, current_user, get_db, require_role
from apps.staff.pages import refused_page
from bot.db import audit
from bot.db.models import Owner
from bot.db.payment_models import Payment, PaymentSource
from bot.db.staff_models import StaffRole, StaffUser
from bot.owners import payments
from bot.owners.payments_import import read_paid_at
from bot.services import staff_auth

router = APIRouter(include_in_schema=False)

SUPERVISORS = require_role(StaffRole.SUPERVISOR, StaffRole.MANAGER)


@router.post("/owners/{owner_id}/payments")
def record_payment(
    request: Request,
    owner_id: int,
    amount: str = Form(""),
    paid_at: str = Form(""),
    reference: str = Form(""),
    channel: str = Form(""),
    period: str = Form(""),
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """登记缴费: store the payment for the owner's unit, evaluate its promises, audit, back to the owner page."""
    owner = db.get(Owner, owner_id)
    if owner is None:
        raise HTTPException(status_code=404)
    back = f"/owners/{owner_id}#payments"
    read = read_paid_at(paid_at)
    if read is None:  # unreadable, or a year outside 2000..next year
        return _refused(request, user, active, "bad_time", back, 400)
    moment, time_known = read
    try:
        payment = payments.record_payment(
            db,
            unit=int(owner.unit_id),
            amount=amount,
            paid_at=moment,
            period=period,
            channel=channel,
            reference=reference,
            actor=str(user.username),
            source=PaymentSource.STAFF,
            time_known=time_known,
        )
    except payments.DuplicateReference:
        return _refused(request, user, active, "duplicate_reference", back, 409)
    except payments.PaymentError as error:
        return _refused(request, user, active, error.code, back, 400)
    audit.record(
        db,
        actor=str(user.username),
        action=audit.PAYMENT_RECORDED,
        target=f"owner:{owner_id}",
        detail={
            "payment_id": int(payment.id),
            "unit": str(owner.unit.code),
            "amount": f"{payment.amount:.2f}",
            "paid_at": moment.isoformat(),
            "reference": str(payment.reference),
            "channel": payment.channel or "",
            "period": payment.period or "",
        },
    )
    return RedirectResponse(back, status_code=303)


@router.post("/owners/{owner_id}/payments/{payment_id}/void")
def void_payment(
    request: Request,
    owner_id: int,
    payment_id: int,
    reason: str = Form(""),
    user: StaffUser = SUPERVISORS,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """作废缴费 (supervisors and managers): void a payment recorded in error, with a reason; audited."""
    owner = db.get(Owner, owner_id)
    payment = db.get(Payment, payment_id)
    if owner is None or payment is None or int(payment.unit_id) != int(owner.unit_id):
        raise HTTPException(status_code=404)
    back = f"/owners/{owner_id}#payments"
    try:
        changes = payments.void_payment(db, payment_id=payment_id, actor=str(user.username), reason=reason)
    except payments.PaymentError as error:
        return _refused(request, user, active, error.code, back, 400)
    audit.record(
        db,
        actor=str(user.username),
        action=audit.PAYMENT_VOIDED,
        target=f"owner:{owner_id}",
        detail={
            "payment_id": payment_id,
            "reference": str(payment.reference),
            "amount": f"{payment.amount:.2f}",
            "reason": str(payment.void_reason),
            "promises": [
                {"id": change.promise_id, "before": change.before.value, "after": change.after.value}
                for change in changes
            ],
        },
    )
    return RedirectResponse(back, status_code=303)


_refused = functools.partial(refused_page, template="payment_refused.html", section="owners")
