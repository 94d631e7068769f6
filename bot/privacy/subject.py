"""The data subject's rights (个人信息保护法 art. 45 and 47): everything held on one owner, exported or erased.

* :func:`collect` gathers everything the database holds on one owner (:mod:`bot.privacy.holdings` says what
  is theirs): the owner row with its ownership period, the unit, the unit's bills and payments *within their
  ownership period* (the unit's accounts before or after it are another owner's), their promises, repair orders,
  complaints, bill checks, instalment requests, escalations and the staff notes and actions on them, their
  conversations (links, and the transcripts from Rasa's ``events``), reminders, opt-outs, call tasks, outbox
  messages, WeChat rows of their openids, identity attempts and NLU corrections of their conversations, and
  the audit rows about them. A web chat session id is a bearer credential (whoever holds it speaks in the
  conversation), so an export names such a conversation ``webchat:<digest>`` instead.
* :func:`export` writes it as JSON (``ensure_ascii=False``, ISO dates) and as a readable Chinese text
  (:mod:`bot.privacy.readable`), audited ``privacy_exported`` with counts only.
* :func:`erase` deletes or anonymises it in the caller's one transaction (nothing partial: the caller commits
  or everything is rolled back), audited ``privacy_erased`` with target ``owner:<id>`` and counts only.

What erasure keeps (PIPL art. 47 lets a processor keep what another law requires it to keep): the amounts,
dates and statuses of the accounts — bills, payments, promises, instalment decisions, and the fact, kind, date
and status of each repair order, complaint, bill check and escalation — are accounting and service records
(会计法 art. 23, 会计档案管理办法) and stay, without their free texts and without the conversation's sender id.
The owner row stays as the anonymous holder of those records (name :data:`ERASED_NAME`, no phone), with its
ownership period. Everything else goes: the conversations' events, links, outbox, reminders, opt-outs, call
tasks, identity attempts, rate-limit counters and WeChat rows of their openids, NLU corrections; the free texts
of their records and of the staff notes on them become :data:`ERASED_TEXT`; audit rows about them lose every
free text and identifier in their detail.

A conversation is erased whole: a record another owner made in it keeps its amounts and free texts, but loses
the sender id like theirs. An erased owner verifies no more (an empty phone ends in no four digits) and, if still
a current owner, is opted out of reminders (``how="erased"``) so no reminder or call task reaches the anonymous row.
This erases what the bot holds, not the company's own systems: an arrears import that lists the person again
makes them a new owner (and retires the erased row). Rasa keeps a conversation only in its database, so a
message the owner sends while the erasure runs may be written after it; such a conversation is no longer
verified and starts afresh.

Nothing here imports a web framework or Rasa; the caller owns the session.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import enum
import hashlib
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot import clock
from bot.conversations import transcripts
from bot.db import audit, models
from bot.db.models import ConversationLink, Owner, Unit
from bot.db.payment_models import Payment
from bot.db.reminder_models import CallTask, Reminder, ReminderOptOut
from bot.db.staff_models import AuditEntry
from bot.owners.ownership import CURRENT
from bot.privacy import holdings as found
from bot.privacy.holdings import Holdings
from bot.rasa import events as rasa_events

ERASED_NAME = "已删除"
ERASED_TEXT = "（已删除）"
ERASED_PHONE = ""
ERASED_OPT_OUT = "erased"  # reminder_opt_outs.how for an erased current owner
PRIVACY_EXPORTED = "privacy_exported"  # audit actions
PRIVACY_ERASED = "privacy_erased"
EXPORT_FORMAT = "wuye-privacy-export/1"
WEBCHAT_CHANNEL = "socketio"
# Detail keys of audit rows whose values are the system's own codes, dates and amounts: kept on erasure
# (unless they name the owner). Every other string in the detail of a row about the owner is erased.
KEPT_DETAIL_KEYS = frozenset(
    {
        "via", "kind", "channel", "status", "state", "format", "role", "purpose", "intent", "predicted", "unit",
        "transfer_date", "until", "paid_at", "period", "amount", "day", "start", "end", "due_date", "before",
        "after", "action", "fields", "reference",
    }
)  # fmt: skip
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
# Free texts of the records (besides every Text column): where and when a repair was wanted.
_EXTRA_FREE_TEXTS: Dict[str, Tuple[str, ...]] = {"repair_orders": ("location", "preferred_time")}
_BATCH = 500


class SubjectError(LookupError):
    """A request about a data subject refused before anything was written; ``code`` names why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def owner_of(session: Session, *, owner_id: int, for_update: bool = False) -> Owner:
    """The owner ``owner_id`` (current or former).

    Raises:
        SubjectError: ``no_owner`` when there is none.
    """
    query = sa.select(Owner).where(Owner.id == owner_id)
    if for_update:
        query = query.with_for_update()
    owner = session.execute(query).scalar_one_or_none()
    if owner is None:
        raise SubjectError("no_owner", f"no owner {owner_id}")
    return owner


