"""Rasa's ``events`` table, as its SQL tracker store writes it in our database, described once for reading.

Rasa 3.6's ``SQLTrackerStore`` writes one row per event (``id``, ``sender_id``, ``type_name``,
``timestamp``, ``intent_name``, ``action_name``, ``data`` as JSON text). It is Rasa's table, not ours: no
migration creates it, and it exists only once Rasa has stored a conversation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

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


# --- what the domain asks of the table ----------------------------------------------------------------------
# Every function answers as if the table were empty when Rasa has not created it yet.


def sender_ids(session: Session) -> List[str]:
    """Every conversation the tracker store holds."""
    if not events_exist(session):
        return []
    return list(session.execute(sa.select(events.c.sender_id).distinct()).scalars())


def latest_data(session: Session, *, sender_id: str, type_name: str, limit: int) -> List[Dict[str, Any]]:
    """The data of the conversation's latest ``limit`` events of one type, newest first."""
    if not events_exist(session):
        return []
    rows = session.execute(
        sa.select(events.c.data)
        .where(events.c.sender_id == sender_id, events.c.type_name == type_name)
        .order_by(events.c.id.desc())
        .limit(limit)
    ).scalars()
    return [event_data(raw) for raw in rows]


def data_containing(session: Session, *, sender_id: str, type_name: str, text: str) -> List[Dict[str, Any]]:
    """The data of the conversation's events of one type whose stored JSON contains ``text``, oldest first."""
    if not events_exist(session):
        return []
    rows = session.execute(
        sa.select(events.c.data)
        .where(events.c.sender_id == sender_id, events.c.type_name == type_name, events.c.data.like(f"%{text}%"))
        .order_by(events.c.id)
    ).scalars()
    return [event_data(raw) for raw in rows]


def senders_saying(session: Session, *, text: str, types: Sequence[str] = ("user",), limit: int = 50) -> List[str]:
    """Conversations with a message of these types containing ``text``, the most recently active first.

    Rasa stores an event as JSON with non-ASCII characters escaped (暖 as six ASCII characters); both spellings are
    looked for.
    """
    wanted = text.strip()
    if not wanted or not events_exist(session):
        return []
    spellings = {json.dumps(wanted)[1:-1], json.dumps(wanted, ensure_ascii=False)[1:-1]}
    matches = [events.c.data.like(f"%{_like_literal(spelling)}%", escape="!") for spelling in spellings]
    rows = session.execute(
        sa.select(events.c.sender_id)
        .where(events.c.type_name.in_(list(types)), sa.or_(*matches))
        .group_by(events.c.sender_id)
        .order_by(sa.func.max(events.c.timestamp).desc(), events.c.sender_id)
        .limit(limit)
    ).scalars()
    return [str(sender) for sender in rows]


def _like_literal(text: str) -> str:
    """``text`` as a LIKE pattern matching itself, with ``!`` as the escape character."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def has_conversation(session: Session, *, sender_id: str) -> bool:
    """Whether the tracker store holds any event of the conversation."""
    if not events_exist(session):
        return False
    return session.execute(sa.select(events.c.id).where(events.c.sender_id == sender_id).limit(1)).first() is not None


def idle_conversations(session: Session, *, before: float, limit: int) -> List[str]:
    """At most ``limit`` conversations whose latest event is older than ``before`` (a Unix timestamp)."""
    if not events_exist(session):
        return []
    return list(
        session.execute(
            sa.select(events.c.sender_id)
            .group_by(events.c.sender_id)
            .having(sa.func.max(events.c.timestamp) < before)
            .limit(limit)
        ).scalars()
    )


def delete_conversations(session: Session, sender_ids: Sequence[str]) -> int:
    """Delete every event of these conversations; how many rows went."""
    if not sender_ids or not events_exist(session):
        return 0
    return int(session.execute(sa.delete(events).where(events.c.sender_id.in_(list(sender_ids)))).rowcount or 0)


@dataclass(frozen=True)
class StoredEvent:
    """One row of the table, its ``data`` parsed.

    Attributes:
        id: The row's id (the table's order).
        sender_id: The conversation.
        type_name: ``user``, ``bot``, ``action``, ``pause`` …
        timestamp: When Rasa stamped it (Unix seconds), if it did.
        intent_name: For ``user`` rows, the intent Rasa read.
        data: The event as Rasa serialised it.
    """

    id: int
    sender_id: str
    type_name: str
    timestamp: Optional[float]
    intent_name: Optional[str]
    data: Dict[str, Any]


def _stored(row: Any) -> StoredEvent:
    return StoredEvent(
        int(row.id), str(row.sender_id), str(row.type_name),
        float(row.timestamp) if row.timestamp is not None else None, row.intent_name,
        event_data(row.data),
    )  # fmt: skip


_COLUMNS = (events.c.id, events.c.sender_id, events.c.type_name, events.c.timestamp, events.c.intent_name, events.c.data)


def conversation_events(
    session: Session, *, sender_id: str, types: Sequence[str], after_id: Optional[int] = None
) -> List[StoredEvent]:
    """The conversation's events of these types, oldest first; only rows after ``after_id`` if given."""
    if not events_exist(session):
        return []
    query = sa.select(*_COLUMNS).where(events.c.sender_id == sender_id, events.c.type_name.in_(list(types)))
    if after_id is not None:
        query = query.where(events.c.id > after_id)
    return [_stored(row) for row in session.execute(query.order_by(events.c.id))]


