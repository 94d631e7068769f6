"""Transcripts read from Rasa's SQL tracker store, and every conversation an owner has had.

Rasa keeps its conversations in the records' database (:func:`bot.rasa.endpoints.tracker_store_config`):
Rasa 3.6's ``SQLTrackerStore`` writes one row per event to the table ``events`` (``id``, ``sender_id``,
``type_name``, ``timestamp`` as Unix seconds, ``intent_name``, ``action_name``, and ``data``, the event as
JSON). This module reads those rows as plain data, without importing Rasa, in the order Rasa itself reads
them (by ``id``: timestamps are floats and need not be unique).

Who spoke: a ``user`` event is the owner; a ``bot`` event is the bot, unless its metadata names a staff
member (``{"staff": "<username>"}``), which is how a person's replies in a taken-over conversation are
stored. A bot message is attributed to the action that sent it: the latest action executed since the
owner's last message (``action_listen`` ends a bot turn). The end of a web chat session (the owner signed out,
or the session expired) is a ``pause`` event whose metadata names the reason
(:data:`bot.conversations.webchat_sessions.END_MARK`); it is shown as such, not as a takeover's pause.
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

import sqlalchemy as sa
from sqlalchemy.orm import Session

from bot import clock
from bot.conversations.webchat_sessions import END_MARK
from bot.db import models
from bot.rasa import events as rasa_events
from bot.rasa.events import as_mapping, as_text

# Actions that are Rasa's plumbing, not something the bot did for the owner.
_PLUMBING_ACTIONS = frozenset({"action_listen", "action_session_start"})
_MESSAGE_TYPES = ("user", "bot")
_SHOWN_TYPES = ("user", "bot", "action", "session_started", "pause", "resume")


class Speaker(str, enum.Enum):
    """Who said a message."""

    OWNER = "owner"
    BOT = "bot"
    STAFF = "staff"


class EntryKind(str, enum.Enum):
    """What a transcript entry is."""

    MESSAGE = "message"  # something the owner, the bot or a staff member said
    ACTION = "action"  # an action the bot ran (utter_*, action_*, a form)
    SESSION_STARTED = "session_started"  # Rasa began a new conversation session
    PAUSED = "paused"  # the conversation was paused (the bot stopped answering)
    SESSION_ENDED = "session_ended"  # the web chat session ended (``reason``: signed_out, idle, max_age)
    RESUMED = "resumed"  # the conversation was resumed


@dataclass(frozen=True)
class Entity:
    """An entity the NLU found in an owner's message.

    Attributes:
        name: The entity type (``room``, ``date``, ``repair_item`` ...).
        value: The extracted value (for dates an ISO date, for amounts a decimal string).
        text: The part of the message it came from, when its offsets are known.
        start: Offset of that part in the message.
        end: End offset of that part.
        extractor: The component that found it.
        confidence: The extractor's confidence, when it gives one.
        role: Its role, if any.
        group: Its group, if any.
        additional_info: Anything else the extractor attached (e.g. ``{"ambiguous": true}``).
    """

    name: str
    value: Any
    text: Optional[str]
    start: Optional[int]
    end: Optional[int]
    extractor: Optional[str]
    confidence: Optional[float]
    role: Optional[str]
    group: Optional[str]
    additional_info: Any


@dataclass(frozen=True)
class TranscriptEntry:
    """One line of a transcript.

    Attributes:
        event_id: The tracker store row id (entries are in this order; newer rows have larger ids).
        at: When it happened, in the estate's timezone (None only if Rasa stored no timestamp).
        kind: A message, an action, or a session / pause / resume marker.
        speaker: For messages: the owner, the bot or a staff member; None for anything else.
        staff: The staff username, for a staff member's message.
        text: The message text (None for a message that was only buttons or an image, and for non-messages).
        intent: For owner messages: the detected intent.
        confidence: For owner messages: the intent's confidence; for actions: the policy's confidence.
        entities: For owner messages: the entities found.
        action: For bot and staff messages: the action that sent it, if any; for actions: its name.
        policy: For actions: the policy that chose it.
        buttons: For bot messages: the titles of the buttons offered.
        channel: For owner messages: the input channel (``socketio``, ``wechat``, ``rest``).
        message_id: For owner messages: the channel's message id.
        reason: For the end of a web chat session: why it ended.
    """

    event_id: int
    at: Optional[dt.datetime]
    kind: EntryKind
    speaker: Optional[Speaker] = None
    staff: Optional[str] = None
    text: Optional[str] = None
    intent: Optional[str] = None
    confidence: Optional[float] = None
    entities: Tuple[Entity, ...] = ()
    action: Optional[str] = None
    policy: Optional[str] = None
    buttons: Tuple[str, ...] = ()
    channel: Optional[str] = None
    message_id: Optional[str] = None
    reason: Optional[str] = None


@dataclass(frozen=True)
class ConversationSummary:
    """One conversation (Rasa sender id) of an owner.

    Attributes:
        sender_id: The Rasa sender id (WeChat openid, web chat session id, REST sender).
        channel: The channel it is on, from the verification link, its escalations or its first owner
            message.
        verified_at: When it was first bound to the owner on a trusted channel (``ConversationLink``, set by
            the database); None when the conversation is known only from records the bot made for them.
        first_message_at: The first message in it (owner or bot), None if the tracker store has none.
        last_message_at: The latest message in it.
        messages: How many messages (owner, bot and staff) it holds.
    """

    sender_id: str
    channel: Optional[str]
    verified_at: Optional[dt.datetime]
    first_message_at: Optional[dt.datetime]
    last_message_at: Optional[dt.datetime]
    messages: int


def transcript(
    session: Session, *, sender_id: str, after_event_id: Optional[int] = None
) -> List[TranscriptEntry]:
    """The whole conversation of ``sender_id``, every session, oldest first.

    Args:
        session: A session on the database that holds Rasa's tracker store.
        sender_id: The conversation.
        after_event_id: Only entries after this tracker store row (to follow a conversation live). The
            action a later bot message is attributed to may be an earlier row, so it is read regardless.

    Returns:
        The entries; empty when the conversation (or the tracker store) does not exist yet.
    """
    after = None
    if after_event_id is not None:
        start = rasa_events.last_id_of(session, sender_id=sender_id, types=("user", "action"), at_most=after_event_id)
        after = start - 1 if start is not None else after_event_id
    entries: List[TranscriptEntry] = []
    current_action: Optional[str] = None
    for row in rasa_events.conversation_events(session, sender_id=sender_id, types=_SHOWN_TYPES, after_id=after):
        data = row.data
        kind = row.type_name
        if kind == "user":
            current_action = None
            entry: Optional[TranscriptEntry] = _owner_message(row.id, _moment(row.timestamp, data), data)
        elif kind == "bot":
            entry = _bot_message(row.id, _moment(row.timestamp, data), data, current_action)
        elif kind == "action":
            name = data.get("name")
            current_action = None if name in _PLUMBING_ACTIONS else name
            entry = None if name in _PLUMBING_ACTIONS else _action(row.id, _moment(row.timestamp, data), data)
        else:
            marker = {
                "session_started": EntryKind.SESSION_STARTED,
                "pause": EntryKind.PAUSED,
                "resume": EntryKind.RESUMED,
            }[kind]
            ended = as_mapping(data.get("metadata")).get(END_MARK) if kind == "pause" else None
            if ended:
                entry = TranscriptEntry(
                    event_id=row.id, at=_moment(row.timestamp, data), kind=EntryKind.SESSION_ENDED, reason=str(ended)
                )
            else:
                entry = TranscriptEntry(event_id=row.id, at=_moment(row.timestamp, data), kind=marker)
        if entry is not None and (after_event_id is None or entry.event_id > after_event_id):
            entries.append(entry)
    return entries


def conversations_of_owner(session: Session, *, owner_id: int) -> List[ConversationSummary]:
    """Every conversation of an owner, on every channel, the most recently active first.

    A conversation belongs to the owner when it was verified for them on a trusted channel
    (``ConversationLink``), or when the bot made a record for them in it (a promise, a repair order, an
    escalation ... — REST conversations are never linked, but their records name the owner).

    Args:
        session: A session on the database that holds the records and Rasa's tracker store.
        owner_id: The owner.

    Returns:
        One summary per sender id; conversations with no stored message come last.
    """
    channels: Dict[str, Optional[str]] = {}
    verified: Dict[str, dt.datetime] = {}
    links = session.execute(
        sa.select(models.ConversationLink).where(models.ConversationLink.owner_id == owner_id)
    ).scalars()
    for link in links:
        channels[link.sender_id] = link.channel
        verified[link.sender_id] = _database_time(link.verified_at)
    for model in _owner_records():
        channel_column = getattr(model, "channel", sa.null())
        rows = session.execute(
            sa.select(model.sender_id, channel_column)
            .where(model.owner_id == owner_id, model.sender_id.is_not(None))
            .order_by(model.id)
        )
        for sender_id, channel in rows:
            if channels.get(sender_id) is None:
                channels[sender_id] = channel
    if not channels:
        return []
    spans = _message_spans(session, channels)
    for sender_id in [sender for sender, channel in channels.items() if channel is None]:
        channels[sender_id] = _first_input_channel(session, sender_id)
    summaries = []
    for sender_id, channel in channels.items():
        first, last, count = spans.get(sender_id, (None, None, 0))
        summaries.append(
            ConversationSummary(
                sender_id=sender_id,
                channel=channel,
                verified_at=verified.get(sender_id),
                first_message_at=first,
                last_message_at=last,
                messages=count,
            )
        )
    never = dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    summaries.sort(key=lambda summary: (summary.last_message_at or never, summary.sender_id), reverse=True)
    return summaries


# --- internals ------------------------------------------------------------------------------------------


def _owner_records() -> Iterable[Any]:
    return [model for model in models.conversation_record_types() if hasattr(model, "owner_id")]


def _message_spans(
    session: Session, senders: Iterable[str]
) -> Dict[str, Tuple[Optional[dt.datetime], Optional[dt.datetime], int]]:
    found = rasa_events.spans(session, list(senders), types=_MESSAGE_TYPES)
    return {sender: (_moment(first, {}), _moment(last, {}), count) for sender, (first, last, count) in found.items()}


def _first_input_channel(session: Session, sender_id: str) -> Optional[str]:
    data = rasa_events.first_data(session, sender_id=sender_id, type_name="user") or {}
    channel = data.get("input_channel")
    return channel if isinstance(channel, str) else None


def _owner_message(event_id: int, at: Optional[dt.datetime], data: Mapping[str, Any]) -> TranscriptEntry:
    parse_data = as_mapping(data.get("parse_data"))
    intent = as_mapping(parse_data.get("intent"))
    text = as_text(data.get("text"))
    return TranscriptEntry(
        event_id=event_id,
        at=at,
        kind=EntryKind.MESSAGE,
        speaker=Speaker.OWNER,
        text=text,
        intent=as_text(intent.get("name")),
        confidence=_number(intent.get("confidence")),
        entities=tuple(
            _entity(raw, text) for raw in parse_data.get("entities") or () if isinstance(raw, Mapping)
        ),
        channel=as_text(data.get("input_channel")),
        message_id=as_text(data.get("message_id")),
    )


def _bot_message(
    event_id: int, at: Optional[dt.datetime], data: Mapping[str, Any], current_action: Optional[str]
) -> TranscriptEntry:
    metadata = as_mapping(data.get("metadata"))
    staff = as_text(metadata.get("staff"))
    buttons = as_mapping(data.get("data")).get("buttons") or ()
    return TranscriptEntry(
        event_id=event_id,
        at=at,
        kind=EntryKind.MESSAGE,
        speaker=Speaker.STAFF if staff else Speaker.BOT,
        staff=staff or None,
        text=as_text(data.get("text")),
        action=current_action or as_text(metadata.get("utter_action")),
        buttons=tuple(str(button.get("title")) for button in buttons if isinstance(button, Mapping)),
    )


def _action(event_id: int, at: Optional[dt.datetime], data: Mapping[str, Any]) -> TranscriptEntry:
    return TranscriptEntry(
        event_id=event_id,
        at=at,
        kind=EntryKind.ACTION,
        action=as_text(data.get("name")),
        policy=as_text(data.get("policy")),
        confidence=_number(data.get("confidence")),
    )


def _entity(raw: Mapping[str, Any], message: Optional[str]) -> Entity:
    start, end = raw.get("start"), raw.get("end")
    offsets = isinstance(start, int) and isinstance(end, int) and message is not None and 0 <= start <= end
    return Entity(
        name=str(raw.get("entity")),
        value=raw.get("value"),
        text=message[start:end] if offsets and message is not None else None,
        start=start if isinstance(start, int) else None,
        end=end if isinstance(end, int) else None,
        extractor=as_text(raw.get("extractor")),
        confidence=_number(raw.get("confidence_entity", raw.get("confidence"))),
        role=as_text(raw.get("role")),
        group=as_text(raw.get("group")),
        additional_info=raw.get("additional_info"),
    )


def _moment(stored: Any, data: Mapping[str, Any]) -> Optional[dt.datetime]:
    """A Rasa timestamp (Unix seconds) as an aware time in the estate's zone."""
    seconds = stored if stored is not None else data.get("timestamp")
    if not isinstance(seconds, (int, float)):
        return None
    return dt.datetime.fromtimestamp(float(seconds), tz=dt.timezone.utc).astimezone(clock.zone())


def _database_time(value: dt.datetime) -> dt.datetime:
    """A time the database set itself (``server_default=now()``), in the estate's zone.

    PostgreSQL returns it aware; SQLite's ``CURRENT_TIMESTAMP`` is UTC without a zone.
    """
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.timezone.utc)
    return value.astimezone(clock.zone())


def _number(value: Any) -> Optional[float]:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
