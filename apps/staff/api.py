"""The JSON API: what the screens show, as stored values, for signed-in staff.

Dates are ISO dates, times ISO times with the estate's offset, amounts numbers. Anonymous calls get 401, an
unknown id 404, a filter naming an unknown status 422. Every call that returns owners' data is audited.
The response models (pydantic 1) document the API at ``/api/openapi.json``.

A conversation is named by its handle (``W-3F9K-2A7Q``, :mod:`bot.conversations.handles`) in every field, path
and filter, never by its sender id (a web chat session id is a bearer credential, a WeChat openid a personal
identifier).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional

from fastapi import APIRouter, HTTPException, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from apps.staff.deps import current_user, get_db
from bot.casework import owner_view
from bot.casework.owner_view import RecordKind
from bot.conversations import handles, handoff, transcripts
from bot.db import audit
from bot.db.models import EscalationState
from bot.db.staff_models import StaffUser
from bot.services import queue
from bot.services.staff_users import phone_for

router = APIRouter(prefix="/api", tags=["api"])


# --- response models ------------------------------------------------------------------------------------


class EscalationOut(BaseModel):
    """An escalation in the queue."""

    id: int
    number: Optional[str] = Field(None, description="record number told to the owner (RG...)")
    conversation: Optional[str] = Field(None, description="the conversation's handle (W-3F9K-2A7Q)")
    channel: Optional[str] = Field(None, description="socketio, wechat or rest")
    reason: str = Field(..., description="request_human, threaten_escalation, fallback, identity_failed, ...")
    detail: Optional[str] = None
    state: EscalationState = Field(..., description="pending (the bot), open (a person), resolved")
    assignee: Optional[str] = Field(None, description="staff username holding (open) or last holding it")
    owner_id: Optional[int] = None
    unit: Optional[str] = None
    created_at: dt.datetime
    claimed_at: Optional[dt.datetime] = None
    first_response_at: Optional[dt.datetime] = None
    resolved_at: Optional[dt.datetime] = None
    updated_at: dt.datetime
    waiting_seconds: int = Field(..., description="until the first staff reply, the resolution, or now")


class EntityOut(BaseModel):
    """An entity the NLU found in an owner's message."""

    name: str
    value: Any = None
    text: Optional[str] = None
    start: Optional[int] = None
    end: Optional[int] = None
    extractor: Optional[str] = None
    confidence: Optional[float] = None


class TranscriptEntryOut(BaseModel):
    """One line of a transcript."""

    event_id: int = Field(..., description="tracker store row id; pass the last one as ?after= to follow")
    at: Optional[dt.datetime] = None
    kind: transcripts.EntryKind
    speaker: Optional[transcripts.Speaker] = None
    staff: Optional[str] = Field(None, description="staff username, for a staff member's message")
    staff_name: Optional[str] = Field(None, description="that staff member's display name")
    text: Optional[str] = None
    intent: Optional[str] = None
    confidence: Optional[float] = None
    entities: List[EntityOut] = []
    action: Optional[str] = None
    policy: Optional[str] = None
    buttons: List[str] = []
    channel: Optional[str] = None
    reason: Optional[str] = Field(None, description="session_ended: signed_out, idle or max_age")


class DeliveryOut(BaseModel):
    """How a staff reply would reach the owner now."""

    channel: Optional[str] = Field(None, description="socketio, wechat or rest, if known")
    can_deliver: bool
    window_open: Optional[bool] = Field(None, description="WeChat: whether the 48-hour window is open")
    last_inbound_at: Optional[dt.datetime] = None
    window_closes_at: Optional[dt.datetime] = None
    blocked: Optional[str] = Field(
        None,
        description="why a reply cannot reach the owner now: wechat_window_closed, webchat_session_ended or "
        "unknown_channel",
    )
    alternatives: List[str] = Field([], description="phone_call, wait_for_owner, next_visit")


class ConversationOut(BaseModel):
    """A conversation: its transcript (or the part after ``after``), owner and escalations."""

    handle: str = Field(..., description="the conversation's handle (W-3F9K-2A7Q)")
    owner_id: Optional[int] = None
    holder: Optional[str] = Field(None, description="staff username holding the conversation, if any")
    last_event_id: Optional[int] = Field(None, description="the latest entry's event id (or ``after``)")
    entries: List[TranscriptEntryOut]
    escalations: List[EscalationOut]
    delivery: DeliveryOut