def current_owners_of_unit(session: Session, *, unit_code: str) -> List[Owner]:
    """The current owners of the unit ``unit_code`` (as written, e.g. ``3-2-501``), oldest first.

    Raises:
        SubjectError: ``no_unit`` when no unit has that code.
    """
    unit = session.execute(sa.select(Unit).where(Unit.code == unit_code.strip())).scalar_one_or_none()
    if unit is None:
        raise SubjectError("no_unit", f"no unit {unit_code!r}")
    return list(session.execute(sa.select(Owner).where(Owner.unit_id == unit.id, CURRENT).order_by(Owner.id)).scalars())


def is_erased(owner: Owner) -> bool:
    """Whether ``owner`` was erased (their name is :data:`ERASED_NAME`)."""
    return str(owner.name) == ERASED_NAME


# --- collect and export -----------------------------------------------------------------------------------


def collect(session: Session, *, owner_id: int) -> Dict[str, Any]:
    """Everything held on the owner, as JSON-ready data (see the module for what and why).

    Args:
        session: The caller's session.
        owner_id: The owner.

    Returns:
        ``{"format", "exported_at", "owner", "unit", "accounts_period", "bills", "payments", <one list per
        table: payment_promises, repair_orders, ...>, "conversations", "audit_log"}``; times ISO 8601 (aware
        where the database keeps the zone), amounts decimal strings.

    Raises:
        SubjectError: ``no_owner``.
    """
    owner = owner_of(session, owner_id=owner_id)
    held = found.find(session, owner=owner)
    unit = session.get(Unit, owner.unit_id)
    start, end = owner.owned_from, owner.owned_until
    data: Dict[str, Any] = {
        "format": EXPORT_FORMAT,
        "exported_at": clock.now().isoformat(),
        "owner": {**_columns(owner), "unit": unit.code, "current": owner.retired_at is None, "erased": is_erased(owner)},
        "unit": _columns(unit),
        "accounts_period": {"from": _plain(start), "until": _plain(end)},
        "bills": [_columns(bill) for bill in _bills(session, owner)],
        "payments": [_columns(payment) for payment in _payments(session, owner)],
    }
    for table, rows in held.records.items():
        data[table] = [_columns(row) for row in rows]
    escalation_ids = held.record_ids("escalations")
    data["escalation_events"] = _rows(
        session, models.EscalationEvent, models.EscalationEvent.escalation_id.in_(escalation_ids) if escalation_ids else sa.false()
    )
    data["record_notes"] = _rows(session, models.RecordNote, _notes_of(held))
    for table, model, condition in _conversation_tables(held):
        data[table] = _rows(session, model, condition)
    data["conversations"] = [
        {
            "conversation": sender,
            "channel": held.channels.get(sender),
            "messages": [_entry(entry) for entry in transcripts.transcript(session, sender_id=sender)],
        }
        for sender in held.senders
    ]
    data["audit_log"] = [_columns(entry) for entry, _ in found.audit_rows(session, held)]
    return _without_session_ids(data, _webchat_labels(held))


def counts(data: Mapping[str, Any]) -> Dict[str, int]:
    """How many rows each list of a :func:`collect` result holds, and how many messages its conversations hold."""
    result: Dict[str, int] = {}
    for key, value in data.items():
        if isinstance(value, list):
            result[key] = len(value)
    result["messages"] = sum(
        1 for item in data.get("conversations", []) for entry in item["messages"] if entry.get("kind") == "message"
    )
    return result


def to_json(data: Mapping[str, Any]) -> str:
    """A :func:`collect` result as JSON text (UTF-8 characters as they are, indented)."""
    return json.dumps(data, ensure_ascii=False, indent=2, sort_keys=False)


