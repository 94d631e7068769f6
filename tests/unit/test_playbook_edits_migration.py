"""Migration 0009 (versioned playbook edits), on SQLite and PostgreSQL: the schema matches the models, the
(intent, version) pair is unique, and it downgrades."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot.db import migrate
from bot.db.models import Base
from bot.db.playbook_models import PlaybookEdit
from bot.db.session import get_engine

AT = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.timezone.utc)


def test_0009_matches_the_models_and_downgrades(database_url: str) -> None:
    engine = get_engine(database_url)
    assert "playbook_edits" in inspect(engine).get_table_names()
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = [d for d in compare_metadata(context, Base.metadata) if "playbook_edits" in repr(d)]
    assert diff == []
    migrate.downgrade(database_url, "0008")
    assert "playbook_edits" not in inspect(get_engine(database_url)).get_table_names()
    migrate.upgrade(database_url)
    assert "playbook_edits" in inspect(get_engine(database_url)).get_table_names()


def test_the_same_version_of_an_intent_cannot_be_stored_twice(session: Session) -> None:
    def row(version: int) -> PlaybookEdit:
        return PlaybookEdit(
            intent="objection_heating", version=version, data={"k": "v"}, edited_by="li", edited_at=AT
        )

    session.add(row(1))
    session.commit()
    session.add(row(1))
    with pytest.raises(IntegrityError):
        session.commit()
    session.rollback()
    session.add(row(2))
    session.commit()
