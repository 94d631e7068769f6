"""Payments received, and what they make of payment promises.

Recording: :func:`record_payment` writes one payment (an import line or a staff member's entry), refusing an
unknown unit, an amount that is not positive to the fen, a time in the future, an empty reference, and a
reference already stored (:class:`DuplicateReference`, with the stored row: the caller decides whether that
is a harmless repeat or a conflict). :func:`paid_since` and :func:`payments_of_unit` read them back.

Promise outcomes (the rule, also in README):

* The window of a promise runs from the estate's date it was made (``created_at``) to its ``due_date`` plus
  ``PROMISE_GRACE_DAYS`` (default 2), both included; a payment counts when the estate's date of its
  ``paid_at`` falls in the window (dates, not times: an export that gives only a date still counts on the
  day the promise was made). Every payment of the owner's unit counts, for every promise whose window holds it.
* ``kept`` as soon as the payments in the window reach the promised amount (also before the due date).
* ``broken`` once the window has passed without that. A broken promise is looked at again on every
  evaluation: a payment imported late but dated inside the window turns it into ``kept``.
* ``paid_amount`` stores what the window holds; *partial* is not a status but ``0 < paid_amount < amount``
  on an open or broken promise (:attr:`PromiseOutcome.partial`), shown as such to staff.
* A promise without a named amount stores the arrears at the time (:func:`bot.services.promises.default_amount`);
  when that was zero, any payment in the window keeps it.

:func:`evaluate_promises` applies the rule and is idempotent (it changes a promise only when its status or
paid amount changes, stamping ``evaluated_at`` then). The worker runs it daily; the payment import and
:func:`record_payment` run it for the unit paid for. The caller owns the session and commits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import List, Optional, Union

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import clock
from bot.db.models import Owner, PaymentPromise, PromiseStatus, Unit
from bot.db.payment_models import REFERENCE_LENGTH, Payment, PaymentSource
from bot.records.arrears import as_utc
from bot.records.units import parse_unit

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999.99")  # Numeric(12, 2)
PERIOD_LENGTH = Payment.__table__.c.period.type.length
CHANNEL_LENGTH = Payment.__table__.c.channel.type.length
# A payment time a little ahead of our clock is a clock skew between systems, not a payment from the future.
FUTURE_TOLERANCE = dt.timedelta(minutes=10)

UnitLike = Union[int, str, Unit]


class PaymentError(ValueError):
    """A payment refused; ``code`` names why (the import and the staff form word it)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class DuplicateReference(PaymentError):
    """The reference is already stored; ``existing`` is the stored payment, ``same`` whether it matches."""

    def __init__(self, existing: Payment, same: bool) -> None:
        super().__init__("duplicate_reference", f"reference {existing.reference!r} is already stored")
        self.existing = existing
        self.same = same


@dataclass(frozen=True)
class PaymentLine:
    """A payment as staff see it (times aware in the estate's zone)."""

    id: int
    unit_id: int
    amount: Decimal
    paid_at: dt.datetime
    period: Optional[str]
    channel: Optional[str]
    reference: str
    source: str
    recorded_by: str
    created_at: dt.datetime


@dataclass(frozen=True)
class PromiseOutcome:
    """How a promise stands under the rule (computed; :func:`evaluate_promises` stores it).

    Attributes:
        status: ``open``, ``kept`` or ``broken``.
        paid: What the unit paid in the promise's window.
        window_start: The estate's date the promise was made.
        window_end: Its due date plus the grace days.
        partial: Some but not all of the amount was paid, and the promise is not kept.
    """

    status: PromiseStatus
    paid: Decimal
    window_start: dt.date
    window_end: dt.date
    partial: bool


@dataclass(frozen=True)
class PromiseChange:
    """A promise whose stored outcome an evaluation changed."""

    promise_id: int
    owner_id: int
    before: PromiseStatus
    after: PromiseStatus
    paid_amount: Decimal


