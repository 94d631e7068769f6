"""Rasa's conversations as our channels and workers touch them: trackers read and edited under Rasa's lock.

Rasa's public API has no call for "store this message without answering it" or "append this event under the
conversation's lock", so these lean on the processor and the stores as Rasa 3.6 wires them
(``MessageProcessor._handle_message_with_tracker``, ``agent.lock_store``, ``agent.tracker_store``, the Sanic app a
channel's handler closes over). ``tests/unit/test_rasa_door.py`` pins each of them against the installed Rasa.
"""

from __future__ import annotations

from typing import Any, Dict

import sqlalchemy as sa
from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.shared.core.events import BotUttered, ConversationPaused, ConversationResumed, UserUttered
from sqlalchemy.orm import Session

from bot.rasa.events import events


def paused_in_store(session: Session, *, sender_id: str) -> bool:
    """Whether the conversation's latest pause / resume event in Rasa's tracker store is a pause."""
    latest = session.execute(
        sa.select(events.c.type_name)
        .where(events.c.sender_id == sender_id, events.c.type_name.in_(("pause", "resume")))
        .order_by(events.c.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    return latest == "pause"


def sanic_app_of_handler(on_new_message: Any) -> Any:
    """The Sanic app Rasa's channel handler closes over (``rasa.core.channels.channel.register``)."""
    from sanic import Sanic

    for cell in getattr(on_new_message, "__closure__", None) or ():
        try:
            value = cell.cell_contents
        except ValueError:  # an empty cell
            continue
        if isinstance(value, Sanic):
            return value
    return None


def agent_of(app: Any) -> Any:
    """The Rasa agent of a Rasa server's Sanic app, when it has one with a loaded model."""
    agent = getattr(getattr(app, "ctx", None), "agent", None)
    return agent if agent is not None and getattr(agent, "processor", None) is not None else None


async def set_paused(agent: Any, sender_id: str, paused: bool) -> bool:
    """Append ``ConversationPaused`` / ``ConversationResumed`` unless the tracker is already so.

    Returns:
        Whether an event was appended.
    """
    async with agent.lock_store.lock(sender_id):
        tracker = await agent.processor.get_tracker(sender_id)
        if tracker.is_paused() == paused:
            return False
        tracker.update(ConversationPaused() if paused else ConversationResumed())
        await agent.tracker_store.save(tracker)
        return True


async def log_while_held(agent: Any, message: UserMessage) -> None:
    """Store the owner's message (parsed, with its intent) in the paused tracker; predict and send nothing."""
    async with agent.lock_store.lock(message.sender_id):
        processor = agent.processor
        tracker = await processor.fetch_tracker_and_update_session(
            message.sender_id, CollectingOutputChannel(), message.metadata
        )
        if not tracker.is_paused():
            tracker.update(ConversationPaused())
        await processor._handle_message_with_tracker(message, tracker)
        await processor.save_tracker(tracker)


async def log_refused_while_held(
    agent: Any, sender_id: str, *, text: str, input_channel: str, metadata: Dict[str, Any]
) -> None:
    """Store a message the channel refused (not parsed, nothing predicted) in the paused tracker."""
    async with agent.lock_store.lock(sender_id):
        tracker = await agent.processor.get_tracker(sender_id)
        if not tracker.is_paused():
            tracker.update(ConversationPaused())
        tracker.update(UserUttered(text, input_channel=input_channel, metadata=metadata))
        await agent.tracker_store.save(tracker)


async def append_bot_message(agent: Any, sender_id: str, text: str, metadata: Dict[str, Any]) -> None:
    """Append what was delivered to the owner to the tracker as a ``BotUttered``."""
    async with agent.lock_store.lock(sender_id):
        tracker = await agent.processor.get_tracker(sender_id)
        tracker.update(BotUttered(text, metadata=metadata))
        await agent.tracker_store.save(tracker)


async def delivered_before(agent: Any, sender_id: str, outbox_id: int) -> bool:
    """Whether the tracker already holds the message of outbox row ``outbox_id`` (a crash after the send)."""
    tracker = await agent.tracker_store.retrieve(sender_id)
    if tracker is None:
        return False
    return any(
        isinstance(event, BotUttered) and (event.metadata or {}).get("outbox_id") == outbox_id
        for event in tracker.events
    )
