"""The daily review (每日复盘): objections, escalations, promises, repairs, response times and the day's list.

The overview counts what owners objected to, why people were needed, promises made and kept, repairs and
response times; the day's list names the owners with their reasons for the morning meeting.

Days are the estate's days (:mod:`bot.clock`). Objections come from Rasa's tracker store (the ``events`` table:
owner messages whose intent starts with ``objection_``); a database without that table has none. Everything
else comes from the records' tables, counted by the day a record was made.
"""

from __future__ import annotations

import datetime as dt
import math
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot import clock
from bot.db import models
from bot.owners import payments
from bot.rasa import events as rasa_events

DEFAULT_DAYS = 14
MAX_DAYS = 366
OBJECTION_PREFIX = "objection_"
PROMISE_OUTCOMES = ("made", "kept", "broken", "open")



@dataclass(frozen=True)
class Durations:
    """How long something took, in minutes, over ``count`` escalations (None when there were none)."""

    count: int
    median_minutes: Optional[float]
    p90_minutes: Optional[float]


@dataclass(frozen=True)
class Overview:
    """The review of ``days`` (oldest first).

    Attributes:
        days: Each day of the range, oldest first.
        objections: Owners' objections per intent, one count per day of ``days``.
        escalations_by_reason: Escalations made in the range, per reason.
        promises: Payment promises made in the range (``made``), and of those how many are ``kept``,
            ``broken`` and still ``open``.
        repairs_by_item: Repair orders made in the range, per item.
        first_response: Time from an escalation to a person's first response (escalations made in the range).
        resolution: Time from an escalation to its resolution (escalations made in the range).
    """

    days: Tuple[dt.date, ...]
    objections: Dict[str, List[int]]
    escalations_by_reason: Dict[str, int]
    promises: Dict[str, int]
    repairs_by_item: Dict[str, int]
    first_response: Durations
    resolution: Durations


@dataclass(frozen=True)
class Objection:
    """An owner's objection: the intent the bot detected, the message and when."""

    intent: str
    text: str
    at: dt.datetime


@dataclass(frozen=True)
class PromiseNote:
    """A payment promise made that day."""

    number: str
    amount: str
    due_date: dt.date
    status: str


@dataclass(frozen=True)
class EscalationNote:
    """An escalation made that day."""

    number: str
    reason: str
    state: str


@dataclass(frozen=True)
class OwnerDay:
    """One line of the day's list: an owner (or, unverified, a conversation) and their reasons that day.

    Attributes:
        owner_id: The owner, None for a conversation that was never tied to one.
        name: The owner's name ("" when unknown).
        phone: The stored phone number, whole (the caller masks it for the viewer's role).
        unit: The unit code ("" when unknown).
        channels: The channels they used that day (``socketio``, ``wechat``, ``rest``), sorted.
        senders: Their conversations (sender ids) that day, sorted.
        objections: Their objections that day, in order.
        promises: Promises they made that day.
        escalations: Escalations made for them that day.
    """

    owner_id: Optional[int]
    name: str
    phone: str
    unit: str
    channels: Tuple[str, ...]
    senders: Tuple[str, ...]
    objections: Tuple[Objection, ...]
    promises: Tuple[PromiseNote, ...]
    escalations: Tuple[EscalationNote, ...]


@dataclass(frozen=True)
class Collection:
    """The collection rate of the payment promises decided in a range (``bot.owners.payments`` decides them).

    A promise is decided on one day: a kept one the day it was kept (its ``evaluated_at``), one not kept the
    day its window (due date + grace) ended, once that window has passed (or the evaluation found it broken).
    Counting promises *made* in the range and already decided left out the broken ones, which are decided
    only after due + grace, and so overstated the rate.

    Attributes:
        decided: Promises decided in the range.
        promised: Their promised amount.
        kept: The kept ones' shares of their unit's payments (``paid_amount``, at most the amount).
        paid: What was paid towards them (their shares, each capped at its amount: partial payments count).
        partial: Those not kept with some but not all paid (:func:`bot.owners.payments.is_partial`).
        rate: ``kept / promised``, None when nothing is decided.
    """

    decided: int
    promised: Decimal
    kept: Decimal
    paid: Decimal
    partial: int
    rate: Optional[float]


