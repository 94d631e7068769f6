"""Looking an owner up by unit from the coach: arrears, the reasons they gave before, their promises.

Before calling or knocking, a collector wants to know what the owner owes, since when, what they said last
time and what they promised. This gathers it from the same read-only queries as the owner screens
(:mod:`bot.casework.owner_view`) and the transcripts: every owner message the model read as a playbook
intent (an objection, a bill dispute …), every escalation, and every repair, complaint, bill check and
instalment request. Who may look, how the phone is shown and the audit row are the caller's (the staff
app's) business, as for the other owner views.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import List, Optional

from sqlalchemy.orm import Session

from bot import clock
from bot.casework import owner_view
from bot.conversations import transcripts
from bot.owners.arrears import months_between
from bot.playbook import Playbook

LOOKUP_LIMIT = 5
REASONS_LIMIT = 20


@dataclass(frozen=True)
class Reason:
    """Something the owner raised before.

    Attributes:
        source: ``conversation`` (an owner message), ``escalation``, or a record kind (``repairs``,
            ``complaints``, ``bill_checks``, ``instalments``).
        code: The intent (conversation), the escalation reason, or the record's status.
        title: The playbook's title for an intent; otherwise empty (the screen names codes itself).
        at: When it was said or recorded.
        text: The owner's words, or the record's item or description.
        number: The record number, for a record or escalation.
    """

    source: str
    code: str
    title: str
    at: Optional[dt.datetime]
    text: str
    number: Optional[str] = None


@dataclass(frozen=True)
class OwnerBrief:
    """What a collector needs about one owner before talking to them (the phone unmasked: mask it on show)."""

    owner_id: int
    name: str
    phone: str
    unit: str
    outstanding: Decimal
    arrears_since: Optional[str]
    arrears_months: int
    old_arrears: bool
    promises: List[owner_view.RecordLine]
    reasons: List[Reason]


def _record_reasons(profile: owner_view.OwnerProfile) -> List[Reason]:
    reasons = []
    for kind, records in (
        ("repairs", profile.repairs),
        ("complaints", profile.complaints),
        ("bill_checks", profile.bill_checks),
        ("instalments", profile.instalments),
    ):
        for record in records:
            text = " ".join(part for part in (record.item, record.description, record.proposed_plan) if part)
            reasons.append(Reason(kind, record.status, "", record.created_at, text, record.number))
    return reasons


def _conversation_reasons(session: Session, profile: owner_view.OwnerProfile, playbook: Playbook) -> List[Reason]:
    reasons = []
    for conversation in profile.conversations:
        for entry in transcripts.transcript(session, sender_id=conversation.sender_id):
            if entry.speaker is transcripts.Speaker.OWNER and entry.intent and entry.intent in playbook:
                playbook_entry = playbook.get(entry.intent)
                title = playbook_entry.title if playbook_entry else ""
                reasons.append(Reason("conversation", entry.intent, title, entry.at, entry.text or ""))
    return reasons


def _sort_key(reason: Reason) -> float:
    return reason.at.timestamp() if reason.at else 0.0


def owner_brief(
    session: Session, *, owner_id: int, playbook: Playbook, old_arrears_months: int, today: Optional[dt.date] = None
) -> OwnerBrief:
    """One owner's brief: arrears, promises, and the reasons given before (newest first).

    Args:
        session: A session on the database with the records and Rasa's tracker store.
        owner_id: The owner.
        playbook: Names the intents the owner's messages were read as.
        old_arrears_months: Arrears spanning at least this many months are old arrears (the manager's).
        today: The estate's today (default: :func:`bot.clock.today`).

    Raises:
        bot.casework.owner_view.OwnerNotFound: No owner has this id.
    """
    profile = owner_view.owner_profile(session, owner_id=owner_id)
    today = today or clock.today()
    months = months_between(profile.arrears_since, today) if profile.arrears_since else 0
    reasons = _conversation_reasons(session, profile, playbook) + _record_reasons(profile)
    reasons += [
        Reason("escalation", entry.reason, "", entry.created_at, entry.detail or "", entry.number)
        for entry in profile.escalations
    ]
    reasons.sort(key=_sort_key, reverse=True)
    return OwnerBrief(
        owner_id=profile.id,
        name=profile.name,
        phone=profile.phone,
        unit=profile.unit,
        outstanding=profile.outstanding,
        arrears_since=profile.arrears_since,
        arrears_months=months,
        old_arrears=profile.outstanding > 0 and months >= old_arrears_months,
        promises=list(profile.promises),
        reasons=reasons[:REASONS_LIMIT],
    )


def lookup(
    session: Session,
    *,
    unit: str,
    playbook: Playbook,
    old_arrears_months: int,
    limit: int = LOOKUP_LIMIT,
    today: Optional[dt.date] = None,
) -> List[OwnerBrief]:
    """The owners whose unit matches ``unit`` (``3-2-801``, ``3栋2单元801`` or part of a code), briefed.

    An empty ``unit`` finds nobody: the coach looks up one owner, it does not list the estate.
    """
    if not unit.strip():
        return []
    found = owner_view.search_owners(session, unit=unit, limit=limit)
    return [
        owner_brief(
            session, owner_id=owner.id, playbook=playbook, old_arrears_months=old_arrears_months, today=today
        )
        for owner in found
    ]
