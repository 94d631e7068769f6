"""Validation of the forms' slots (``validate_<form>`` actions): thin adapters over bot.services.slot_filling."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any, Dict, List, NamedTuple, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from rasa_sdk.utils import call_potential_coroutine

from actions.identity import IdentityFormValidation, resolve_owner_id
from actions.tracker_utils import message_date
from actions.unit_of_work import in_session
from bot import wording
from bot.owners import identity
from bot.services import promises, slot_filling

# The slots each form fills, cleared when the form's record is written or the owner cancels.
FORM_SLOTS = {
    "arrears_form": [],
    "bill_check_form": ["bill_issue"],
    "promise_form": ["promise_date", "promise_amount"],
    "instalment_form": ["instalment_plan"],
    "repair_form": ["repair_item", "repair_location", "repair_description", "repair_time"],
    "complaint_form": ["complaint_description"],
}


class Said(NamedTuple):
    """One user message as the NLU read it."""

    text: str
    entities: List[Dict[str, Any]]
    intent: Optional[str]


def _said(event: Dict[str, Any]) -> Said:
    parse = event.get("parse_data") or {}
    return Said(
        str(event.get("text") or parse.get("text") or ""),
        list(parse.get("entities") or []),
        (parse.get("intent") or {}).get("name"),
    )


def messages_for(tracker: Tracker, form: str) -> List[Said]:
    """The messages a form reads now, oldest first.

    Normally the latest message. When the form is being activated by a yes to an offer ("好的" after the
    heating answer offered a repair), the message that led to the offer is read too: the owner has often said
    there what is broken and where.
    """
    latest = tracker.latest_message or {}
    said = [
        Said(
            str(latest.get("text") or ""),
            list(latest.get("entities") or []),
            (latest.get("intent") or {}).get("name"),
        )
    ]
    activating = (tracker.active_loop or {}).get("name") != form
    if activating and said[0].intent == "affirm":
        users = [event for event in tracker.events if event.get("event") == "user"]
        if len(users) >= 2:
            said.insert(0, _said(users[-2]))
    return said


def requested_slot(tracker: Tracker, form: str) -> Optional[str]:
    """The slot the form asked for, or ``None`` when the form is only being activated."""
    if (tracker.active_loop or {}).get("name") != form:
        return None
    return tracker.get_slot("requested_slot")


class ValidateArrearsForm(IdentityFormValidation):
    """Identity only."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "validate_arrears_form"


