"""Ownership periods: who owns a unit now, and what happens to an owner who no longer does.

An owner row is *current* until it is retired (``owners.retired_at``); a retired owner is a *former* owner.
Two things retire an owner:

* The arrears import is the roster (:func:`apply_roster`). For each unit it lists, the listed person is the
  owner; whoever else is a current owner of that unit is retired (reason ``roster``). The person is told
  apart by name (:func:`same_person`): the same unit and name with a new phone is the same person whose phone
  changed (the row is updated, never duplicated); another name is a new owner. Units the file does not list
  are left as they are.
* Staff record a transfer (过户) on the owner page (:func:`transfer`, reason ``transfer``), with the date it
  took effect, and may name the new owner at once.

Retiring (:func:`retire`) keeps the owner's row and history (records, promises, reminders sent, conversations)
for staff, and at once: closes the owner's conversation links (those conversations are no longer verified),
cancels the reminders still to be sent (reason ``owner_retired``) and closes the owner's open call tasks. From
then on no verification finds the owner, so no amount is told and no reminder or call goes to them: every
lookup of an owner filters on :data:`CURRENT`.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass
from typing import List, Optional

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot import clock, wording
from bot.db.models import ConversationLink, Owner, OwnerRetirement
from bot.db.reminder_models import PENDING_STATES, CallTask, CallTaskState, Reminder, ReminderState

# The SQL condition "a current owner"; every path that finds an owner for a conversation, a reminder or a call
# list uses it.
CURRENT = Owner.retired_at.is_(None)
PHONE = re.compile(r"^1[3-9]\d{9}$")
NAME_MAX = 64
EARLIEST_TRANSFER = dt.date(1980, 1, 1)  # an earlier date is a typing slip, not a transfer
# The reason written on what retiring an owner closes: reminders cancelled, links closed.
RETIRED_REASON = "owner_retired"
REASON_LABELS = {OwnerRetirement.ROSTER: "导入名单", OwnerRetirement.TRANSFER: "过户"}
IMPORT_ACTOR = "import"


class TransferError(ValueError):
    """A transfer refused before anything was written; ``code`` names why (the page shows it)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class Retired:
    """What retiring one owner closed."""

    owner_id: int
    links_closed: int
    reminders_cancelled: int
    calls_closed: int


@dataclass(frozen=True)
class Transfer:
    """A recorded transfer: the former owner's retirement and the new owner, if one was named."""

    retired: Retired
    on: dt.date
    new_owner_id: Optional[int]


@dataclass(frozen=True)
class RosterOutcome:
    """What one roster row did to its unit's owners."""

    owner_id: int
    created: bool
    phone_changed: bool
    retired: List[Retired]


def normalized_name(name: str) -> str:
    """A name as compared: NFKC (full-width forms folded) without any whitespace."""
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", name or ""))


def same_person(first: str, second: str) -> bool:
    """Whether two names on the roster are the same person (the roster's identity of a person is the name)."""
    return normalized_name(first) == normalized_name(second)


def is_current(session: Session, *, owner_id: int) -> bool:
    """Whether ``owner_id`` is a current owner (False for a former owner or no owner at all)."""
    found = session.execute(select(Owner.id).where(Owner.id == owner_id, CURRENT)).scalar_one_or_none()
    return found is not None


def current_owners(session: Session, *, unit_id: int) -> List[Owner]:
    """The unit's current owners, oldest row first."""
    return list(
        session.execute(select(Owner).where(Owner.unit_id == unit_id, CURRENT).order_by(Owner.id)).scalars()
    )


def retire(
    session: Session, *, owner: Owner, until: dt.date, reason: OwnerRetirement, actor: str
) -> Optional[Retired]:
    """Make ``owner`` a former owner as of ``until`` and close what would still reach them.

    Args:
        session: The caller's unit of work (everything commits with it or not at all).
        owner: A current owner.
        until: The day the ownership ended (the transfer's date, or the roster's).
        reason: Why.
        actor: Who: a staff username, or ``import``.

    Returns:
        What was closed; None when the owner was already retired (by a concurrent transaction too: the
        update is conditional on the owner still being current).
    """
    now = clock.utc_now()
    changed = session.execute(
        update(Owner)
        .where(Owner.id == owner.id, CURRENT)
        .values(owned_until=until, retired_at=now, retired_reason=reason, retired_by=actor[:64])
        .execution_options(synchronize_session=False)
    ).rowcount
    if changed != 1:
        return None
    session.refresh(owner)
    links = session.execute(
        update(ConversationLink)
        .where(ConversationLink.owner_id == owner.id, ConversationLink.closed_at.is_(None))
        .values(closed_at=now, closed_reason=f"{RETIRED_REASON}:{reason.value}")
        .execution_options(synchronize_session=False)
    ).rowcount
    reminders = session.execute(
        update(Reminder)
        .where(Reminder.owner_id == owner.id, Reminder.state.in_(PENDING_STATES))
        .values(state=ReminderState.CANCELLED, reason=RETIRED_REASON, cancelled_by=actor[:64], updated_at=now)
        .execution_options(synchronize_session=False)
    ).rowcount
    calls = session.execute(
        update(CallTask)
        .where(CallTask.owner_id == owner.id, CallTask.state == CallTaskState.OPEN)
        .values(
            state=CallTaskState.DONE,
            note=wording.text("ownership.call_closed", reason=REASON_LABELS[reason]),
            closed_at=now,
            closed_by=actor[:64],
        )
        .execution_options(synchronize_session=False)
    ).rowcount
    session.flush()
    return Retired(int(owner.id), int(links or 0), int(reminders or 0), int(calls or 0))


