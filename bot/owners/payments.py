"""Payments received, and what they make of payment promises.

Recording: :func:`record_payment` writes one payment (an import line or a staff member's entry), refusing an
unknown unit, an amount that is not positive to the fen, a time in the future, an empty reference, and a
reference already stored (:class:`DuplicateReference`, with the stored row: the caller decides whether that
is a harmless repeat or a conflict). :func:`paid_since` and :func:`payments_of_unit` read them back.

Promise outcomes (the rule, also in README):

* The window of a promise runs from the moment it was made (``created_at``) to the end of the estate's day
  ``due_date`` plus ``PROMISE_GRACE_DAYS`` (default 2). A payment with a time counts when ``paid_at`` is at or
  after ``created_at`` (a payment that morning does not keep a promise made that afternoon); a payment the
  export gave as a bare date (``Payment.time_known`` false) counts from the estate's date the promise was
  made, since its hour is unknown. :func:`counts_for` is that test, the one place it lives.
* One payment keeps one promise once: the unit's payments are allocated across all its promises (every
  owner's, every conversation's) earliest due first, each promise taking from the payments that count for it,
  oldest first, up to its amount (:func:`allocate`). ``paid_amount`` is the promise's share.
* ``kept`` as soon as its share reaches the promised amount (also before the due date).
* ``broken`` once the window has passed without that. A broken promise is looked at again on every
  evaluation: a payment imported late but dated inside the window turns it into ``kept``. A kept promise
  stays kept (and keeps its share when the unit's payments are allocated).
* *partial* is not a status but :func:`is_partial` (``0 < paid < amount`` on a promise not kept), shown as
  such to staff; every screen and count asks that function.
* A promise without a named amount stores the arrears at the time (:func:`bot.services.promises.default_amount`);
  when that was zero, any payment in the window keeps it (taking no share).

:func:`void_payment` takes back a payment recorded in error (a supervisor's, with a reason): it then counts
nowhere, and the unit's promises are judged again, kept ones included.

:func:`evaluate_promises` applies the rule and is idempotent (it changes a promise only when its status or
paid amount changes, stamping ``evaluated_at`` then). The worker runs it daily; the payment import and
:func:`record_payment` run it for the unit paid for. The caller owns the session and commits.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Dict, List, Optional, Tuple, Union

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import clock
from bot.db.models import Owner, PaymentPromise, PromiseStatus, Unit
from bot.db.payment_models import REFERENCE_LENGTH, VOID_REASON_LENGTH, Payment, PaymentSource
from bot.owners.arrears import as_utc
from bot.owners.units import parse_unit

CENT = Decimal("0.01")
MAX_AMOUNT = Decimal("9999999999.99")  # Numeric(12, 2)
PERIOD_LENGTH = Payment.__table__.c.period.type.length
CHANNEL_LENGTH = Payment.__table__.c.channel.type.length
# A payment time a little ahead of our clock is a clock skew between systems, not a payment from the future.
FUTURE_TOLERANCE = dt.timedelta(minutes=10)
# Payment times outside these years are typing or export errors (0001-01-01, 9999-12-31) and would overflow
# time arithmetic; the upper bound is the clock's year plus one.
FIRST_YEAR = 2000
# A binary float this close to a fen value is that value (1234.56 read from a spreadsheet as 1234.5600000000002).
FLOAT_SLACK = 1e-6

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
    voided_at: Optional[dt.datetime] = None
    voided_by: Optional[str] = None
    void_reason: Optional[str] = None


@dataclass(frozen=True)
class PromiseOutcome:
    """How a promise stands under the rule (computed; :func:`evaluate_promises` stores it).

    Attributes:
        status: ``open``, ``kept`` or ``broken``.
        paid: The promise's share of the unit's payments (:func:`allocate`).
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
    """A money amount in yuan (``1,200.50``, ``1200元``, ``¥1200``), positive, at most two decimals.

    The one money parser (payments, the import, and the promised amount via
    :func:`bot.services.promises.parse_amount`): more than two decimals is refused, never rounded, except a
    binary float within 1e-6 of a fen value (a spreadsheet's 1234.5600000000002 is 1234.56).

    Raises:
        PaymentError: ``bad_amount`` (not a number, more than two decimals, too large) or ``not_positive``.
    """
    if isinstance(value, Decimal):
        amount = value
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise PaymentError("bad_amount", f"not an amount: {value!r}")
        amount = Decimal(repr(value))
        if abs(value - round(value, 2)) < FLOAT_SLACK:
            amount = amount.quantize(CENT)
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
    time_known: bool = True,
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
        time_known: False when the source gave only a date (``paid_at`` is then the start of that day).

    Returns:
        The new payment, flushed.

    Raises:
        PaymentError: ``unknown_unit``, ``bad_amount``, ``not_positive``, ``bad_time`` (a year outside
            2000..next year), ``future``, ``no_reference``, ``too_long``; :class:`DuplicateReference` when the
            reference is stored.
    """
    target = resolve_unit(session, unit)
    value = parse_amount(amount)
    if not plausible_year(paid_at):
        raise PaymentError("bad_time", f"paid_at {paid_at!r} is not a plausible payment time")
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
        time_known=time_known,
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


def plausible_year(moment: Union[dt.datetime, dt.date]) -> bool:
    """Whether ``moment``'s year is in 2000..the clock's year + 1 (also in UTC, so converting cannot overflow)."""
    last = clock.today().year + 1
    if not FIRST_YEAR <= moment.year <= last:
        return False
    if isinstance(moment, dt.datetime) and moment.tzinfo is not None:
        offset = moment.utcoffset() or dt.timedelta(0)
        return FIRST_YEAR <= (moment.replace(tzinfo=None) - offset).year <= last
    return True


def void_payment(session: Session, *, payment_id: int, actor: str, reason: str) -> List[PromiseChange]:
    """Void a payment recorded in error (a supervisor's decision; the caller checks the role and audits).

    The row stays, stamped with who voided it, when and why, and counts nowhere any more. The promises of its
    unit are judged again, kept ones included, since the payment may have been what kept them.

    Returns:
        The promises whose status or paid amount changed.

    Raises:
        PaymentError: ``unknown_payment``, ``already_voided``, ``no_reason`` (a reason is required) or
            ``too_long``.
    """
    payment = session.get(Payment, payment_id)
    if payment is None:
        raise PaymentError("unknown_payment", f"no payment {payment_id}")
    if payment.voided_at is not None:
        raise PaymentError("already_voided", f"payment {payment_id} is already voided")
    why = (reason or "").strip()
    if not why:
        raise PaymentError("no_reason", "voiding a payment needs a reason")
    if len(why) > VOID_REASON_LENGTH:
        raise PaymentError("too_long", "the reason is too long")
    payment.voided_at = clock.utc_now()
    payment.voided_by = actor[:64]
    payment.void_reason = why
    session.flush()
    return evaluate_promises(session, today=clock.today(), unit_ids=[int(payment.unit_id)], reconsider_kept=True)


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
    rows = session.execute(
        sa.select(Payment.amount, Payment.paid_at).where(Payment.unit_id == target.id, Payment.voided_at.is_(None))
    )
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


def is_partial(status: Union[PromiseStatus, str], amount: object, paid: object) -> bool:
    """Some but not all of the promised amount paid, on a promise not kept: the one *partial* rule."""
    if PromiseStatus(status) is PromiseStatus.KEPT:
        return False
    return Decimal("0") < Decimal(str(paid or 0)) < Decimal(str(amount or 0))


def window(promise: PaymentPromise, *, grace_days: Optional[int] = None) -> Tuple[dt.datetime, dt.date]:
    """The moment ``promise`` was made (aware) and the estate's last date of its window (due + grace)."""
    made = promise.created_at
    # Records are stamped with clock.now() in the estate's zone, which SQLite keeps without its zone.
    start = made if made.tzinfo is not None else made.replace(tzinfo=clock.zone())
    return start, promise.due_date + dt.timedelta(days=_grace(grace_days))


def counts_for(promise: PaymentPromise, payment: Payment, *, grace_days: Optional[int] = None) -> bool:
    """Whether ``payment`` falls in the window of ``promise`` (the module's rule; the one place it lives).

    A payment with a time counts at or after the moment the promise was made; one the export gave as a bare
    date counts from the estate's date the promise was made. Either way up to the end of due + grace.
    """
    start, end = window(promise, grace_days=grace_days)
    paid = as_utc(payment.paid_at)
    if clock.local_date(paid) > end:
        return False
    if payment.time_known is False:
        return clock.local_date(paid) >= clock.local_date(start)
    return paid >= start.astimezone(dt.timezone.utc)


def payments_for_promise(
    session: Session, *, promise: PaymentPromise, grace_days: Optional[int] = None
) -> List[Payment]:
    """The unit's payments that count for ``promise`` (:func:`counts_for`), oldest first.

    What each one still has for this promise after the unit's other promises is :func:`allocate`'s business.
    """
    unit_id = session.execute(sa.select(Owner.unit_id).where(Owner.id == promise.owner_id)).scalar_one()
    rows = session.execute(
        sa.select(Payment)
        .where(Payment.unit_id == unit_id, Payment.voided_at.is_(None))
        .order_by(Payment.paid_at, Payment.id)
    ).scalars()
    return [row for row in rows if counts_for(promise, row, grace_days=grace_days)]


def allocate(session: Session, *, unit_id: int, grace_days: Optional[int] = None) -> Dict[int, Decimal]:
    """Each promise's share of the unit's payments: promise id → paid towards it.

    The unit's promises (of every owner and conversation) take, earliest due first, from the payments that
    count for them (oldest first) what those have left, up to their amount; so one payment keeps one
    promise, not two overlapping ones. A promise of nothing named (amount 0) takes nothing.
    """
    grace = _grace(grace_days)
    promises = (
        session.execute(
            sa.select(PaymentPromise)
            .join(Owner, Owner.id == PaymentPromise.owner_id)
            .where(Owner.unit_id == unit_id)
            .order_by(PaymentPromise.due_date, PaymentPromise.id)
        )
        .scalars()
        .all()
    )
    paid = session.execute(
        sa.select(Payment)
        .where(Payment.unit_id == unit_id, Payment.voided_at.is_(None))
        .order_by(Payment.paid_at, Payment.id)
    )
    ledger = [(row, Decimal(row.amount)) for row in paid.scalars()]
    left = {int(row.id): amount for row, amount in ledger}
    shares: Dict[int, Decimal] = {}
    for promise in promises:
        need = max(Decimal(promise.amount), Decimal("0"))
        share = Decimal("0")
        for row, _ in ledger:
            if share >= need:
                break
            if left[int(row.id)] <= 0 or not counts_for(promise, row, grace_days=grace):
                continue
            taken = min(left[int(row.id)], need - share)
            left[int(row.id)] -= taken
            share += taken
        shares[int(promise.id)] = share.quantize(CENT)
    return shares


def promise_outcome(
    session: Session, promise: PaymentPromise, *, today: Optional[dt.date] = None, grace_days: Optional[int] = None
) -> PromiseOutcome:
    """How ``promise`` stands on ``today`` (default: the clock's) under the module's rule; writes nothing."""
    unit_id = session.execute(sa.select(Owner.unit_id).where(Owner.id == promise.owner_id)).scalar_one()
    shares = allocate(session, unit_id=int(unit_id), grace_days=grace_days)
    return _outcome(session, promise, shares.get(int(promise.id), Decimal("0.00")), today, grace_days)


def evaluate_promises(
    session: Session,
    *,
    today: dt.date,
    unit_ids: Optional[List[int]] = None,
    grace_days: Optional[int] = None,
    reconsider_kept: bool = False,
) -> List[PromiseChange]:
    """Store the outcome of every open or broken promise (of ``unit_ids`` when given) on ``today``.

    Idempotent: a promise is written only when its status or paid amount changes (``evaluated_at`` then
    set to the clock's now), so running it twice on the same data changes nothing the second time. Each
    unit's payments are allocated once across its promises (:func:`allocate`).

    Args:
        session: The caller's unit of work (it commits).
        today: The estate's date to judge the windows by.
        unit_ids: Only promises of owners of these units (after a payment); None: all.
        grace_days: Override ``PROMISE_GRACE_DAYS``.
        reconsider_kept: Judge kept promises again too (after a payment was voided: what kept them may be gone).

    Returns:
        The promises whose status or paid amount changed (the worker follows up those now broken).
    """
    query = (
        sa.select(PaymentPromise, Owner.unit_id)
        .join(Owner, Owner.id == PaymentPromise.owner_id)
        .where(
            PaymentPromise.status.in_(
                [PromiseStatus.OPEN, PromiseStatus.BROKEN, *([PromiseStatus.KEPT] if reconsider_kept else [])]
            )
        )
    )
    if unit_ids is not None:
        if not unit_ids:
            return []
        query = query.where(Owner.unit_id.in_(set(unit_ids)))
    changes: List[PromiseChange] = []
    shares_of: Dict[int, Dict[int, Decimal]] = {}
    for promise, unit_id in session.execute(query.order_by(PaymentPromise.id)).all():
        if int(unit_id) not in shares_of:
            shares_of[int(unit_id)] = allocate(session, unit_id=int(unit_id), grace_days=grace_days)
        share = shares_of[int(unit_id)].get(int(promise.id), Decimal("0.00"))
        outcome = _outcome(session, promise, share, today, grace_days, sticky_kept=not reconsider_kept)
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
    """Kept shares / promised amount over ``promises`` (the caller chooses which are due to be judged).

    A kept promise counts its share (``paid_amount``, at most its amount); one not kept counts nothing but its
    amount in the denominator. None when nothing was promised.
    """
    promised = sum((Decimal(p.amount) for p in promises), Decimal("0"))
    if not promises or promised <= 0:
        return None
    return float(kept_share(promises) / promised)


def kept_share(promises: List[PaymentPromise]) -> Decimal:
    """What the kept ones among ``promises`` were paid, each capped at its amount."""
    return sum(
        (
            min(Decimal(p.paid_amount or 0), Decimal(p.amount))
            for p in promises
            if PromiseStatus(p.status) is PromiseStatus.KEPT
        ),
        Decimal("0"),
    ).quantize(CENT)


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


def _outcome(
    session: Session,
    promise: PaymentPromise,
    share: Decimal,
    today: Optional[dt.date],
    grace_days: Optional[int],
    *,
    sticky_kept: bool = True,
) -> PromiseOutcome:
    day = today if today is not None else clock.today()
    start, end = window(promise, grace_days=grace_days)
    made_on = clock.local_date(start)
    if sticky_kept and PromiseStatus(promise.status) is PromiseStatus.KEPT:
        paid = Decimal(promise.paid_amount or 0).quantize(CENT)
        return PromiseOutcome(PromiseStatus.KEPT, paid, made_on, end, False)
    amount = Decimal(promise.amount)
    if amount > 0 and share >= amount:
        status = PromiseStatus.KEPT
    elif amount <= 0 and any(True for _ in payments_for_promise(session, promise=promise, grace_days=grace_days)):
        status = PromiseStatus.KEPT
    elif day > end:
        status = PromiseStatus.BROKEN
    else:
        status = PromiseStatus.OPEN
    return PromiseOutcome(status, share, made_on, end, is_partial(status, amount, share))


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
        voided_at=as_utc(row.voided_at).astimezone(clock.zone()) if row.voided_at is not None else None,
        voided_by=row.voided_by,
        void_reason=row.void_reason,
    )