def record_export(
    session: Session, *, owner_id: int, actor: str, via: str, data: Mapping[str, Any], file_format: str = "json+txt"
) -> AuditEntry:
    """The ``privacy_exported`` audit row of an export of ``data`` (how, in what format, counts; nothing personal)."""
    detail = {"via": via, "format": file_format, **counts(data)}
    return audit.record(session, actor=actor, action=PRIVACY_EXPORTED, target=f"owner:{owner_id}", detail=detail)


def export(session: Session, *, owner_id: int, directory: Path, actor: str, via: str = "cli") -> Tuple[Path, Path]:
    """Write everything held on the owner to ``directory``, as JSON and as readable Chinese text; audited.

    Args:
        session: The caller's unit of work (the audit row commits with it).
        owner_id: The owner.
        directory: Where to write (created if missing).
        actor: Who exports (``cli:<os user>`` or a staff username).
        via: ``cli`` or ``console``, for the audit row.

    Returns:
        The JSON file and the text file (``owner-<id>-<YYYYMMDD-HHMMSS>.json`` / ``.txt``).

    Raises:
        SubjectError: ``no_owner``.
        OSError: The files could not be written (the caller rolls the audit row back).
    """
    from bot.privacy import readable

    data = collect(session, owner_id=owner_id)
    record_export(session, owner_id=owner_id, actor=actor, via=via, data=data)
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"owner-{owner_id}-{clock.now():%Y%m%d-%H%M%S}"
    json_path, text_path = directory / f"{stem}.json", directory / f"{stem}.txt"
    json_path.write_text(to_json(data) + "\n", encoding="utf-8")
    text_path.write_text(readable.render(data), encoding="utf-8")
    return json_path, text_path


# --- erase ------------------------------------------------------------------------------------------------


def erase(session: Session, *, owner_id: int, actor: str) -> Dict[str, int]:
    """Delete or anonymise everything held on the owner, in the caller's transaction; audited.

    Args:
        session: The caller's unit of work: it commits everything, or nothing when anything failed.
        owner_id: The owner (current or former).
        actor: Who erases (``cli:<os user>``, a manager's username, ``retention``).

    Returns:
        Rows deleted or anonymised, by table (``events``, ``conversation_links``, ``repair_orders`` ...), and
        ``conversations``: how many conversations were erased. The ``privacy_erased`` audit row holds the same.

    Raises:
        SubjectError: ``no_owner``, or ``already_erased`` (nothing to erase; nothing written).
    """
    owner = owner_of(session, owner_id=owner_id, for_update=True)
    if is_erased(owner):
        raise SubjectError("already_erased", f"owner {owner_id} was erased already")
    held = found.find(session, owner=owner)
    senders = held.senders
    done: Dict[str, int] = {"conversations": len(senders)}
    done["audit_log"] = _anonymise_audit(session, held)
    done["events"] = _delete_events(session, senders)
    done["call_tasks"] = _delete(session, sa.delete(CallTask).where(_ids(CallTask.id, held.call_ids)))
    done["reminders"] = _delete(session, sa.delete(Reminder).where(_ids(Reminder.id, held.reminder_ids)))
    for table, model, condition in _conversation_tables(held):
        if model is CallTask or model is Reminder:
            continue
        done[table] = _delete(session, sa.delete(model).where(condition))
    done.update(_anonymise_records(session, held))
    done["record_notes"] = _update(
        session, sa.update(models.RecordNote).where(_notes_of(held)).values(text=ERASED_TEXT)
    )
    was_current = owner.retired_at is None
    owner.name = ERASED_NAME
    owner.phone = _erased_phone(session, owner)
    done["owners"] = 1
    if was_current:
        session.add(
            ReminderOptOut(
                unit_id=owner.unit_id, owner_id=owner.id, how=ERASED_OPT_OUT, opted_out_at=clock.utc_now()
            )
        )
    session.flush()
    audit.record(session, actor=actor, action=PRIVACY_ERASED, target=f"owner:{owner_id}", detail=dict(done))
    return done


# --- internals --------------------------------------------------------------------------------------------