def transfer(
    session: Session,
    *,
    owner_id: int,
    on: dt.date,
    actor: str,
    new_name: str = "",
    new_phone: str = "",
) -> Transfer:
    """Record a transfer (过户) of ``owner_id``'s unit on ``on``; optionally create the new owner.

    Args:
        session: The caller's unit of work.
        owner_id: The current owner whose ownership ends.
        on: The day the unit passed to the new owner: not after today, not before the owner's own start.
        actor: The staff member recording it.
        new_name: The new owner's name (with ``new_phone``), or empty to leave the unit to the next import.
        new_phone: The new owner's mobile number (11 digits).

    Returns:
        The retirement and the new owner's id.

    Raises:
        LookupError: No owner has this id.
        TransferError: ``not_current`` (already a former owner), ``bad_date`` (before 1980), ``future``,
            ``before_start``,
            ``incomplete`` (a name without a phone or the reverse), ``bad_name``, ``bad_phone``,
            ``same_owner`` (the same name and phone) or ``phone_taken`` (another current owner of the unit
            has that phone). Nothing is written.
    """
    owner = session.get(Owner, owner_id)
    if owner is None:
        raise LookupError(f"no owner {owner_id}")
    if not owner.current:
        raise TransferError("not_current")
    if on < EARLIEST_TRANSFER:
        raise TransferError("bad_date")
    if on > clock.today():
        raise TransferError("future")
    if owner.owned_from is not None and on < owner.owned_from:
        raise TransferError("before_start")
    name = (new_name or "").strip()
    phone = re.sub(r"[\s-]", "", new_phone or "")
    if bool(name) != bool(phone):
        raise TransferError("incomplete")
    if name:
        if len(name) > NAME_MAX:
            raise TransferError("bad_name")
        if not PHONE.match(phone):
            raise TransferError("bad_phone")
        if same_person(name, str(owner.name)) and phone == owner.phone:
            raise TransferError("same_owner")
        others = [other for other in current_owners(session, unit_id=int(owner.unit_id)) if other.id != owner.id]
        if any(other.phone == phone for other in others):
            raise TransferError("phone_taken")
    retired = retire(session, owner=owner, until=on, reason=OwnerRetirement.TRANSFER, actor=actor)
    if retired is None:
        raise TransferError("not_current")
    new_owner_id = None
    if name:
        successor = Owner(unit_id=owner.unit_id, name=name, phone=phone, owned_from=on)
        session.add(successor)
        session.flush()
        new_owner_id = int(successor.id)
    return Transfer(retired=retired, on=on, new_owner_id=new_owner_id)


def apply_roster(session: Session, *, unit_id: int, name: str, phone: str, on: dt.date) -> RosterOutcome:
    """One row of the arrears import: ``name`` with ``phone`` owns the unit; every other current owner is retired.

    The listed person is the current owner of the same name (with this phone if several): their phone is
    updated if it changed. With nobody of that name a new owner is created. Whoever else is a current owner of
    the unit is retired (reason ``roster``, until ``on``) before the listed owner's phone is written, so a new
    owner may take over a former owner's phone.

    A new owner's start (``owned_from``) is what is known of it: ``on`` when they replace someone now, the last
    former owner's end when the unit had none (a transfer recorded without a successor), else unknown (None:
    the unit's first listing says nothing about when its owner bought it).

    Args:
        session: The import's unit of work.
        unit_id: The unit listed.
        name: The owner's name as listed.
        phone: The owner's phone as listed (validated by the importer).
        on: The roster's date (the day the list stated its figures).

    Returns:
        The listed owner's id, whether it was created, whether its phone changed, and who was retired.
    """
    owners = current_owners(session, unit_id=unit_id)
    namesakes = [owner for owner in owners if same_person(str(owner.name), name)]
    listed = next((owner for owner in namesakes if owner.phone == phone), namesakes[-1] if namesakes else None)
    retired: List[Retired] = []
    for owner in owners:
        if owner is listed:
            continue
        done = retire(session, owner=owner, until=on, reason=OwnerRetirement.ROSTER, actor=IMPORT_ACTOR)
        if done is not None:
            retired.append(done)
    if listed is None:
        start = _start_of_new(session, unit_id, retired, on)
        created = Owner(unit_id=unit_id, name=name, phone=phone, owned_from=start)
        session.add(created)
        session.flush()
        return RosterOutcome(int(created.id), True, False, retired)
    phone_changed = listed.phone != phone
    listed.phone = phone
    listed.name = name  # the roster's spelling
    session.flush()
    return RosterOutcome(int(listed.id), False, phone_changed, retired)


def _start_of_new(session: Session, unit_id: int, retired: List[Retired], on: dt.date) -> Optional[dt.date]:
    """What is known of a new owner's start (see :func:`apply_roster`)."""
    if retired:
        return on
    ended = session.execute(
        select(Owner.owned_until)
        .where(Owner.unit_id == unit_id, ~CURRENT, Owner.owned_until.is_not(None))
        .order_by(Owner.owned_until.desc())
        .limit(1)
    ).scalar_one_or_none()
    return ended
