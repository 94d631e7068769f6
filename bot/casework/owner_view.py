"""Read-only views of owners and their records for the staff console and its JSON API.

Nothing here writes: the console audits each view itself. Amounts are :class:`~decimal.Decimal`, dates
:class:`datetime.date`, times aware in the estate's timezone (:mod:`bot.clock`).

Stored times: records are stamped with :func:`bot.clock.now` (the estate's zone), which SQLite keeps without
its zone, so a naive time read back is taken in the estate's zone (as :mod:`bot.services.queue` does).

Former owners (retired by the import's roster or a transfer, :mod:`bot.owners.ownership`) are left out of
searches unless asked for, and their profile is marked former: their history stays, the unit's bills and
arrears are shown on the current owner's page instead.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Optional, Tuple, Type

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot import clock
from bot.conversations import transcripts
from bot.db import models
from bot.db.staff_models import StaffUser
from bot.owners import arrears
from bot.owners.ownership import CURRENT
from bot.owners.payments import PaymentLine, is_partial, payments_of_unit
from bot.owners.units import parse_unit
from bot.rasa import events as rasa_events
from bot.services import queue

SEARCH_LIMIT = 200
RECORDS_LIMIT = 500


class OwnerNotFound(LookupError):
    """No owner has this id."""

    def __init__(self, owner_id: int) -> None:
        super().__init__(f"owner {owner_id} does not exist")
        self.owner_id = owner_id


class RecordKind(str, enum.Enum):
    """The record types staff read (the API's ``/api/<kind>`` names)."""

    PROMISES = "promises"
    REPAIRS = "repairs"
    COMPLAINTS = "complaints"
    BILL_CHECKS = "bill_checks"
    INSTALMENTS = "instalments"


_MODELS: Dict[RecordKind, Type[Any]] = {
    RecordKind.PROMISES: models.PaymentPromise,
    RecordKind.REPAIRS: models.RepairOrder,
    RecordKind.COMPLAINTS: models.Complaint,
    RecordKind.BILL_CHECKS: models.BillCheckRequest,
    RecordKind.INSTALMENTS: models.InstalmentRequest,
}


class PromiseBucket(str, enum.Enum):
    """How a payment promise stands today (the records screen's tabs and the API's ``status`` filter)."""

    DUE_TODAY = "due_today"  # open, due today
    OVERDUE = "overdue"  # open, its date has passed
    OPEN = "open"  # open, due later
    KEPT = "kept"
    BROKEN = "broken"


# A filter beside the buckets, not a bucket: promises not kept with some but not all of the amount paid
# (bot.owners.payments stores paid_amount), whatever their bucket, listed together for a follow-up.
PARTIAL = "partial"

# The status filters each kind accepts (a filter naming another is refused): the stored statuses, except
# promises, filtered as the records screen shows them (the buckets on the clock's today, and partial).
STATUSES: Dict[RecordKind, Tuple[str, ...]] = {
    RecordKind.PROMISES: (*(bucket.value for bucket in PromiseBucket), PARTIAL),
    RecordKind.REPAIRS: tuple(status.value for status in models.RecordStatus),
    RecordKind.COMPLAINTS: tuple(status.value for status in models.RecordStatus),
    RecordKind.BILL_CHECKS: tuple(status.value for status in models.RecordStatus),
    RecordKind.INSTALMENTS: tuple(status.value for status in models.InstalmentStatus),
}


@dataclass(frozen=True)
class BillLine:
    """One billing period of the owner's unit.

    Attributes:
        period: ``YYYY-MM``.
        amount_due: What the period costs.
        amount_paid: What was paid towards it.
        outstanding: ``amount_due - amount_paid`` (never below zero).
    """

    period: str
    amount_due: Decimal
    amount_paid: Decimal
    outstanding: Decimal


@dataclass(frozen=True)
class RecordLine:
    """One record the bot wrote from a conversation, with the fields its kind has (others None).

    Attributes:
        kind: Which kind of record.
        id: Its id.
        number: Its record number (CN..., BX..., TS..., HD..., FQ...), as told to the owner.
        sender_id: The conversation it was made in.
        owner_id: The owner it is for (repairs and complaints may have none).
        unit: The owner's unit code, when known.
        status: The stored status.
        created_at: When it was made.
        amount: Promises: the amount promised.
        due_date: Promises: the date promised.
        paid_amount: Promises: what the unit paid in its window (``bot.owners.payments``; partial when
            ``0 < paid_amount < amount`` and not kept).
        item: Repairs: what is broken.
        location: Repairs: where.
        description: Repairs, complaints and bill checks: what the owner said.
        preferred_time: Repairs: when the owner can let someone in.
        proposed_plan: Instalments: the plan the owner proposed.
    """

    kind: RecordKind
    id: int
    number: Optional[str]
    sender_id: Optional[str]
    owner_id: Optional[int]
    unit: Optional[str]
    status: str
    created_at: dt.datetime
    amount: Optional[Decimal] = None
    due_date: Optional[dt.date] = None
    paid_amount: Optional[Decimal] = None
    item: Optional[str] = None
    location: Optional[str] = None
    description: Optional[str] = None
    preferred_time: Optional[str] = None
    proposed_plan: Optional[str] = None

    @property
    def partial(self) -> bool:
        """A promise not kept with some but not all of its amount paid (:func:`bot.owners.payments.is_partial`)."""
        return self.kind is RecordKind.PROMISES and is_partial(self.status, self.amount, self.paid_amount)


@dataclass(frozen=True)
class OwnerSummary:
    """An owner as a search lists them.

    Attributes:
        id: The owner's id.
        name: Their name.
        phone: The stored phone number (whole: the caller masks it for the viewer's role).
        unit: Their unit's code (``3-2-501``).
        outstanding: What the unit owes in total (0.00 for a former owner: it is the current owner's).
        former: Whether they are a former owner.
        owned_until: A former owner's last day of ownership (the transfer's or the roster's date).
    """

    id: int
    name: str
    phone: str
    unit: str
    outstanding: Decimal
    former: bool = False
    owned_until: Optional[dt.date] = None


@dataclass(frozen=True)
class OwnerProfile:
    """Everything staff see about one owner.

    Attributes:
        id: The owner's id.
        name: Their name.
        phone: The stored phone number (whole: the caller masks it for the viewer's role).
        unit: The unit's code.
        building: The unit's building.
        entrance: The unit's entrance (单元), if it has one.
        room: The unit's room.
        bills: Every billing period of the unit, oldest first (as the arrears import stated them).
        outstanding: The total still owed: the bills less the payments since (:mod:`bot.owners.arrears`).
        arrears_since: The first period still unpaid after those payments, if any.
        promises: Payment promises, newest first.
        repairs: Repair orders, newest first.
        complaints: Complaints, newest first.
        bill_checks: Bill checks, newest first.
        instalments: Instalment requests, newest first.
        escalations: Escalations of the owner, newest first.
        conversations: Every conversation of the owner on every channel, most recently active first.
        payments: The unit's payments, latest first.
        ownership: The ownership period, and for a former owner when, why and by whom it ended.
    """

    id: int
    name: str
    phone: str
    unit: str
    building: str
    entrance: Optional[str]
    room: str
    bills: List[BillLine]
    outstanding: Decimal
    arrears_since: Optional[str]
    promises: List[RecordLine] = field(default_factory=list)
    repairs: List[RecordLine] = field(default_factory=list)
    complaints: List[RecordLine] = field(default_factory=list)
    bill_checks: List[RecordLine] = field(default_factory=list)
    instalments: List[RecordLine] = field(default_factory=list)
    escalations: List[queue.QueueEntry] = field(default_factory=list)
    conversations: List[transcripts.ConversationSummary] = field(default_factory=list)
    payments: List[PaymentLine] = field(default_factory=list)
    ownership: Optional[Ownership] = None

    @property
    def former(self) -> bool:
        """Whether this is a former owner."""
        return self.ownership is not None and self.ownership.former


@dataclass(frozen=True)
class Ownership:
    """An owner's ownership period.

    Attributes:
        owned_from: The first day (None: before periods were recorded).
        owned_until: A former owner's last day (the transfer's or the roster's date).
        retired_at: When the owner was retired; None for a current owner.
        retired_reason: ``roster`` (the import listed another owner) or ``transfer`` (过户 recorded by staff).
        retired_by: A staff username, or ``import``.
        current_owners: The unit's current owners as ``(id, name)`` (for a former owner: whom the unit passed to).
    """

    owned_from: Optional[dt.date]
    owned_until: Optional[dt.date]
    retired_at: Optional[dt.datetime]
    retired_reason: Optional[str]
    retired_by: Optional[str]
    current_owners: Tuple[Tuple[int, str], ...] = ()

    @property
    def former(self) -> bool:
        """Whether the owner was retired."""
        return self.retired_at is not None


def search_owners(
    session: Session,
    *,
    unit: Optional[str] = None,
    text: Optional[str] = None,
    limit: int = SEARCH_LIMIT,
    include_former: bool = False,
) -> List[OwnerSummary]:
    """Current owners matching ``unit`` or ``text``, ordered by unit code (former owners too when asked).

    ``unit`` may be written as people write it (``3栋2单元501``, ``7号楼2单元1102``) or as its code
    (``3-2-501``); a part of a code (``3-2``) matches every unit whose code contains it. ``text`` finds people
    the way staff remember them: a unit in any of those forms, a room number (``1102``), the last digits of a
    phone (``6688``) or part of a name (``王建``).

    Args:
        session: The caller's session.
        unit: A unit to look for; empty or None lists every owner.
        text: A unit, room, phone tail or name to look for (instead of ``unit``).
        limit: At most this many owners.
        include_former: Also former owners (marked ``former``, after the current owners of their unit).

    Returns:
        The matching owners.
    """
    query = sa.select(models.Owner, models.Unit.code).join(models.Unit, models.Owner.unit_id == models.Unit.id)
    if not include_former:
        query = query.where(CURRENT)
    wanted = (unit or "").strip()
    if wanted:
        query = query.where(_unit_matches(wanted))
    said = (text or "").strip()
    if said:
        query = query.where(_person_matches(said))
    former_last = sa.case((CURRENT, 0), else_=1)
    rows = list(session.execute(query.order_by(models.Unit.code, former_last, models.Owner.id).limit(limit)))
    owed = _outstanding_by_unit(session, [owner.unit_id for owner, _ in rows])
    return [
        OwnerSummary(
            id=int(owner.id),
            name=str(owner.name),
            phone=str(owner.phone),
            unit=str(code),
            outstanding=owed.get(int(owner.unit_id), Decimal("0.00")) if owner.current else Decimal("0.00"),
            former=not owner.current,
            owned_until=owner.owned_until,
        )
        for owner, code in rows
    ]


def _contains(column: Any, needle: str) -> Any:
    """``column`` contains ``needle`` (case-insensitive, ``%`` and ``_`` taken literally)."""
    escaped = needle.replace("!", "!!").replace("%", "!%").replace("_", "!_")
    return column.ilike(f"%{escaped}%", escape="!")


def _unit_matches(wanted: str) -> Any:
    parsed = parse_unit(wanted)
    return _contains(models.Unit.code, parsed.code if parsed is not None else wanted)


def _person_matches(said: str) -> Any:
    """A unit in any form, a room, a phone's last digits or part of a name."""
    if parse_unit(said) is not None:
        return _unit_matches(said)
    digits = said.replace(" ", "").replace("-", "")
    if digits.isdigit():
        return sa.or_(models.Unit.room == digits, models.Owner.phone.like(f"%{digits}"), _contains(models.Unit.code, said))
    return sa.or_(_contains(models.Owner.name, said), _contains(models.Unit.code, said))


def find_conversations(session: Session, *, text: str, limit: int = 50) -> List[RecentConversation]:
    """Conversations staff look for by who the owner is or what was said, the most recently active first.

    ``text`` finds the conversations of the owners :func:`search_owners` finds for it (a unit in any form, a
    room, a phone tail, a name; former owners included) and the conversations in which the owner wrote it.

    Args:
        session: A session on the database that holds the records and Rasa's tracker store.
        text: What staff typed.
        limit: At most this many.
    """
    wanted = text.strip()
    if not wanted:
        return []
    owners = [owner.id for owner in search_owners(session, text=wanted, include_former=True, limit=limit)]
    senders: Dict[str, None] = {}
    if owners:
        linked = session.execute(
            sa.select(models.ConversationLink.sender_id)
            .where(models.ConversationLink.owner_id.in_(owners))
            .order_by(models.ConversationLink.id.desc())
        ).scalars()
        senders.update((str(sender), None) for sender in linked)
    senders.update((sender, None) for sender in rasa_events.senders_saying(session, text=wanted, limit=limit))
    found = [conversation for sender in list(senders)[:limit] for conversation in recent_conversations(session, sender_id=sender)]
    return sorted(found, key=lambda item: item.last_message_at or dt.datetime.min.replace(tzinfo=dt.timezone.utc), reverse=True)


def owner_profile(session: Session, *, owner_id: int) -> OwnerProfile:
    """Everything about one owner: unit, bills, every record, escalation and conversation.

    Args:
        session: A session on the database that holds the records and Rasa's tracker store.
        owner_id: The owner.

    Returns:
        The profile.

    Raises:
        OwnerNotFound: No owner has this id.
    """
    owner = session.get(models.Owner, owner_id)
    if owner is None:
        raise OwnerNotFound(owner_id)
    unit = owner.unit
    bills: List[BillLine] = []
    owed = arrears.ArrearsSummary(Decimal("0.00"), None, 0)
    if owner.current:  # a former owner's page keeps their history; the unit's figures are the current owner's
        bills = [
            _bill_line(bill)
            for bill in session.execute(
                sa.select(models.Bill).where(models.Bill.unit_id == unit.id).order_by(models.Bill.period)
            ).scalars()
        ]
        owed = arrears.unit_summary(session, unit_id=int(unit.id), today=clock.today())

    def of_kind(kind: RecordKind) -> List[RecordLine]:
        return list_records(session, kind=kind, owner_id=owner_id)

    return OwnerProfile(
        id=int(owner.id),
        name=str(owner.name),
        phone=str(owner.phone),
        unit=str(unit.code),
        building=str(unit.building),
        entrance=unit.entrance,
        room=str(unit.room),
        bills=bills,
        outstanding=owed.amount,
        arrears_since=owed.since,
        promises=of_kind(RecordKind.PROMISES),
        repairs=of_kind(RecordKind.REPAIRS),
        complaints=of_kind(RecordKind.COMPLAINTS),
        bill_checks=of_kind(RecordKind.BILL_CHECKS),
        instalments=of_kind(RecordKind.INSTALMENTS),
        escalations=queue.list_escalations(session, owner_id=owner_id, sort=queue.Sort.NEWEST),
        conversations=transcripts.conversations_of_owner(session, owner_id=owner_id),
        payments=payments_of_unit(session, unit_id=int(unit.id)),
        ownership=ownership_of(session, owner),
    )


def ownership_of(session: Session, owner: models.Owner) -> Ownership:
    """The owner's ownership period and the unit's current owners."""
    current = session.execute(
        sa.select(models.Owner.id, models.Owner.name)
        .where(models.Owner.unit_id == owner.unit_id, CURRENT)
        .order_by(models.Owner.id)
    ).all()
    reason = owner.retired_reason
    return Ownership(
        owned_from=owner.owned_from,
        owned_until=owner.owned_until,
        retired_at=None if owner.retired_at is None else stored_utc(owner.retired_at),
        retired_reason=None if reason is None else _status_value(reason),
        retired_by=owner.retired_by,
        current_owners=tuple((int(owner_id), str(name)) for owner_id, name in current),
    )


def list_records(
    session: Session,
    *,
    kind: RecordKind,
    sender_id: Optional[str] = None,
    owner_id: Optional[int] = None,
    status: Optional[str] = None,
    limit: int = RECORDS_LIMIT,
) -> List[RecordLine]:
    """Records of one kind matching every given filter, newest first.

    Args:
        session: The caller's session.
        kind: Which records.
        sender_id: Only those made in this conversation.
        owner_id: Only this owner's.
        status: Only those with this status (one of :data:`STATUSES` for the kind; for promises a
            :class:`PromiseBucket` on the clock's today or :data:`PARTIAL`).
        limit: At most this many.

    Returns:
        The records.

    Raises:
        ValueError: ``status`` is not one the kind has.
    """
    model = _MODELS[RecordKind(kind)]
    query = (
        sa.select(model, models.Unit.code)
        .outerjoin(models.Owner, model.owner_id == models.Owner.id)
        .outerjoin(models.Unit, models.Owner.unit_id == models.Unit.id)
    )
    if status is not None:
        if status not in STATUSES[RecordKind(kind)]:
            raise ValueError(f"{kind.value} have no status {status!r}")
        if RecordKind(kind) is RecordKind.PROMISES:
            query = query.where(promise_filter(status, today=clock.today()))
        else:
            query = query.where(model.status == status)
    if sender_id is not None:
        query = query.where(model.sender_id == sender_id)
    if owner_id is not None:
        query = query.where(model.owner_id == owner_id)
    rows = session.execute(query.order_by(model.created_at.desc(), model.id.desc()).limit(limit))
    return [_record_line(RecordKind(kind), record, code) for record, code in rows]


def promise_filter(status: str, *, today: dt.date) -> Any:
    """The SQL condition on payment promises for a :class:`PromiseBucket` on ``today`` or :data:`PARTIAL`."""
    promise = models.PaymentPromise
    if status == PARTIAL:
        return sa.and_(
            promise.status != models.PromiseStatus.KEPT,
            promise.paid_amount > 0,
            promise.paid_amount < promise.amount,
        )
    bucket = PromiseBucket(status)
    if bucket is PromiseBucket.KEPT:
        return promise.status == models.PromiseStatus.KEPT
    if bucket is PromiseBucket.BROKEN:
        return promise.status == models.PromiseStatus.BROKEN
    due = {
        PromiseBucket.DUE_TODAY: promise.due_date == today,
        PromiseBucket.OVERDUE: promise.due_date < today,
        PromiseBucket.OPEN: promise.due_date > today,
    }[bucket]
    return sa.and_(promise.status == models.PromiseStatus.OPEN, due)


def owner_of_conversation(session: Session, *, sender_id: str) -> Optional[int]:
    """The owner a conversation belongs to, or None.

    The owner it was verified for on a trusted channel (the latest link), else the owner of the latest record
    the bot made for someone in it.
    """
    linked = session.execute(
        sa.select(models.ConversationLink.owner_id)
        .where(models.ConversationLink.sender_id == sender_id)
        .order_by(models.ConversationLink.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if linked is not None:
        return int(linked)
    latest: Optional[Tuple[dt.datetime, int]] = None
    record_models: List[Any] = [*_MODELS.values(), models.Escalation]
    for model in record_models:
        row = session.execute(
            sa.select(model.created_at, model.owner_id)
            .where(model.sender_id == sender_id, model.owner_id.is_not(None))
            .order_by(model.created_at.desc(), model.id.desc())
            .limit(1)
        ).first()
        if row is not None:
            moment = stored_time(row[0])
            if latest is None or moment > latest[0]:
                latest = (moment, int(row[1]))
    return latest[1] if latest else None


def conversation_known(session: Session, *, sender_id: str) -> bool:
    """Whether anything is stored for ``sender_id``: a tracker store event, a link or a record."""
    if rasa_events.has_conversation(session, sender_id=sender_id):
        return True
    stored_models: List[Any] = [*_MODELS.values(), models.Escalation, models.ConversationLink]
    for model in stored_models:
        if session.execute(sa.select(model.id).where(model.sender_id == sender_id).limit(1)).first() is not None:
            return True
    return False


@dataclass(frozen=True)
class RecentConversation:
    """A conversation as the conversations list shows it.

    Attributes:
        sender_id: The Rasa sender id.
        last_message_at: Its latest message.
        messages: How many messages (owner, bot and staff) it holds.
        owner_id: The owner it belongs to, if known.
        owner_name: That owner's name.
        unit: That owner's unit code.
    """

    sender_id: str
    last_message_at: Optional[dt.datetime]
    messages: int
    owner_id: Optional[int]
    owner_name: Optional[str] = None
    unit: Optional[str] = None


def recent_conversations(
    session: Session, *, sender_id: Optional[str] = None, limit: int = 50
) -> List[RecentConversation]:
    """The most recently active conversations in the tracker store.

    Args:
        session: A session on the database that holds Rasa's tracker store.
        sender_id: Only this conversation (staff find it by its handle, never by typing an id).
        limit: At most this many.

    Returns:
        The conversations, the most recently active first; empty when there is no tracker store yet.
    """
    found = rasa_events.latest_activity(session, types=("user", "bot"), limit=limit, sender_id=sender_id)
    owners = {str(sender): owner_of_conversation(session, sender_id=str(sender)) for sender, _, _ in found}
    known = {owner for owner in owners.values() if owner is not None}
    who: Dict[int, Tuple[str, str]] = {}
    if known:
        rows = session.execute(
            sa.select(models.Owner.id, models.Owner.name, models.Unit.code)
            .join(models.Unit, models.Owner.unit_id == models.Unit.id)
            .where(models.Owner.id.in_(known))
        )
        who = {int(owner_id): (str(name), str(code)) for owner_id, name, code in rows}
    return [
        RecentConversation(
            sender_id=str(sender),
            last_message_at=transcripts._moment(last, {}),
            messages=int(count),
            owner_id=owners[str(sender)],
            owner_name=who.get(owners[str(sender)] or -1, (None, None))[0],
            unit=who.get(owners[str(sender)] or -1, (None, None))[1],
        )
        for sender, last, count in found
    ]


def staff_names(session: Session, *, usernames: Iterable[str]) -> Dict[str, str]:
    """The display names of the staff ``usernames`` (unknown ones are left out)."""
    wanted = {name for name in usernames if name}
    if not wanted:
        return {}
    rows = session.execute(
        sa.select(StaffUser.username, StaffUser.display_name).where(StaffUser.username.in_(wanted))
    )
    return {str(username): str(name) for username, name in rows}


def active_staff(session: Session) -> List[Tuple[str, str, str]]:
    """Every active staff account as ``(username, display name, role)``, by display name."""
    rows = session.execute(
        sa.select(StaffUser.username, StaffUser.display_name, StaffUser.role)
        .where(StaffUser.active.is_(True))
        .order_by(StaffUser.display_name, StaffUser.username)
    )
    return [(str(username), str(name), _status_value(role)) for username, name, role in rows]


def stored_utc(value: Any) -> dt.datetime:
    """A time stored in UTC with :func:`bot.clock.utc_now` (naive on SQLite), aware in the estate's zone."""
    moment: dt.datetime = value
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(clock.zone())


def stored_time(value: Any) -> dt.datetime:
    """A time the code stamped with :func:`bot.clock.now`, aware in the estate's zone (naive: that zone)."""
    moment: dt.datetime = value
    if moment.tzinfo is None:
        return moment.replace(tzinfo=clock.zone())
    return moment.astimezone(clock.zone())


# --- internals ------------------------------------------------------------------------------------------


def _bill_line(bill: models.Bill) -> BillLine:
    due = Decimal(bill.amount_due)
    paid = Decimal(bill.amount_paid or 0)
    return BillLine(
        period=str(bill.period),
        amount_due=due.quantize(Decimal("0.01")),
        amount_paid=paid.quantize(Decimal("0.01")),
        outstanding=max(due - paid, Decimal("0")).quantize(Decimal("0.01")),
    )


def _outstanding_by_unit(session: Session, unit_ids: List[int]) -> Dict[int, Decimal]:
    return arrears.outstanding_by_unit(session, unit_ids=unit_ids)


def _status_value(value: Any) -> str:
    return str(value.value if isinstance(value, enum.Enum) else value)


def _record_line(kind: RecordKind, record: Any, unit: Optional[str]) -> RecordLine:
    extra: Dict[str, Any] = {}
    if kind is RecordKind.PROMISES:
        extra = {
            "amount": Decimal(record.amount).quantize(Decimal("0.01")),
            "due_date": record.due_date,
            "paid_amount": Decimal(record.paid_amount or 0).quantize(Decimal("0.01")),
        }
    elif kind is RecordKind.REPAIRS:
        extra = {
            "item": record.item,
            "location": record.location,
            "description": record.description,
            "preferred_time": record.preferred_time,
        }
    elif kind in (RecordKind.COMPLAINTS, RecordKind.BILL_CHECKS):
        extra = {"description": record.description}
    elif kind is RecordKind.INSTALMENTS:
        extra = {"proposed_plan": record.proposed_plan}
    return RecordLine(
        kind=kind,
        id=int(record.id),
        number=record.number,
        sender_id=record.sender_id,
        owner_id=record.owner_id,
        unit=unit,
        status=_status_value(record.status),
        created_at=stored_time(record.created_at),
        **extra,
    )
