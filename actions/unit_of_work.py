"""Database work for actions, run off the event loop: one session per unit of work, never nested."""

from __future__ import annotations

import asyncio
from typing import Callable, TypeVar

from sqlalchemy.orm import Session

from bot.db.session import session_scope

T = TypeVar("T")


def _in_session(work: Callable[[Session], T]) -> T:
    with session_scope() as session:
        return work(session)


async def in_session(work: Callable[[Session], T]) -> T:
    """Run ``work(session)`` in a worker thread inside one transaction and return its result.

    The action server's event loop serves every conversation; a blocking database call on it would make
    all owners wait.
    """
    return await asyncio.to_thread(_in_session, work)
