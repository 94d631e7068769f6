"""Follow-up: staff work owner requests, decide instalment requests and watch payment promises.

* Repair orders, complaints and bill checks: :func:`change_status` (``open → in_progress → done``, or
  ``cancelled`` from either of the first two; ``done`` and ``cancelled`` are final), :func:`set_assignee` (an
  active staff username, or nobody) and :func:`add_note` (who, when, text; table ``record_notes``).
* Instalment requests: :func:`decide_instalment` approves or rejects a pending one, by a supervisor or manager
  only, with who, when and the reason stored; the owner is told through the outbox on the channel they wrote
  on (``instalments.*`` in ``data/wording.yml``). The notice, with the decider's reason in it, passes the
  coercion guard (:func:`bot.services.refused_texts.refusal_of`): a refused one decides nothing, is raised as
  :class:`NoticeRefused` with the guard's category and reason, and leaves an ``outgoing_refused`` audit row.
* Payment promises: :func:`promises` lists them by :class:`PromiseBucket` against :func:`bot.clock.today`.

Nothing here imports a web framework; the caller owns the session and commits (and writes the audit row of
a change; a refused notice's row is written here).
Times come from :mod:`bot.clock`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Dict, FrozenSet, List, Optional, Type, Union

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot import clock, wording
from bot.casework.owner_view import (
    PARTIAL,
    PromiseBucket,
    RecordKind,
    RecordLine,
    _record_line,
    list_records,
    owner_of_conversation,
    stored_time,
)
from bot.conversations import handoff, outbox
from bot.db import models
from bot.db.models import InstalmentStatus, OutboxKind, PromiseStatus, RecordStatus
from bot.db.staff_models import StaffRole, StaffUser
from bot.services import owner_requests, refused_texts

NOTE_MAX_CHARS = 1000
REASON_MAX_CHARS = 200

# The kinds with a status workflow, an assignee and notes.
WORKFLOW_KINDS = (RecordKind.REPAIRS, RecordKind.COMPLAINTS, RecordKind.BILL_CHECKS)
_WORKFLOW_MODELS: Dict[RecordKind, Type[Any]] = {
    RecordKind.REPAIRS: models.RepairOrder,
    RecordKind.COMPLAINTS: models.Complaint,
    RecordKind.BILL_CHECKS: models.BillCheckRequest,
}
# Where each status may go next.
TRANSITIONS: Dict[RecordStatus, FrozenSet[RecordStatus]] = {
    RecordStatus.OPEN: frozenset({RecordStatus.IN_PROGRESS, RecordStatus.CANCELLED}),
    RecordStatus.IN_PROGRESS: frozenset({RecordStatus.DONE, RecordStatus.CANCELLED}),
    RecordStatus.DONE: frozenset(),
    RecordStatus.CANCELLED: frozenset(),
}
DECIDERS = frozenset({StaffRole.SUPERVISOR, StaffRole.MANAGER})


class WorkflowError(ValueError):
    """A change the workflow refuses; ``code`` names why (the screen words it)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


class NoticeRefused(WorkflowError):
    """The notice to the owner (with the decider's reason in it) is refused by the coercion guard.

    Attributes:
        refusal: The guard's category, reason and the words found.
    """

    def __init__(self, refusal: refused_texts.Refusal) -> None:
        super().__init__("blocked", f"the notice to the owner is refused by the guard ({refusal.category})")
        self.refusal = refusal


class InvalidTransition(WorkflowError):
    """The record's status cannot go to the one asked for."""

    def __init__(self, current: RecordStatus, wanted: RecordStatus) -> None:
        super().__init__("invalid_transition", f"a record that is {current.value!r} cannot become {wanted.value!r}")
        self.current = current
        self.wanted = wanted


class NotAllowed(PermissionError):
    """The acting user's role may not do this (a collector deciding an instalment request)."""


class RecordNotFound(LookupError):
    """No record of this kind has this id."""

    def __init__(self, kind: RecordKind, record_id: int) -> None:
        super().__init__(f"no {kind.value} record {record_id}")
        self.kind = kind
        self.record_id = record_id


# PromiseBucket and PARTIAL live with the records listing (the API filters by them too); named here as well.


@dataclass(frozen=True)
class Note:
    """A staff member's note on a record."""

    id: int
    author: str
    text: str
    created_at: dt.datetime


