"""Migration 0004 (the escalation queue), on SQLite and PostgreSQL: old statuses become conversation states,
the schema matches the models, and it downgrades back to the record statuses."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from bot.db import migrate, models
from bot.db.session import get_engine

OLD_ROWS = {"RG1": "OPEN", "RG2": "IN_PROGRESS", "RG3": "DONE", "RG4": "CANCELLED"}


def _insert_old_escalations(url: str) -> None:
    with get_engine(url).begin() as connection:
        for number, status in OLD_ROWS.items():
            connection.execute(
                text(
                    "INSERT INTO escalations (number, sender_id, created_at, reason, status) "
                    "VALUES (:number, 's1', '2026-11-20 08:30:00+08:00', 'fallback', :status)"
                ),
                {"number": number, "status": status},
            )


def _column(url: str, name: str) -> dict:
    with get_engine(url).connect() as connection:
        rows = connection.execute(text(f"SELECT number, {name} FROM escalations ORDER BY number"))
        return {number: value for number, value in rows}


def test_0004_turns_statuses_into_states_matches_the_models_and_downgrades(database_url: str) -> None:
    migrate.downgrade(database_url, "0003")
    engine = get_engine(database_url)
    assert "escalation_events" not in inspect(engine).get_table_names()
    _insert_old_escalations(database_url)

    migrate.upgrade(database_url)

    assert _column(database_url, "state") == {"RG1": "PENDING", "RG2": "OPEN", "RG3": "RESOLVED", "RG4": "RESOLVED"}
    updated = _column(database_url, "updated_at")
    assert set(updated) == set(OLD_ROWS) and all(value is not None for value in updated.values())
    assert _column(database_url, "created_at") == updated
    columns = {column["name"] for column in inspect(engine).get_columns("escalations")}
    assert {"state", "claimed_at", "first_response_at", "resolved_at", "updated_at"} <= columns
    assert "status" not in columns
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, models.Base.metadata) == []

    migrate.downgrade(database_url, "0003")

    assert _column(database_url, "status") == {"RG1": "OPEN", "RG2": "IN_PROGRESS", "RG3": "DONE", "RG4": "DONE"}
    inspector = inspect(get_engine(database_url))
    assert "escalation_events" not in inspector.get_table_names()
    assert "state" not in {column["name"] for column in inspector.get_columns("escalations")}
    migrate.upgrade(database_url)
