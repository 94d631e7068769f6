"""Identity before disclosure: the adapter between the forms and :mod:`bot.services.identity`."""

from __future__ import annotations

import abc
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.events import EventType, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from actions.unit_of_work import in_session
from bot import wording
from bot.owners.units import parse_unit
from bot.services import escalations
from bot.services import identity as identity_service
from bot.services.identity import MAX_ATTEMPTS_PER_CONVERSATION, Outcome

IDENTITY_SLOTS = ("room", "phone_tail")


def claimed_owner_id(tracker: Tracker) -> Optional[int]:
    """The owner this conversation's slot says it verified: a claim, checked by :func:`owner_id_in`."""
    value = tracker.get_slot("verified_owner_id")
    return None if value is None else int(value)


def owner_id_in(session: Session, tracker: Tracker) -> Optional[int]:
    """The verified owner's id as the database has it now (within ``session``), or ``None``.

    The slot is only a claim: a trusted channel's open link decides there, and elsewhere the claimed owner must
    still be a current owner (:func:`bot.services.identity.verified_owner_id`), so a conversation verified
    before a transfer is not verified after it.
    """
    return identity_service.verified_owner_id(
        session,
        claimed=claimed_owner_id(tracker),
        channel=tracker.get_latest_input_channel(),
        sender_id=tracker.sender_id,
    )


def verified_owner_id(tracker: Tracker) -> Optional[int]:
    """The verified owner's id, or ``None``; blocking (for code already off the event loop)."""
    from bot.db.session import session_scope

    with session_scope() as session:
        return owner_id_in(session, tracker)


async def resolve_owner_id(tracker: Tracker) -> Optional[int]:
    """The verified owner's id, or ``None``, with the database lookup off the event loop."""
    return await in_session(lambda session: owner_id_in(session, tracker))


def is_verified(tracker: Tracker) -> bool:
    """Whether this conversation has proved who the owner is."""
    return verified_owner_id(tracker) is not None


def _client(tracker: Tracker) -> str:
    return identity_service.client_key(
        channel=tracker.get_latest_input_channel(),
        sender_id=tracker.sender_id,
        metadata=tracker.latest_message.get("metadata"),
    )


def _verify_and_account(session: Session, tracker: Tracker, room: str, tail: str) -> Dict[str, Any]:
    """One unit of work: the verification, and the escalation it may call for."""
    channel = tracker.get_latest_input_channel()
    result = identity_service.verify(
        session, room=room, phone_tail=tail, client=_client(tracker), channel=channel, sender_id=tracker.sender_id
    )
    attempts = int(tracker.get_slot("identity_attempts") or 0) + (result.outcome is Outcome.MISMATCH)
    exhausted = result.outcome is Outcome.MISMATCH and attempts >= MAX_ATTEMPTS_PER_CONVERSATION
    escalation_number = None
    if result.locked_now or exhausted:
        # Staff hear of a lock once, when it happens; later tries on the locked unit add nothing.
        address = parse_unit(room)
        locked = (escalations.Reason.IDENTITY_LOCKED, f"unit {address.code if address else room}")
        reason, detail = locked if result.locked_now else (escalations.Reason.IDENTITY_FAILED, None)
        escalation_number = escalations.escalate(
            session,
            reason=reason,
            detail=detail,
            owner_id=None,
            channel=channel,
            sender_id=tracker.sender_id,
            message_id=tracker.latest_message.get("message_id"),
        ).number
    return {
        "outcome": result.outcome,
        "owner": result.owner,
        "attempts": attempts,
        "exhausted": exhausted,
        "number": escalation_number,
    }


