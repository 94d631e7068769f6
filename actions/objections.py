"""Answer objections from the playbook and handle the owner's reply to the help offered."""

from __future__ import annotations

import logging
from typing import Any, Dict, List

from rasa_sdk import Action, Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError

from actions.promises import READBACKS, keep_payment_date, payment_date_at_readback, read_back_again
from actions.tracker_utils import latest_intent, user_intents
from actions.unit_of_work import in_session
from bot import offers
from bot.playbook import Playbook, default_playbook
from bot.services.playbook_edits import current_playbook
from bot.services.promises import follow_up

logger = logging.getLogger(__name__)

ESCALATES_AT_ONCE = frozenset({"threaten_escalation"})
PROMISE_SLOTS = ("promise_date", "promise_amount")


async def playbook() -> Playbook:
    """The playbook with the supervisors' latest edits; the YAML one when the database cannot be read.

    An owner still gets the company's answer when the database is down, only not the newest wording.
    """
    try:
        return await in_session(current_playbook)
    except SQLAlchemyError as error:
        logger.error("playbook edits unreadable, answering from the YAML playbook: %s", error)
        return default_playbook()


class ActionAnswerObjection(Action):
    """Answer the latest objection (or fee question) with its playbook entry and offer help."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_answer_objection"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Send an answer variant (rotating when the objection comes back) and the offer."""
        intent = latest_intent(tracker)
        entry = (await playbook()).get(intent or "")
        if entry is None:
            dispatcher.utter_message(response="utter_default")
            return []
        attempt = user_intents(tracker)[:-1].count(entry.intent)
        dispatcher.utter_message(text=entry.answer(attempt))
        if entry.intent not in ESCALATES_AT_ONCE and tracker.get_slot("pending_offer") in READBACKS:
            # Asked in the middle of a read-back: answer, then read the record back again instead of
            # offering something new — a "对" that follows must confirm the record, not the offer.
            # A payment date said with it (太贵了，下周五再交吧) is kept for after the record.
            payment_date = payment_date_at_readback(tracker)
            kept = [] if payment_date is None else keep_payment_date(dispatcher, tracker, payment_date)
            kind = read_back_again(dispatcher, tracker)
            return [SlotSet("last_objection", entry.intent), *kept, SlotSet("pending_offer", kind)]
        if entry.intent in ESCALATES_AT_ONCE:
            # A person takes over straight away (action_escalate follows), so nothing is offered.
            return [SlotSet("last_objection", entry.intent)]
        dispatcher.utter_message(text=entry.offer.text)
        return [SlotSet("last_objection", entry.intent), SlotSet("pending_offer", entry.offer.kind)]


async def _follow_up(tracker: Tracker) -> str:
    entry = (await playbook()).get(tracker.get_slot("last_objection") or "")
    return entry.follow_up if entry else follow_up()


class ActionAffirm(Action):
    """The owner said yes: take up the pending offer, if any, and steer back to a payment date."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_affirm"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Reply to a yes."""
        pending = tracker.get_slot("pending_offer")
        if not pending:
            dispatcher.utter_message(response="utter_anything_else")
            return []
        dispatcher.utter_message(text=offers.accepted_reply(pending))
        dispatcher.utter_message(text=await _follow_up(tracker))
        return [SlotSet("pending_offer", None)]


class ActionDeny(Action):
    """The owner said no: drop the pending offer and steer back to a payment date."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_deny"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[Dict[str, Any]]:
        """Reply to a no."""
        pending = tracker.get_slot("pending_offer")
        if not pending:
            dispatcher.utter_message(response="utter_anything_else")
            return []
        if pending == "payment_promise":
            # The repeated date or amount was wrong: record nothing and ask again.
            dispatcher.utter_message(response="utter_promise_not_recorded")
            return [SlotSet("pending_offer", None), *(SlotSet(slot, None) for slot in PROMISE_SLOTS)]
        dispatcher.utter_message(text=offers.declined_reply())
        dispatcher.utter_message(text=await _follow_up(tracker))
        return [SlotSet("pending_offer", None)]