class ReplyIn(BaseModel):
    """A staff reply to the owner of a conversation the caller holds."""

    text: str = Field(..., max_length=4000, description="the reply as typed (at most 1000 characters are sent)")


class ReplyOut(BaseModel):
    """The reply, queued in the outbox for the owner's channel."""

    outbox_id: int
    channel: Optional[str] = Field(None, description="socketio, wechat or rest")
    state: str = Field(..., description="pending until a Rasa process delivers it")
    text: str


class ReplyRefusedOut(BaseModel):
    """Why a reply was not sent; nothing was queued."""

    code: str = Field(..., description="forbidden (the coercion guard), empty, too_long or not_held")
    category: Optional[str] = Field(
        None, description="forbidden: utilities, access, services, credit, third_party, shaming, harassment or discount"
    )
    label: Optional[str] = Field(None, description="forbidden: the category's Chinese name")
    reason: Optional[str] = Field(None, description="forbidden: one Chinese sentence, with the law where one applies")
    law: Optional[str] = None
    phrase: Optional[str] = Field(None, description="forbidden: the words found, normalised")
    limit: Optional[int] = Field(None, description="too_long: the longest reply, in characters")
    holder: Optional[str] = Field(None, description="not_held: who holds the conversation (none: the bot)")


class BillOut(BaseModel):
    """One billing period of the owner's unit."""

    period: str = Field(..., description="YYYY-MM")
    amount_due: float
    amount_paid: float
    outstanding: float


class RecordOut(BaseModel):
    """Fields every record has."""

    id: int
    number: Optional[str] = None
    conversation: Optional[str] = Field(None, description="the handle of the conversation it was made in")
    owner_id: Optional[int] = None
    unit: Optional[str] = None
    status: str
    created_at: dt.datetime


class PromiseOut(RecordOut):
    """A payment promise (status: open, kept, broken)."""

    amount: float
    due_date: dt.date
    paid_amount: float = Field(0, description="paid by the unit in the promise's window (partial when below amount)")


class RepairOut(RecordOut):
    """A repair order (status: open, in_progress, done, cancelled)."""

    item: str
    location: str
    description: str
    preferred_time: str


class ComplaintOut(RecordOut):
    """A complaint or a bill check (status: open, in_progress, done, cancelled)."""

    description: str


class InstalmentOut(RecordOut):
    """An instalment request (status: pending, approved, rejected)."""

    proposed_plan: str


class ConversationSummaryOut(BaseModel):
    """One conversation of an owner."""

    conversation: str = Field(..., description="its handle (W-3F9K-2A7Q)")
    channel: Optional[str] = None
    verified_at: Optional[dt.datetime] = None
    first_message_at: Optional[dt.datetime] = None
    last_message_at: Optional[dt.datetime] = None
    messages: int


class OwnerOut(BaseModel):
    """Everything about an owner. ``phone`` is masked (138****5678) for collectors."""

    id: int
    name: str
    phone: str
    unit: str
    building: str
    entrance: Optional[str] = None
    room: str
    outstanding: float
    arrears_since: Optional[str] = Field(None, description="first unpaid period, YYYY-MM")
    bills: List[BillOut]
    promises: List[PromiseOut]
    repairs: List[RepairOut]
    complaints: List[ComplaintOut]
    bill_checks: List[ComplaintOut]
    instalments: List[InstalmentOut]
    escalations: List[EscalationOut]
    conversations: List[ConversationSummaryOut]
    former: bool = Field(False, description="a former owner: bills and outstanding are the current owner's")
    owned_from: Optional[dt.date] = None
    owned_until: Optional[dt.date] = Field(None, description="a former owner's last day (transfer or roster)")
    retired_reason: Optional[str] = Field(None, description="roster (the import listed another owner) or transfer")


class OwnerSummaryOut(BaseModel):
    """An owner in a search. ``phone`` is masked for collectors."""

    id: int
    name: str
    phone: str
    unit: str
    outstanding: float
    former: bool = False
    owned_until: Optional[dt.date] = None


# --- conversions ----------------------------------------------------------------------------------------


def _handle(sender_id: Optional[str]) -> Optional[str]:
    return handles.handle_of(sender_id) if sender_id else None


