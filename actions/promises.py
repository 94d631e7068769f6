"""Read a promise, a repair order or an instalment request back to the owner before anything is written.

Each confirming action sets ``pending_offer`` to its read-back kind; ``action_review_readback`` judges the
reply (bot.services.slot_filling): a yes, or a yes that repeats the value, sets the ``*_confirmed`` kind and
the rules run the record action; a correction replaces the value and reads back again; 算了 cancels.

A payment date said at a repair or instalment read-back (那就下周五交吧), whatever the intent, is kept in
``promise_date`` with ``promise_waiting`` set and the record asked about again; once the owner confirms or
cancels the record, the rules start the promise form, which reads the promise back. A payment date said with
a complaint or a bill check, which are written without a read-back, is read back right after the record.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional

from rasa_sdk import Action, Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.forms import FORM_SLOTS
from actions.identity import resolve_owner_id
from actions.tracker_utils import latest_intent, message_date
from actions.unit_of_work import in_session
from bot import wording
from bot.services import promises, slot_filling
from bot.services.promises import parse_amount

PROMISE_READBACK = "payment_promise"
REPAIR_READBACK = "repair_readback"
INSTALMENT_READBACK = "instalment_readback"
# Read-back kind → (kind once confirmed, the form whose slots it reads back).
READBACKS = {
    PROMISE_READBACK: ("payment_promise_confirmed", "promise_form"),
    REPAIR_READBACK: ("repair_confirmed", "repair_form"),
    INSTALMENT_READBACK: ("instalment_confirmed", "instalment_form"),
}


def _promise_question(tracker: Tracker, slots: Dict[str, Any]) -> Optional[str]:
    raw = slots.get("promise_date", tracker.get_slot("promise_date"))
    if not raw:
        return None
    amount = parse_amount(slots.get("promise_amount", tracker.get_slot("promise_amount")))
    return promises.confirmation_question(dt.date.fromisoformat(raw), amount)


def _repair_readback(dispatcher: CollectingDispatcher, tracker: Tracker, slots: Dict[str, Any]) -> None:
    value = {slot: slots.get(slot, tracker.get_slot(slot)) for slot in FORM_SLOTS["repair_form"]}
    dispatcher.utter_message(
        response="utter_confirm_repair",
        item=value["repair_item"],
        location=value["repair_location"],
        description=value["repair_description"],
        time=value["repair_time"],
    )


def _instalment_readback(dispatcher: CollectingDispatcher, tracker: Tracker, slots: Dict[str, Any]) -> None:
    plan = slots.get("instalment_plan", tracker.get_slot("instalment_plan"))
    dispatcher.utter_message(response="utter_confirm_instalment", plan=plan)


# What each read-back reads back, as the owner hears it (data/wording.yml).
RECORD_NAMES = {REPAIR_READBACK: "forms.record_repair", INSTALMENT_READBACK: "forms.record_instalment"}


def payment_date_at_readback(tracker: Tracker, *, by_intent: bool = True) -> Optional[str]:
    """A payment date in the latest message while a record (not a promise) is being read back, else ``None``.

    Whatever intent the NLU gave, a date with pay wording (那就下周五交吧) counts: the message's ``time``
    entities, which the NLU pipeline's rule extractor resolved with the project's date parser on the
    message's date. With ``by_intent`` false, only a date with pay wording counts: the NLU reads a visiting
    time said at the repair read-back (改成周六下午, 对，就是周六下午) as ``promise_to_pay`` too.
    """
    if tracker.get_slot("pending_offer") not in RECORD_NAMES:
        return None
    latest = tracker.latest_message or {}
    return slot_filling.payment_date_said(
        str(latest.get("text") or ""),
        today=message_date(tracker),
        intent=latest_intent(tracker) if by_intent else None,
        entities=list(latest.get("entities") or []),
    )


def keep_payment_date(dispatcher: CollectingDispatcher, tracker: Tracker, payment_date: str) -> List[EventType]:
    """Tell the owner the date is kept until the record is settled; the slots that keep it.

    ``promise_waiting`` makes the rules start the promise form once the record is confirmed or cancelled;
    the form takes the date up and reads the promise back.
    """
    day, _ = slot_filling.promise_verdict(payment_date, today=message_date(tracker))
    record = wording.text(RECORD_NAMES[str(tracker.get_slot("pending_offer"))])
    said = promises.format_date(day, today=message_date(tracker)) if day else payment_date
    dispatcher.utter_message(text=wording.text("forms.promise_kept", date=said, record=record))
    return [SlotSet("promise_date", payment_date), SlotSet("promise_waiting", True)]


async def take_up_promise_said(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    """After a record written without a read-back (a complaint, a bill check): the promise its message made.

    A payment date in the message that completed the record (投诉…，修好了下周五再交) is read back at once
    for a verified owner, the amount defaulting to the arrears; the promise read-back rules take the reply.
    A date the 90-day rule refuses is answered with the reason; an owner not verified is asked to say the
    date again as a promise, which starts the promise form and its identity check.

    Returns:
        The promise read-back's slots, or nothing when the message named no payment date.
    """
    latest = tracker.latest_message or {}
    today = message_date(tracker)
    said = slot_filling.payment_date_said(
        str(latest.get("text") or ""),
        today=today,
        intent=latest_intent(tracker),
        entities=list(latest.get("entities") or []),
    )
    if said is None:
        return []
    day, verdict = slot_filling.promise_verdict(said, today=today)
    if day is None or verdict is not promises.DateVerdict.OK:
        dispatcher.utter_message(text=promises.rejection(verdict, today=today, expression=said))
        return []
    owner_id = await resolve_owner_id(tracker)
    if owner_id is None:
        dispatcher.utter_message(text=wording.text("forms.promise_verify_first", date=promises.format_date(day)))
        return []
    amount = await in_session(lambda session: promises.default_amount(session, owner_id=owner_id, today=today))
    dispatcher.utter_message(text=promises.confirmation_question(day, amount))
    return [
        SlotSet("promise_date", day.isoformat()),
        SlotSet("promise_amount", str(amount)),
        SlotSet("pending_offer", PROMISE_READBACK),
    ]


def read_back_again(dispatcher: CollectingDispatcher, tracker: Tracker) -> Optional[str]:
    """Repeat the pending read-back (after answering a question asked at it); its kind, or ``None``."""
    kind = tracker.get_slot("pending_offer")
    if kind == PROMISE_READBACK:
        question = _promise_question(tracker, {})
        if question is None:
            return None
        dispatcher.utter_message(text=question)
    elif kind == REPAIR_READBACK:
        _repair_readback(dispatcher, tracker, {})
    elif kind == INSTALMENT_READBACK:
        _instalment_readback(dispatcher, tracker, {})
    else:
        return None
    return str(kind)


def _kept_with_question(dispatcher: CollectingDispatcher, tracker: Tracker) -> List[EventType]:
    """A payment date said with a question at a read-back (下周五交，怎么交？): kept before the record is read again."""
    payment_date = payment_date_at_readback(tracker)
    return [] if payment_date is None else keep_payment_date(dispatcher, tracker, payment_date)


class ActionConfirmPromise(Action):
    """After the promise form: ask "对吗？" quoting date (with weekday) and amount."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_confirm_promise"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Ask for confirmation; the reply is judged by ``action_review_readback``."""
        question = _promise_question(tracker, {})
        if question is None:
            return []
        dispatcher.utter_message(text=question)
        return [SlotSet("pending_offer", PROMISE_READBACK)]


class ActionConfirmRepair(Action):
    """After the repair form: read the order back (item, location, description, visiting time)."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_confirm_repair"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Ask for confirmation before the order is written (again, after a question asked at the read-back)."""
        kept = _kept_with_question(dispatcher, tracker)
        _repair_readback(dispatcher, tracker, {})
        return [*kept, SlotSet("pending_offer", REPAIR_READBACK)]


class ActionConfirmInstalment(Action):
    """After the instalment form: read the plan back and say staff decide."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_confirm_instalment"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Ask for confirmation before the request is filed (again, after a question asked at the read-back)."""
        kept = _kept_with_question(dispatcher, tracker)
        _instalment_readback(dispatcher, tracker, {})
        return [*kept, SlotSet("pending_offer", INSTALMENT_READBACK)]


class ActionReviewReadback(Action):
    """The owner answered a read-back: confirm, correct, ask which part, or cancel."""

    def name(self) -> str:
        """Action name used in the domain."""
        return "action_review_readback"

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Judge the reply to the pending read-back."""
        kind = tracker.get_slot("pending_offer")
        if kind not in READBACKS:
            dispatcher.utter_message(response="utter_anything_else")
            return []
        confirmed, form = READBACKS[kind]
        slots = FORM_SLOTS[form]
        current = {slot: tracker.get_slot(slot) for slot in slots}
        latest = tracker.latest_message or {}
        text, entities, intent = str(latest.get("text") or ""), latest.get("entities") or [], latest_intent(tracker)
        today = message_date(tracker)
        payment_date = payment_date_at_readback(tracker, by_intent=False)
        if kind == PROMISE_READBACK:
            review = slot_filling.review_promise(text, today=today, current=current, entities=entities, intent=intent)
        elif kind == REPAIR_READBACK:
            review = slot_filling.review_repair(text, today=today, current=current, entities=entities, intent=intent)
        else:
            review = slot_filling.review_instalment(text, current=current, intent=intent)
        outcome = review.outcome
        if payment_date is None and not (
            kind == REPAIR_READBACK
            and slot_filling.read_repair(text, today=today, entities=entities, intent=intent).time
        ):
            # no pay wording, but the NLU heard a promise, and its date is no visiting time (对，就是周六下午)
            payment_date = payment_date_at_readback(tracker)
        if payment_date is not None:
            return self._keep_payment_date(dispatcher, tracker, payment_date, review)
        if outcome is slot_filling.Outcome.CONFIRMED:
            return [SlotSet("pending_offer", confirmed)]
        if outcome is slot_filling.Outcome.CANCELLED:
            if tracker.get_slot("promise_waiting") and kind in RECORD_NAMES:
                # the kept payment date is read back next (the rules start the promise form)
                record = wording.text(RECORD_NAMES[kind])
                dispatcher.utter_message(text=wording.text("forms.cancelled_promise_kept", record=record))
            else:
                dispatcher.utter_message(response="utter_form_cancelled")
            return [SlotSet("pending_offer", None), *(SlotSet(slot, None) for slot in slots)]
        if outcome is slot_filling.Outcome.CORRECTED:
            if kind == PROMISE_READBACK:
                dispatcher.utter_message(text=_promise_question(tracker, review.changes))
            elif kind == REPAIR_READBACK:
                _repair_readback(dispatcher, tracker, review.changes)
            else:
                _instalment_readback(dispatcher, tracker, review.changes)
            return [*(SlotSet(slot, value) for slot, value in review.changes.items()), SlotSet("pending_offer", kind)]
        if outcome is slot_filling.Outcome.DENIED and kind == PROMISE_READBACK:
            # The repeated date or amount was wrong and no new one was given: record nothing, ask again.
            dispatcher.utter_message(response="utter_promise_not_recorded")
            return [SlotSet("pending_offer", None), *(SlotSet(slot, None) for slot in slots)]
        if outcome is slot_filling.Outcome.REJECTED and review.message:
            dispatcher.utter_message(text=review.message)
        elif outcome is slot_filling.Outcome.DENIED:
            dispatcher.utter_message(text=wording.text("forms.readback_which"))
        else:
            dispatcher.utter_message(text=wording.text("forms.readback_unclear"))
        return [SlotSet("pending_offer", kind)]

    @staticmethod
    def _keep_payment_date(
        dispatcher: CollectingDispatcher, tracker: Tracker, payment_date: str, review: slot_filling.Review
    ) -> List[EventType]:
        """A payment date said at a record's read-back: keep it and ask about the record again.

        The record is not confirmed or cancelled by this reply, whatever else it says: a correction in it is
        applied and the record read back in full, otherwise the read-back is asked again briefly. Once the
        owner confirms or cancels, the rules take the date up (``promise_waiting``).
        """
        kind = str(tracker.get_slot("pending_offer"))
        kept = keep_payment_date(dispatcher, tracker, payment_date)
        if review.outcome is slot_filling.Outcome.CORRECTED:
            if kind == REPAIR_READBACK:
                _repair_readback(dispatcher, tracker, review.changes)
            else:
                _instalment_readback(dispatcher, tracker, review.changes)
            changes = [SlotSet(slot, value) for slot, value in review.changes.items()]
            return [*changes, *kept, SlotSet("pending_offer", kind)]
        record = wording.text(RECORD_NAMES[kind])
        dispatcher.utter_message(text=wording.text("forms.readback_brief", record=record))
        return [*kept, SlotSet("pending_offer", kind)]
