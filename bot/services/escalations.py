"""Escalations: why a conversation goes to a person, and when a person will answer."""

from __future__ import annotations

import datetime as dt
import enum
from typing import Optional

from sqlalchemy.orm import Session

from bot import clock, wording
from bot.db import models
from bot.service_config import get_service_config
from bot.services import owner_requests


class Reason(str, enum.Enum):
    """Why staff must take a conversation over."""

    REQUEST_HUMAN = "request_human"
    THREATEN_ESCALATION = "threaten_escalation"
    FALLBACK = "fallback"
    IDENTITY_FAILED = "identity_failed"
    IDENTITY_LOCKED = "identity_locked"
    STAFF_TAKEOVER = "staff_takeover"  # a person took the conversation over on their own initiative
    BROKEN_PROMISES = "broken_promises"  # a second promise broken: a collector takes the case (bot.reminders.ladder)
    OLD_ARREARS = "old_arrears"  # broken promises on arrears older than REMINDERS_MANAGER_ARREARS_MONTHS: the manager
    FLOOD = "flood"  # a client went past the day's records without identity (bot.services.unverified_records)


# Intents that name their own reason; any other path to a person is a fallback.
_INTENT_REASONS = {Reason.REQUEST_HUMAN.value, Reason.THREATEN_ESCALATION.value}


def reason_for_intent(intent: Optional[str]) -> Reason:
    """The reason to record when the owner's latest intent led to a person."""
    return Reason(intent) if intent in _INTENT_REASONS else Reason.FALLBACK


def escalate(
    session: Session,
    *,
    reason: Reason,
    detail: Optional[str],
    owner_id: Optional[int],
    channel: Optional[str],
    sender_id: str,
    message_id: Optional[str],
) -> models.Escalation:
    """Record that staff must take the conversation over."""
    return owner_requests.create(
        session,
        models.Escalation,
        message_id=message_id,
        sender_id=sender_id,
        reason=reason.value,
        detail=detail,
        owner_id=owner_id,
        channel=channel,
    )


def staff_answer(now: Optional[dt.datetime] = None) -> str:
    """When staff will answer, from the configured working hours and the one clock."""
    hours = get_service_config().staff
    moment = now or clock.now()
    if hours.is_open(moment):
        return wording.text("staff.answer_open", closes=f"{hours.closes:%H:%M}", phone=hours.phone)
    opens = hours.next_answer(moment)
    return wording.text(
        "staff.answer_closed", month=opens.month, day=opens.day, opens=f"{opens:%H:%M}", phone=hours.phone
    )
