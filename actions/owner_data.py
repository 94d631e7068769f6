"""Actions that read or write what we hold about an owner: thin adapters over :mod:`bot.services`.

Each writes in one unit of work off the event loop and confirms only what was committed.
"""

from __future__ import annotations

import abc
import datetime as dt
import logging
from typing import Any, Callable, Dict, List, Optional, Type

from rasa_sdk import Action, Tracker
from rasa_sdk.events import ActiveLoop, EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from actions.forms import FORM_SLOTS
from actions.identity import check_identity, owner_id_in, resolve_owner_id
from actions.promises import take_up_promise_said
from actions.tracker_utils import latest_intent, message_date
from actions.unit_of_work import in_session
from bot import wording
from bot.db import models
from bot.owners import arrears, identity
from bot.reminders import answers as reminder_answers
from bot.reminders import promise_changes
from bot.service_config import get_service_config
from bot.services import escalations, owner_requests, promises, unverified_records
from bot.services import identity as identity_service
from bot.services.escalations import Reason

logger = logging.getLogger(__name__)
# The key under which a write returns a reply said instead of a record's confirmation.
INSTEAD = "instead"


def _message_id(tracker: Tracker) -> Optional[str]:
    return tracker.latest_message.get("message_id")


def _client(tracker: Tracker) -> str:
    """The server-derived client key the latest message came with (what records without identity count under)."""
    return identity_service.client_key(
        channel=tracker.get_latest_input_channel(),
        sender_id=tracker.sender_id,
        metadata=tracker.latest_message.get("metadata"),
    )


def _escalate(
    session: Session, tracker: Tracker, *, reason: Reason, detail: Optional[str], owner_id: Optional[int]
) -> Optional[models.Escalation]:
    """Record an escalation; without a verified owner within the client's records for the day (else ``None``)."""
    where = {
        "channel": tracker.get_latest_input_channel(),
        "sender_id": tracker.sender_id,
        "message_id": _message_id(tracker),
    }
    if owner_id is None:
        return unverified_records.escalate(
            session, client=_client(tracker), reason=reason, detail=detail, **where
        )
    return escalations.escalate(session, reason=reason, detail=detail, owner_id=owner_id, **where)


def _numbered(escalation: Optional[models.Escalation]) -> Dict[str, Any]:
    """What an escalation's confirmation quotes, or the polite word that enough was noted today."""
    if escalation is None:
        return {INSTEAD: wording.text("floods.enough_today")}
    return {"number": escalation.number}


async def save_or_apologise(
    dispatcher: CollectingDispatcher, write: Callable[[Session], Dict[str, Any]]
) -> Optional[Dict[str, Any]]:
    """Run ``write`` in one transaction off the event loop; on failure say nothing was saved, offer a person."""
    try:
        return await in_session(write)
    except SQLAlchemyError:
        logger.exception("could not save a record")
        dispatcher.utter_message(response="utter_save_failed")
        return None


def _offer_person(events: List[EventType]) -> List[EventType]:
    return [*events, SlotSet("pending_offer", "staff_callback")]


class ActionTellArrears(Action):
    """State the verified owner's arrears; nothing without verification."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_tell_arrears"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Reply with amount, months and since when; nothing without verification."""
        today = message_date(tracker)

        def read(session: Session) -> Optional[Dict[str, Any]]:
            owner_id = owner_id_in(session, tracker)
            if owner_id is None:
                return None
            return {
                "summary": arrears.summary(session, owner_id=owner_id, today=today),
                "unit": identity.owner_by_id(session, owner_id=owner_id).unit_label,
            }

        try:
            found = await in_session(read)
        except SQLAlchemyError:
            logger.exception("could not read arrears")
            dispatcher.utter_message(response="utter_save_failed")
            return _offer_person([])
        if found is None:
            return await unverified(dispatcher, tracker)
        summary, unit = found["summary"], found["unit"]
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


