"""Validation of the forms' slots (``validate_<form>`` actions)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, Optional

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction

from actions.identity import IdentityFormValidation, verified_owner_id
from actions.tracker_utils import message_date
from bot import wording
from bot.services import promises
from bot.db.session import session_scope

# The slots each form fills, cleared when the form's record is written or the owner cancels.
FORM_SLOTS = {
    "arrears_form": [],
    "bill_check_form": ["bill_issue"],
    "promise_form": ["promise_date", "promise_amount"],
    "instalment_form": ["instalment_plan"],
    "repair_form": ["repair_item", "repair_location", "repair_description", "repair_time"],
    "complaint_form": ["complaint_description"],
}


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
    """Identity, then the proposed plan."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "validate_instalment_form"


class ValidatePromiseForm(IdentityFormValidation):
    """Identity, a concrete date in the next 90 days, then the owner's confirmation."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "validate_promise_form"

    def validate_promise_date(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        """Reject vague, past and far-off dates; default the amount to the arrears."""
        day: Optional[dt.date]
        try:
            day = dt.date.fromisoformat(str(value))
        except ValueError:
            day = None
        today = message_date(tracker)
        verdict = promises.judge_date(day, today=today)
        if day is None or verdict is not promises.DateVerdict.OK:
            dispatcher.utter_message(text=promises.rejection(verdict, today=today, expression=str(value)))
            return {"promise_date": None}
        slots: Dict[str, Any] = {"promise_date": day.isoformat()}
        owner_id = verified_owner_id(tracker)
        if tracker.get_slot("promise_amount") is None and owner_id is not None:
            with session_scope() as session:
                owed = promises.default_amount(session, owner_id=owner_id, today=today)
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
    """Item, location, description and preferred time, each non-empty."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "validate_repair_form"

    @staticmethod
    def _text(slot: str, value: Any) -> Dict[str, Any]:
        text = str(value or "").strip()
        return {slot: text or None}

    def validate_repair_item(self, value: Any, *_: Any) -> Dict[str, Any]:
        """Keep the item as said."""
        return self._text("repair_item", value)

    def validate_repair_location(self, value: Any, *_: Any) -> Dict[str, Any]:
        """Keep the location as said."""
        return self._text("repair_location", value)

    def validate_repair_description(self, value: Any, *_: Any) -> Dict[str, Any]:
        """Keep the description as said."""
        return self._text("repair_description", value)

    def validate_repair_time(self, value: Any, *_: Any) -> Dict[str, Any]:
        """Keep the preferred time as said."""
        return self._text("repair_time", value)


class ValidateComplaintForm(FormValidationAction):
    """The complaint's text."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "validate_complaint_form"

    def validate_complaint_description(self, value: Any, *_: Any) -> Dict[str, Any]:
        """Keep the description as said."""
        text = str(value or "").strip()
        return {"complaint_description": text or None}