def collection(session: Session, *, days: int = DEFAULT_DAYS, end: Optional[dt.date] = None) -> Collection:
    """Kept shares / promised amount, over the promises decided in the range (see :class:`Collection`)."""
    span = date_range(days=days, end=end)
    decided = decided_promises(session, first=span[0], last=span[-1])
    return Collection(
        decided=len(decided),
        promised=sum((Decimal(row.amount) for row in decided), Decimal("0")).quantize(Decimal("0.01")),
        kept=payments.kept_share(decided),
        paid=sum(
            (min(Decimal(row.paid_amount or 0), Decimal(row.amount)) for row in decided), Decimal("0")
        ).quantize(Decimal("0.01")),
        partial=sum(1 for row in decided if payments.is_partial(row.status, row.amount, row.paid_amount)),
        rate=payments.collection_rate(decided),
    )


def decided_promises(session: Session, *, first: dt.date, last: dt.date) -> List[models.PaymentPromise]:
    """Promises decided on the estate days ``first`` to ``last`` (see :class:`Collection`), by id."""
    today = clock.today()
    start, _ = _utc_bounds(first, last)
    promise = models.PaymentPromise
    longest_grace = dt.timedelta(days=366)  # the grace is a setting; the window end is checked per row below
    rows = session.execute(
        sa.select(promise)
        .where(
            sa.or_(
                sa.and_(promise.due_date >= first - longest_grace, promise.due_date <= last),
                # A day's margin: SQLite compares the stored wall time, whose zone it does not keep.
                sa.and_(promise.status == models.PromiseStatus.KEPT, promise.evaluated_at >= start - dt.timedelta(days=1)),
                sa.and_(promise.status == models.PromiseStatus.KEPT, promise.evaluated_at.is_(None)),
            )
        )
        .order_by(promise.id)
    ).scalars()
    found: List[models.PaymentPromise] = []
    for row in rows:
        if _value(row.status) == "kept":
            kept_on = (
                clock.local_date(row.evaluated_at) if row.evaluated_at is not None else _stored(row.created_at).date()
            )
            if first <= kept_on <= last:
                found.append(row)
            continue
        _, window_end = payments.window(row)
        if first <= window_end <= last and (window_end < today or _value(row.status) == "broken"):
            found.append(row)
    return found


def date_range(*, days: int = DEFAULT_DAYS, end: Optional[dt.date] = None) -> Tuple[dt.date, ...]:
    """``days`` estate days ending with ``end`` (default today), oldest first; ``days`` is kept in 1..366."""
    last = end or clock.today()
    count = max(1, min(int(days), MAX_DAYS))
    return tuple(last - dt.timedelta(days=offset) for offset in range(count - 1, -1, -1))


def overview(session: Session, *, days: int = DEFAULT_DAYS, end: Optional[dt.date] = None) -> Overview:
    """The review of the ``days`` estate days ending with ``end`` (default: the last 14 days, today included).

    Args:
        session: The caller's unit of work (only read).
        days: How many days (1..366).
        end: The last day (default :func:`bot.clock.today`).

    Returns:
        The counts and response times.
    """
    span = date_range(days=days, end=end)
    index = {day: position for position, day in enumerate(span)}
    objections: Dict[str, List[int]] = {}
    for _, _, intent, _, moment in _objection_rows(session, span[0], span[-1]):
        position = index.get(clock.local_date(moment))
        if position is not None:
            objections.setdefault(intent, [0] * len(span))[position] += 1

    escalations = _made_in(session, models.Escalation, span[0], span[-1])
    promises = _made_in(session, models.PaymentPromise, span[0], span[-1])
    repairs = _made_in(session, models.RepairOrder, span[0], span[-1])
    promise_counts = Counter(_value(promise.status) for promise in promises)
    return Overview(
        days=span,
        objections=dict(sorted(objections.items())),
        escalations_by_reason=_sorted_counts(str(row.reason) for row in escalations),
        promises={
            "made": len(promises),
            "kept": promise_counts.get("kept", 0),
            "broken": promise_counts.get("broken", 0),
            "open": promise_counts.get("open", 0),
        },
        repairs_by_item=_sorted_counts(str(row.item) for row in repairs),
        first_response=_durations([(row.created_at, row.first_response_at) for row in escalations]),
        resolution=_durations([(row.created_at, row.resolved_at) for row in escalations]),
    )