class ValidateBillCheckForm(IdentityFormValidation):
    """Identity, then what is wrong with the bill."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "validate_bill_check_form"


class ValidateInstalmentForm(IdentityFormValidation):
    """Identity, then the proposed plan: taken from wherever the owner stated it, never from a bare yes."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "validate_instalment_form"

    async def extract_instalment_plan(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        """A plan stated in the latest message (or in the request that started the form)."""
        asked = requested_slot(tracker, "instalment_form") == "instalment_plan"
        plan = None
        for said in messages_for(tracker, "instalment_form"):
            plan = slot_filling.read_instalment_plan(said.text, intent=said.intent, requested=asked) or plan
        if plan:
            return {"instalment_plan": plan}
        if asked and messages_for(tracker, "instalment_form")[-1].intent == "affirm":
            return {"instalment_plan": None}  # "好的" is no plan: ask again
        return {}

    def validate_instalment_plan(self, value: Any, *_: Any) -> Dict[str, Any]:
        """Keep the plan as recognised."""
        text = str(value or "").strip()
        return {"instalment_plan": text or None}


class ValidatePromiseForm(IdentityFormValidation):
    """Identity, a concrete date in the next 90 days, then the owner's confirmation."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "validate_promise_form"

    @staticmethod
    def _from_request(tracker: Tracker, entity: str, slot: str) -> Dict[str, Any]:
        """At activation, the date or amount in the message that asked for the form.

        Inside the form the domain's entity mappings read each answer. A date put aside during the repair
        form (``promise_waiting``) is already in the slot and is not replaced by whatever the reply to the
        repair read-back said.
        """
        if (tracker.active_loop or {}).get("name") == "promise_form" or tracker.get_slot("promise_waiting"):
            return {}
        for found in (tracker.latest_message or {}).get("entities") or []:
            if found.get("entity") == entity:
                return {slot: found.get("value")}
        return {}

    async def extract_promise_date(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        """The date in the request that started the form (我下周五交)."""
        return self._from_request(tracker, "time", "promise_date")

    async def extract_promise_amount(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        """The amount in the request that started the form (月底交1200)."""
        return self._from_request(tracker, "amount", "promise_amount")

    async def validate_promise_date(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        """Reject vague, past and far-off dates (明年11月 is far, not vague); default the amount to the arrears."""
        today = message_date(tracker)
        day, verdict = slot_filling.promise_verdict(value, today=today)
        # A date put aside during the repair form is taken up now, whatever it is worth.
        taken_up: Dict[str, Any] = {"promise_waiting": None} if tracker.get_slot("promise_waiting") else {}
        if day is None or verdict is not promises.DateVerdict.OK:
            dispatcher.utter_message(text=promises.rejection(verdict, today=today, expression=str(value)))
            return {"promise_date": None, **taken_up}
        slots: Dict[str, Any] = {"promise_date": day.isoformat(), **taken_up}
        owner_id = await resolve_owner_id(tracker)
        if tracker.get_slot("promise_amount") is None and owner_id is not None:
            owed = await in_session(lambda session: promises.default_amount(session, owner_id=owner_id, today=today))
            slots["promise_amount"] = str(owed)
        return slots

    async def validate_phone_tail(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        """Verify; once verified with a date already given, the amount defaults to the arrears."""
        slots = dict(await call_potential_coroutine(super().validate_phone_tail(value, dispatcher, tracker, domain)))
        owner = slots.get("verified_owner_id")
        if owner is not None and tracker.get_slot("promise_date") and tracker.get_slot("promise_amount") is None:
            today = message_date(tracker)
            owed = await in_session(
                lambda session: promises.default_amount(session, owner_id=int(owner), today=today)
            )
            slots["promise_amount"] = str(owed)
        return slots

    def validate_promise_amount(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        """Accept a positive amount; otherwise ask again."""
        amount = promises.parse_amount(value)
        if amount is None:
            dispatcher.utter_message(text=wording.text("promises.ask_amount_again"))
            return {"promise_amount": None}
        return {"promise_amount": str(amount)}


class ValidateRepairForm(FormValidationAction):
    """Item, location, description and visiting time, read from what each message means.

    A promise to pay said in the middle (下周五交钱) is kept in ``promise_date`` with ``promise_waiting`` set;
    the rules take it up once the repair order is written.
    """

    def name(self) -> str:
        """Action name used in the domain."""
        return "validate_repair_form"

    @staticmethod
    def read(tracker: Tracker) -> slot_filling.RepairDetails:
        """What the messages the form reads now say about the repair."""
        asked = requested_slot(tracker, "repair_form")
        today = message_date(tracker)
        merged = slot_filling.RepairDetails()
        for said in messages_for(tracker, "repair_form"):
            found = slot_filling.read_repair(
                said.text, today=today, entities=said.entities, intent=said.intent, requested=asked
            )
            merged = replace(
                merged,
                **{key: value for key, value in found.__dict__.items() if value not in (None, False)},
            )
        return merged

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Fill and validate the repair slots; put a payment date aside for after the form."""
        events = await super().run(dispatcher, tracker, domain)
        details = self.read(tracker)
        if details.payment_date:
            try:
                said = promises.format_date(dt.date.fromisoformat(details.payment_date))
            except ValueError:
                said = details.payment_date
            dispatcher.utter_message(text=wording.text("forms.promise_put_aside", date=said))
            events += [SlotSet("promise_date", details.payment_date), SlotSet("promise_waiting", True)]
        return events

    def _extract(self, tracker: Tracker, slot: str) -> Dict[str, Any]:
        value = self.read(tracker).slots().get(slot)
        if value:
            return {slot: value}
        latest = messages_for(tracker, "repair_form")[-1]
        if requested_slot(tracker, "repair_form") == slot and latest.intent == "affirm" and not slot_filling.read_repair(
            latest.text, today=message_date(tracker), entities=latest.entities
        ).slots():
            return {slot: None}  # "好的" answers nothing: ask again
        return {}

    async def extract_repair_item(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        """The item named (a lexicon entity, else what the description is about)."""
        return self._extract(tracker, "repair_item")

    async def extract_repair_location(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        """The unit and the part of it; "在家里" from a verified owner is their own unit."""
        found = self._extract(tracker, "repair_location")
        if found or not self.read(tracker).home_only:
            return found
        owner_id = await resolve_owner_id(tracker)
        if owner_id is None:
            return found
        unit = await in_session(lambda session: identity.owner_by_id(session, owner_id=owner_id).unit_label)
        return {"repair_location": wording.text("forms.location_at_home", unit=unit)}

    async def extract_repair_description(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        """What is wrong; a new detail is added to what was said before."""
        found = self._extract(tracker, "repair_description")
        before = tracker.get_slot("repair_description")
        new = found.get("repair_description")
        if before and new and new not in before and requested_slot(tracker, "repair_form") != "repair_description":
            return {"repair_description": f"{before}，{new}"}
        return found

    async def extract_repair_time(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        """When someone is home for the visit (never a date to pay)."""
        return self._extract(tracker, "repair_time")

    @staticmethod
    def _text(slot: str, value: Any) -> Dict[str, Any]:
        text = str(value or "").strip()
        return {slot: text or None}

    def validate_repair_item(self, value: Any, *_: Any) -> Dict[str, Any]:
        """Keep the item as read."""
        return self._text("repair_item", value)

    def validate_repair_location(self, value: Any, *_: Any) -> Dict[str, Any]:
        """Keep the location as read."""
        return self._text("repair_location", value)

    def validate_repair_description(self, value: Any, *_: Any) -> Dict[str, Any]:
        """Keep the description as read."""
        return self._text("repair_description", value)

    def validate_repair_time(self, value: Any, *_: Any) -> Dict[str, Any]:
        """Keep the visiting time as read."""
        return self._text("repair_time", value)


class ValidateComplaintForm(FormValidationAction):
    """The complaint's text."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "validate_complaint_form"

    async def extract_complaint_description(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        """What happened, from the request itself when it says so, else from the answer to the question."""
        latest = messages_for(tracker, "complaint_form")[-1]
        asked = requested_slot(tracker, "complaint_form") == "complaint_description"
        said = slot_filling.read_complaint(latest.text, intent=latest.intent, requested=asked)
        return {"complaint_description": said} if said else {}

    def validate_complaint_description(self, value: Any, *_: Any) -> Dict[str, Any]:
        """Keep the description as said."""
        text = str(value or "").strip()
        return {"complaint_description": text or None}