def _conversation_tables(held: Holdings) -> List[Tuple[str, Any, Any]]:
    """(table, model, condition) of every table whose rows are the owner's by owner or by conversation."""
    senders = held.senders
    searchable = [sender for sender in senders if len(sender) >= found.MIN_SENDER_NEEDLE_CHARS]

    def exact(column: Any) -> Any:
        return column.in_(senders) if senders else sa.false()

    def containing(column: Any) -> Any:
        return sa.or_(*[column.contains(sender, autoescape=True) for sender in searchable]) if searchable else sa.false()

    owner_id = held.owner_id
    return [
        ("conversation_links", ConversationLink, sa.or_(ConversationLink.owner_id == owner_id, exact(ConversationLink.sender_id))),
        ("reminders", Reminder, _ids(Reminder.id, held.reminder_ids)),
        ("reminder_opt_outs", ReminderOptOut, sa.or_(ReminderOptOut.owner_id == owner_id, exact(ReminderOptOut.sender_id))),
        ("call_tasks", CallTask, _ids(CallTask.id, held.call_ids)),
        ("outbox_messages", models.OutboxMessage, exact(models.OutboxMessage.sender_id)),
        ("nlu_corrections", models.NluCorrection, exact(models.NluCorrection.sender_id)),
        (
            "identity_attempts",
            models.IdentityAttempt,
            sa.or_(exact(models.IdentityAttempt.sender_id), containing(models.IdentityAttempt.client_key)),
        ),
        ("rate_limit_hits", models.RateLimitHit, containing(models.RateLimitHit.key)),
        (
            "wechat_inbound_messages",
            models.WeChatInboundMessage,
            sa.or_(exact(models.WeChatInboundMessage.openid), containing(models.WeChatInboundMessage.dedupe_key)),
        ),
        ("wechat_pending_choices", models.WeChatPendingChoice, exact(models.WeChatPendingChoice.openid)),
        ("wechat_subscription_events", models.WeChatSubscriptionEvent, exact(models.WeChatSubscriptionEvent.openid)),
        ("wechat_callback_signatures", models.WeChatCallbackSignature, containing(models.WeChatCallbackSignature.dedupe_key)),
    ]  # fmt: skip


def _ids(column: Any, ids: Iterable[int]) -> Any:
    wanted = sorted(ids)
    return column.in_(wanted) if wanted else sa.false()


def _notes_of(held: Holdings) -> Any:
    """Staff notes on the owner's records."""
    conditions = [
        sa.and_(models.RecordNote.record_type == kind, models.RecordNote.record_id.in_(sorted(held.record_ids(kind))))
        for kind in found.RECORD_KINDS
        if held.record_ids(kind)
    ]
    return sa.or_(*conditions) if conditions else sa.false()


def _rows(session: Session, model: Any, condition: Any) -> List[Dict[str, Any]]:
    query = sa.select(model).where(condition).order_by(*model.__table__.primary_key.columns)
    return [_columns(row) for row in session.execute(query).scalars()]


def _bills(session: Session, owner: Owner) -> List[models.Bill]:
    """The unit's bills whose period (YYYY-MM) falls within the ownership period (open ends: no bound)."""
    query = sa.select(models.Bill).where(models.Bill.unit_id == owner.unit_id)
    if owner.owned_from is not None:
        query = query.where(models.Bill.period >= f"{owner.owned_from:%Y-%m}")
    if owner.owned_until is not None:
        query = query.where(models.Bill.period <= f"{owner.owned_until:%Y-%m}")
    return list(session.execute(query.order_by(models.Bill.period)).scalars())


def _payments(session: Session, owner: Owner) -> List[Payment]:
    """The unit's payments made (in the estate's days) within the ownership period."""
    from bot.casework.owner_view import stored_utc

    rows = session.execute(
        sa.select(Payment).where(Payment.unit_id == owner.unit_id).order_by(Payment.paid_at, Payment.id)
    ).scalars()
    chosen = []
    for payment in rows:
        day = stored_utc(payment.paid_at).date()
        if owner.owned_from is not None and day < owner.owned_from:
            continue
        if owner.owned_until is not None and day > owner.owned_until:
            continue
        chosen.append(payment)
    return chosen


def _columns(row: Any) -> Dict[str, Any]:
    """Every column of an ORM row, JSON-ready."""
    return {attribute.key: _plain(getattr(row, attribute.key)) for attribute in sa.inspect(row).mapper.column_attrs}


def _entry(entry: transcripts.TranscriptEntry) -> Dict[str, Any]:
    """A transcript entry without its empty fields."""
    plain = _plain(dataclasses.asdict(entry))
    return {key: value for key, value in plain.items() if value not in (None, [], "")}


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return _plain(value.value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _plain(dataclasses.asdict(value))
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_plain(item) for item in value]
    return str(value)