@dataclass(frozen=True)
class WorkflowState:
    """Where a repair order, complaint or bill check stands.

    Attributes:
        kind: Which kind of record.
        id: Its id.
        number: Its record number.
        status: Its stored status.
        assignee: The staff username following it up, if any.
        updated_at: The last workflow change, if any.
    """

    kind: RecordKind
    id: int
    number: Optional[str]
    status: RecordStatus
    assignee: Optional[str]
    updated_at: Optional[dt.datetime]


@dataclass(frozen=True)
class RecordDetail:
    """One record for its screen: what the bot wrote, plus the workflow's fields (None where the kind has none).

    Attributes:
        line: The record as listed (number, owner, unit, status, the kind's fields).
        assignee: Repairs, complaints, bill checks: who follows it up.
        updated_at: Repairs, complaints, bill checks: the last workflow change.
        notes: Repairs, complaints, bill checks: the notes, oldest first.
        next_statuses: The statuses it may move to now.
        same_fault: Repairs: the unit's other unfinished repairs of the same item, as ``(id, number)``.
        decided_by: Instalments: who approved or rejected it.
        decided_at: Instalments: when.
        decision_note: Instalments: the reason given.
    """

    line: RecordLine
    assignee: Optional[str] = None
    updated_at: Optional[dt.datetime] = None
    notes: tuple[Note, ...] = ()
    next_statuses: tuple[str, ...] = ()
    same_fault: tuple[tuple[int, str], ...] = ()
    decided_by: Optional[str] = None
    decided_at: Optional[dt.datetime] = None
    decision_note: Optional[str] = None


@dataclass(frozen=True)
class Decision:
    """A decided instalment request and the notice written to the outbox (None when the conversation is unknown)."""

    id: int
    number: Optional[str]
    status: InstalmentStatus
    decided_by: str
    decided_at: dt.datetime
    decision_note: Optional[str]
    notice: Optional[outbox.OutboxEntry]


RoleLike = Union[StaffRole, str]


# --- repair orders, complaints, bill checks ----------------------------------------------------------------


def change_status(
    session: Session, *, kind: RecordKind, record_id: int, status: Union[RecordStatus, str], staff: str
) -> WorkflowState:
    """Move a record to ``status``.

    Raises:
        RecordNotFound: No such record.
        WorkflowError: ``status`` is not a status (code ``unknown_status``).
        InvalidTransition: The record cannot go there from where it is.
    """
    record = _workflow_record(session, kind, record_id)
    try:
        wanted = RecordStatus(status)
    except ValueError:
        raise WorkflowError("unknown_status", f"{status!r} is not a record status") from None
    current = RecordStatus(record.status)
    if wanted not in TRANSITIONS[current]:
        raise InvalidTransition(current, wanted)
    record.status = wanted
    record.updated_at = clock.now()
    session.flush()
    return _state(kind, record)


def set_assignee(
    session: Session, *, kind: RecordKind, record_id: int, assignee: Optional[str], staff: str
) -> WorkflowState:
    """Give a record to an active staff member (``assignee`` a username), or to nobody (None or empty).

    Raises:
        RecordNotFound: No such record.
        WorkflowError: ``assignee`` is not an active staff account (code ``unknown_assignee``), or the record is
            closed (code ``closed``).
    """
    record = _workflow_record(session, kind, record_id)
    if RecordStatus(record.status) in (RecordStatus.DONE, RecordStatus.CANCELLED):
        raise WorkflowError("closed", "a done or cancelled record keeps its assignee")
    username = (assignee or "").strip().lower() or None
    if username is not None:
        known = session.execute(
            sa.select(StaffUser.username).where(StaffUser.username == username, StaffUser.active.is_(True))
        ).scalar_one_or_none()
        if known is None:
            raise WorkflowError("unknown_assignee", f"{username!r} is not an active staff account")
    record.assignee = username
    record.updated_at = clock.now()
    session.flush()
    return _state(kind, record)


class SameFaultOpen(WorkflowError):
    """The unit already has an unfinished repair of this item: staff work that one (``record_id``, ``number``)."""

    def __init__(self, record_id: int, number: str) -> None:
        super().__init__("same_fault_open", f"repair {number} of the same item is still open")
        self.record_id = record_id
        self.number = number


