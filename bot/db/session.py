"""Engines and sessions. Nothing connects at import time: engines are made on first use.

Connections are pooled on both databases. On SQLite every unit of work that writes begins ``IMMEDIATE`` (it
queues on the busy timeout instead of failing on a lock upgrade); a read-only one (:func:`read_scope`) begins
deferred and takes no write lock, so the checks every owner message pays for never wait behind a writer.
"""

from __future__ import annotations

import asyncio
import functools
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, TypeVar

from sqlalchemy import create_engine, event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from bot.settings import get_settings

# How long a unit of work waits for another's lock before it fails (and the owner hears "not saved"). Well
# under the 5 s Rasa gives an action: a write that commits after Rasa gave up would be confirmed to no one.
LOCK_WAIT_MS = 3000
SQLITE_POOL_SIZE = 2  # connections kept open per SQLite database
READ_ONLY = "bot_read_only"  # the execution option that marks a read-only unit of work

T = TypeVar("T")


def get_engine(url: Optional[str] = None) -> Engine:
    """The engine for ``url`` (default: the configured ``DATABASE_URL``), created once per process and URL."""
    return _engine(url or get_settings().database_url)


@functools.lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        # Pooled (SQLAlchemy 1.4 would open a connection, and run the pragmas below, for every unit of work):
        # a few kept open, any number more while a burst lasts.
        engine = create_engine(
            url,
            future=True,
            connect_args={"check_same_thread": False},
            poolclass=QueuePool,
            pool_size=SQLITE_POOL_SIZE,
            max_overflow=-1,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record) -> None:
            # pysqlite's own transaction handling turns SAVEPOINT/RELEASE outside an explicit BEGIN into a
            # commit, which breaks savepoints (owner_requests.create relies on them); SQLAlchemy's documented fix
            # is to switch it off and emit BEGIN ourselves.
            connection.isolation_level = None
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_MS}")
            cursor.close()

        @event.listens_for(engine, "checkout")
        def _sqlite_enforce(connection, _record, _proxy) -> None:
            # A pooled connection comes back as it was left: one whose enforcement was switched off (a migration
            # does so while copying tables) enforces foreign keys again for its next unit of work.
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection) -> None:
            # IMMEDIATE: two deferred read-then-write transactions that meet fail at once with "database is
            # locked" (the busy timeout cannot help a lock upgrade); immediate ones queue on the timeout. A
            # read-only unit of work cannot upgrade, so it begins deferred and never holds the write lock.
            read_only = connection.get_execution_options().get(READ_ONLY, False)
            connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")

        return engine
    return create_engine(
        url, future=True, pool_pre_ping=True, connect_args={"options": f"-c lock_timeout={LOCK_WAIT_MS}"}
    )


@contextmanager
def session_scope(url: Optional[str] = None) -> Iterator[Session]:
    """One session per unit of work: commits on success, rolls back on any error."""
    factory = sessionmaker(bind=get_engine(url), future=True, expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@contextmanager
def read_scope(url: Optional[str] = None) -> Iterator[Session]:
    """One read-only unit of work: never commits (rolled back at the end); on SQLite it takes no write lock.

    Raises:
        Whatever the work raises; a write attempted in it fails on PostgreSQL (``READ ONLY`` transaction).
    """
    engine = get_engine(url)
    factory = sessionmaker(bind=engine.execution_options(**{READ_ONLY: True}), future=True, expire_on_commit=False)
    session = factory()
    try:
        if engine.dialect.name == "postgresql":
            session.execute(text("SET TRANSACTION READ ONLY"))
        yield session
    finally:
        session.rollback()
        session.close()


async def off_the_loop(
    function: Callable[..., T], *, database_url: Optional[str] = None, read_only: bool = False, **kwargs: Any
) -> T:
    """Run ``function(session, **kwargs)`` in its own unit of work on a worker thread, for async callers.

    Args:
        function: The work, taking the session first.
        database_url: The database (default ``DATABASE_URL``).
        read_only: Use :func:`read_scope` (no write lock on SQLite, nothing committed) instead of
            :func:`session_scope`.
        **kwargs: Passed to ``function``.
    """

    def call() -> T:
        with (read_scope if read_only else session_scope)(database_url) as session:
            return function(session, **kwargs)

    return await asyncio.get_running_loop().run_in_executor(None, call)
