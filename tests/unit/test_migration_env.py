"""The migrations' environment leaves Rasa's ``events`` table alone: autogenerate would otherwise propose
dropping every stored conversation. Checked on SQLite and PostgreSQL with the table Rasa itself creates."""

from __future__ import annotations

from typing import Any, List

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.runtime.environment import EnvironmentContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from bot.db import migrate
from bot.db.models import Base
from bot.db.session import get_engine
from tests.conftest import ROOT


def _rasa_creates_its_events_table(database_url: str) -> None:
    from rasa.core.tracker_store import TrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.utils.endpoints import EndpointConfig

    from bot.rasa.endpoints import tracker_store_config

    store = TrackerStore.create(
        EndpointConfig.from_dict(tracker_store_config(database_url)), Domain.load(str(ROOT / "domain.yml"))
    )
    store.engine.dispose()


def _diffs_through_env(database_url: str) -> List[Any]:
    """What autogenerate would write, computed by running our env.py (its options, its filter)."""
    config = migrate.alembic_config(database_url)
    script = ScriptDirectory.from_config(config)
    found: List[Any] = []

    def compare(_revision: Any, context: MigrationContext) -> List[Any]:
        found.extend(compare_metadata(context, Base.metadata))
        return []

    with EnvironmentContext(config, script, fn=compare):
        script.run_env()
    return found


def _touches_events(diff: Any) -> bool:
    if isinstance(diff, list):
        return any(_touches_events(item) for item in diff)
    return any(getattr(part, "name", None) == "events" or part == "events" for part in diff[1:3])


def test_autogenerate_does_not_propose_dropping_rasas_events_table(database_url: str) -> None:
    _rasa_creates_its_events_table(database_url)
    engine = get_engine(database_url)
    assert "events" in inspect(engine).get_table_names()
    # Without the filter the table would be dropped: the check below can fail.
    with engine.connect() as connection:
        unfiltered = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert [diff for diff in unfiltered if diff[0] == "remove_table" and diff[1].name == "events"]

    diffs = _diffs_through_env(database_url)

    assert not [diff for diff in diffs if _touches_events(diff)], diffs
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE events")


def test_a_table_of_our_own_missing_from_the_models_is_still_proposed_for_removal(database_url: str) -> None:
    engine = get_engine(database_url)
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE leftover_scratch (id INTEGER PRIMARY KEY)")
    try:
        diffs = _diffs_through_env(database_url)
        assert [diff[1].name for diff in diffs if diff[0] == "remove_table"] == ["leftover_scratch"]
    finally:
        with engine.begin() as connection:
            connection.exec_driver_sql("DROP TABLE leftover_scratch")