def _webchat_labels(held: Holdings) -> Dict[str, str]:
    """``webchat:<digest>`` for each web chat session id among the conversations (never written out)."""
    return {
        sender: f"webchat:{hashlib.sha256(sender.encode('utf-8')).hexdigest()[:12]}"
        for sender in held.senders
        if held.channels.get(sender) == WEBCHAT_CHANNEL
    }


def _without_session_ids(value: Any, labels: Mapping[str, str]) -> Any:
    if not labels:
        return value
    if isinstance(value, str):
        for sender, label in labels.items():
            value = value.replace(sender, label)
        return value
    if isinstance(value, dict):
        return {key: _without_session_ids(item, labels) for key, item in value.items()}
    if isinstance(value, list):
        return [_without_session_ids(item, labels) for item in value]
    return value


def _delete(session: Session, statement: Any) -> int:
    return int(session.execute(statement.execution_options(synchronize_session=False)).rowcount or 0)


def _update(session: Session, statement: Any) -> int:
    return int(session.execute(statement.execution_options(synchronize_session=False)).rowcount or 0)


def _delete_events(session: Session, senders: List[str]) -> int:
    """Rasa's events of the conversations (its table exists only once Rasa stored something)."""
    deleted = 0
    for start in range(0, len(senders), _BATCH):
        deleted += rasa_events.delete_conversations(session, senders[start : start + _BATCH])
    return deleted


def _anonymise_records(session: Session, held: Holdings) -> Dict[str, int]:
    """Their records lose their free texts; every record in their conversations loses the sender id."""
    placeholders = {sender: f"erased-{held.owner_id}-{number}" for number, sender in enumerate(held.senders, 1)}
    done: Dict[str, int] = {}
    for model in found.record_models():
        table = str(model.__tablename__)
        free = [column.key for column in model.__table__.columns if isinstance(column.type, sa.Text)]
        free += [name for name in _EXTRA_FREE_TEXTS.get(table, ()) if name not in free]
        changed = set()
        for row in held.records.get(table, []):
            for name in free:
                if getattr(row, name) is not None:
                    setattr(row, name, ERASED_TEXT)
            changed.add(int(row.id))
        for row in [*held.records.get(table, []), *held.others_in_conversations.get(table, [])]:
            if row.sender_id in placeholders:
                row.sender_id = placeholders[row.sender_id]
                changed.add(int(row.id))
        done[table] = len(changed)
    session.flush()
    return done


def _anonymise_audit(session: Session, held: Holdings) -> int:
    """Audit rows about the owner lose every free text and identifier; rows mentioning them lose those strings."""
    needles = held.needles()
    changed = 0
    for entry, is_about in list(found.audit_rows(session, held)):
        target = str(entry.target) if entry.target is not None else None
        if target is not None and (
            any(needle in target for needle in needles) or (is_about and not found.is_id_target(target))
        ):
            entry.target = f"owner:{held.owner_id}"
        entry.detail = _scrub(entry.detail, about=is_about, needles=needles, key=None)
        changed += 1
    session.flush()
    return changed


def _scrub(value: Any, *, about: bool, needles: List[str], key: Optional[str]) -> Any:
    if isinstance(value, str):
        if any(needle in value for needle in needles):
            return ERASED_TEXT
        if about and key not in KEPT_DETAIL_KEYS and not _CODE.match(value):
            return ERASED_TEXT
        return value
    if isinstance(value, Mapping):
        return {name: _scrub(item, about=about, needles=needles, key=str(name)) for name, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, about=about, needles=needles, key=key) for item in value]
    return value


def _erased_phone(session: Session, owner: Owner) -> str:
    """The erased owner's phone: :data:`ERASED_PHONE`, or the shortest run of ``-`` no other current owner has.

    One current owner per unit and phone (``uq_owners_unit_phone_current``): a second erased current owner of the
    same unit cannot take the empty phone too. Neither ends in a digit, so no phone tail ever matches it.
    """
    if owner.retired_at is not None:
        return ERASED_PHONE
    taken = set(
        session.execute(
            sa.select(Owner.phone).where(Owner.unit_id == owner.unit_id, Owner.id != owner.id, CURRENT)
        ).scalars()
    )
    candidate = ERASED_PHONE
    while candidate in taken:
        candidate += "-"
    return candidate
