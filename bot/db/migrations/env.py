"""Alembic environment: migrates the database named by DATABASE_URL (or the configured default)."""

from __future__ import annotations

from alembic import context

from bot.db import (  # noqa: F401  (each registers its tables on Base)
    coach_models,
    payment_models,
    playbook_models,
    reminder_models,
    staff_models,
    wecom_models,
)
from bot.db.models import Base
from bot.db.session import get_engine

config = context.config


def run_migrations() -> None:
    """Run migrations online against the configured engine."""
    url = config.get_main_option("sqlalchemy.url") or None
    engine = get_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `bot db upgrade`")
run_migrations()