def day_list(session: Session, *, day: Optional[dt.date] = None) -> List[OwnerDay]:
    """The owners with their reasons on ``day`` (default today), for the morning meeting.

    An owner is on the list when, that day, they objected (an ``objection_*`` message in a conversation tied
    to them), made a payment promise or had an escalation made for them. A conversation never tied to an
    owner is listed on its own (no name, no unit). Owners come in unit order, unknown conversations last.

    Args:
        session: The caller's unit of work (only read).
        day: The estate day.

    Returns:
        One line per owner (or unknown conversation).
    """
    day = day or clock.today()
    objection_rows = [row for row in _objection_rows(session, day, day) if clock.local_date(row[4]) == day]
    promises = _made_in(session, models.PaymentPromise, day, day)
    escalations = _made_in(session, models.Escalation, day, day)
    senders = {row[0] for row in objection_rows}
    owner_of = _owners_of_senders(session, senders)
    link_channels = _link_channels(session, senders)

    Key = Tuple[str, Any]
    objections: Dict[Key, List[Objection]] = defaultdict(list)
    promise_notes: Dict[Key, List[PromiseNote]] = defaultdict(list)
    escalation_notes: Dict[Key, List[EscalationNote]] = defaultdict(list)
    channels: Dict[Key, Set[str]] = defaultdict(set)
    sender_sets: Dict[Key, Set[str]] = defaultdict(set)

    def key_of(owner_id: Optional[int], sender_id: Optional[str]) -> Key:
        return ("owner", int(owner_id)) if owner_id is not None else ("sender", sender_id or "")

    for sender_id, channel, intent, text, moment in objection_rows:
        key = key_of(owner_of.get(sender_id), sender_id)
        objections[key].append(Objection(intent=intent, text=text, at=moment))
        sender_sets[key].add(sender_id)
        for known in (channel, link_channels.get(sender_id)):
            if known:
                channels[key].add(known)
    for promise in promises:
        key = key_of(promise.owner_id, promise.sender_id)
        promise_notes[key].append(
            PromiseNote(
                number=str(promise.number or ""),
                amount=f"{promise.amount:.2f}",
                due_date=promise.due_date,
                status=_value(promise.status),
            )
        )
        if promise.sender_id:
            sender_sets[key].add(str(promise.sender_id))
    for escalation in escalations:
        key = key_of(escalation.owner_id, escalation.sender_id)
        escalation_notes[key].append(
            EscalationNote(
                number=str(escalation.number or ""), reason=str(escalation.reason), state=_value(escalation.state)
            )
        )
        if escalation.channel:
            channels[key].add(str(escalation.channel))
        if escalation.sender_id:
            sender_sets[key].add(str(escalation.sender_id))

    keys = set(objections) | set(promise_notes) | set(escalation_notes)
    owner_ids = [int(value) for kind, value in keys if kind == "owner"]
    owners = {
        int(owner.id): owner
        for owner in session.execute(
            sa.select(models.Owner).where(models.Owner.id.in_(owner_ids))
        ).scalars()
    } if owner_ids else {}

    lines: List[OwnerDay] = []
    for key in keys:
        owner = owners.get(key[1]) if key[0] == "owner" else None
        lines.append(
            OwnerDay(
                owner_id=int(owner.id) if owner is not None else None,
                name=str(owner.name) if owner is not None else "",
                phone=str(owner.phone) if owner is not None else "",
                unit=str(owner.unit.code) if owner is not None else "",
                channels=tuple(sorted(channels[key])),
                senders=tuple(sorted(sender_sets[key])),
                objections=tuple(objections[key]),
                promises=tuple(promise_notes[key]),
                escalations=tuple(escalation_notes[key]),
            )
        )
    lines.sort(key=lambda line: (line.owner_id is None, line.unit, line.name, line.senders))
    return lines


def _utc_bounds(first: dt.date, last: dt.date) -> Tuple[dt.datetime, dt.datetime]:
    """The first estate day's start and the day after the last one's start, in UTC."""
    zone = clock.zone()
    start = dt.datetime.combine(first, dt.time(0), tzinfo=zone).astimezone(dt.timezone.utc)
    stop = dt.datetime.combine(last + dt.timedelta(days=1), dt.time(0), tzinfo=zone).astimezone(dt.timezone.utc)
    return start, stop


