"""What the database holds on one owner: their rows, their conversations, and the audit rows about them.

:func:`find` gathers, for :mod:`bot.privacy.subject`, everything that is the owner's:

* **conversations** (Rasa sender ids): those verified for them (``ConversationLink``, open or closed), and every
  conversation a record, a reminder or an opt-out of theirs names. A conversation is theirs whole: records made
  in it before identity was proven (no owner on them) are theirs too;
* **records**: promises, repair orders, complaints, bill checks, instalment requests and escalations naming
  them, or made in one of their conversations for no owner;
* the ids that audit rows refer to (records by number and by kind and id, reminders, call tasks, outbox rows,
  escalations, Rasa events), so :func:`about` can tell an audit row about them from one about someone else.

An audit row is *about* the owner when its target names them (``owner:<id>``, one of their record numbers, a
conversation of theirs, ``call:``/``reminder:``/``event:`` ids of theirs) or its detail does (``owner_id``,
``new_owner_id``, ``record_id`` with its ``kind``, ``outbox_id``, ``escalation_id``, ``task_id``). An audit row
that merely *mentions* them (their name, phone, masked phone or a sender id of theirs anywhere in its target or
detail) is found too (:func:`mentions`). Nothing here writes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Iterable, Iterator, List, Mapping, Optional, Set, Tuple, Type

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot.db import models
from bot.db.models import ConversationLink, Owner, mask_phone
from bot.db.reminder_models import CallTask, Reminder, ReminderOptOut
from bot.db.staff_models import AuditEntry
from bot.rasa import events as rasa_events

# A name shorter than this is not searched for inside other texts (it would match ordinary words).
MIN_NEEDLE_CHARS = 2
# A sender id shorter than this is not searched for inside other texts.
MIN_SENDER_NEEDLE_CHARS = 3
# The record kinds as staff screens, notes and audit rows name them (``record_notes.record_type``, ``kind``).
RECORD_KINDS: Dict[str, Type[Any]] = {
    "promises": models.PaymentPromise,
    "repairs": models.RepairOrder,
    "complaints": models.Complaint,
    "bill_checks": models.BillCheckRequest,
    "instalments": models.InstalmentRequest,
    "escalations": models.Escalation,
}
_ID_TARGET = re.compile(r"^(call|reminder|event|owner|[a-z_]+):(\d+)$")


def record_models() -> Tuple[Type[Any], ...]:
    """Every record type the bot writes from a conversation (promises ... escalations), in a fixed order."""
    return tuple(
        sorted(models.conversation_record_types(), key=lambda model: str(model.__tablename__))
    )


@dataclass
class Holdings:
    """The owner's rows and the references to them (see the module).

    Attributes:
        owner: The owner row.
        senders: Their conversations' sender ids, sorted.
        channels: Each conversation's channel, as far as any row says (None: unknown).
        records: Their records by table name (``payment_promises`` ...), oldest first.
        others_in_conversations: Records of *other* owners made in one of their conversations, by table name.
        reminder_ids: Their reminders (by owner or conversation).
        call_ids: Their call tasks (by owner, or made from one of their reminders).
        outbox_ids: Outbox rows to their conversations.
        event_ids: Rasa events of their conversations that an audit row may name (``event:<id>``).
    """

    owner: Owner
    senders: List[str]
    channels: Dict[str, Optional[str]]
    records: Dict[str, List[Any]]
    others_in_conversations: Dict[str, List[Any]]
    reminder_ids: Set[int] = field(default_factory=set)
    call_ids: Set[int] = field(default_factory=set)
    outbox_ids: Set[int] = field(default_factory=set)
    event_ids: Set[int] = field(default_factory=set)

    @property
    def owner_id(self) -> int:
        """The owner's id."""
        return int(self.owner.id)

    def record_ids(self, kind: str) -> Set[int]:
        """The ids of their records of ``kind`` (``repairs``, ``escalations`` ...)."""
        model = RECORD_KINDS.get(kind)
        if model is None:
            return set()
        return {int(row.id) for row in self.records.get(str(model.__tablename__), [])}

    @property
    def record_numbers(self) -> Set[str]:
        """Their records' numbers (BX2026..., CN2026...)."""
        return {str(row.number) for rows in self.records.values() for row in rows if row.number}

    def needles(self) -> List[str]:
        """What identifies them inside any text: name, phone, masked phone, sender ids (longest first)."""
        found: Set[str] = set()
        name = str(self.owner.name or "").strip()
        if len(name) >= MIN_NEEDLE_CHARS:
            found.add(name)
        phone = str(self.owner.phone or "").strip()
        if phone and any(character.isdigit() for character in phone):
            found.update({phone, mask_phone(phone)})
        found.update(sender for sender in self.senders if len(sender) >= MIN_SENDER_NEEDLE_CHARS)
        return sorted(found, key=lambda needle: (-len(needle), needle))


