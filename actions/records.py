"""Actions that read or write owner records. Each commits before it confirms anything to the owner."""

from __future__ import annotations

import abc
import datetime as dt
import logging
from decimal import Decimal
from typing import Any, Callable, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from actions.forms import FORM_SLOTS
from actions.identity import check_identity, verified_owner_id
from actions.tracker_utils import latest_intent, message_date
from bot.services import promises
from bot.db.session import session_scope
from bot.records import arrears, conversation_records, identity
from bot.service_config import get_service_config

logger = logging.getLogger(__name__)



def _message_id(tracker: Tracker) -> Optional[str]:
    return tracker.latest_message.get("message_id")


def staff_answer(now: Optional[dt.datetime] = None) -> str:
    """When staff will answer, from the configured working hours."""
    hours = get_service_config().staff
    moment = now or dt.datetime.now(dt.timezone.utc)
    if hours.is_open(moment):
        return f"工作人员会尽快回复您（今天{hours.closes:%H:%M}前），也可以拨打{hours.phone}。"
    opens = hours.next_answer(moment)
    return f"现在是下班时间，工作人员会在{opens.month}月{opens.day}日{opens:%H:%M}上班后第一时间回复您，急事请拨打{hours.phone}。"


def save_or_apologise(
    dispatcher: CollectingDispatcher, write: Callable[[Session], Dict[str, Any]]
) -> Optional[Dict[str, Any]]:
    """Run ``write`` in one transaction; on failure tell the owner nothing was saved and offer a person."""
    try:
        with session_scope() as session:
            return write(session)
    except SQLAlchemyError:
        logger.exception("could not save a record")
        dispatcher.utter_message(response="utter_save_failed")
        return None


def _owner(tracker: Tracker) -> int:
    owner_id = verified_owner_id(tracker)
    if owner_id is None:  # _RecordAction.run checks identity before writing
        raise PermissionError("record written for an unverified conversation")
    return owner_id


def _failed(events: List[EventType]) -> List[EventType]:
    return [*events, SlotSet("pending_offer", "staff_callback")]


class ActionTellArrears(Action):
    """State the verified owner's arrears; nothing without verification."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_tell_arrears"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Reply with amount, months and since when, or escalate after failed identity."""
        owner_id = verified_owner_id(tracker)
        if owner_id is None:
            return await escalate_failed_identity(dispatcher, tracker)
        with session_scope() as session:
            summary = arrears.summary(session, owner_id=owner_id, today=message_date(tracker))
            unit = identity.owner_by_id(session, owner_id=owner_id).unit_label
        if summary.amount == 0:
            dispatcher.utter_message(response="utter_no_arrears", unit=unit)
            return []
        year, month = summary.since.split("-") if summary.since else ("", "")
        dispatcher.utter_message(
            response="utter_arrears",
            unit=unit,
            amount=f"{summary.amount:,.2f}",
            since=f"{year}年{int(month)}月",
            months=summary.months,
        )
        dispatcher.utter_message(text=promises.follow_up())
        return []


