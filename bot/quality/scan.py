"""The QA scan (质检): findings of five kinds over a range of estate days, computed from stored rows.

Why on demand and not a stored daily result: every source the scan reads is kept anyway (audit rows three
years, outbox rows 90 days, transcripts a year, records for good), so a table of findings would be a second
copy of staff and owner texts that retention and a privacy erasure would then have to find too; computed per
request the view always agrees with what is still held, filters cost nothing extra, and a range of up to
:data:`MAX_DAYS` days reads a bounded number of rows through indexed time columns. One source is short-lived:
WeChat's delivery rows (``wechat_inbound_messages``) go after three days, so a WeChat answer that failed is
seen only while its row is kept — the transcript check of ``promise_unconfirmed`` does not depend on it.

Times: records, record notes and the outbox are stamped with :func:`bot.clock.now` (the estate's zone; naive
on SQLite), the audit log, reminders and WeChat rows in UTC (naive on SQLite), Rasa's events in Unix seconds.
Rows are read with a day's margin on each side and filtered exactly here, so both databases agree.

Nothing here imports a web framework; the caller owns the session (the scan only reads).
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import sqlalchemy as sa
import yaml
from sqlalchemy.orm import Session

from bot import clock, compliance
from bot.conversations.handles import handle_of
from bot.db import models
from bot.db.models import OutboxKind, OutboxState, RecordStatus, WeChatDelivery
from bot.db.reminder_models import Reminder, ReminderPurpose, ReminderState
from bot.db.staff_models import AuditEntry
from bot.rasa import events as stored_events
from bot.rasa.events import as_mapping, as_text
from bot.service_config import StaffHours, get_service_config

SUMMARIES_FILE = Path(__file__).resolve().parents[2] / "data" / "quality" / "summaries.yml"


@functools.lru_cache(maxsize=1)
def _summaries() -> Dict[str, Any]:
    """The staff-facing summary templates (data/quality/summaries.yml)."""
    return dict(yaml.safe_load(SUMMARIES_FILE.read_text(encoding="utf-8")))


def _say(key: str, **values: Any) -> str:
    """The summary template ``key`` filled with ``values``."""
    return str(_summaries()[key]).format(**values)


STAFF_REFUSED = "staff_refused"
STAFF_FLAGGED = "staff_flagged"
OWNER_THREAT = "owner_threat"
UNANSWERED = "unanswered"
PROMISE_UNCONFIRMED = "promise_unconfirmed"
KINDS: Tuple[str, ...] = (STAFF_REFUSED, STAFF_FLAGGED, OWNER_THREAT, UNANSWERED, PROMISE_UNCONFIRMED)

MAX_DAYS = 92

# The audit actions the guard's refusals are written under (bot.services.refused_texts).
STAFF_REPLY_REFUSED = "staff_reply_refused"
OUTGOING_REFUSED = "outgoing_refused"

THREATEN_ESCALATION = "threaten_escalation"
# Where an owner threatens to go, by the words they use (read after bot.compliance.normalize: Simplified,
# half-width, no spaces). The intent alone, with none of these words, is ``other``.
THREAT_WORDS: OrderedDict[str, re.Pattern[str]] = OrderedDict(
    (
        ("hotline", re.compile(r"12345|市长热线|市民热线|政务热线|热线投诉|信访")),
        ("media", re.compile(r"媒体|记者|曝光|报社|报纸|电视台|上新闻|抖音|微博|小红书|发到网上|网上说")),
        ("court", re.compile(r"法院|起诉|律师|打官司|告你们|告物业|仲裁|法庭")),
        (
            "authority",
            re.compile(r"住建|房管局|房产局|消协|消费者协会|物业办|街道办|市场监管|工商局|业委会|居委会"),
        ),
    )
)
THREAT_OTHER = "other"
# A mention right after these words is a reassurance, not a threat (我不会去12345投诉的).
THREAT_NEGATION = re.compile(r"(不会|不想|不打算|没打算|没想过?|不至于|无意|不必)[^,.!?;\uff0c\u3002\uff01\uff1f\uff1b]{0,4}$")

REPAIR = "repair"
COMPLAINT = "complaint"

# Why a promise's confirmation did not reach the owner.
WECHAT_FAILED = "wechat_failed"  # WeChat's answer to the message that made it failed or never went out
NOT_SAID = "not_said"  # the conversation goes on, but no bot message confirms it
REMINDER_FAILED = "reminder_failed"  # its day-before or due-day reminder failed (its outbox row failed)
WECHAT_STUCK_AFTER = dt.timedelta(minutes=10)
PROMISE_REMINDERS = (ReminderPurpose.DAY_BEFORE, ReminderPurpose.DUE_MORNING)
PROMISE_CONFIRMATION = "utter_promise_recorded"

CATEGORIES_BY_KIND: Mapping[str, Tuple[str, ...]] = {
    STAFF_REFUSED: compliance.CATEGORIES,
    STAFF_FLAGGED: compliance.CATEGORIES,
    OWNER_THREAT: (*THREAT_WORDS.keys(), THREAT_OTHER),
    UNANSWERED: (REPAIR, COMPLAINT),
    PROMISE_UNCONFIRMED: (WECHAT_FAILED, NOT_SAID, REMINDER_FAILED),
}

SUMMARY_CHARS = 80
_MARGIN = dt.timedelta(days=1)
_RECORD_ACTIONS = ("record_status_changed", "record_assigned", "record_note_added")


@dataclass(frozen=True)
class Finding:
    """One thing a supervisor should look at.

    Attributes:
        kind: One of :data:`KINDS`.
        at: When it happened, in the estate's zone (a refusal, a message, a record's arrival, a failure).
        handle: The conversation's handle (``W-3F9K-2A7Q``), never its sender id; None when there is none.
        link: The transcript page (``/conversations/<handle>``), None without a conversation.
        summary: One short line for staff.
        category: The guard's category, the threat's target, the record type or why a promise was not
            confirmed (:data:`CATEGORIES_BY_KIND`).
        staff: The staff member concerned (who wrote it, or the record's assignee), if any.
        reference: A record number or audit target, if any.
    """

    kind: str
    at: dt.datetime
    handle: Optional[str]
    link: Optional[str]
    summary: str
    category: Optional[str] = None
    staff: Optional[str] = None
    reference: Optional[str] = None

    @property
    def day(self) -> dt.date:
        """The estate day it belongs to."""
        return self.at.astimezone(clock.zone()).date()


def scan(
    session: Session,
    *,
    day_from: dt.date,
    day_to: dt.date,
    kinds: Optional[Collection[str]] = None,
    category: Optional[str] = None,
    staff: Optional[str] = None,
    hours: Optional[StaffHours] = None,
    now: Optional[dt.datetime] = None,
) -> List[Finding]:
    """The findings of the estate days ``day_from`` to ``day_to`` (both included), oldest first.

    Args:
        session: A session on the records' database (which also holds Rasa's events).
        day_from: The first day.
        day_to: The last day.
        kinds: Only these kinds (:data:`KINDS`); all when None or empty.
        category: Only findings of this category.
        staff: Only findings concerning this staff username.
        hours: The staff hours the response target follows; default ``config/service.yml``'s.
        now: The moment to judge deadlines against; default :func:`bot.clock.now`.

    Returns:
        The findings, by time.

    Raises:
        ValueError: ``day_to`` before ``day_from``, a range over :data:`MAX_DAYS` days, or an unknown kind.
    """
    if day_to < day_from:
        raise ValueError("the last day is before the first")
    if (day_to - day_from).days + 1 > MAX_DAYS:
        raise ValueError(f"at most {MAX_DAYS} days at once")
    wanted = set(kinds or KINDS)
    unknown = wanted - set(KINDS)
    if unknown:
        raise ValueError(f"unknown kinds: {sorted(unknown)}")
    start = dt.datetime.combine(day_from, dt.time(0), tzinfo=clock.zone())
    end = dt.datetime.combine(day_to + dt.timedelta(days=1), dt.time(0), tzinfo=clock.zone())
    moment = now or clock.now()
    found: List[Finding] = []
    if STAFF_REFUSED in wanted:
        found += _refused(session, start, end)
    if STAFF_FLAGGED in wanted:
        found += _flagged(session, start, end)
    if OWNER_THREAT in wanted:
        found += _threats(session, start, end)
    if UNANSWERED in wanted:
        found += _unanswered(session, start, end, hours or get_service_config().staff, moment)
    if PROMISE_UNCONFIRMED in wanted:
        found += _unconfirmed(session, start, end, moment)
    found = [
        finding
        for finding in found
        if start <= finding.at < end
        and (category is None or finding.category == category)
        and (staff is None or finding.staff == staff)
    ]
    found.sort(key=lambda finding: (finding.at, KINDS.index(finding.kind), finding.summary))
    return found


def counts_per_day(
    findings: Iterable[Finding], *, day_from: dt.date, day_to: dt.date
) -> Dict[str, List[int]]:
    """Per kind, one count per day from ``day_from`` to ``day_to`` (every kind, zeros included)."""
    days = (day_to - day_from).days + 1
    counts = {kind: [0] * days for kind in KINDS}
    for finding in findings:
        index = (finding.day - day_from).days
        if 0 <= index < days:
            counts[finding.kind][index] += 1
    return counts


def threat_categories(text: str) -> List[str]:
    """Where the owner threatens to go (keys of :data:`THREAT_WORDS`), in that order; empty: no such words.

    A mention just after a negation (不会, 不打算 …) is a reassurance and does not count.
    """
    plain = compliance.normalize(text or "")
    return [
        name
        for name, pattern in THREAT_WORDS.items()
        if any(not THREAT_NEGATION.search(plain[: match.start()]) for match in pattern.finditer(plain))
    ]


def response_deadline(created: dt.datetime, hours: StaffHours) -> dt.datetime:
    """When a record that arrived at ``created`` must have had its first answer.

    The close of the first working day it reaches staff: the same day when it came in before closing time on
    a working day, else the next working day's.
    """
    reaches = hours.next_answer(created)
    return dt.datetime.combine(reaches.date(), hours.closes, tzinfo=clock.zone())


# --- the kinds ------------------------------------------------------------------------------------------


def _refused(session: Session, start: dt.datetime, end: dt.datetime) -> List[Finding]:
    rows = session.execute(
        sa.select(AuditEntry)
        .where(
            AuditEntry.action.in_((STAFF_REPLY_REFUSED, OUTGOING_REFUSED)),
            AuditEntry.at >= _utc(start - _MARGIN),
            AuditEntry.at < _utc(end + _MARGIN),
        )
        .order_by(AuditEntry.id)
    ).scalars()
    found = []
    for row in rows:
        detail = row.detail if isinstance(row.detail, Mapping) else {}
        category = _first_category(detail.get("category"))
        reason = as_text(detail.get("reason"))
        handle = as_text(detail.get("handle")) if row.action == STAFF_REPLY_REFUSED else None
        if row.action == STAFF_REPLY_REFUSED:
            summary = _say("staff_reply_refused", text=_short(as_text(detail.get("text"))))
            who: Optional[str] = str(row.actor)
        else:
            source = as_text(detail.get("source")) or _say("other_source")
            summary = _say("outgoing_refused", source=_summaries()["sources"].get(source, source))
            who = None if row.actor == "system" else str(row.actor)
        if reason:
            summary = _say("with_reason", summary=summary, reason=reason)
        found.append(
            Finding(
                kind=STAFF_REFUSED,
                at=_utc_time(row.at),
                handle=handle,
                link=_link(handle),
                summary=summary,
                category=category,
                staff=who,
                reference=str(row.target) if row.target is not None and row.target != handle else None,
            )
        )
    return found


def _flagged(session: Session, start: dt.datetime, end: dt.datetime) -> List[Finding]:
    rows = session.execute(
        sa.select(models.OutboxMessage)
        .where(
            models.OutboxMessage.kind == OutboxKind.TEXT,
            models.OutboxMessage.staff.is_not(None),
            models.OutboxMessage.state != OutboxState.FAILED,
            models.OutboxMessage.created_at >= _local(start - _MARGIN),
            models.OutboxMessage.created_at < _local(end + _MARGIN),
        )
        .order_by(models.OutboxMessage.id)
    ).scalars()
    found = []
    for row in rows:
        hits = compliance.findings(str(row.text))
        if not hits:
            continue
        handle = handle_of(str(row.sender_id))
        sent = _say("delivered") if row.state == OutboxState.DELIVERED else _say("sent_not_delivered")
        found.append(
            Finding(
                kind=STAFF_FLAGGED,
                at=_local_time(row.created_at),
                handle=handle,
                link=_link(handle),
                summary=_say("staff_flagged", sent=sent, text=_short(str(row.text)), reason=hits[0].reason),
                category=hits[0].category,
                staff=str(row.staff),
            )
        )
    return found


def _threats(session: Session, start: dt.datetime, end: dt.datetime) -> List[Finding]:
    rows = stored_events.user_messages_between(session, start=start.timestamp(), stop=end.timestamp())
    found = []
    for row in rows:
        data = row.data
        text = as_text(data.get("text"))
        if not text:
            continue
        intent = row.intent_name or as_text(
            as_mapping(as_mapping(data.get("parse_data")).get("intent")).get("name")
        )
        targets = threat_categories(text)
        if intent != THREATEN_ESCALATION and not targets:
            continue
        handle = handle_of(str(row.sender_id))
        found.append(
            Finding(
                kind=OWNER_THREAT,
                at=dt.datetime.fromtimestamp(float(row.timestamp or 0.0), tz=dt.timezone.utc).astimezone(
                    clock.zone()
                ),
                handle=handle,
                link=_link(handle),
                summary=_say("owner_said", text=_short(text)),
                category=targets[0] if targets else THREAT_OTHER,
            )
        )
    return found


def _unanswered(
    session: Session, start: dt.datetime, end: dt.datetime, hours: StaffHours, now: dt.datetime
) -> List[Finding]:
    found = []
    for model, category, noun, kind_name in (
        (models.RepairOrder, REPAIR, _say("repair"), "repairs"),
        (models.Complaint, COMPLAINT, _say("complaint"), "complaints"),
    ):
        records = list(
            session.execute(
                sa.select(model)
                .where(model.created_at >= _local(start - _MARGIN), model.created_at < _local(end + _MARGIN))
                .order_by(model.id)
            ).scalars()
        )
        if not records:
            continue
        answered = _first_answers(session, kind_name, model, records)
        for record in records:
            created = _local_time(record.created_at)
            deadline = response_deadline(created, hours)
            first = answered.get(int(record.id))
            if first is None and record.updated_at is not None:
                first = _local_time(record.updated_at)
            if first is not None and first <= deadline:
                continue
            if first is None and (now < deadline or record.status != RecordStatus.OPEN):
                continue
            number = record.number or f"{kind_name}:{record.id}"
            what = _say("record_item", item=record.item) if category == REPAIR else ""
            if first is None:
                late = _say("never_answered", deadline=f"{deadline:%m-%d %H:%M}")
            else:
                late = _say("answered_late", deadline=f"{deadline:%m-%d %H:%M}", first=f"{first:%m-%d %H:%M}")
            handle = handle_of(str(record.sender_id)) if record.sender_id else None
            found.append(
                Finding(
                    kind=UNANSWERED,
                    at=created,
                    handle=handle,
                    link=_link(handle),
                    summary=_say("record_late", noun=noun, number=number, what=what, late=late),
                    category=category,
                    staff=str(record.assignee) if record.assignee else None,
                    reference=number,
                )
            )
    return found


def _first_answers(
    session: Session, kind_name: str, model: Any, records: Sequence[Any]
) -> Dict[int, dt.datetime]:
    """Per record id, the first time a person acted on it: a note, a status change, an assignment."""
    first: Dict[int, dt.datetime] = {}

    def keep(record_id: int, moment: dt.datetime) -> None:
        if record_id not in first or moment < first[record_id]:
            first[record_id] = moment

    ids = [int(record.id) for record in records]
    notes = session.execute(
        sa.select(models.RecordNote.record_id, sa.func.min(models.RecordNote.created_at))
        .where(models.RecordNote.record_type == kind_name, models.RecordNote.record_id.in_(ids))
        .group_by(models.RecordNote.record_id)
    )
    for record_id, moment in notes:
        keep(int(record_id), _local_time(moment))
    targets = {record.number or f"{kind_name}:{record.id}": int(record.id) for record in records}
    actions = session.execute(
        sa.select(AuditEntry.target, sa.func.min(AuditEntry.at))
        .where(AuditEntry.action.in_(_RECORD_ACTIONS), AuditEntry.target.in_(list(targets)))
        .group_by(AuditEntry.target)
    )
    for target, moment in actions:
        keep(targets[str(target)], _utc_time(moment))
    return first


def _unconfirmed(session: Session, start: dt.datetime, end: dt.datetime, now: dt.datetime) -> List[Finding]:
    promises = list(
        session.execute(
            sa.select(models.PaymentPromise)
            .where(
                models.PaymentPromise.created_at >= _local(start - _MARGIN),
                models.PaymentPromise.created_at < _local(end + _MARGIN),
            )
            .order_by(models.PaymentPromise.id)
        ).scalars()
    )
    found: List[Finding] = []
    for promise in promises:
        if not promise.sender_id:
            continue
        why = _wechat_failure(session, promise, now) or _not_said(session, promise)
        if why is None:
            continue
        category, detail = why
        found.append(_promise_finding(promise, _local_time(promise.created_at), category, detail))
    found += _failed_reminders(session, start, end)
    return found


def _wechat_failure(session: Session, promise: Any, now: dt.datetime) -> Optional[Tuple[str, str]]:
    message = str(promise.source_message_id or "")
    if not message.startswith("wechat-"):
        return None
    row = session.execute(
        sa.select(models.WeChatInboundMessage).where(
            models.WeChatInboundMessage.dedupe_key == f"msg:{message[len('wechat-') :]}"
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    if row.status == WeChatDelivery.FAILED:
        return WECHAT_FAILED, _say("wechat_failed")
    stuck = row.status in (WeChatDelivery.PROCESSING, WeChatDelivery.DEFERRED)
    if stuck and _utc_time(row.received_at) + WECHAT_STUCK_AFTER < now:
        return WECHAT_FAILED, _say("wechat_stuck")
    return None


def _not_said(session: Session, promise: Any) -> Optional[Tuple[str, str]]:
    """The conversation is stored and goes on after the promise, but no bot message confirms it."""
    if not promise.number:
        return None
    made = _local_time(promise.created_at).timestamp() - 5
    rows = stored_events.events_since(session, sender_id=str(promise.sender_id), types=("user", "bot"), since=made)
    if not rows:
        return None  # nothing stored after it (erased, expired, or a channel without a transcript)
    for row in rows:
        if row.type_name != "bot":
            continue
        data = row.data
        said = as_text(data.get("text")) or ""
        action = as_text(as_mapping(data.get("metadata")).get("utter_action"))
        if str(promise.number) in said or action == PROMISE_CONFIRMATION:
            return None
    return NOT_SAID, _say("not_said")


def _failed_reminders(session: Session, start: dt.datetime, end: dt.datetime) -> List[Finding]:
    rows = session.execute(
        sa.select(Reminder, models.PaymentPromise, models.OutboxMessage.state)
        .join(models.PaymentPromise, models.PaymentPromise.id == Reminder.promise_id)
        .outerjoin(models.OutboxMessage, models.OutboxMessage.id == Reminder.outbox_id)
        .where(
            Reminder.purpose.in_(PROMISE_REMINDERS),
            sa.or_(Reminder.state == ReminderState.FAILED, models.OutboxMessage.state == OutboxState.FAILED),
            Reminder.due_at >= _utc(start - _MARGIN),
            Reminder.due_at < _utc(end + _MARGIN),
        )
        .order_by(Reminder.id)
    )
    found = []
    for reminder, promise, _state in rows:
        when = _say("day_before") if reminder.purpose == ReminderPurpose.DAY_BEFORE else _say("due_day")
        detail = _say("reminder_failed", when=when)
        if reminder.reason:
            detail = _say("reminder_reason", detail=detail, reason=reminder.reason)
        found.append(_promise_finding(promise, _utc_time(reminder.due_at), REMINDER_FAILED, detail))
    return found


def _promise_finding(promise: Any, at: dt.datetime, category: str, detail: str) -> Finding:
    handle = handle_of(str(promise.sender_id)) if promise.sender_id else None
    number = promise.number or f"promises:{promise.id}"
    return Finding(
        kind=PROMISE_UNCONFIRMED,
        at=at,
        handle=handle,
        link=_link(handle),
        summary=_say(
            "promise", number=number, due=f"{promise.due_date:%m-%d}", amount=promise.amount, detail=detail
        ),
        category=category,
        reference=number,
    )


# --- helpers --------------------------------------------------------------------------------------------


def _link(handle: Optional[str]) -> Optional[str]:
    return f"/conversations/{handle}" if handle else None


def _utc(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.timezone.utc)


def _local(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(clock.zone())


def _utc_time(value: dt.datetime) -> dt.datetime:
    """A time stored in UTC (naive on SQLite) in the estate's zone."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(clock.zone())


def _local_time(value: dt.datetime) -> dt.datetime:
    """A time stored from :func:`bot.clock.now` (naive on SQLite: the estate's wall time) in the estate's zone."""
    if value.tzinfo is None:
        return value.replace(tzinfo=clock.zone())
    return value.astimezone(clock.zone())


def _first_category(value: Any) -> Optional[str]:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], str):
        return value[0]
    return None


def _short(text: Optional[str]) -> str:
    plain = " ".join((text or "").split())
    return plain if len(plain) <= SUMMARY_CHARS else plain[: SUMMARY_CHARS - 1] + "…"
