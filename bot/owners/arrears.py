"""What a verified owner owes: the arrears import's figure less the payments received since.

The rule (one place; the bot, the staff console and the promise default all read it here):

* The arrears import (``bot import-arrears``) states each unit's arrears at a moment, stored on its bills as
  ``bills.as_of`` (the import's time). A later import of the same unit supersedes the earlier figure and
  moves that moment.
* Payments of the unit (``payments``, imported or recorded by staff) with ``paid_at`` at or after the unit's
  latest ``as_of`` reduce it, oldest billing period first; payments before it are already in the figure.
  Bills without ``as_of`` (none should remain: migration 0011 stamps the bills it finds) count no payment,
  since when their figure was stated is unknown and counting every payment ever made would undercount.
* What is owed never goes below zero: an overpayment is not a credit the bot tells anyone about.
* The unit's arrears are its current owner's: asked for a former owner (retired by the import's roster or a
  transfer, :mod:`bot.owners.ownership`), :func:`summary` refuses (:class:`FormerOwner`). Staff read a unit's
  figure with :func:`unit_summary`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Dict, Iterable, List, Optional, Tuple

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.db.models import Bill, Owner
from bot.db.payment_models import Payment

CENT = Decimal("0.01")


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


class FormerOwner(LookupError):
    """The owner was retired: the unit's arrears are no longer theirs to be told."""


def summary(session: Session, *, owner_id: int, today: dt.date) -> ArrearsSummary:
    """Arrears of the owner's unit, less the payments received since the arrears were stated.

    Raises:
        LookupError: No owner has this id.
        FormerOwner: The owner is a former owner.
    """
    owner = session.get(Owner, owner_id)
    if owner is None:
        raise LookupError(f"no owner {owner_id}")
    if not owner.current:
        raise FormerOwner(f"owner {owner_id} is a former owner")
    return unit_summary(session, unit_id=int(owner.unit_id), today=today)


def unit_summary(session: Session, *, unit_id: int, today: dt.date) -> ArrearsSummary:
    """Arrears of one unit under the module's rule."""
    bills = list(session.execute(select(Bill).where(Bill.unit_id == unit_id).order_by(Bill.period)).scalars())
    payments = session.execute(
        select(Payment.amount, Payment.paid_at).where(Payment.unit_id == unit_id, Payment.voided_at.is_(None))
    )
    outstanding = _after_payments(bills, [(Decimal(amount), paid_at) for amount, paid_at in payments])
    if not outstanding:
        return ArrearsSummary(Decimal("0.00"), None, 0)
    since = outstanding[0][0]
    total = sum((amount for _, amount in outstanding), Decimal("0"))
    return ArrearsSummary(total.quantize(CENT), since, months_between(since, today))


def outstanding_by_unit(session: Session, *, unit_ids: Iterable[int]) -> Dict[int, Decimal]:
    """What each unit owes under the module's rule (units owing nothing map to 0.00)."""
    wanted = {int(unit_id) for unit_id in unit_ids}
    if not wanted:
        return {}
    bills: Dict[int, List[Bill]] = {unit_id: [] for unit_id in wanted}
    for bill in session.execute(select(Bill).where(Bill.unit_id.in_(wanted)).order_by(Bill.period)).scalars():
        bills[int(bill.unit_id)].append(bill)
    paid: Dict[int, List[Tuple[Decimal, dt.datetime]]] = {unit_id: [] for unit_id in wanted}
    rows = session.execute(
        select(Payment.unit_id, Payment.amount, Payment.paid_at).where(
            Payment.unit_id.in_(wanted), Payment.voided_at.is_(None)
        )
    )
    for unit_id, amount, paid_at in rows:
        paid[int(unit_id)].append((Decimal(amount), paid_at))
    return {
        unit_id: sum((amount for _, amount in _after_payments(bills[unit_id], paid[unit_id])), Decimal("0")).quantize(
            CENT
        )
        for unit_id in wanted
    }


def as_utc(moment: dt.datetime) -> dt.datetime:
    """A stored time as aware UTC (SQLite gives back the UTC fields without their zone)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc)


def _after_payments(bills: List[Bill], payments: List[Tuple[Decimal, dt.datetime]]) -> List[Tuple[str, Decimal]]:
    """``(period, still owed)`` of the periods still owing after the payments that count, oldest first."""
    stated = [as_utc(bill.as_of) for bill in bills if bill.as_of is not None]
    snapshot = max(stated) if stated else None
    credit = sum(
        (amount for amount, paid_at in payments if snapshot is not None and as_utc(paid_at) >= snapshot),
        Decimal("0"),
    )
    owing: List[Tuple[str, Decimal]] = []
    for bill in sorted(bills, key=lambda bill: str(bill.period)):
        amount = Decimal(bill.amount_due) - Decimal(bill.amount_paid or 0)
        if amount <= 0:
            continue
        used = min(credit, amount)
        credit -= used
        if amount - used > 0:
            owing.append((str(bill.period), (amount - used).quantize(CENT)))
    return owing