def escalation_out(entry: queue.QueueEntry) -> EscalationOut:
    """The API form of a queue entry."""
    computed = ("waiting_seconds", "conversation")
    fields = {name: getattr(entry, name) for name in EscalationOut.__fields__ if name not in computed}
    return EscalationOut(
        **fields, conversation=_handle(entry.sender_id), waiting_seconds=int(entry.waiting.total_seconds())
    )


def entry_out(entry: transcripts.TranscriptEntry, names: Dict[str, str]) -> TranscriptEntryOut:
    """The API form of a transcript entry (``names``: staff display names by username)."""
    return TranscriptEntryOut(
        event_id=entry.event_id,
        at=entry.at,
        kind=entry.kind,
        speaker=entry.speaker,
        staff=entry.staff,
        staff_name=names.get(entry.staff) if entry.staff else None,
        text=entry.text,
        intent=entry.intent,
        confidence=entry.confidence,
        entities=[
            EntityOut(
                name=entity.name,
                value=entity.value,
                text=entity.text,
                start=entity.start,
                end=entity.end,
                extractor=entity.extractor,
                confidence=entity.confidence,
            )
            for entity in entry.entities
        ],
        action=entry.action,
        policy=entry.policy,
        buttons=list(entry.buttons),
        channel=entry.channel,
        reason=entry.reason,
    )


def delivery_out(status: handoff.DeliveryStatus) -> DeliveryOut:
    """The API form of a conversation's delivery status."""
    return DeliveryOut(
        channel=status.channel,
        can_deliver=status.can_deliver,
        window_open=status.window_open,
        last_inbound_at=status.last_inbound_at,
        window_closes_at=status.window_closes_at,
        blocked=status.blocked.value if status.blocked else None,
        alternatives=[alternative.value for alternative in status.alternatives],
    )


def _record_fields(record: owner_view.RecordLine, model: type[RecordOut]) -> Dict[str, Any]:
    fields = {name: getattr(record, name) for name in model.__fields__ if name != "conversation"}
    return {**fields, "conversation": _handle(record.sender_id)}


def owner_out(profile: owner_view.OwnerProfile, *, role: Any) -> OwnerOut:
    """The API form of an owner's profile, the phone as ``role`` may see it."""
    return OwnerOut(
        id=profile.id,
        name=profile.name,
        phone=phone_for(profile.phone, role=role),
        unit=profile.unit,
        building=profile.building,
        entrance=profile.entrance,
        room=profile.room,
        outstanding=float(profile.outstanding),
        arrears_since=profile.arrears_since,
        bills=[
            BillOut(
                period=bill.period,
                amount_due=float(bill.amount_due),
                amount_paid=float(bill.amount_paid),
                outstanding=float(bill.outstanding),
            )
            for bill in profile.bills
        ],
        promises=[PromiseOut(**_record_fields(record, PromiseOut)) for record in profile.promises],
        repairs=[RepairOut(**_record_fields(record, RepairOut)) for record in profile.repairs],
        complaints=[ComplaintOut(**_record_fields(record, ComplaintOut)) for record in profile.complaints],
        bill_checks=[ComplaintOut(**_record_fields(record, ComplaintOut)) for record in profile.bill_checks],
        instalments=[InstalmentOut(**_record_fields(record, InstalmentOut)) for record in profile.instalments],
        escalations=[escalation_out(entry) for entry in profile.escalations],
        conversations=[
            ConversationSummaryOut(
                conversation=handles.handle_of(summary.sender_id),
                channel=summary.channel,
                verified_at=summary.verified_at,
                first_message_at=summary.first_message_at,
                last_message_at=summary.last_message_at,
                messages=summary.messages,
            )
            for summary in profile.conversations
        ],
        former=profile.former,
        owned_from=profile.ownership.owned_from if profile.ownership else None,
        owned_until=profile.ownership.owned_until if profile.ownership else None,
        retired_reason=profile.ownership.retired_reason if profile.ownership else None,
    )


