"""Records the bot writes from a conversation.

Repairs, complaints, bill checks, promises, instalments and escalations.

Each is keyed on the id of the message that asked for it: the same message processed twice returns the
record made the first time. The caller commits before telling the owner anything.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Optional, Type, TypeVar

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import clock
from bot.db import models

Record = TypeVar("Record", bound=Any)

NUMBER_PREFIX = {
    models.RepairOrder: "BX",
    models.Complaint: "TS",
    models.BillCheckRequest: "HD",
    models.PaymentPromise: "CN",
    models.InstalmentRequest: "FQ",
    models.Escalation: "RG",
}


def _create(session: Session, model: Type[Record], *, message_id: Optional[str], **fields: Any) -> Record:
    if message_id:
        existing = session.execute(
            select(model).where(model.source_message_id == message_id)
        ).scalar_one_or_none()
        if existing is not None:
            return existing
    record = model(source_message_id=message_id, **fields)
    session.add(record)
    session.flush()
    today = clock.today()
    record.number = f"{NUMBER_PREFIX[model]}{today:%Y%m%d}{record.id:04d}"
    session.flush()
    return record


def repair_order(
    session: Session,
    *,
    item: str,
    location: str,
    description: str,
    preferred_time: str,
    owner_id: Optional[int],
    sender_id: str,
    message_id: Optional[str],
) -> models.RepairOrder:
    """Open a repair order."""
    return _create(
        session,
        models.RepairOrder,
        message_id=message_id,
        item=item,
        location=location,
        description=description,
        preferred_time=preferred_time,
        owner_id=owner_id,
        sender_id=sender_id,
    )


def complaint(
    session: Session, *, description: str, owner_id: Optional[int], sender_id: str, message_id: Optional[str]
) -> models.Complaint:
    """Record a complaint."""
    return _create(
        session,
        models.Complaint,
        message_id=message_id,
        description=description,
        owner_id=owner_id,
        sender_id=sender_id,
    )


def bill_check(
    session: Session, *, description: str, owner_id: int, sender_id: str, message_id: Optional[str]
) -> models.BillCheckRequest:
    """Ask staff to check a disputed bill."""
    return _create(
        session,
        models.BillCheckRequest,
        message_id=message_id,
        description=description,
        owner_id=owner_id,
        sender_id=sender_id,
    )


def payment_promise(
    session: Session,
    *,
    owner_id: int,
    amount: Decimal,
    due_date: dt.date,
    sender_id: str,
    message_id: Optional[str],
) -> models.PaymentPromise:
    """Record an owner's promise to pay ``amount`` by ``due_date``."""
    return _create(
        session,
        models.PaymentPromise,
        message_id=message_id,
        owner_id=owner_id,
        amount=amount,
        due_date=due_date,
        sender_id=sender_id,
    )


def instalment_request(
    session: Session, *, owner_id: int, proposed_plan: str, sender_id: str, message_id: Optional[str]
) -> models.InstalmentRequest:
    """File an instalment request for staff approval (pending until staff decide)."""
    return _create(
        session,
        models.InstalmentRequest,
        message_id=message_id,
        owner_id=owner_id,
        proposed_plan=proposed_plan,
        sender_id=sender_id,
    )


def escalation(
    session: Session,
    *,
    reason: str,
    detail: Optional[str],
    owner_id: Optional[int],
    channel: Optional[str],
    sender_id: str,
    message_id: Optional[str],
) -> models.Escalation:
    """Hand the conversation to staff."""
    return _create(
        session,
        models.Escalation,
        message_id=message_id,
        reason=reason,
        detail=detail,
        owner_id=owner_id,
        channel=channel,
        sender_id=sender_id,
    )
