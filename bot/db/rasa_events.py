"""Rasa's ``events`` table, as its SQL tracker store writes it in our database, described once for reading.

Rasa 3.6's ``SQLTrackerStore`` writes one row per event (``id``, ``sender_id``, ``type_name``,
``timestamp``, ``intent_name``, ``action_name``, ``data`` as JSON text). It is Rasa's table, not ours: no
migration creates it, and it exists only once Rasa has stored a conversation.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.orm import Session

EVENTS_TABLE = "events"

events = sa.table(
    EVENTS_TABLE,
    sa.column("id", sa.Integer),
    sa.column("sender_id", sa.String),
    sa.column("type_name", sa.String),
    sa.column("timestamp", sa.Float),
    sa.column("intent_name", sa.String),
    sa.column("action_name", sa.String),
    sa.column("data", sa.Text),
)


def events_exist(session: Session) -> bool:
    """Whether Rasa has created its table yet (asked on the session's own connection)."""
    return bool(sa.inspect(session.connection()).has_table(EVENTS_TABLE))