def resolve_unit(session: Session, unit: UnitLike) -> Unit:
    """The unit named by an id, a code or an address as people write it (3栋2单元501), or a :class:`Unit`.

    Raises:
        PaymentError: ``unknown_unit``.
    """
    if isinstance(unit, Unit):
        return unit
    found: Optional[Unit] = None
    if isinstance(unit, int):
        found = session.get(Unit, unit)
    else:
        parsed = parse_unit(str(unit))
        code = parsed.code if parsed is not None else str(unit).strip()
        found = session.execute(sa.select(Unit).where(Unit.code == code)).scalar_one_or_none()
    if found is None:
        raise PaymentError("unknown_unit", f"no unit {unit!r}")
    return found


def parse_amount(value: object) -> Decimal:
    """A payment amount in yuan (``1,200.50``, ``1200元``, ``¥1200``), positive, at most two decimals.

    Raises:
        PaymentError: ``bad_amount`` (not a number, more than two decimals, too large) or ``not_positive``.
    """
    if isinstance(value, Decimal):
        amount = value
    else:
        text = str(value if value is not None else "").strip()
        for mark in (",", "，", "元", "¥", "￥", " "):
            text = text.replace(mark, "")
        try:
            amount = Decimal(text)
        except InvalidOperation:
            raise PaymentError("bad_amount", f"not an amount: {value!r}") from None
    if not amount.is_finite():
        raise PaymentError("bad_amount", f"not an amount: {value!r}")
    if amount <= 0:
        raise PaymentError("not_positive", f"amount must be positive: {value!r}")
    if amount != amount.quantize(CENT) or amount > MAX_AMOUNT:
        raise PaymentError("bad_amount", f"more than two decimals or too large: {value!r}")
    return amount.quantize(CENT)


def record_payment(
    session: Session,
    *,
    unit: UnitLike,
    amount: object,
    paid_at: dt.datetime,
    period: Optional[str] = None,
    channel: Optional[str] = None,
    reference: str,
    actor: str,
    source: PaymentSource = PaymentSource.STAFF,
    import_id: Optional[int] = None,
    evaluate: bool = True,
) -> Payment:
    """Write one payment, then (``evaluate``) evaluate the promises of its unit.

    Args:
        session: The caller's unit of work (it commits; a staff screen writes the audit row with it).
        unit: The unit paid for (id, code, address or :class:`Unit`).
        amount: Yuan; see :func:`parse_amount`.
        paid_at: When it was paid; a naive time is taken in the estate's zone.
        period: The period it pays for, as written (optional).
        channel: How it was paid (optional).
        reference: The company's 流水号 or receipt number; unique.
        actor: Who records it (staff username or ``cli:<os user>``).
        source: ``staff`` or ``import``.
        import_id: The import run that loaded it.
        evaluate: Evaluate the unit's promises afterwards (the import does it once at the end instead).

    Returns:
        The new payment, flushed.

    Raises:
        PaymentError: ``unknown_unit``, ``bad_amount``, ``not_positive``, ``future``, ``no_reference``,
            ``too_long``; :class:`DuplicateReference` when the reference is stored.
    """
    target = resolve_unit(session, unit)
    value = parse_amount(amount)
    moment = paid_at if paid_at.tzinfo is not None else paid_at.replace(tzinfo=clock.zone())
    if moment > clock.now() + FUTURE_TOLERANCE:
        raise PaymentError("future", f"paid_at {moment.isoformat()} is in the future")
    ref = (reference or "").strip()
    if not ref:
        raise PaymentError("no_reference", "a payment needs its reference")
    period_text = (period or "").strip() or None
    channel_text = (channel or "").strip() or None
    if (
        len(ref) > REFERENCE_LENGTH
        or len(period_text or "") > PERIOD_LENGTH
        or len(channel_text or "") > CHANNEL_LENGTH
    ):
        raise PaymentError("too_long", "reference, period or channel is too long")
    existing = find_by_reference(session, reference=ref)
    if existing is not None:
        raise DuplicateReference(existing, _same(existing, target, value, moment, period_text, channel_text))
    payment = Payment(
        unit_id=target.id,
        amount=value,
        paid_at=moment.astimezone(dt.timezone.utc),
        period=period_text,
        channel=channel_text,
        reference=ref,
        source=source,
        recorded_by=actor[:64],
        import_id=import_id,
        created_at=clock.utc_now(),
    )
    try:
        # A savepoint: another transaction may store the same reference between our look-up and this insert
        # (an import beside a staff entry); the unique index then refuses it and it is a duplicate like any other.
        with session.begin_nested():
            session.add(payment)
    except IntegrityError:
        existing = find_by_reference(session, reference=ref)
        if existing is None:
            raise
        raise DuplicateReference(existing, _same(existing, target, value, moment, period_text, channel_text)) from None
    if evaluate:
        evaluate_promises(session, today=clock.today(), unit_ids=[int(target.id)])
    return payment