async def escalate_failed_identity(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    """Three failed identity checks: stop, record an escalation, tell the owner when staff answer."""
    saved = save_or_apologise(
        dispatcher,
        lambda session: {
            "number": conversation_records.escalation(
                session,
                reason="identity_failed",
                detail=None,
                owner_id=None,
                channel=tracker.get_latest_input_channel(),
                sender_id=tracker.sender_id,
                message_id=_message_id(tracker),
            ).number
        },
    )
    if saved is None:
        return _failed([])
    dispatcher.utter_message(
        response="utter_identity_failed", number=saved["number"], staff_answer=staff_answer()
    )
    return [SlotSet("identity_failed", False), SlotSet("identity_attempts", 0.0)]


class ActionVerifyIdentity(Action):
    """The owner volunteered a room and phone tail outside a form."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_verify_identity"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Verify when both parts are known; otherwise ask for the missing one."""
        if verified_owner_id(tracker) is not None:
            dispatcher.utter_message(response="utter_anything_else")
            return []
        room, tail = tracker.get_slot("room"), tracker.get_slot("phone_tail")
        if not room:
            dispatcher.utter_message(response="utter_ask_room")
            return []
        if not tail:
            dispatcher.utter_message(response="utter_ask_phone_tail")
            return []
        slots = check_identity(dispatcher, tracker, room, tail)
        if slots.get("identity_failed"):
            return [SlotSet(k, v) for k, v in slots.items()] + await escalate_failed_identity(
                dispatcher, tracker
            )
        if "verified_owner_id" in slots:
            dispatcher.utter_message(response="utter_anything_else")
        return [SlotSet(k, v) for k, v in slots.items()]


class _RecordAction(Action, metaclass=abc.ABCMeta):
    """Submit a form: write the record, then confirm quoting what was stored.

    Abstract, so that rasa-sdk's action scan registers only the concrete record actions.
    """

    form = ""

    @abc.abstractmethod
    def name(self) -> str:
        """Each record action names itself."""

    @abc.abstractmethod
    def write(self, session: Session, tracker: Tracker) -> Dict[str, Any]:
        """Write the record; return the values the confirmation quotes."""

    @abc.abstractmethod
    def confirm(self, dispatcher: CollectingDispatcher, stored: Dict[str, Any]) -> None:
        """Tell the owner what was stored."""

    def needs_identity(self) -> bool:
        """Whether the record belongs to a verified owner."""
        return True

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Write, confirm, clear the form's slots."""
        reset = [SlotSet(slot, None) for slot in FORM_SLOTS[self.form]] + [SlotSet("pending_offer", None)]
        if self.needs_identity() and verified_owner_id(tracker) is None:
            return reset + await escalate_failed_identity(dispatcher, tracker)
        stored = save_or_apologise(dispatcher, lambda session: self.write(session, tracker))
        if stored is None:
            return _failed(reset)
        self.confirm(dispatcher, stored)
        return reset


class ActionRecordRepair(_RecordAction):
    """Open a repair order."""

    form = "repair_form"

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_record_repair"

    def needs_identity(self) -> bool:
        """Anyone may report a repair; the owner is linked when known."""
        return False

    def write(self, session: Session, tracker: Tracker) -> Dict[str, Any]:
        """Store the order."""
        order = conversation_records.repair_order(
            session,
            item=tracker.get_slot("repair_item"),
            location=tracker.get_slot("repair_location"),
            description=tracker.get_slot("repair_description"),
            preferred_time=tracker.get_slot("repair_time"),
            owner_id=verified_owner_id(tracker),
            sender_id=tracker.sender_id,
            message_id=_message_id(tracker),
        )
        return {
            "number": order.number,
            "item": order.item,
            "location": order.location,
            "time": order.preferred_time,
        }

    def confirm(self, dispatcher: CollectingDispatcher, stored: Dict[str, Any]) -> None:
        """Quote the stored order."""
        dispatcher.utter_message(response="utter_repair_recorded", **stored)


class ActionRecordComplaint(_RecordAction):
    """Record a complaint."""

    form = "complaint_form"

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_record_complaint"

    def needs_identity(self) -> bool:
        """Anyone may complain; the owner is linked when known."""
        return False

    def write(self, session: Session, tracker: Tracker) -> Dict[str, Any]:
        """Store the complaint."""
        record = conversation_records.complaint(
            session,
            description=tracker.get_slot("complaint_description"),
            owner_id=verified_owner_id(tracker),
            sender_id=tracker.sender_id,
            message_id=_message_id(tracker),
        )
        return {"number": record.number}

    def confirm(self, dispatcher: CollectingDispatcher, stored: Dict[str, Any]) -> None:
        """Quote the complaint number."""
        dispatcher.utter_message(response="utter_complaint_recorded", **stored)


class ActionRecordBillCheck(_RecordAction):
    """File a bill-check request."""

    form = "bill_check_form"

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_record_bill_check"

    def write(self, session: Session, tracker: Tracker) -> Dict[str, Any]:
        """Store the request."""
        record = conversation_records.bill_check(
            session,
            description=tracker.get_slot("bill_issue"),
            owner_id=_owner(tracker),
            sender_id=tracker.sender_id,
            message_id=_message_id(tracker),
        )
        return {"number": record.number}

    def confirm(self, dispatcher: CollectingDispatcher, stored: Dict[str, Any]) -> None:
        """Quote the request number."""
        dispatcher.utter_message(response="utter_bill_check_recorded", **stored)


class ActionRecordInstalment(_RecordAction):
    """File an instalment request for staff approval; approval is never promised."""

    form = "instalment_form"

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_record_instalment"

    def write(self, session: Session, tracker: Tracker) -> Dict[str, Any]:
        """Store the request as pending."""
        record = conversation_records.instalment_request(
            session,
            owner_id=_owner(tracker),
            proposed_plan=tracker.get_slot("instalment_plan"),
            sender_id=tracker.sender_id,
            message_id=_message_id(tracker),
        )
        return {"number": record.number}

    def confirm(self, dispatcher: CollectingDispatcher, stored: Dict[str, Any]) -> None:
        """Quote the request number and say staff decide."""
        dispatcher.utter_message(response="utter_instalment_recorded", **stored)


class ActionRecordPromise(_RecordAction):
    """Record a confirmed payment promise."""

    form = "promise_form"

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_record_promise"

    def write(self, session: Session, tracker: Tracker) -> Dict[str, Any]:
        """Store the promise as open."""
        promise = conversation_records.payment_promise(
            session,
            owner_id=_owner(tracker),
            amount=Decimal(str(tracker.get_slot("promise_amount") or 0)).quantize(Decimal("0.01")),
            due_date=dt.date.fromisoformat(tracker.get_slot("promise_date")),
            sender_id=tracker.sender_id,
            message_id=_message_id(tracker),
        )
        return {"number": promise.number, "due_date": promise.due_date, "amount": promise.amount}

    def confirm(self, dispatcher: CollectingDispatcher, stored: Dict[str, Any]) -> None:
        """Quote the stored date (with weekday) and amount."""
        dispatcher.utter_message(
            response="utter_promise_recorded",
            number=stored["number"],
            date=promises.format_date(stored["due_date"]),
            amount=f"{Decimal(stored['amount']):,.2f}",
            channels="、".join(method.split(" ")[0] for method in get_service_config().payment_methods[:2]),
        )


async def record_escalation(
    dispatcher: CollectingDispatcher, tracker: Tracker, reason: str
) -> List[EventType]:
    """Record an escalation, then tell the owner when staff will answer."""
    saved = save_or_apologise(
        dispatcher,
        lambda session: {
            "number": conversation_records.escalation(
                session,
                reason=reason,
                detail=tracker.latest_message.get("text"),
                owner_id=verified_owner_id(tracker),
                channel=tracker.get_latest_input_channel(),
                sender_id=tracker.sender_id,
                message_id=_message_id(tracker),
            ).number
        },
    )
    if saved is None:
        return []
    dispatcher.utter_message(response="utter_escalated", number=saved["number"], staff_answer=staff_answer())
    return [SlotSet("pending_offer", None)]


class ActionEscalate(Action):
    """Hand the conversation to staff: request_human, threaten_escalation, yes to a person."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_escalate"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Record the escalation with the intent that led to it."""
        intent = latest_intent(tracker) or "request_human"
        reason = intent if intent in ("request_human", "threaten_escalation") else "fallback"
        return await record_escalation(dispatcher, tracker, reason)


class ActionPaymentMethods(Action):
    """The configured payment methods and link."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_payment_methods"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Reply from configuration."""
        config = get_service_config()
        methods = "；".join(f"{i}. {method}" for i, method in enumerate(config.payment_methods, start=1))
        dispatcher.utter_message(
            response="utter_payment_methods",
            methods=methods,
            link=config.payment_link,
            invoice=config.invoice,
        )
        return []


class ActionCancelForm(Action):
    """The owner said 算了 in the middle of a form: stop and record nothing."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_cancel_form"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Deactivate the form and clear its slots."""
        form = tracker.active_loop.get("name") if tracker.active_loop else None
        dispatcher.utter_message(response="utter_form_cancelled")
        slots = FORM_SLOTS.get(form or "", [])
        return [
            ActiveLoop(None),
            SlotSet("requested_slot", None),
            SlotSet("pending_offer", None),
            *(SlotSet(s, None) for s in slots),
        ]
