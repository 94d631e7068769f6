"""Alembic environment: migrates the database named by DATABASE_URL (or the configured default)."""

from __future__ import annotations

from typing import Any, Optional

from alembic import context

from bot.db import (  # noqa: F401  (each registers its tables on Base)
    coach_models,
    holiday_models,
    payment_models,
    playbook_models,
    reminder_models,
    staff_models,
    wecom_models,
)
from bot.db.models import Base
from bot.db.session import get_engine
from bot.rasa.events import EVENTS_TABLE

config = context.config

# Tables that live in our database but are not ours: Rasa's SQLTrackerStore creates and owns ``events``.
# Without this, ``bot db revision --autogenerate`` would propose dropping every stored conversation.
FOREIGN_TABLES = frozenset({EVENTS_TABLE})


def include_object(obj: Any, name: Optional[str], type_: str, reflected: bool, compare_to: Any) -> bool:
    """Alembic's filter: leave out tables (and their indexes) that another program owns.

    Args:
        obj: The schema object.
        name: Its name.
        type_: ``table``, ``column``, ``index``, ``unique_constraint`` or ``foreign_key_constraint``.
        reflected: Whether it was found in the database (not in our models).
        compare_to: The object it is compared with, if any.

    Returns:
        False for a table in :data:`FOREIGN_TABLES` found only in the database, and for what belongs to it.
    """
    if type_ == "table":
        return not (reflected and compare_to is None and name in FOREIGN_TABLES)
    table = getattr(obj, "table", None)
    if reflected and table is not None and getattr(table, "name", None) in FOREIGN_TABLES:
        return table.name in Base.metadata.tables
    return True


def _sqlite_foreign_keys(connection: Any, enforced: bool) -> None:
    """Switch SQLite's foreign key enforcement (effective only outside a transaction: on the raw connection)."""
    cursor = connection.connection.cursor()
    try:
        cursor.execute(f"PRAGMA foreign_keys={'ON' if enforced else 'OFF'}")
    finally:
        cursor.close()


def run_migrations() -> None:
    """Run migrations online against the configured engine.

    On SQLite, batch mode changes a table by copying it, dropping the old one and renaming the copy; with foreign
    keys enforced, dropping a table other rows refer to (``owners``) fails. As SQLite's own procedure for table
    changes says, enforcement is off while migrating, every foreign key is checked before the commit (a violation
    rolls the whole upgrade back), and it is on again afterwards.
    """
    url = config.get_main_option("sqlalchemy.url") or None
    engine = get_engine(url)
    with engine.connect() as connection:
        sqlite = connection.dialect.name == "sqlite"
        if sqlite:
            _sqlite_foreign_keys(connection, enforced=False)
        try:
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                render_as_batch=sqlite,
                compare_type=True,
                include_object=include_object,
            )
            with context.begin_transaction():
                context.run_migrations()
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"migration left rows whose foreign keys point nowhere: {broken[:5]}")
        finally:
            if sqlite:
                _sqlite_foreign_keys(connection, enforced=True)


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `bot db upgrade`")
run_migrations()