def last_id_of(session: Session, *, sender_id: str, types: Sequence[str], at_most: int) -> Optional[int]:
    """The id of the conversation's latest event of these types at or before row ``at_most``."""
    if not events_exist(session):
        return None
    found = session.execute(
        sa.select(sa.func.max(events.c.id)).where(
            events.c.sender_id == sender_id, events.c.id <= at_most, events.c.type_name.in_(list(types))
        )
    ).scalar_one_or_none()
    return int(found) if found is not None else None


def spans(session: Session, sender_ids: Sequence[str], *, types: Sequence[str]) -> Dict[str, Tuple[float, float, int]]:
    """For each conversation: its first and last timestamp and its count of events of these types."""
    if not sender_ids or not events_exist(session):
        return {}
    rows = session.execute(
        sa.select(events.c.sender_id, sa.func.min(events.c.timestamp), sa.func.max(events.c.timestamp), sa.func.count())
        .where(events.c.sender_id.in_(list(sender_ids)), events.c.type_name.in_(list(types)))
        .group_by(events.c.sender_id)
    )
    return {str(sender): (float(first), float(last), int(count)) for sender, first, last, count in rows}


def first_data(session: Session, *, sender_id: str, type_name: str) -> Optional[Dict[str, Any]]:
    """The data of the conversation's first event of one type, if any."""
    if not events_exist(session):
        return None
    raw = session.execute(
        sa.select(events.c.data)
        .where(events.c.sender_id == sender_id, events.c.type_name == type_name)
        .order_by(events.c.id)
        .limit(1)
    ).scalar_one_or_none()
    return event_data(raw) if raw is not None else None


def user_messages_between(
    session: Session, *, start: float, stop: float, intent_prefix: Optional[str] = None
) -> List[StoredEvent]:
    """Every owner message stamped from ``start`` to before ``stop`` (Unix seconds), oldest first.

    Args:
        session: The session.
        start: From this moment.
        stop: To before this one.
        intent_prefix: Only messages whose intent starts so (``objection_``).
    """
    if not events_exist(session):
        return []
    query = sa.select(*_COLUMNS).where(
        events.c.type_name == "user", events.c.timestamp >= start, events.c.timestamp < stop
    )
    if intent_prefix is not None:
        query = query.where(events.c.intent_name.like(f"{intent_prefix}%"))
    return [_stored(row) for row in session.execute(query.order_by(events.c.id))]


def events_since(session: Session, *, sender_id: str, types: Sequence[str], since: float) -> List[StoredEvent]:
    """The conversation's events of these types stamped at or after ``since``, oldest first."""
    if not events_exist(session):
        return []
    query = sa.select(*_COLUMNS).where(
        events.c.sender_id == sender_id, events.c.type_name.in_(list(types)), events.c.timestamp >= since
    )
    return [_stored(row) for row in session.execute(query.order_by(events.c.id))]


def user_messages_newest_first(
    session: Session, *, excluding: Any = None, sender_id: Optional[str] = None
) -> Iterator[StoredEvent]:
    """Owner messages, newest first, read in batches (stop iterating to stop reading).

    Args:
        session: The session.
        excluding: A select of event ids to leave out (the ones staff already decided).
        sender_id: Only this conversation.
    """
    if not events_exist(session):
        return
    query = sa.select(*_COLUMNS).where(events.c.type_name == "user")
    if excluding is not None:
        query = query.where(events.c.id.not_in(excluding))
    if sender_id is not None:
        query = query.where(events.c.sender_id == sender_id)
    for row in session.execute(query.order_by(events.c.id.desc())).yield_per(500):
        yield _stored(row)


def event_by_id(session: Session, *, event_id: int, type_name: str) -> Optional[StoredEvent]:
    """Row ``event_id`` if it is an event of this type."""
    if not events_exist(session):
        return None
    row = session.execute(
        sa.select(*_COLUMNS).where(events.c.id == event_id, events.c.type_name == type_name)
    ).one_or_none()
    return _stored(row) if row is not None else None


def event_ids(session: Session, *, sender_ids: Sequence[str], type_name: str) -> List[int]:
    """The ids of these conversations' events of one type."""
    if not sender_ids or not events_exist(session):
        return []
    return [
        int(found)
        for found in session.execute(
            sa.select(events.c.id).where(events.c.sender_id.in_(list(sender_ids)), events.c.type_name == type_name)
        ).scalars()
    ]


def latest_activity(
    session: Session, *, types: Sequence[str], limit: int, sender_id: Optional[str] = None
) -> List[Tuple[str, float, int]]:
    """``(conversation, latest timestamp, count)`` of events of these types, the most recent conversation first."""
    if not events_exist(session):
        return []
    query = (
        sa.select(events.c.sender_id, sa.func.max(events.c.timestamp), sa.func.count())
        .where(events.c.type_name.in_(list(types)))
        .group_by(events.c.sender_id)
        .order_by(sa.func.max(events.c.timestamp).desc(), events.c.sender_id)
        .limit(limit)
    )
    if sender_id is not None:
        query = query.where(events.c.sender_id == sender_id)
    return [(str(sender), float(last), int(count)) for sender, last, count in session.execute(query)]