def find_by_reference(session: Session, *, reference: str) -> Optional[Payment]:
    """The stored payment with this reference, if any."""
    return session.execute(sa.select(Payment).where(Payment.reference == reference.strip())).scalar_one_or_none()


def paid_since(session: Session, *, unit: UnitLike, since: Union[dt.datetime, dt.date]) -> Decimal:
    """What the unit paid at or after ``since`` (a date: from the start of that day in the estate's zone).

    Args:
        session: The caller's session.
        unit: The unit (id, code, address or :class:`Unit`).
        since: The moment (or day) from which payments count.

    Returns:
        The sum, 0.00 when nothing was paid.
    """
    target = resolve_unit(session, unit)
    if isinstance(since, dt.datetime):
        start = since if since.tzinfo is not None else since.replace(tzinfo=clock.zone())
    else:
        start = dt.datetime.combine(since, dt.time(0), tzinfo=clock.zone())
    start = start.astimezone(dt.timezone.utc)
    rows = session.execute(sa.select(Payment.amount, Payment.paid_at).where(Payment.unit_id == target.id))
    total = sum((Decimal(amount) for amount, paid_at in rows if as_utc(paid_at) >= start), Decimal("0"))
    return total.quantize(CENT)


def payments_of_unit(session: Session, *, unit_id: int, limit: int = 200) -> List[PaymentLine]:
    """The unit's payments, latest paid first."""
    rows = session.execute(
        sa.select(Payment)
        .where(Payment.unit_id == unit_id)
        .order_by(Payment.paid_at.desc(), Payment.id.desc())
        .limit(limit)
    ).scalars()
    return [_line(row) for row in rows]


def promise_outcome(
    session: Session, promise: PaymentPromise, *, today: Optional[dt.date] = None, grace_days: Optional[int] = None
) -> PromiseOutcome:
    """How ``promise`` stands on ``today`` (default: the clock's) under the module's rule; writes nothing."""
    day = today if today is not None else clock.today()
    grace = _grace(grace_days)
    start = _made_on(promise.created_at)
    end = promise.due_date + dt.timedelta(days=grace)
    if PromiseStatus(promise.status) is PromiseStatus.KEPT:
        paid = Decimal(promise.paid_amount or 0).quantize(CENT)
        return PromiseOutcome(PromiseStatus.KEPT, paid, start, end, False)
    unit_id = session.execute(sa.select(Owner.unit_id).where(Owner.id == promise.owner_id)).scalar_one()
    rows = session.execute(sa.select(Payment.amount, Payment.paid_at).where(Payment.unit_id == unit_id))
    paid = sum(
        (Decimal(amount) for amount, paid_at in rows if start <= clock.local_date(as_utc(paid_at)) <= end),
        Decimal("0"),
    ).quantize(CENT)
    amount = Decimal(promise.amount)
    if (amount > 0 and paid >= amount) or (amount <= 0 and paid > 0):
        status = PromiseStatus.KEPT
    elif day > end:
        status = PromiseStatus.BROKEN
    else:
        status = PromiseStatus.OPEN
    return PromiseOutcome(status, paid, start, end, status is not PromiseStatus.KEPT and Decimal("0") < paid < amount)


