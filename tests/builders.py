"""Hand-built trackers and action runners: the one place tests build Rasa SDK inputs."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Dict, List, Optional, Tuple

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

TODAY = "2026-11-23"


def user_event(
    intent: str,
    text: str = "…",
    entities: Optional[List[Dict[str, Any]]] = None,
    channel: Optional[str] = "rest",
    metadata: Optional[Dict[str, Any]] = None,
) -> Dict[str, Any]:
    """A ``user`` event as the tracker store keeps it."""
    parse_data = {"intent": {"name": intent, "confidence": 0.9}, "entities": entities or [], "text": text}
    return {
        "event": "user",
        "text": text,
        "parse_data": parse_data,
        "input_channel": channel,
        "metadata": metadata or {},
    }


def tracker(
    intent: str = "affirm",
    slots: Optional[Dict[str, Any]] = None,
    *,
    message_id: str = "m-1",
    text: str = "…",
    entities: Optional[List[Dict[str, Any]]] = None,
    channel: Optional[str] = "rest",
    sender: str = "owner-1",
    metadata: Optional[Dict[str, Any]] = None,
    active_loop: Optional[str] = None,
    events: Optional[List[Dict[str, Any]]] = None,
) -> Tracker:
    """A tracker whose latest message has ``intent``; the default message date is :data:`TODAY`."""
    latest = {
        "intent": {"name": intent, "confidence": 0.9},
        "entities": entities or [],
        "text": text,
        "message_id": message_id,
        "metadata": {"date": TODAY} if metadata is None else metadata,
    }
    if events is None:
        events = [{"event": "user", "text": text, "parse_data": latest, "input_channel": channel}]
    return Tracker(
        sender,
        {"identity_attempts": 0.0, "identity_failed": False, **(slots or {})},
        latest,
        events,
        False,
        None,
        {"name": active_loop} if active_loop else {},
        "action_listen",
    )


def run(action: Any, tracker_: Tracker) -> Tuple[List[Dict[str, Any]], List[Dict[str, Any]]]:
    """Run an action; return the dispatched messages and the events it returned."""
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker_, {}))
    return dispatcher.messages, events


def validate(action: Any, tracker_: Tracker, slot: str, value: Any) -> Tuple[List[Dict[str, Any]], Any]:
    """Call a form's ``validate_<slot>`` (sync or async); return the messages and the slot updates."""
    dispatcher = CollectingDispatcher()
    result = getattr(action, f"validate_{slot}")(value, dispatcher, tracker_, {})
    if inspect.isawaitable(result):
        result = asyncio.run(result)
    return dispatcher.messages, result


def tracker_after(
    *intents: str,
    slots: Optional[Dict[str, Any]] = None,
    entities: Optional[List[Dict[str, Any]]] = None,
    metadata: Optional[Dict[str, Any]] = None,
    channel: Optional[str] = "rest",
) -> Tracker:
    """A tracker after one user message per intent in ``intents`` (the last is the latest message)."""
    events = [user_event(intent, channel=channel) for intent in intents]
    events[-1]["parse_data"]["entities"] = entities or []
    return tracker(
        intents[-1], slots, entities=entities, metadata=metadata or {}, channel=channel, events=events
    )