def _objection_rows(
    session: Session, first: dt.date, last: dt.date
) -> List[Tuple[str, Optional[str], str, str, dt.datetime]]:
    """(sender, channel, intent, text, moment) of every objection from ``first`` to ``last``, oldest first."""
    start, stop = _utc_bounds(first, last)
    rows = rasa_events.user_messages_between(
        session, start=start.timestamp(), stop=stop.timestamp(), intent_prefix=OBJECTION_PREFIX
    )
    found = []
    for row in rows:
        moment = dt.datetime.fromtimestamp(float(row.timestamp or 0.0), tz=dt.timezone.utc).astimezone(clock.zone())
        channel = row.data.get("input_channel")
        found.append(
            (row.sender_id, str(channel) if channel else None, str(row.intent_name), str(row.data.get("text") or ""), moment)
        )
    return found


def _made_in(session: Session, model: Any, first: dt.date, last: dt.date) -> List[Any]:
    """Rows of ``model`` made on the estate days ``first`` to ``last``, oldest first."""
    start, stop = _utc_bounds(first, last)
    rows = session.execute(
        sa.select(model)
        # A day's margin either side: SQLite compares wall times, whose zone it does not keep.
        .where(model.created_at >= start - dt.timedelta(days=1), model.created_at < stop + dt.timedelta(days=1))
        .order_by(model.created_at, model.id)
    ).scalars()
    return [row for row in rows if first <= _stored(row.created_at).date() <= last]


def _owners_of_senders(session: Session, senders: Iterable[str]) -> Dict[str, int]:
    """Each sender's owner: its verification link, else a record made for an owner in that conversation."""
    wanted = list(senders)
    if not wanted:
        return {}
    found: Dict[str, int] = {}
    for model in (
        models.PaymentPromise,
        models.Escalation,
        models.RepairOrder,
        models.Complaint,
        models.BillCheckRequest,
        models.InstalmentRequest,
    ):
        for sender_id, owner_id in session.execute(
            sa.select(model.sender_id, model.owner_id)
            .where(model.sender_id.in_(wanted), model.owner_id.is_not(None))
            .order_by(model.id)
        ):
            found.setdefault(str(sender_id), int(owner_id))
    links = session.execute(
        sa.select(models.ConversationLink.sender_id, models.ConversationLink.owner_id).where(
            models.ConversationLink.sender_id.in_(wanted)
        )
    )
    for sender_id, owner_id in links:
        found[str(sender_id)] = int(owner_id)  # a verification outranks a record
    return found


def _link_channels(session: Session, senders: Iterable[str]) -> Dict[str, str]:
    wanted = list(senders)
    if not wanted:
        return {}
    rows = session.execute(
        sa.select(models.ConversationLink.sender_id, models.ConversationLink.channel).where(
            models.ConversationLink.sender_id.in_(wanted)
        )
    )
    return {str(sender_id): str(channel) for sender_id, channel in rows}


def _durations(pairs: Sequence[Tuple[Any, Any]]) -> Durations:
    """Median and 90th percentile (nearest rank) of ``later - earlier`` in minutes, for pairs with both."""
    minutes = sorted(
        (_stored(later) - _stored(earlier)).total_seconds() / 60 for earlier, later in pairs if earlier and later
    )
    if not minutes:
        return Durations(count=0, median_minutes=None, p90_minutes=None)
    p90 = minutes[max(0, math.ceil(0.9 * len(minutes)) - 1)]
    return Durations(
        count=len(minutes), median_minutes=round(statistics.median(minutes), 1), p90_minutes=round(p90, 1)
    )


def _stored(value: dt.datetime) -> dt.datetime:
    """A record's stored time in the estate's timezone.

    PostgreSQL returns aware values; SQLite keeps the wall time of the aware value written, which for the
    records is :func:`bot.clock.now` (the estate's zone), so a naive value is read in that zone (as
    :mod:`bot.services.queue` does).
    """
    if value.tzinfo is None:
        return value.replace(tzinfo=clock.zone())
    return value.astimezone(clock.zone())


def _sorted_counts(values: Iterable[str]) -> Dict[str, int]:
    """Counts, the largest first (ties by name)."""
    return dict(sorted(Counter(values).items(), key=lambda item: (-item[1], item[0])))


def _value(value: Any) -> str:
    return str(value.value if hasattr(value, "value") else value)


__all__ = [
    "DEFAULT_DAYS",
    "Durations",
    "EscalationNote",
    "Objection",
    "Overview",
    "OwnerDay",
    "PromiseNote",
    "date_range",
    "day_list",
    "overview",
]
