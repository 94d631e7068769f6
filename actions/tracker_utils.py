"""Small readers of the tracker shared by the actions."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker

from bot.text.entities import reference_date


def latest_intent(tracker: Tracker) -> Optional[str]:
    """Name of the intent of the latest user message."""
    return (tracker.latest_message.get("intent") or {}).get("name")


def user_intents(tracker: Tracker) -> List[str]:
    """Intent names of every user message so far, oldest first."""
    return [
        ((event.get("parse_data") or {}).get("intent") or {}).get("name", "")
        for event in tracker.events
        if event.get("event") == "user"
    ]


def latest_entity(tracker: Tracker, name: str) -> Optional[Dict[str, Any]]:
    """The first entity called ``name`` in the latest user message, with all its fields."""
    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == name:
            return dict(entity)
    return None


def message_date(tracker: Tracker) -> dt.date:
    """The date the latest message was written, in Asia/Shanghai."""
    return reference_date(tracker.latest_message.get("metadata"))
