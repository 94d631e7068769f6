"""Identity policy: who may see an owner's account, and how many tries anyone gets.

An owner proves who they are with the unit and the last four digits of the registered phone. Every try is
stored (``IdentityAttempt``), so opening a new chat session resets nothing:

* per unit: after ``identity_max_failures_per_unit`` failures within the window, online verification of
  that unit is locked — the right tail no longer opens it, the owner is offered a person, and staff get an
  ``identity_locked`` escalation;
* per client (a WeChat openid, a web chat client address): after ``identity_max_failures_per_client``
  failures, that client cannot verify any unit, so one client cannot sweep many units with one tail.

While locked, the stored phone is never compared, so a locked verification reveals nothing.

What the conversation remembers is checked against the database every time (:func:`verified_owner_id`): on a
trusted channel the open link is the authority, elsewhere the owner named in the conversation must still be a
current owner. A transfer or the import's roster retiring the owner therefore unverifies every conversation
verified before it, whatever the conversation's own state (Rasa's slot) still says.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any, Mapping, Optional

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot import clock
from bot.db.models import IdentityAttempt
from bot.owners import identity as owners
from bot.owners.identity import VerifiedOwner
from bot.owners.units import parse_unit
from bot.services.rate_limits import serialise

# Channels whose sender ids the client cannot choose: WeChat openids arrive in messages signed by WeChat,
# the web chat's session ids are issued and signed by the server. A conversation on one of them stays
# bound to the owner it was verified for. Never "rest": a REST client names any sender id it likes.
TRUSTED_LINK_CHANNELS = frozenset({"wechat", "socketio"})
# Tries within one conversation before the bot stops asking and offers a person.
MAX_ATTEMPTS_PER_CONVERSATION = 3


@dataclass(frozen=True)
class IdentityPolicy:
    """Limits on failed verifications, from settings."""

    max_failures_per_unit: int = 5
    max_failures_per_client: int = 10
    window: dt.timedelta = dt.timedelta(hours=24)

    @classmethod
    def from_settings(cls) -> IdentityPolicy:
        """The configured policy."""
        from bot.settings import get_settings

        settings = get_settings()
        return cls(
            max_failures_per_unit=settings.identity_max_failures_per_unit,
            max_failures_per_client=settings.identity_max_failures_per_client,
            window=dt.timedelta(hours=settings.identity_failure_window_hours),
        )


class Outcome(enum.Enum):
    """How a verification ended."""

    VERIFIED = "verified"
    MISMATCH = "mismatch"
    UNIT_LOCKED = "unit_locked"
    CLIENT_LOCKED = "client_locked"


@dataclass(frozen=True)
class Verification:
    """The outcome, the owner when verified, and whether this very try locked the unit."""

    outcome: Outcome
    owner: Optional[VerifiedOwner] = None
    locked_now: bool = False

    @property
    def locked(self) -> bool:
        """Whether verification is refused for now (unit or client)."""
        return self.outcome in (Outcome.UNIT_LOCKED, Outcome.CLIENT_LOCKED)


def client_key(*, channel: Optional[str], sender_id: str, metadata: Optional[Mapping[str, Any]]) -> str:
    """Who is trying, as far as the server can tell.

    Channels put a server-derived ``client`` into the metadata (``wechat:<openid>``, ``ip:<keyed hash of the address>``,
    ``rest:<sender>`` for an authenticated REST integration, which serves many owners from one address).
    """
    given = (metadata or {}).get("client")
    if isinstance(given, str) and given:
        return given[:160]
    return f"{channel or 'unknown'}:{sender_id}"[:160]


def _failures(session: Session, *, since: dt.datetime, **where: str) -> int:
    (column, value), = where.items()
    return int(
        session.execute(
            select(func.count())
            .select_from(IdentityAttempt)
            .where(
                getattr(IdentityAttempt, column) == value,
                IdentityAttempt.succeeded.is_(False),
                IdentityAttempt.attempted_at >= since,
            )
        ).scalar_one()
    )


def unit_locked(session: Session, *, unit_code: str, policy: IdentityPolicy) -> bool:
    """Whether online verification of the unit is locked now."""
    since = clock.now() - policy.window
    return _failures(session, since=since, unit_code=unit_code) >= policy.max_failures_per_unit


def verify(
    session: Session,
    *,
    room: str,
    phone_tail: str,
    client: str,
    channel: Optional[str],
    sender_id: str,
    policy: Optional[IdentityPolicy] = None,
) -> Verification:
    """Check room + phone tail, counting the try; bind trusted-channel conversations to the owner."""
    policy = policy or IdentityPolicy.from_settings()
    now = clock.now()
    since = now - policy.window
    address = parse_unit(room or "")
    unit_code = address.code if address else None
    # One try at a time per client and per unit, so concurrent tries cannot all pass the count.
    serialise(session, f"identity-client:{client}")
    if unit_code:
        serialise(session, f"identity-unit:{unit_code}")
    if _failures(session, since=since, client_key=client) >= policy.max_failures_per_client:
        return Verification(Outcome.CLIENT_LOCKED)
    if unit_code and unit_locked(session, unit_code=unit_code, policy=policy):
        return Verification(Outcome.UNIT_LOCKED)
    owner = owners.verify(session, room=room, phone_tail=phone_tail)
    session.add(
        IdentityAttempt(
            unit_code=unit_code,
            client_key=client,
            channel=channel,
            sender_id=sender_id[:128],
            succeeded=owner is not None,
            attempted_at=now,
        )
    )
    session.flush()
    if owner is not None:
        if channel in TRUSTED_LINK_CHANNELS:
            owners.link_conversation(session, channel=channel, sender_id=sender_id, owner_id=owner.owner_id)
        return Verification(Outcome.VERIFIED, owner)
    if unit_code and unit_locked(session, unit_code=unit_code, policy=policy):
        return Verification(Outcome.UNIT_LOCKED, locked_now=True)
    return Verification(Outcome.MISMATCH)


def verified_owner_id(
    session: Session, *, claimed: Optional[int], channel: Optional[str], sender_id: str
) -> Optional[int]:
    """The owner this conversation is verified for now, or ``None``: the one rule every action reads.

    Args:
        session: The caller's session.
        claimed: The owner the conversation's own state says it verified (Rasa's ``verified_owner_id``
            slot), if any; it is only a claim.
        channel: The conversation's channel.
        sender_id: The conversation's sender id.

    Returns:
        On a trusted channel, the current owner of the conversation's open link (a claim without one is
        not honoured: the link was closed when its owner was retired). Elsewhere (REST), ``claimed`` when it
        is still a current owner.
    """
    if channel in TRUSTED_LINK_CHANNELS:
        return linked_owner_id(session, channel=channel, sender_id=sender_id)
    if claimed is None:
        return None
    return claimed if owners.current_owner(session, owner_id=claimed) is not None else None


def linked_owner_id(session: Session, *, channel: Optional[str], sender_id: str) -> Optional[int]:
    """The current owner this conversation is bound to by an open link on a trusted channel, or ``None``."""
    if channel not in TRUSTED_LINK_CHANNELS or not sender_id:
        return None
    owner = owners.linked_owner(session, channel=channel, sender_id=sender_id)
    return owner.owner_id if owner is not None else None


def prune_attempts(session: Session, *, before: dt.datetime) -> int:
    """Delete identity attempts older than ``before`` (the retention job); how many were deleted.

    Locks look back ``IDENTITY_FAILURE_WINDOW_HOURS`` only, so ``before`` at least that long ago changes no lock.
    Attempts are written in the estate's timezone (SQLite compares a time's fields), so ``before`` is too.
    """
    local = before.astimezone(clock.zone())
    result = session.execute(delete(IdentityAttempt).where(IdentityAttempt.attempted_at < local))
    return int(result.rowcount or 0)
