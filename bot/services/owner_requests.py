"""Owner requests: what the bot logs from a conversation, all written by one function.

Repairs, complaints, bill checks, promises, instalments and escalations.

A record type is declared once, as a model in :mod:`bot.db.models` with its ``number_prefix`` and
``confirmation_response``. Writing is idempotent, so an owner never gets two records for one request:

* the same message processed again (a channel retry, a re-sent request) returns the record it made;
* the same sender asking for an identical record again within a few minutes (a double tap) returns it too;
* two processes racing on the same message id: the loser's insert hits the unique key inside a savepoint
  and it returns the winner's record instead of failing.

The caller owns the session and commits before telling the owner anything.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, List, Optional, Type, TypeVar

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import clock
from bot.db import models

Record = TypeVar("Record", bound=Any)

# An identical request from the same sender within this time is the same request said twice.
DUPLICATE_WINDOW = dt.timedelta(minutes=10)



def record_types() -> tuple[type, ...]:
    """Every record type: the mapped models that declare themselves conversation records."""
    return models.conversation_record_types()


def _by_message(session: Session, model: Type[Record], message_id: str) -> Optional[Record]:
    return session.execute(select(model).where(model.source_message_id == message_id)).scalar_one_or_none()


def _identical_recent(session: Session, model: Type[Record], sender_id: str, fields: dict) -> Optional[Record]:
    since = clock.now() - DUPLICATE_WINDOW
    query = select(model).where(model.sender_id == sender_id, model.created_at >= since)
    for name, value in fields.items():
        query = query.where(getattr(model, name).is_(None) if value is None else getattr(model, name) == value)
    return session.execute(query.order_by(model.id).limit(1)).scalar_one_or_none()


def already_made(
    session: Session, model: Type[Record], *, message_id: Optional[str], sender_id: str, **fields: Any
) -> Optional[Record]:
    """The record this request already made: by the message's id, or an identical one said twice just now."""
    if message_id:
        existing = _by_message(session, model, message_id)
        if existing is not None:
            return existing
    if sender_id:
        return _identical_recent(session, model, sender_id, fields)
    return None


def create(
    session: Session, model: Type[Record], *, message_id: Optional[str], sender_id: str, **fields: Any
) -> Record:
    """Write a record of type ``model`` (or return the one this request already made) and number it."""
    existing = already_made(session, model, message_id=message_id, sender_id=sender_id, **fields)
    if existing is not None:
        return existing
    record = model(source_message_id=message_id, sender_id=sender_id, created_at=clock.now(), **fields)
    try:
        with session.begin_nested():
            session.add(record)
            session.flush()
    except IntegrityError:
        if not message_id:
            raise
        winner = _by_message(session, model, message_id)
        if winner is None:
            raise
        return winner
    record.number = f"{model.number_prefix}{clock.today():%Y%m%d}{record.id:04d}"
    session.flush()
    return record


UNFINISHED = (models.RecordStatus.OPEN, models.RecordStatus.IN_PROGRESS)


def open_repairs(
    session: Session, *, unit_id: int, item: Optional[str], exclude_id: Optional[int] = None
) -> List[models.RepairOrder]:
    """The unfinished repairs of ``item`` at the unit, whoever of its owners reported them, oldest first.

    One heating fault is one repair order: staff opening a second one from a conversation are refused, and a
    repair's page names the others (:mod:`bot.casework.follow_up`).

    Args:
        session: The caller's session.
        unit_id: The unit.
        item: What is broken, as the repair form stored it (``暖气``); nothing is found for an empty item.
        exclude_id: A repair to leave out (the one staff are looking at).
    """
    wanted = (item or "").strip()
    if not wanted:
        return []
    query = (
        select(models.RepairOrder)
        .join(models.Owner, models.RepairOrder.owner_id == models.Owner.id)
        .where(
            models.Owner.unit_id == unit_id,
            models.RepairOrder.item == wanted,
            models.RepairOrder.status.in_(UNFINISHED),
        )
        .order_by(models.RepairOrder.id)
    )
    if exclude_id is not None:
        query = query.where(models.RepairOrder.id != exclude_id)
    return list(session.execute(query).scalars())
