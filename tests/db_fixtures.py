"""Database fixtures: every database test runs on SQLite and on PostgreSQL, on a fresh schema."""

from __future__ import annotations

import functools
import os
import shutil
import uuid
from pathlib import Path
from typing import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from bot.db import (  # noqa: F401  (their tables on Base: emptied, compared)
    coach_models,
    holiday_models,
    migrate,
    payment_models,
    playbook_models,
    reminder_models,
    staff_models,
    wecom_models,
)
from bot.db.models import Base
from bot.db.session import get_engine

POSTGRES_ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL database for this test run, dropped afterwards."""
    name = f"bot_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT", future=True)
    try:
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as error:  # pragma: no cover - shown when the server is missing
        pytest.fail(f"PostgreSQL at {POSTGRES_ADMIN_URL} is required (scripts/ensure-postgres.sh): {error}")
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    yield url
    get_engine(url).dispose()
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@functools.lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest migration's revision id."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(migrate.alembic_config()).get_current_head()
    assert head, "no migrations found"
    return head


def at_head(url: str) -> bool:
    """Whether the database at ``url`` is already migrated to the newest revision (one query)."""
    with get_engine(url).connect() as connection:
        try:
            found = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
        except Exception:  # no alembic_version table yet
            return False
    return found == [head_revision()]


@pytest.fixture(scope="session")
def migrated_sqlite_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to the newest revision once per run; each test gets a copy of it.

    Running every migration afresh for each of some thousand tests cost most of their setup time.
    """
    path = tmp_path_factory.mktemp("template") / "bot.db"
    url = f"sqlite:///{path}"
    migrate.upgrade(url)
    get_engine(url).dispose()
    return path


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated, empty database on each backend; tables are emptied after the test.

    SQLite: a fresh copy of the run's migrated file. PostgreSQL: the run's database, migrated when it is not at
    the newest revision (the first test, or after a migration test that failed half-way down).
    """
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("db") / "bot.db"
        shutil.copyfile(request.getfixturevalue("migrated_sqlite_file"), path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("postgres_url")
        if not at_head(url):
            migrate.upgrade(url)
    yield url
    with get_engine(url).begin() as connection:
        for table in reversed(Base.metadata.sorted_tables):
            connection.execute(table.delete())


@pytest.fixture
def session(database_url: str) -> Iterator[Session]:
    """A session on the test database; the test commits what it wants to keep."""
    with Session(get_engine(database_url), future=True, expire_on_commit=False) as db_session:
        yield db_session


DEMO_ESTATE_FILE = os.path.join(os.path.dirname(__file__), "..", "data", "demo", "arrears.csv")


@pytest.fixture
def estate_env(tmp_path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The demo estate in a fresh SQLite database that the code under test finds through DATABASE_URL.

    The settings cache is cleared on the way in and out, so no test sees another's environment.
    """
    from pathlib import Path

    from bot.db.session import session_scope
    from bot.owners import importer
    from bot.settings import get_settings

    url = f"sqlite:///{tmp_path / 'bot.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    migrate.upgrade(url)
    with session_scope(url) as db_session:
        importer.import_arrears(db_session, Path(DEMO_ESTATE_FILE))
    yield url
    get_engine(url).dispose()
    get_settings.cache_clear()