def find(session: Session, *, owner: Owner) -> Holdings:
    """Everything held on ``owner`` (see the module).

    Args:
        session: The caller's session.
        owner: The owner row.

    Returns:
        Their holdings.
    """
    owner_id = int(owner.id)
    channels: Dict[str, Optional[str]] = {}

    def note(sender: Optional[str], channel: Optional[str]) -> None:
        if not sender:
            return
        if channels.get(sender) is None:
            channels[sender] = channel

    for link in session.execute(sa.select(ConversationLink).where(ConversationLink.owner_id == owner_id)).scalars():
        note(link.sender_id, link.channel)
    for model in record_models():
        channel_column = getattr(model, "channel", sa.null())
        rows = session.execute(
            sa.select(model.sender_id, channel_column).where(model.owner_id == owner_id, model.sender_id.is_not(None))
        )
        for sender, channel in rows:
            note(sender, channel)
    for sender, channel in session.execute(
        sa.select(Reminder.sender_id, Reminder.channel).where(Reminder.owner_id == owner_id, Reminder.sender_id.is_not(None))
    ):
        note(sender, channel)
    for sender, channel in session.execute(
        sa.select(ReminderOptOut.sender_id, ReminderOptOut.channel).where(
            ReminderOptOut.owner_id == owner_id, ReminderOptOut.sender_id.is_not(None)
        )
    ):
        note(sender, channel)
    senders = sorted(channels)

    records: Dict[str, List[Any]] = {}
    others: Dict[str, List[Any]] = {}
    for model in record_models():
        theirs = model.owner_id == owner_id
        in_theirs = model.sender_id.in_(senders) if senders else sa.false()
        rows = session.execute(
            sa.select(model).where(sa.or_(theirs, sa.and_(model.owner_id.is_(None), in_theirs))).order_by(model.id)
        ).scalars()
        records[str(model.__tablename__)] = list(rows)
        if senders:
            foreign = session.execute(
                sa.select(model).where(model.owner_id.is_not(None), model.owner_id != owner_id, in_theirs).order_by(model.id)
            ).scalars()
            others[str(model.__tablename__)] = list(foreign)
    holdings = Holdings(owner=owner, senders=senders, channels=channels, records=records, others_in_conversations=others)
    in_conversations = Reminder.sender_id.in_(senders) if senders else sa.false()
    holdings.reminder_ids = set(
        session.execute(sa.select(Reminder.id).where(sa.or_(Reminder.owner_id == owner_id, in_conversations))).scalars()
    )
    from_reminders = CallTask.reminder_id.in_(holdings.reminder_ids) if holdings.reminder_ids else sa.false()
    holdings.call_ids = set(
        session.execute(sa.select(CallTask.id).where(sa.or_(CallTask.owner_id == owner_id, from_reminders))).scalars()
    )
    if senders:
        holdings.outbox_ids = set(
            session.execute(sa.select(models.OutboxMessage.id).where(models.OutboxMessage.sender_id.in_(senders))).scalars()
        )
        holdings.event_ids = set(
            session.execute(sa.select(models.NluCorrection.event_id).where(models.NluCorrection.sender_id.in_(senders))).scalars()
        )
        holdings.event_ids.update(rasa_events.event_ids(session, sender_ids=list(senders), type_name="user"))
    for sender in senders:
        if channels[sender] is None:
            channels[sender] = _first_input_channel(session, sender)
    return holdings


