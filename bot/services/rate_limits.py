"""Rate limits kept in the database, shared by every process and surviving restarts."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot import clock
from bot.db.models import RateLimitHit


def allow(session: Session, *, key: str, limit: int, window: dt.timedelta) -> bool:
    """Record one use of ``key`` and say whether it is within ``limit`` uses per ``window``.

    A refused use is not recorded, so a client that keeps trying is let in again once the window has
    moved past its earlier uses. Old hits of the key are pruned on the way.
    """
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