async def check_identity(
    dispatcher: CollectingDispatcher, tracker: Tracker, room: Optional[str], tail: Optional[str]
) -> Dict[str, Any]:
    """Verify room + phone tail; slot updates for success, a retry, or giving up.

    Giving up (too many tries here, or a unit or client locked in the database) tells the owner at once and
    sets ``identity_failed``, so the form stops and the action after it stays silent.
    """
    if not room or not tail:
        return {}
    try:
        outcome = await in_session(lambda session: _verify_and_account(session, tracker, room, tail))
    except SQLAlchemyError:
        dispatcher.utter_message(text=wording.text("identity.unavailable"))
        return {"room": None, "phone_tail": None, "identity_failed": True, "pending_offer": "staff_callback"}
    owner = outcome["owner"]
    if owner is not None:
        dispatcher.utter_message(response="utter_identity_verified", owner_name=owner.name)
        return {"verified_owner_id": float(owner.owner_id), "identity_attempts": 0.0}
    give_up = {"room": None, "phone_tail": None, "identity_attempts": 0.0, "identity_failed": True}
    if outcome["outcome"] in (Outcome.UNIT_LOCKED, Outcome.CLIENT_LOCKED):
        dispatcher.utter_message(text=wording.text("identity.locked"))
        return {**give_up, "pending_offer": "staff_callback"}
    if outcome["exhausted"]:
        dispatcher.utter_message(
            response="utter_identity_failed", number=outcome["number"], staff_answer=escalations.staff_answer()
        )
        return give_up
    dispatcher.utter_message(response="utter_identity_mismatch")
    return {"room": None, "phone_tail": None, "identity_attempts": float(outcome["attempts"])}


def _forget(tracker: Tracker, slots: List[str]) -> None:
    """Clear ``slots`` on ``tracker`` and drop them from the candidates Rasa appended for validation."""
    for slot in slots:
        tracker.slots[slot] = None
    trailing = len(tracker.events)
    while trailing > 0 and tracker.events[trailing - 1].get("event") == "slot":
        trailing -= 1
    tracker.events[trailing:] = [event for event in tracker.events[trailing:] if event.get("name") not in slots]


class IdentityFormValidation(FormValidationAction, metaclass=abc.ABCMeta):
    """Asks room and phone tail first, unless the conversation is already verified.

    Abstract, so that rasa-sdk's action scan registers only the concrete forms.
    """

    @abc.abstractmethod
    def name(self) -> str:
        """Each form names itself."""

    async def run(
        self, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> List[EventType]:
        """Validate as usual, first forgetting an identity the database no longer honours.

        A slot still naming an owner who was retired (or whose link was closed) since: the slot and the room
        and phone tail it was verified with are cleared, unless this very message gives them, so the form
        asks for them afresh instead of re-checking (and counting) the old ones without the owner saying so.
        """
        if claimed_owner_id(tracker) is None or await resolve_owner_id(tracker) is not None:
            return await super().run(dispatcher, tracker, domain)
        given = {entity.get("entity") for entity in tracker.latest_message.get("entities") or []}
        stale = ["verified_owner_id", *(slot for slot in IDENTITY_SLOTS if slot not in given)]
        _forget(tracker, stale)
        cleared: List[EventType] = [SlotSet(slot, None) for slot in stale]
        return [*cleared, *await super().run(dispatcher, tracker, domain)]

    async def required_slots(
        self,
        domain_slots: List[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[str]:
        """Skip identity when verified; ask nothing more once identity has failed."""
        if tracker.get_slot("identity_failed"):
            return []
        if await resolve_owner_id(tracker) is not None:
            return [slot for slot in domain_slots if slot not in IDENTITY_SLOTS]
        return domain_slots

    async def validate_room(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        """Accept a parseable unit address, then verify if the phone tail is known too."""
        address = parse_unit(str(value or ""))
        if address is None:
            dispatcher.utter_message(response="utter_ask_room")
            return {"room": None}
        return {
            "room": address.label,
            **await check_identity(dispatcher, tracker, address.label, tracker.get_slot("phone_tail")),
        }

    async def validate_phone_tail(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        """Accept four digits, then verify against the room."""
        tail = str(value or "").strip()
        if len(tail) != 4 or not tail.isdigit():
            return {"phone_tail": None}
        if await resolve_owner_id(tracker) is not None:
            return {"phone_tail": tail}
        return {"phone_tail": tail, **await check_identity(dispatcher, tracker, tracker.get_slot("room"), tail)}