def conversation_data(
    db: Session, *, sender_id: str, after: Optional[int]
) -> tuple[ConversationOut, Optional[int]]:
    """The conversation for the page and the API, and its owner.

    Raises:
        HTTPException: 404 when nothing is stored for ``sender_id``.
    """
    if not owner_view.conversation_known(db, sender_id=sender_id):
        raise HTTPException(status_code=404, detail="no such conversation")
    entries = transcripts.transcript(db, sender_id=sender_id, after_event_id=after)
    names = owner_view.staff_names(db, usernames=[entry.staff for entry in entries if entry.staff])
    escalations = queue.list_escalations(db, sender_id=sender_id, sort=queue.Sort.NEWEST)
    owner_id = owner_view.owner_of_conversation(db, sender_id=sender_id)
    data = ConversationOut(
        handle=handles.handle_of(sender_id),
        owner_id=owner_id,
        holder=queue.holder(db, sender_id=sender_id),
        last_event_id=entries[-1].event_id if entries else after,
        entries=[entry_out(entry, names) for entry in entries],
        escalations=[escalation_out(entry) for entry in escalations],
        delivery=delivery_out(handoff.delivery_status(db, sender_id=sender_id)),
    )
    return data, owner_id


# --- routes ---------------------------------------------------------------------------------------------

STATE_QUERY = Query(None, description="pending, open or resolved")
CONVERSATION_QUERY = Query(None, max_length=64, description="only this conversation, by its handle (W-3F9K-2A7Q)")


class _NoSuchConversation(Exception):
    """A ``conversation`` filter naming a handle no stored conversation has: nothing matches."""


def refused_out(refused: handoff.ReplyRefused) -> Dict[str, Any]:
    """A refused reply as :class:`ReplyRefusedOut` documents it (only the keys that apply)."""
    out: Dict[str, Any] = {"code": refused.reason}
    guard = refused.refusal
    if guard is not None:
        out.update(category=guard.category, label=guard.label, reason=guard.reason, phrase=guard.phrase)
        if guard.law:
            out["law"] = guard.law
    if refused.reason == "too_long":
        out["limit"] = refused.limit
    return out


def sender_of(db: Session, handle: str) -> str:
    """The sender id of the conversation ``handle`` names.

    Raises:
        HTTPException: 404 when no stored conversation has the handle, 409 when two share it.
    """
    try:
        sender_id = handles.resolve(db, handle)
    except handles.AmbiguousHandle:
        raise HTTPException(status_code=409, detail="two conversations share this handle") from None
    if sender_id is None or not owner_view.conversation_known(db, sender_id=sender_id):
        raise HTTPException(status_code=404, detail="no such conversation")
    return sender_id


def filter_sender(db: Session, handle: Optional[str]) -> Optional[str]:
    """The sender id a ``conversation`` filter stands for (None: no filter).

    Raises:
        HTTPException: 422 when it is not a handle at all, 409 when two conversations share it.
        _NoSuchConversation: No stored conversation has the handle (the caller lists nothing).
    """
    if handle is None or not handle.strip():
        return None
    if handles.normalise(handle) is None:
        raise HTTPException(status_code=422, detail="conversation must be a handle such as W-3F9K-2A7Q")
    try:
        sender_id = handles.resolve(db, handle)
    except handles.AmbiguousHandle:
        raise HTTPException(status_code=409, detail="two conversations share this handle") from None
    if sender_id is None:
        raise _NoSuchConversation(handle)
    return sender_id
SORT_QUERY = Query(queue.Sort.WAITING, description="waiting (longest first), newest or reason")


@router.get("/escalations", response_model=List[EscalationOut])
def escalations(
    status: Optional[EscalationState] = STATE_QUERY,
    reason: Optional[str] = Query(None),
    channel: Optional[str] = Query(None),
    assignee: Optional[str] = Query(None),
    conversation: Optional[str] = CONVERSATION_QUERY,
    owner_id: Optional[int] = Query(None),
    sort: queue.Sort = SORT_QUERY,
    user: StaffUser = current_user,
    db: Session = get_db,
) -> List[EscalationOut]:
    """Escalations matching every given filter (``status`` is the conversation state), in ``sort`` order."""
    try:
        entries = queue.list_escalations(
            db,
            state=status,
            reason=reason,
            channel=channel,
            assignee=assignee,
            sender_id=filter_sender(db, conversation),
            owner_id=owner_id,
            sort=sort,
        )
    except _NoSuchConversation:
        entries = []
    filters = {
        "status": status.value if status else None,
        "reason": reason,
        "channel": channel,
        "assignee": assignee,
        "conversation": handles.normalise(conversation),
        "owner_id": owner_id,
    }
    audit.record(
        db,
        actor=str(user.username),
        action=audit.QUEUE_VIEWED,
        detail={"via": "api", **{key: value for key, value in filters.items() if value is not None}, "rows": len(entries)},
    )
    return [escalation_out(entry) for entry in entries]


