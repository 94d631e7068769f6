"""Engines and sessions. Nothing connects at import time: engines are made on first use."""

from __future__ import annotations

import functools
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from bot.settings import get_settings

# How long a unit of work waits for another's lock before it fails (and the owner hears "not saved"). Well
# under the 5 s Rasa gives an action: a write that commits after Rasa gave up would be confirmed to no one.
LOCK_WAIT_MS = 3000


def get_engine(url: Optional[str] = None) -> Engine:
    """The engine for ``url`` (default: the configured ``DATABASE_URL``), created once per process and URL."""
    return _engine(url or get_settings().database_url)


@functools.lru_cache(maxsize=8)
def _engine(url: str) -> Engine:
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, future=True, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(connection, _record) -> None:
            # pysqlite's own transaction handling turns SAVEPOINT/RELEASE outside an explicit BEGIN into a
            # commit, which breaks savepoints (records.create relies on them); SQLAlchemy's documented fix
            # is to switch it off and emit BEGIN ourselves.
            connection.isolation_level = None
            cursor = connection.cursor()
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={LOCK_WAIT_MS}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(connection) -> None:
            # IMMEDIATE: two deferred read-then-write transactions that meet fail at once with "database is
            # locked" (the busy timeout cannot help a lock upgrade); immediate ones queue on the timeout.
            connection.exec_driver_sql("BEGIN IMMEDIATE")

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
