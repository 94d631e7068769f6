"""Rasa's ``events`` table, as its SQL tracker store writes it in our database, described once for reading.

Rasa 3.6's ``SQLTrackerStore`` writes one row per event (``id``, ``sender_id``, ``type_name``,
``timestamp``, ``intent_name``, ``action_name``, ``data`` as JSON text). It is Rasa's table, not ours: no
migration creates it, and it exists only once Rasa has stored a conversation.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Mapping, Optional

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


def event_data(raw: Any) -> Dict[str, Any]:
    """An event row's ``data`` column as a dict; empty when it is missing or not a JSON object."""
    try:
        value = json.loads(raw) if raw else {}
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def as_mapping(value: Any) -> Mapping[str, Any]:
    """``value`` when it is a mapping (a nested part of event data), else an empty one."""
    return value if isinstance(value, Mapping) else {}


def as_text(value: Any) -> Optional[str]:
    """``value`` when it is a string (a field of event data), else None."""
    return value if isinstance(value, str) else None