async def unverified(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    """A form ended without a verified owner.

    When identity failed, the owner has already been told (and staff, when it called for it); clear the
    flag. Otherwise record that identity could not be established and say when staff will answer.
    """
    if tracker.get_slot("identity_failed"):
        return [SlotSet("identity_failed", False), SlotSet("identity_attempts", 0.0)]
    saved = await save_or_apologise(dispatcher, lambda session: _numbered(
        _escalate(session, tracker, reason=Reason.IDENTITY_FAILED, detail=None, owner_id=None)
    ))  # fmt: skip
    if saved is None:
        return _offer_person([])
    if INSTEAD in saved:
        dispatcher.utter_message(text=saved[INSTEAD])
        return [SlotSet("identity_failed", False), SlotSet("identity_attempts", 0.0)]
    dispatcher.utter_message(
        response="utter_identity_failed", number=saved["number"], staff_answer=escalations.staff_answer()
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
        if await resolve_owner_id(tracker) is not None:
            dispatcher.utter_message(response="utter_anything_else")
            return []
        room, tail = tracker.get_slot("room"), tracker.get_slot("phone_tail")
        if not room:
            dispatcher.utter_message(response="utter_ask_room")
            return []
        if not tail:
            dispatcher.utter_message(response="utter_ask_phone_tail")
            return []
        slots = await check_identity(dispatcher, tracker, room, tail)
        events: List[EventType] = [SlotSet(k, v) for k, v in slots.items()]
        if slots.get("identity_failed"):
            return [*events, SlotSet("identity_failed", False)]
        if "verified_owner_id" in slots:
            dispatcher.utter_message(response="utter_anything_else")
        return events


class _RecordAction(Action, metaclass=abc.ABCMeta):
    """Submit a form: write the record, then confirm quoting what was stored.

    A record action names its model (which declares number prefix and confirmation response), its form,
    whether it needs a verified owner, and which slots become which fields. Abstract, so that rasa-sdk's
    action scan registers only the concrete record actions.
    """

    model: Type[Any]
    form = ""
    needs_identity = True

    @abc.abstractmethod
    def name(self) -> str:
        """Each record action names itself."""

    @abc.abstractmethod
    def fields(self, tracker: Tracker) -> Dict[str, Any]:
        """The record's fields from the form's slots (the owner is added by :meth:`run`)."""

    def quoted(self, record: Any) -> Dict[str, Any]:
        """What the confirmation quotes; the record number by default."""
        return {"number": record.number}

    def write_record(self, session: Session, tracker: Tracker, owner_id: Optional[int]) -> Any:
        """Write the record (or find the one this message already made), in the caller's transaction.

        Without a verified owner, only within the client's records for the day
        (:mod:`bot.services.unverified_records`): ``None`` past it, and nothing written.
        """
        if owner_id is None:
            return unverified_records.create(
                session,
                self.model,
                client=_client(tracker),
                input_channel=tracker.get_latest_input_channel(),
                message_id=_message_id(tracker),
                sender_id=tracker.sender_id,
                owner_id=None,
                **self.fields(tracker),
            )
        return owner_requests.create(
            session,
            self.model,
            message_id=_message_id(tracker),
            sender_id=tracker.sender_id,
            owner_id=owner_id,
            **self.fields(tracker),
        )

    def answered_without_record(self, session: Session, tracker: Tracker, owner_id: Optional[int]) -> Optional[str]:
        """A reply that makes the record unnecessary (nothing by default: the record is written)."""
        return None

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Write, confirm, clear the form's slots."""
        reset = [SlotSet(slot, None) for slot in FORM_SLOTS[self.form]] + [SlotSet("pending_offer", None)]

        def write(session: Session) -> Optional[Dict[str, Any]]:
            owner_id = owner_id_in(session, tracker)
            if self.needs_identity and owner_id is None:
                return None
            instead = self.answered_without_record(session, tracker, owner_id)
            if instead is not None:
                return {INSTEAD: instead}
            record = self.write_record(session, tracker, owner_id)
            if record is None:  # past the client's records without identity today
                return {INSTEAD: wording.text("floods.enough_today")}
            return self.quoted(record)

        try:
            stored = await in_session(write)
        except (SQLAlchemyError, ValueError, TypeError):
            # A database fault or a value the database refuses: nothing was saved, and the owner hears so.
            logger.exception("could not save a %s", self.model.__name__)
            dispatcher.utter_message(response="utter_save_failed")
            return _offer_person(reset)
        if stored is None:
            return reset + await unverified(dispatcher, tracker)
        if INSTEAD in stored:
            dispatcher.utter_message(text=stored[INSTEAD])
            return reset
        dispatcher.utter_message(response=self.model.confirmation_response, **stored)
        return reset


class ActionRecordRepair(_RecordAction):
    """Open a repair order; anyone may report one, the owner is linked when known."""

    model = models.RepairOrder
    form = "repair_form"
    needs_identity = False

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_record_repair"

    def fields(self, tracker: Tracker) -> Dict[str, Any]:
        """Item, location, description and preferred time as the form stored them."""
        return {
            "item": tracker.get_slot("repair_item"),
            "location": tracker.get_slot("repair_location"),
            "description": tracker.get_slot("repair_description"),
            "preferred_time": tracker.get_slot("repair_time"),
        }

    def quoted(self, record: Any) -> Dict[str, Any]:
        """Number, item, location and time, read back from the stored order."""
        return {
            "number": record.number,
            "item": record.item,
            "location": record.location,
            "time": record.preferred_time,
        }


def _confirmed(dispatcher: CollectingDispatcher, model: Type[Any]) -> bool:
    """Whether the record's confirmation was the last thing said (it was written)."""
    return bool(dispatcher.messages) and dispatcher.messages[-1].get("response") == model.confirmation_response


class _TakesUpPromise(_RecordAction, metaclass=abc.ABCMeta):
    """A record written without a read-back: a payment date said with it is read back right after."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Write and confirm; then the promise the message made, if any."""
        events = await super().run(dispatcher, tracker, domain)
        if not _confirmed(dispatcher, self.model):
            return events
        return [*events, *await take_up_promise_said(dispatcher, tracker)]


class ActionRecordComplaint(_TakesUpPromise):
    """Record a complaint; anyone may complain, the owner is linked when known."""

    model = models.Complaint
    form = "complaint_form"
    needs_identity = False

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_record_complaint"

    def fields(self, tracker: Tracker) -> Dict[str, Any]:
        """The complaint as said."""
        return {"description": tracker.get_slot("complaint_description")}


class ActionRecordBillCheck(_TakesUpPromise):
    """File a bill-check request for the verified owner."""

    model = models.BillCheckRequest
    form = "bill_check_form"

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_record_bill_check"

    def fields(self, tracker: Tracker) -> Dict[str, Any]:
        """What the owner says is wrong with the bill."""
        return {"description": tracker.get_slot("bill_issue")}

    def answered_without_record(self, session: Session, tracker: Tracker, owner_id: Optional[int]) -> Optional[str]:
        """Answering a reminder with "已经交了": a payment found since then is confirmed instead of a check."""
        return None if owner_id is None else reminder_answers.payment_found(session, owner_id=owner_id)


class ActionRecordInstalment(_RecordAction):
    """File an instalment request for staff approval; approval is never promised."""

    model = models.InstalmentRequest
    form = "instalment_form"

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_record_instalment"

    def fields(self, tracker: Tracker) -> Dict[str, Any]:
        """The plan as proposed; staff decide."""
        return {"proposed_plan": tracker.get_slot("instalment_plan")}


class ActionRecordPromise(_RecordAction):
    """Record a confirmed payment promise."""

    model = models.PaymentPromise
    form = "promise_form"

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_record_promise"

    def fields(self, tracker: Tracker) -> Dict[str, Any]:
        """Due date and amount (a decimal string in the slot, never a float)."""
        amount = promises.parse_amount(tracker.get_slot("promise_amount"))
        if amount is None:
            raise ValueError("a promise needs a positive amount")
        return {"amount": amount, "due_date": dt.date.fromisoformat(str(tracker.get_slot("promise_date")))}

    def write_record(self, session: Session, tracker: Tracker, owner_id: Optional[int]) -> Any:
        """A new date from an owner with an open promise moves it; otherwise a new promise with its reminders.

        Moving counts (``reschedule_count``) and moves the promise's reminders; a broken promise stays broken.
        The moved promise and its reminders follow this conversation.
        """
        fields = self.fields(tracker)
        if owner_id is not None:
            moved = promise_changes.reschedule_latest(
                session,
                owner_id=owner_id,
                new_date=fields["due_date"],
                amount=fields["amount"],
                sender_id=tracker.sender_id,
                channel=tracker.get_latest_input_channel(),
            )
            if moved is not None:
                return moved
        record = super().write_record(session, tracker, owner_id)
        promise_changes.recorded(session, promise=record)
        return record

    def quoted(self, record: Any) -> Dict[str, Any]:
        """The stored date (with weekday) and amount, and where to pay."""
        return {
            "number": record.number,
            "date": promises.format_date(record.due_date),
            "amount": f"{record.amount:,.2f}",
            "channels": "、".join(method.split(" ")[0] for method in get_service_config().payment_methods[:2]),
        }


async def record_escalation(dispatcher: CollectingDispatcher, tracker: Tracker, reason: Reason) -> List[EventType]:
    """Record an escalation, then tell the owner when staff will answer."""

    def write(session: Session) -> Dict[str, Any]:
        owner_id = owner_id_in(session, tracker)
        detail = tracker.latest_message.get("text")
        return _numbered(_escalate(session, tracker, reason=reason, detail=detail, owner_id=owner_id))

    saved = await save_or_apologise(dispatcher, write)
    if saved is None:
        return []
    if INSTEAD in saved:
        dispatcher.utter_message(text=saved[INSTEAD])
        return [SlotSet("pending_offer", None)]
    dispatcher.utter_message(
        response="utter_escalated", number=saved["number"], staff_answer=escalations.staff_answer()
    )
    return [SlotSet("pending_offer", None)]


class ActionEscalate(Action):
    """Hand the conversation to staff: request_human, threaten_escalation, yes to a person."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_escalate"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Record the escalation with the reason the latest intent gives."""
        return await record_escalation(dispatcher, tracker, escalations.reason_for_intent(latest_intent(tracker)))


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