@router.get("/conversations/{handle}", response_model=ConversationOut)
def conversation(
    handle: str = Path(..., description="the conversation's handle (W-3F9K-2A7Q); anything else is 404"),
    after: Optional[int] = Query(None, description="only entries after this event id (live follow-up)"),
    user: StaffUser = current_user,
    db: Session = get_db,
) -> ConversationOut:
    """A conversation's transcript with intents, confidences, entities and actions, and its escalations.

    A follow-up that finds nothing new is not audited (it shows nothing); every other call is.
    """
    data, owner_id = conversation_data(db, sender_id=sender_of(db, handle), after=after)
    if after is None or data.entries:
        audit.record(
            db,
            actor=str(user.username),
            action=audit.CONVERSATION_VIEWED,
            target=data.handle,
            detail={"via": "api", "owner_id": owner_id, "after": after, "entries": len(data.entries)},
        )
    return data


@router.post(
    "/conversations/{handle}/reply",
    response_model=ReplyOut,
    status_code=201,
    responses={409: {"model": ReplyRefusedOut}, 422: {"model": ReplyRefusedOut}},
)
def reply(
    body: ReplyIn,
    handle: str = Path(..., description="the conversation's handle (W-3F9K-2A7Q); anything else is 404"),
    user: StaffUser = current_user,
    db: Session = get_db,
) -> Any:
    """The holder's reply to the owner, queued in the outbox (the console's 回复, with ``X-CSRF-Token``).

    A reply the coercion guard refuses is 422 with its ``category`` and ``reason``: nothing is queued, and a
    ``staff_reply_refused`` audit row keeps what was typed for the supervisors' QA view. An empty or too long
    reply is 422 too; a conversation the caller does not hold is 409.
    """
    sender_id = sender_of(db, handle)
    try:
        sent = handoff.staff_reply(db, sender_id=sender_id, staff=str(user.username), text=body.text)
    except handoff.ReplyRefused as refused:
        # A response, not an exception: the refusal's audit row commits with the request.
        return JSONResponse(refused_out(refused), status_code=422)
    except handoff.NotHeld as error:
        return JSONResponse({"code": "not_held", "holder": error.holder}, status_code=409)
    audit.record(
        db,
        actor=str(user.username),
        action=audit.STAFF_REPLIED,
        target=handles.handle_of(sender_id),
        detail={"via": "api", "outbox_id": sent.id, "channel": sent.channel, "text": sent.text},
    )
    return ReplyOut(outbox_id=int(sent.id), channel=sent.channel, state=sent.state.value, text=sent.text)


@router.get("/owners", response_model=List[OwnerSummaryOut])
def owners(
    unit: Optional[str] = Query(None, max_length=64, description="a unit (3栋2单元501, 3-2-501) or part of its code"),
    former: bool = Query(False, description="also former owners (retired by the import's roster or a transfer)"),
    user: StaffUser = current_user,
    db: Session = get_db,
) -> List[OwnerSummaryOut]:
    """Current owners whose unit matches ``unit`` (every owner without it); former owners too with ``former``."""
    found = owner_view.search_owners(db, unit=unit, include_former=former)
    audit.record(
        db, actor=str(user.username), action=audit.OWNERS_SEARCHED,
        detail={"via": "api", "unit": unit or "", "rows": len(found), **({"former": True} if former else {})},
    )  # fmt: skip
    return [
        OwnerSummaryOut(
            id=owner.id,
            name=owner.name,
            phone=phone_for(owner.phone, role=user.role),
            unit=owner.unit,
            outstanding=float(owner.outstanding),
            former=owner.former,
            owned_until=owner.owned_until,
        )
        for owner in found
    ]


@router.get("/owners/{owner_id}", response_model=OwnerOut)
def owner(owner_id: int, user: StaffUser = current_user, db: Session = get_db) -> OwnerOut:
    """An owner: unit, phone, bills, records, escalations and every conversation on every channel."""
    try:
        profile = owner_view.owner_profile(db, owner_id=owner_id)
    except owner_view.OwnerNotFound:
        raise HTTPException(status_code=404, detail="no such owner") from None
    audit.record(db, actor=str(user.username), action=audit.OWNER_VIEWED, target=f"owner:{owner_id}", detail={"via": "api"})
    return owner_out(profile, role=user.role)