def audit_rows(session: Session, holdings: Holdings) -> Iterator[Tuple[AuditEntry, bool]]:
    """Every audit row about the owner or mentioning them, oldest first, with whether it is *about* them.

    The whole log is read (in batches): an erasure or an export is rare, and a detail is JSON no query reads
    the same way on SQLite and PostgreSQL.
    """
    needles = holdings.needles()
    targets = _targets(holdings)
    query = sa.select(AuditEntry).order_by(AuditEntry.id).execution_options(yield_per=500)
    for entry in session.execute(query).scalars():
        if about(entry, holdings, targets=targets):
            yield entry, True
        elif mentions(entry, needles):
            yield entry, False


def about(entry: AuditEntry, holdings: Holdings, *, targets: Optional[FrozenSet[str]] = None) -> bool:
    """Whether ``entry`` is about the owner (its target or its detail names one of their rows)."""
    target = str(entry.target or "")
    if target in (targets if targets is not None else _targets(holdings)):
        return True
    detail = entry.detail if isinstance(entry.detail, Mapping) else {}
    owner_id = holdings.owner_id
    for key in ("owner_id", "new_owner_id"):
        if _as_int(detail.get(key)) == owner_id:
            return True
    kind, record_id = detail.get("kind"), _as_int(detail.get("record_id"))
    if isinstance(kind, str) and record_id is not None and record_id in holdings.record_ids(kind):
        return True
    referred = (
        ("task_id", holdings.call_ids),
        ("outbox_id", holdings.outbox_ids),
        ("reminder_id", holdings.reminder_ids),
        ("escalation_id", holdings.record_ids("escalations")),
    )
    return any(_as_int(detail.get(key)) in ids for key, ids in referred if detail.get(key) is not None)


def mentions(entry: AuditEntry, needles: Iterable[str]) -> bool:
    """Whether ``entry``'s target or detail contains any of ``needles``."""
    texts = [str(entry.target or ""), *strings_of(entry.detail)]
    return any(needle in text for needle in needles for text in texts)


def strings_of(value: Any) -> Iterator[str]:
    """Every string inside a JSON value (keys included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield str(key)
            yield from strings_of(item)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from strings_of(item)


def is_id_target(target: str) -> bool:
    """Whether an audit target is a bare reference (``owner:12``, ``call:3``, a record number), nothing personal."""
    return bool(_ID_TARGET.match(target)) or bool(re.match(r"^[A-Z]{2}\d{8,}$", target))


def _targets(holdings: Holdings) -> FrozenSet[str]:
    targets: Set[str] = {f"owner:{holdings.owner_id}", *holdings.record_numbers, *holdings.senders}
    for kind in RECORD_KINDS:
        targets.update(f"{kind}:{record_id}" for record_id in holdings.record_ids(kind))
    targets.update(f"call:{task}" for task in holdings.call_ids)
    targets.update(f"reminder:{reminder}" for reminder in holdings.reminder_ids)
    targets.update(f"event:{event_id}" for event_id in holdings.event_ids)
    return frozenset(targets)


def _as_int(value: Any) -> Optional[int]:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _first_input_channel(session: Session, sender_id: str) -> Optional[str]:
    """The channel of the conversation's first owner message, from Rasa's events (None: unknown)."""
    channel = (rasa_events.first_data(session, sender_id=sender_id, type_name="user") or {}).get("input_channel")
    return channel if isinstance(channel, str) else None