def evaluate_promises(
    session: Session,
    *,
    today: dt.date,
    unit_ids: Optional[List[int]] = None,
    grace_days: Optional[int] = None,
) -> List[PromiseChange]:
    """Store the outcome of every open or broken promise (of ``unit_ids`` when given) on ``today``.

    Idempotent: a promise is written only when its status or paid amount changes (``evaluated_at`` then
    set to the clock's now), so running it twice on the same data changes nothing the second time.

    Args:
        session: The caller's unit of work (it commits).
        today: The estate's date to judge the windows by.
        unit_ids: Only promises of owners of these units (after a payment); None: all.
        grace_days: Override ``PROMISE_GRACE_DAYS``.

    Returns:
        The promises whose status or paid amount changed (the worker follows up those now broken).
    """
    query = sa.select(PaymentPromise).where(PaymentPromise.status.in_([PromiseStatus.OPEN, PromiseStatus.BROKEN]))
    if unit_ids is not None:
        if not unit_ids:
            return []
        query = query.join(Owner, Owner.id == PaymentPromise.owner_id).where(Owner.unit_id.in_(set(unit_ids)))
    changes: List[PromiseChange] = []
    for promise in session.execute(query.order_by(PaymentPromise.id)).scalars().all():
        outcome = promise_outcome(session, promise, today=today, grace_days=grace_days)
        before = PromiseStatus(promise.status)
        if outcome.status is before and Decimal(promise.paid_amount or 0) == outcome.paid:
            continue
        promise.status = outcome.status
        promise.paid_amount = outcome.paid
        promise.evaluated_at = clock.utc_now()
        changes.append(PromiseChange(int(promise.id), int(promise.owner_id), before, outcome.status, outcome.paid))
    session.flush()
    return changes


def collection_rate(promises: List[PaymentPromise]) -> Optional[float]:
    """Promised amount kept / promised amount, over the promises decided (kept or broken); None when none are.

    Open promises are left out: their window has not closed, so they are neither kept nor not kept yet.
    """
    decided = [p for p in promises if PromiseStatus(p.status) in (PromiseStatus.KEPT, PromiseStatus.BROKEN)]
    promised = sum((Decimal(p.amount) for p in decided), Decimal("0"))
    if not decided or promised <= 0:
        return None
    kept = sum((Decimal(p.amount) for p in decided if PromiseStatus(p.status) is PromiseStatus.KEPT), Decimal("0"))
    return float(kept / promised)


# --- internals ------------------------------------------------------------------------------------------


def _grace(grace_days: Optional[int]) -> int:
    if grace_days is not None:
        return grace_days
    from bot.settings import get_settings

    return get_settings().promise_grace_days


def _same(
    existing: Payment,
    unit: Unit,
    amount: Decimal,
    paid_at: dt.datetime,
    period: Optional[str],
    channel: Optional[str],
) -> bool:
    """Whether a stored payment says what a new row with its reference says (a re-import, not a conflict)."""
    return (
        int(existing.unit_id) == int(unit.id)
        and Decimal(existing.amount) == amount
        and as_utc(existing.paid_at) == paid_at.astimezone(dt.timezone.utc)
        and (existing.period or None) == period
        and (existing.channel or None) == channel
    )


def _made_on(created_at: dt.datetime) -> dt.date:
    # Records are stamped with clock.now() in the estate's zone, which SQLite keeps without its zone.
    if created_at.tzinfo is None:
        return created_at.date()
    return created_at.astimezone(clock.zone()).date()


def _line(row: Payment) -> PaymentLine:
    return PaymentLine(
        id=int(row.id),
        unit_id=int(row.unit_id),
        amount=Decimal(row.amount).quantize(CENT),
        paid_at=as_utc(row.paid_at).astimezone(clock.zone()),
        period=row.period,
        channel=row.channel,
        reference=str(row.reference),
        source=str(PaymentSource(row.source).value),
        recorded_by=str(row.recorded_by),
        created_at=as_utc(row.created_at).astimezone(clock.zone()),
    )
