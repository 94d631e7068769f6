"""Validation of the forms' slots (``validate_<form>`` actions)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction

from actions.identity import IdentityFormValidation, verified_owner_id
from actions.tracker_utils import message_date
from bot import promises
from bot.db.session import session_scope
from bot.records import arrears

MAX_PROMISE_DAYS = 90


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
        try:
            day = dt.date.fromisoformat(str(value))
        except ValueError:
            dispatcher.utter_message(text=promises.ask_back_vague(str(value)))
            return {"promise_date": None}
        today = message_date(tracker)
        if day < today:
            dispatcher.utter_message(text=promises.PAST_DATE)
            return {"promise_date": None}
        if day > today + dt.timedelta(days=MAX_PROMISE_DAYS):
            dispatcher.utter_message(text=promises.TOO_FAR)
            return {"promise_date": None}
        slots: Dict[str, Any] = {"promise_date": day.isoformat()}
        owner_id = verified_owner_id(tracker)
        if tracker.get_slot("promise_amount") is None and owner_id is not None:
            with session_scope() as session:
                owed = arrears.summary(session, owner_id=owner_id, today=today).amount
            slots["promise_amount"] = float(owed)
        return slots

    def validate_promise_amount(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        """Accept a positive amount; otherwise ask again."""
        try:
            amount = float(value)
        except (TypeError, ValueError):
            amount = 0.0
        if amount <= 0:
            dispatcher.utter_message(text=promises.ASK_AMOUNT_AGAIN)
            return {"promise_amount": None}
        return {"promise_amount": amount}


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