FIELD_MAX = {"item": 64, "location": 128, "preferred_time": 64, "description": 1000}


def open_from_conversation(
    session: Session,
    *,
    kind: RecordKind,
    sender_id: str,
    staff: str,
    description: str,
    item: str = "",
    location: str = "",
    preferred_time: str = "",
) -> Any:
    """A repair, complaint or bill check staff open from the conversation they are in, for its verified owner.

    The person who opens it follows it up (its assignee). A repair of an item the unit already has an
    unfinished repair for is refused (:class:`SameFaultOpen`): one fault, one order.

    Args:
        session: The caller's session.
        kind: ``repairs``, ``complaints`` or ``bill_checks``.
        sender_id: The conversation.
        staff: Who opens it.
        description: What the owner said is wrong (required).
        item: Repairs: what is broken (required).
        location: Repairs: where (default: the owner's unit).
        preferred_time: Repairs: when the owner can let someone in (default: 待与业主约定).

    Raises:
        WorkflowError: ``not_a_work_order`` (another kind), ``unverified`` (no verified owner), ``bad_field``
            (a required field empty or a field too long).
        SameFaultOpen: The unit's unfinished repair of the same item.
    """
    kind = RecordKind(kind)
    if kind not in WORKFLOW_KINDS:
        raise WorkflowError("not_a_work_order", f"{kind.value} are not opened by staff")
    owner_id = owner_of_conversation(session, sender_id=sender_id)
    owner = session.get(models.Owner, owner_id) if owner_id is not None else None
    if owner is None:
        raise WorkflowError("unverified", "the conversation has no verified owner")
    fields: Dict[str, Any] = {"description": description.strip()}
    if kind is RecordKind.REPAIRS:
        unit = session.get(models.Unit, owner.unit_id)
        fields.update(
            item=item.strip(),
            location=location.strip() or (str(unit.code) if unit is not None else ""),
            preferred_time=preferred_time.strip() or wording.text("forms.time_to_agree"),
        )
    if any(not value or len(value) > FIELD_MAX[name] for name, value in fields.items()):
        raise WorkflowError("bad_field", "a required field is empty or too long")
    if kind is RecordKind.REPAIRS:
        same = owner_requests.open_repairs(session, unit_id=int(owner.unit_id), item=fields["item"])
        if same:
            raise SameFaultOpen(int(same[0].id), str(same[0].number))
    record = owner_requests.create(
        session, _WORKFLOW_MODELS[kind], message_id=None, sender_id=sender_id, owner_id=int(owner.id), **fields
    )
    record.assignee = staff
    record.updated_at = clock.now()
    session.flush()
    return record


def add_note(session: Session, *, kind: RecordKind, record_id: int, staff: str, text: str) -> Note:
    """Append a note by ``staff`` to a record.

    Raises:
        RecordNotFound: No such record.
        WorkflowError: An empty note, or one over :data:`NOTE_MAX_CHARS` (code ``bad_note``).
    """
    record = _workflow_record(session, kind, record_id)
    body = (text or "").strip()
    if not body or len(body) > NOTE_MAX_CHARS:
        raise WorkflowError("bad_note", f"a note of 1 to {NOTE_MAX_CHARS} characters is required")
    moment = clock.now()
    note = models.RecordNote(
        record_type=RecordKind(kind).value, record_id=int(record.id), author=staff, text=body, created_at=moment
    )
    session.add(note)
    record.updated_at = moment
    session.flush()
    return _note(note)


def notes(session: Session, *, kind: RecordKind, record_id: int) -> List[Note]:
    """A record's notes, oldest first."""
    rows = session.execute(
        sa.select(models.RecordNote)
        .where(models.RecordNote.record_type == RecordKind(kind).value, models.RecordNote.record_id == record_id)
        .order_by(models.RecordNote.id)
    ).scalars()
    return [_note(row) for row in rows]


def assignees(session: Session, *, kind: RecordKind, record_ids: List[int]) -> Dict[int, Optional[str]]:
    """The assignee of each of ``record_ids`` (records of a workflow kind)."""
    if not record_ids:
        return {}
    model = _WORKFLOW_MODELS[RecordKind(kind)]
    rows = session.execute(sa.select(model.id, model.assignee).where(model.id.in_(record_ids)))
    return {int(record_id): assignee for record_id, assignee in rows}


