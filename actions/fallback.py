"""Fallback when the NLU is unsure: rephrase, then offer a person, then hand over on the third miss."""

from __future__ import annotations

from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.owner_data import record_escalation
from actions.tracker_utils import user_intents
from bot.services.escalations import Reason

FALLBACK_INTENT = "nlu_fallback"
FALLBACKS_BEFORE_OFFER = 2
FALLBACKS_BEFORE_ESCALATION = 3


def consecutive_fallbacks(intents: List[str]) -> int:
    """How many of the latest user messages in a row were not understood."""
    count = 0
    for intent in reversed(intents):
        if intent != FALLBACK_INTENT:
            break
        count += 1
    return count


class ActionHandleFallback(Action):
    """Rephrase request, then an offer to hand over to staff."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_handle_fallback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Pick the reply by how many fallbacks came in a row."""
        misunderstood = consecutive_fallbacks(user_intents(tracker))
        if misunderstood >= FALLBACKS_BEFORE_ESCALATION:
            return await record_escalation(dispatcher, tracker, Reason.FALLBACK)
        if misunderstood >= FALLBACKS_BEFORE_OFFER:
            dispatcher.utter_message(response="utter_offer_human")
            return [SlotSet("pending_offer", "staff_callback")]
        dispatcher.utter_message(response="utter_default")
        return []