def _records(
    db: Session,
    user: StaffUser,
    *,
    kind: RecordKind,
    conversation: Optional[str],
    owner_id: Optional[int],
    status: Optional[str],
) -> List[owner_view.RecordLine]:
    try:
        found = owner_view.list_records(
            db, kind=kind, sender_id=filter_sender(db, conversation), owner_id=owner_id, status=status
        )
    except _NoSuchConversation:
        found = []
    except ValueError:
        raise HTTPException(
            status_code=422, detail=f"status must be one of: {', '.join(owner_view.STATUSES[kind])}"
        ) from None
    filters = {"conversation": handles.normalise(conversation), "owner_id": owner_id, "status": status}
    audit.record(
        db,
        actor=str(user.username),
        action=audit.RECORDS_VIEWED,
        target=kind.value,
        detail={"via": "api", **{key: value for key, value in filters.items() if value is not None}, "rows": len(found)},
    )
    return found


SENDER_QUERY = Query(None, max_length=64, description="only records made in this conversation (its handle)")
OWNER_QUERY = Query(None, description="only this owner's records")


@router.get("/promises", response_model=List[PromiseOut])
def promises(
    conversation: Optional[str] = SENDER_QUERY,
    owner_id: Optional[int] = OWNER_QUERY,
    status: Optional[str] = Query(
        None,
        description="as on the records screen, on today's date: due_today, overdue, open (open and due later), "
        "kept, broken, or partial (not kept, some but not all paid)",
    ),
    user: StaffUser = current_user,
    db: Session = get_db,
) -> List[PromiseOut]:
    """Payment promises, newest first."""
    found = _records(db, user, kind=RecordKind.PROMISES, conversation=conversation, owner_id=owner_id, status=status)
    return [PromiseOut(**_record_fields(record, PromiseOut)) for record in found]


@router.get("/repairs", response_model=List[RepairOut])
def repairs(
    conversation: Optional[str] = SENDER_QUERY,
    owner_id: Optional[int] = OWNER_QUERY,
    status: Optional[str] = Query(None, description="open, in_progress, done or cancelled"),
    user: StaffUser = current_user,
    db: Session = get_db,
) -> List[RepairOut]:
    """Repair orders, newest first."""
    found = _records(db, user, kind=RecordKind.REPAIRS, conversation=conversation, owner_id=owner_id, status=status)
    return [RepairOut(**_record_fields(record, RepairOut)) for record in found]


@router.get("/complaints", response_model=List[ComplaintOut])
def complaints(
    conversation: Optional[str] = SENDER_QUERY,
    owner_id: Optional[int] = OWNER_QUERY,
    status: Optional[str] = Query(None, description="open, in_progress, done or cancelled"),
    user: StaffUser = current_user,
    db: Session = get_db,
) -> List[ComplaintOut]:
    """Complaints, newest first."""
    found = _records(db, user, kind=RecordKind.COMPLAINTS, conversation=conversation, owner_id=owner_id, status=status)
    return [ComplaintOut(**_record_fields(record, ComplaintOut)) for record in found]


@router.get("/bill-checks", response_model=List[ComplaintOut])
def bill_checks(
    conversation: Optional[str] = SENDER_QUERY,
    owner_id: Optional[int] = OWNER_QUERY,
    status: Optional[str] = Query(None, description="open, in_progress, done or cancelled"),
    user: StaffUser = current_user,
    db: Session = get_db,
) -> List[ComplaintOut]:
    """Bill checks, newest first."""
    found = _records(db, user, kind=RecordKind.BILL_CHECKS, conversation=conversation, owner_id=owner_id, status=status)
    return [ComplaintOut(**_record_fields(record, ComplaintOut)) for record in found]


@router.get("/instalments", response_model=List[InstalmentOut])
def instalments(
    conversation: Optional[str] = SENDER_QUERY,
    owner_id: Optional[int] = OWNER_QUERY,
    status: Optional[str] = Query(None, description="pending, approved or rejected"),
    user: StaffUser = current_user,
    db: Session = get_db,
) -> List[InstalmentOut]:
    """Instalment requests, newest first."""
    found = _records(db, user, kind=RecordKind.INSTALMENTS, conversation=conversation, owner_id=owner_id, status=status)
    return [InstalmentOut(**_record_fields(record, InstalmentOut)) for record in found]