def record_detail(session: Session, *, kind: RecordKind, record_id: int) -> RecordDetail:
    """One record of any kind but promises, with its workflow fields.

    Raises:
        RecordNotFound: No such record (or ``kind`` is promises, which have no page of their own).
    """
    kind = RecordKind(kind)
    if kind is RecordKind.PROMISES:
        raise RecordNotFound(kind, record_id)
    model = _WORKFLOW_MODELS.get(kind, models.InstalmentRequest)
    record = session.get(model, record_id)
    if record is None:
        raise RecordNotFound(kind, record_id)
    line = _line(session, kind, record)
    if kind is RecordKind.INSTALMENTS:
        return RecordDetail(
            line=line,
            decided_by=record.decided_by,
            decided_at=stored_time(record.decided_at) if record.decided_at is not None else None,
            decision_note=record.decision_note,
        )
    same_fault: tuple[tuple[int, str], ...] = ()
    if kind is RecordKind.REPAIRS and record.owner_id is not None:
        owner = session.get(models.Owner, record.owner_id)
        others = owner_requests.open_repairs(session, unit_id=int(owner.unit_id), item=record.item, exclude_id=record.id)
        same_fault = tuple((int(other.id), str(other.number)) for other in others)
    return RecordDetail(
        line=line,
        assignee=record.assignee,
        updated_at=stored_time(record.updated_at) if record.updated_at is not None else None,
        notes=tuple(notes(session, kind=kind, record_id=record_id)),
        next_statuses=tuple(sorted(status.value for status in TRANSITIONS[RecordStatus(record.status)])),
        same_fault=same_fault,
    )


# --- instalment requests ---------------------------------------------------------------------------------


def decide_instalment(
    session: Session,
    *,
    request_id: int,
    approve: bool,
    staff: str,
    role: RoleLike,
    reason: Optional[str] = None,
) -> Decision:
    """Approve or reject a pending instalment request and tell the owner through the outbox.

    Args:
        session: The caller's session (commit to store the decision and release the notice).
        request_id: The request's id.
        approve: True to approve, False to reject.
        staff: The deciding user's username.
        role: The deciding user's role: a supervisor or manager; a collector is refused.
        reason: Why (required to reject; optional to approve; kept in ``decision_note``; a rejection's reason
            is told to the owner).

    Returns:
        The decision and the owner's notice.

    Raises:
        NotAllowed: ``role`` may not decide; nothing is stored.
        RecordNotFound: No such request.
        WorkflowError: Already decided (``already_decided``), a rejection without a reason or a reason too
            long (``bad_reason``).
        NoticeRefused: The guard refuses the notice (code ``blocked``); nothing is decided, an
            ``outgoing_refused`` audit row is written in ``session`` (kept when the caller commits).
    """
    if _role(role) not in DECIDERS:
        raise NotAllowed("only a supervisor or a manager may decide an instalment request")
    request = session.get(models.InstalmentRequest, request_id)
    if request is None:
        raise RecordNotFound(RecordKind.INSTALMENTS, request_id)
    if InstalmentStatus(request.status) is not InstalmentStatus.PENDING:
        raise WorkflowError("already_decided", f"instalment request {request.number} is already decided")
    note = (reason or "").strip() or None
    if note is not None and len(note) > REASON_MAX_CHARS:
        raise WorkflowError("bad_reason", f"a reason of at most {REASON_MAX_CHARS} characters is required")
    if approve:
        text = wording.text("instalments.approved", number=request.number, plan=request.proposed_plan)
    else:
        if note is None:
            raise WorkflowError("bad_reason", "a rejection needs a reason")
        text = wording.text("instalments.rejected", number=request.number, reason=note.rstrip("。.！!；;，, "))
    refusal = refused_texts.refusal_of(text)
    if refusal is not None:
        refused_texts.record_outgoing_refused(
            session,
            actor=staff,
            refusal=refusal,
            source=refused_texts.INSTALMENT_DECISION,
            target=request.number or f"instalments:{request_id}",
        )
        raise NoticeRefused(refusal)
    moment = clock.now()
    decided = InstalmentStatus.APPROVED if approve else InstalmentStatus.REJECTED
    # A conditional UPDATE: of two people deciding at once, only one moves the request (and tells the owner).
    moved = session.execute(
        sa.update(models.InstalmentRequest)
        .where(models.InstalmentRequest.id == request_id, models.InstalmentRequest.status == InstalmentStatus.PENDING)
        .values(status=decided, decided_by=staff, decided_at=moment, decision_note=note)
        .execution_options(synchronize_session=False)
    )
    if moved.rowcount != 1:
        raise WorkflowError("already_decided", f"instalment request {request.number} is already decided")
    session.refresh(request)
    notice = None
    if request.sender_id:
        notice = outbox.enqueue(
            session,
            sender_id=str(request.sender_id),
            channel=handoff.conversation_channel(session, sender_id=str(request.sender_id)),
            kind=OutboxKind.TEXT,
            text=text,
            staff=staff,
        )
    session.flush()
    return Decision(
        id=int(request.id),
        number=request.number,
        status=decided,
        decided_by=staff,
        decided_at=moment,
        decision_note=note,
        notice=notice,
    )


