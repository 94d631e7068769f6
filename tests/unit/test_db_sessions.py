"""Units of work (bot/db/session.py): pooled connections, and read-only ones that take no write lock."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import List

import pytest
from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

from bot.db.session import get_engine, off_the_loop, read_scope, session_scope


def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'units.db'}"
    with session_scope(url) as session:
        session.execute(text("CREATE TABLE things (name TEXT)"))
    return url


def test_a_read_only_unit_begins_deferred_and_a_writer_does_not_wait_for_it(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    begun: List[str] = []
    event.listen(get_engine(url), "before_cursor_execute", lambda _c, _k, statement, *_: begun.append(statement))
    waited: List[float] = []
    with read_scope(url) as reader:
        assert reader.execute(text("SELECT count(*) FROM things")).scalar_one() == 0

        def write() -> None:
            start = time.monotonic()
            with session_scope(url) as writer:
                writer.execute(text("INSERT INTO things VALUES ('boiler')"))
            waited.append(time.monotonic() - start)

        thread = threading.Thread(target=write)
        thread.start()
        thread.join(timeout=30)
        # The busy timeout is 3 s: a writer queued behind a write lock would wait that long and fail.
        assert waited and waited[0] < 1.0
    assert [statement for statement in begun if statement.startswith("BEGIN")] == ["BEGIN", "BEGIN IMMEDIATE"]
    with read_scope(url) as reader:
        assert reader.execute(text("SELECT name FROM things")).scalars().all() == ["boiler"]


def test_a_read_only_unit_commits_nothing(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    with read_scope(url) as reader:
        reader.execute(text("INSERT INTO things VALUES ('lost')"))
    with read_scope(url) as reader:
        assert reader.execute(text("SELECT count(*) FROM things")).scalar_one() == 0


def test_postgresql_refuses_a_write_in_a_read_only_unit(postgres_url: str) -> None:
    with pytest.raises(DBAPIError, match="read-only transaction"):
        with read_scope(postgres_url) as reader:
            reader.execute(text("CREATE TEMPORARY TABLE nothing (a INT)"))
    with read_scope(postgres_url) as reader:
        assert reader.execute(text("SELECT 1")).scalar_one() == 1


def test_sqlite_connections_are_pooled(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    connects: List[object] = []
    event.listen(get_engine(url), "connect", lambda connection, _record: connects.append(connection))
    for _ in range(5):
        with session_scope(url) as session:
            session.execute(text("SELECT 1"))
        with read_scope(url) as session:
            session.execute(text("SELECT 1"))
    assert len(connects) <= 1  # the connection made for the table is reused; at most one more is opened


def test_work_runs_off_the_event_loop_in_its_own_unit(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)

    def add(session: object, *, name: str) -> int:
        session.execute(text("INSERT INTO things VALUES (:name)"), {"name": name})  # type: ignore[attr-defined]
        return threading.get_ident()

    def count(session: object) -> int:
        return int(session.execute(text("SELECT count(*) FROM things")).scalar_one())  # type: ignore[attr-defined]

    async def both() -> tuple[int, int]:
        worker = await off_the_loop(add, database_url=url, name="radiator")
        return worker, await off_the_loop(count, database_url=url, read_only=True)

    worker, counted = asyncio.run(both())
    assert worker != threading.get_ident() and counted == 1


def test_a_pooled_sqlite_connection_enforces_foreign_keys_again_whoever_switched_them_off(tmp_path: Path) -> None:
    url = sqlite_url(tmp_path)
    engine = get_engine(url)
    with engine.connect() as connection:
        connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # as a migration does while copying tables
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar_one() == 1
