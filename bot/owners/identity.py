"""Identity before disclosure: an owner is verified by unit + phone tail, and the conversation remembers it.

Nothing here returns another unit's data: lookups take the verified owner, never a free room number. Only
current owners are found (:data:`bot.owners.ownership.CURRENT`): a former owner's phone tail verifies
nothing, and a link closed when its owner was retired no longer binds the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import clock
from bot.db.models import ConversationLink, Owner, Unit
from bot.owners.ownership import CURRENT
from bot.owners.units import parse_unit


@dataclass(frozen=True)
class VerifiedOwner:
    """Who the conversation belongs to; safe to show to that owner only."""

    owner_id: int
    name: str
    unit_code: str
    unit_label: str
    masked_phone: str


def _verified(owner: Owner) -> VerifiedOwner:
    unit = owner.unit
    entrance = f"{unit.entrance}单元" if unit.entrance else ""
    return VerifiedOwner(
        owner_id=owner.id,
        name=owner.name,
        unit_code=unit.code,
        unit_label=f"{unit.building}栋{entrance}{unit.room}",
        masked_phone=owner.masked_phone,
    )


def verify(session: Session, *, room: str, phone_tail: str) -> Optional[VerifiedOwner]:
    """The owner of ``room`` whose phone ends in ``phone_tail``, or ``None`` (no hint which part was wrong)."""
    address = parse_unit(room)
    tail = (phone_tail or "").strip()
    if address is None or len(tail) != 4 or not tail.isdigit():
        return None
    owners = session.execute(
        select(Owner).join(Unit).where(Unit.code == address.code, CURRENT).order_by(Owner.id)
    ).scalars()
    for owner in owners:
        if str(owner.phone).endswith(tail):
            return _verified(owner)
    return None


def link_conversation(session: Session, *, channel: str, sender_id: str, owner_id: int) -> None:
    """Bind a conversation (e.g. a WeChat openid) to a verified owner.

    A link closed when its owner was retired is reopened for the owner verified now (verified again now).
    """
    link = session.execute(
        select(ConversationLink).where(
            ConversationLink.channel == channel, ConversationLink.sender_id == sender_id
        )
    ).scalar_one_or_none()
    if link is None:
        session.add(ConversationLink(channel=channel, sender_id=sender_id, owner_id=owner_id))
    else:
        if link.closed_at is not None or int(link.owner_id) != owner_id:
            link.verified_at = clock.utc_now()
        link.owner_id = owner_id
        link.closed_at = None
        link.closed_reason = None
    session.flush()


def linked_owner(session: Session, *, channel: str, sender_id: str) -> Optional[VerifiedOwner]:
    """The current owner a conversation is bound to by an open link, if any."""
    owner = session.execute(
        select(Owner)
        .join(ConversationLink, ConversationLink.owner_id == Owner.id)
        .where(
            ConversationLink.channel == channel,
            ConversationLink.sender_id == sender_id,
            ConversationLink.closed_at.is_(None),
            CURRENT,
        )
    ).scalar_one_or_none()
    return _verified(owner) if owner is not None else None


def current_owner(session: Session, *, owner_id: int) -> Optional[VerifiedOwner]:
    """The owner ``owner_id`` if it is a current owner, else None (a former owner, or no owner)."""
    owner = session.execute(select(Owner).where(Owner.id == owner_id, CURRENT)).scalar_one_or_none()
    return _verified(owner) if owner is not None else None


def owner_by_id(session: Session, *, owner_id: int) -> VerifiedOwner:
    """A verified owner's details by id (the id comes only from a successful verification)."""
    owner = session.get(Owner, owner_id)
    if owner is None:
        raise LookupError(f"no owner {owner_id}")
    return _verified(owner)