def may_decide(role: RoleLike) -> bool:
    """Whether a user with ``role`` may approve or reject instalment requests."""
    return _role(role) in DECIDERS


# --- payment promises ------------------------------------------------------------------------------------


def promise_bucket(status: Union[PromiseStatus, str], due_date: dt.date, *, today: dt.date) -> PromiseBucket:
    """Which bucket a promise with this status and date is in on ``today``."""
    stored = PromiseStatus(status)
    if stored is PromiseStatus.KEPT:
        return PromiseBucket.KEPT
    if stored is PromiseStatus.BROKEN:
        return PromiseBucket.BROKEN
    if due_date == today:
        return PromiseBucket.DUE_TODAY
    return PromiseBucket.OVERDUE if due_date < today else PromiseBucket.OPEN


def promises(session: Session, *, bucket: Optional[Union[PromiseBucket, str]] = None) -> List[RecordLine]:
    """Payment promises in ``bucket`` on :func:`bot.clock.today`, soonest due first.

    All when None; :data:`PARTIAL` lists the partly paid ones, whatever their bucket.
    """
    today = clock.today()
    partial = bucket == PARTIAL
    wanted = PromiseBucket(bucket) if bucket is not None and not partial else None
    found = [
        line
        for line in list_records(session, kind=RecordKind.PROMISES)
        if line.due_date is not None
        and (
            is_partial(line)
            if partial
            else wanted is None or promise_bucket(line.status, line.due_date, today=today) is wanted
        )
    ]
    return sorted(found, key=lambda line: (line.due_date or today, line.id))


def is_partial(line: RecordLine) -> bool:
    """A promise not kept towards which some but not all of the amount was paid (:attr:`RecordLine.partial`)."""
    return line.partial


# --- internals ------------------------------------------------------------------------------------------


def _role(role: RoleLike) -> Optional[StaffRole]:
    try:
        return StaffRole(role)
    except ValueError:
        return None


def _workflow_record(session: Session, kind: RecordKind, record_id: int) -> Any:
    kind = RecordKind(kind)
    if kind not in _WORKFLOW_MODELS:
        raise RecordNotFound(kind, record_id)
    record = session.get(_WORKFLOW_MODELS[kind], record_id)
    if record is None:
        raise RecordNotFound(kind, record_id)
    return record


def _state(kind: RecordKind, record: Any) -> WorkflowState:
    return WorkflowState(
        kind=RecordKind(kind),
        id=int(record.id),
        number=record.number,
        status=RecordStatus(record.status),
        assignee=record.assignee,
        updated_at=stored_time(record.updated_at) if record.updated_at is not None else None,
    )


def _note(row: models.RecordNote) -> Note:
    return Note(id=int(row.id), author=str(row.author), text=str(row.text), created_at=stored_time(row.created_at))


def _line(session: Session, kind: RecordKind, record: Any) -> RecordLine:
    unit = None
    if record.owner_id is not None:
        unit = session.execute(
            sa.select(models.Unit.code)
            .join(models.Owner, models.Owner.unit_id == models.Unit.id)
            .where(models.Owner.id == record.owner_id)
        ).scalar_one_or_none()
    return _record_line(kind, record, unit)
