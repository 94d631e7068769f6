"""Database work for actions, run off the event loop: one session per unit of work, never nested."""

from __future__ import annotations

from typing import Callable, TypeVar

from sqlalchemy.orm import Session

from bot.db.session import off_the_loop

T = TypeVar("T")


async def in_session(work: Callable[[Session], T]) -> T:
    """Run ``work(session)`` in a worker thread inside one transaction and return its result.

    The action server's event loop serves every conversation; a blocking database call on it would make
    all owners wait.
    """
    return await off_the_loop(work)
