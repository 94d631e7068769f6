"""What a verified owner owes."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.models import Bill, Owner


@dataclass(frozen=True)
class ArrearsSummary:
    """Outstanding amount, the first unpaid period and how many months that spans."""

    amount: Decimal
    since: Optional[str]
    months: int


def months_between(since: str, today: dt.date) -> int:
    """Billing months from ``since`` (YYYY-MM) to ``today``'s month, both included."""
    year, month = (int(part) for part in since.split("-"))
    return max(0, (today.year - year) * 12 + today.month - month + 1)


def summary(session: Session, *, owner_id: int, today: dt.date) -> ArrearsSummary:
    """Arrears of the owner's unit."""
    owner = session.get(Owner, owner_id)
    if owner is None:
        raise LookupError(f"no owner {owner_id}")
    bills = session.execute(select(Bill).where(Bill.unit_id == owner.unit_id).order_by(Bill.period)).scalars()
    outstanding = [(bill.period, Decimal(bill.amount_due) - Decimal(bill.amount_paid)) for bill in bills]
    outstanding = [(period, amount) for period, amount in outstanding if amount > 0]
    if not outstanding:
        return ArrearsSummary(Decimal("0.00"), None, 0)
    since = outstanding[0][0]
    total = sum((amount for _, amount in outstanding), Decimal("0"))
    return ArrearsSummary(total.quantize(Decimal("0.01")), since, months_between(since, today))
