"""Answers to a reminder: the owner asks to hear no more (退订, 别再提醒我了) — recorded and honoured.

A thin adapter over :func:`bot.reminders.schedule.record_opt_out`: the conversation is opted out whatever
happens; when the owner is verified (this conversation's identity, or a trusted-channel link) their unit is
too, so a reminder on any channel is skipped. The reply is ``reminders.opted_out`` in ``data/wording.yml``.
"""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.identity import owner_id_in
from actions.owner_data import save_or_apologise
from bot import wording
from bot.reminders import schedule

OPT_OUT_SOURCE = "chat"


class ActionOptOutReminders(Action):
    """Record that this owner (or at least this conversation) wants no more proactive reminders."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_opt_out_reminders"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Store the opt-out, then confirm it."""
        text = str((tracker.latest_message or {}).get("text") or "")

        def write(session: Session) -> Dict[str, Any]:
            owner_id = owner_id_in(session, tracker)
            row = schedule.record_opt_out(
                session,
                owner_id=owner_id,
                sender_id=tracker.sender_id,
                channel=tracker.get_latest_input_channel(),
                how=OPT_OUT_SOURCE,
                text=text,
            )
            return {"id": row.id}

        saved = await save_or_apologise(dispatcher, write)
        if saved is not None:
            dispatcher.utter_message(text=wording.text("reminders.opted_out"))
        return []
