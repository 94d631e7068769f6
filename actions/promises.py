"""Repeat the promised date and amount back before anything is recorded."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from bot.services import promises
from bot.services.promises import parse_amount


class ActionConfirmPromise(Action):
    """After the promise form: ask "对吗？" quoting date (with weekday) and amount."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_confirm_promise"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Ask for confirmation; a yes records the promise (see the rules)."""
        raw = tracker.get_slot("promise_date")
        if not raw:
            return []
        day = dt.date.fromisoformat(raw)
        dispatcher.utter_message(text=promises.confirmation_question(day, parse_amount(tracker.get_slot("promise_amount"))))
        return [SlotSet("pending_offer", "payment_promise")]
