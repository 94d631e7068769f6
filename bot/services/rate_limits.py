"""Rate limits kept in the database, shared by every process and surviving restarts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from bot import clock
from bot.db.models import RateLimitHit


def serialise(session: Session, key: str) -> None:
    """Make concurrent units of work on ``key`` take turns until they commit (PostgreSQL).

    Counting and then inserting is a race under READ COMMITTED: six concurrent tries could all see four
    failures and all go ahead. A transaction-scoped advisory lock per key closes it. SQLite needs none: its
    write transactions begin IMMEDIATE and run one at a time.
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})


def allow(session: Session, *, key: str, limit: int, window: dt.timedelta) -> bool:
    """Record one use of ``key`` and say whether it is within ``limit`` uses per ``window``.

    A refused use is not recorded, so a client that keeps trying is let in again once the window has
    moved past its earlier uses. Old hits of the key are pruned on the way.
    """
    serialise(session, f"rate:{key}")
    now = clock.now()
    since = now - window
    session.execute(delete(RateLimitHit).where(RateLimitHit.key == key, RateLimitHit.at < since))
    used = session.execute(
        select(func.count()).select_from(RateLimitHit).where(RateLimitHit.key == key, RateLimitHit.at >= since)
    ).scalar_one()
    if used >= limit:
        return False
    session.add(RateLimitHit(key=key, at=now))
    session.flush()
    return True


# The longest window any key is counted over: ``unverified-record:`` keys count the estate day.
LONGEST_WINDOW = dt.timedelta(days=1)


def prune(session: Session, *, before: dt.datetime) -> int:
    """Delete every hit older than ``before`` (the retention job); how many were deleted.

    Every count looks back at most :data:`LONGEST_WINDOW`, so ``before`` a day or more ago changes no decision.
    Hits are written in the estate's timezone (SQLite compares a time's fields), so ``before`` is compared in it.
    """
    local = before.astimezone(clock.zone())
    result = session.execute(delete(RateLimitHit).where(RateLimitHit.at < local))
    return int(result.rowcount or 0)
