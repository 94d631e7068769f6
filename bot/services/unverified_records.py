"""Records made without identity, capped per client per day, and staff told once when a client goes past it.

Anyone may report a repair, lodge a complaint or ask for a person without proving who they are, so one client
could otherwise fill the staff queue and the records. A record written for no verified owner — a repair order,
a complaint, an escalation — counts against its client (the server-derived key in the message's metadata:
``ip:<keyed hash of the address>``, ``wechat:<openid>``, ``rest:<sender>``; see :func:`bot.services.identity.client_key`);
``UNVERIFIED_RECORDS_PER_DAY`` of them per estate day (Asia/Shanghai midnight to midnight). Beyond that:

* nothing is written (the caller tells the owner politely that enough has been noted today, ``floods.enough_today``);
* staff get one escalation of reason ``flood`` per client and day (its ``source_message_id`` is
  ``flood:<day>:<hash of the client>``, so the first refusal writes it and later ones find it), naming the client,
  on the conversation that went past the cap.

A request already recorded (the same message processed again, the same words twice within minutes, see
:mod:`bot.services.owner_requests`) returns its record and counts nothing. The count is a row per record in
``rate_limit_hits`` (key ``unverified-record:<client>``), taken under the key's lock so concurrent requests
cannot all pass it; :func:`bot.services.rate_limits.prune` removes old rows. Records for a verified owner are
never capped here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any, Optional, Type, TypeVar

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot import clock
from bot.db import models
from bot.db.models import RateLimitHit
from bot.services import escalations, owner_requests
from bot.services.rate_limits import serialise

Record = TypeVar("Record", bound=Any)
KEY_PREFIX = "unverified-record:"


def daily_cap() -> int:
    """``UNVERIFIED_RECORDS_PER_DAY``."""
    from bot.settings import get_settings

    return int(get_settings().unverified_records_per_day)


def _day_start() -> dt.datetime:
    """Midnight of the estate's current day, in the estate's timezone."""
    return dt.datetime.combine(clock.today(), dt.time(), tzinfo=clock.zone())


def _key(client: str) -> str:
    return f"{KEY_PREFIX}{client}"[:200]


def used_today(session: Session, *, client: str) -> int:
    """How many records without identity ``client`` has made since the estate's midnight."""
    return int(
        session.execute(
            select(func.count())
            .select_from(RateLimitHit)
            .where(RateLimitHit.key == _key(client), RateLimitHit.at >= _day_start())
        ).scalar_one()
    )


def admit(session: Session, *, client: str, cap: Optional[int] = None) -> bool:
    """Count one more record without identity for ``client`` today, or say it is past the cap (counting nothing).

    Args:
        session: The caller's session (the count commits with the record).
        client: The server-derived client key.
        cap: Records per day; default ``UNVERIFIED_RECORDS_PER_DAY``.

    Returns:
        Whether the record may be written.
    """
    cap = daily_cap() if cap is None else cap
    key = _key(client)
    serialise(session, f"rate:{key}")
    session.execute(delete(RateLimitHit).where(RateLimitHit.key == key, RateLimitHit.at < _day_start()))
    if used_today(session, client=client) >= cap:
        return False
    session.add(RateLimitHit(key=key, at=clock.now()))
    session.flush()
    return True


def flag(session: Session, *, client: str, channel: Optional[str], sender_id: str, cap: int) -> models.Escalation:
    """Staff's one ``flood`` escalation for ``client`` today (written by the first refusal, found by later ones)."""
    day = clock.today()
    digest = hashlib.sha256(client.encode("utf-8")).hexdigest()[:24]
    return escalations.escalate(
        session,
        reason=escalations.Reason.FLOOD,
        detail=f"client {client} went past {cap} records without identity on {day:%Y-%m-%d}; later ones not stored",
        owner_id=None,
        channel=channel,
        sender_id=sender_id,
        message_id=f"flood:{day:%Y%m%d}:{digest}",
    )


def create(
    session: Session,
    model: Type[Record],
    *,
    client: str,
    input_channel: Optional[str],
    message_id: Optional[str],
    sender_id: str,
    cap: Optional[int] = None,
    **fields: Any,
) -> Optional[Record]:
    """Write a record for no verified owner within ``client``'s daily cap (see the module docstring).

    Args:
        session: The caller's session; the caller commits.
        model: The record type (``RepairOrder``, ``Complaint``, ``Escalation``).
        client: The server-derived client key the message came with.
        input_channel: The conversation's channel (for the staff flag).
        message_id: The message's id (idempotency, as :func:`bot.services.owner_requests.create`).
        sender_id: The conversation.
        cap: Records per day; default ``UNVERIFIED_RECORDS_PER_DAY``.
        **fields: The record's fields (``owner_id`` None or absent).

    Returns:
        The record (new, or the one this request already made), or ``None`` past the cap: then nothing but
        the staff flag was written.
    """
    existing = owner_requests.already_made(session, model, message_id=message_id, sender_id=sender_id, **fields)
    if existing is not None:
        return existing
    cap = daily_cap() if cap is None else cap
    if not admit(session, client=client, cap=cap):
        flag(session, client=client, channel=input_channel, sender_id=sender_id, cap=cap)
        return None
    return owner_requests.create(session, model, message_id=message_id, sender_id=sender_id, **fields)


def escalate(
    session: Session,
    *,
    client: str,
    reason: escalations.Reason,
    detail: Optional[str],
    channel: Optional[str],
    sender_id: str,
    message_id: Optional[str],
    cap: Optional[int] = None,
) -> Optional[models.Escalation]:
    """:func:`bot.services.escalations.escalate` for a conversation with no verified owner, within the cap.

    Returns:
        The escalation, or ``None`` past ``client``'s cap (nothing written but the day's ``flood`` flag).
    """
    return create(
        session,
        models.Escalation,
        client=client,
        input_channel=channel,
        message_id=message_id,
        sender_id=sender_id,
        cap=cap,
        reason=reason.value,
        detail=detail,
        owner_id=None,
        channel=channel,
    )
