"""Identity before disclosure, shared by every form that touches an owner's account."""

from __future__ import annotations

import abc
from typing import Any, Dict, List, Optional

from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.forms import FormValidationAction

from bot.db.session import session_scope
from bot.records import identity
from bot.records.units import parse_unit

IDENTITY_SLOTS = ("room", "phone_tail")

# Channels whose sender ids the client cannot choose: WeChat openids arrive in messages signed by WeChat,
# the web chat's socket.io session ids are issued and signed by the server. A conversation on one of them
# stays bound to the owner it was verified for (``identity.link_conversation``). Never "rest": a REST
# client names any sender id it likes.
TRUSTED_LINK_CHANNELS = frozenset({"wechat", "socketio"})


def is_verified(tracker: Tracker) -> bool:
    """Whether this conversation has proved who the owner is."""
    return verified_owner_id(tracker) is not None


def verified_owner_id(tracker: Tracker) -> Optional[int]:
    """The verified owner's id: from this conversation's slot, else from an earlier verification.

    The earlier verification (a ``ConversationLink``) counts only when the latest message came in on a
    channel in ``TRUSTED_LINK_CHANNELS``.
    """
    value = tracker.get_slot("verified_owner_id")
    if value is not None:
        return int(value)
    return linked_owner_id(tracker)


def linked_owner_id(tracker: Tracker) -> Optional[int]:
    """The owner this sender was bound to on a trusted channel, or ``None`` (untrusted channel, no link)."""
    channel = tracker.get_latest_input_channel()
    if channel not in TRUSTED_LINK_CHANNELS or not tracker.sender_id:
        return None
    with session_scope() as session:
        owner = identity.linked_owner(session, channel=channel, sender_id=tracker.sender_id)
    return owner.owner_id if owner is not None else None


def check_identity(
    dispatcher: CollectingDispatcher, tracker: Tracker, room: Optional[str], tail: Optional[str]
) -> Dict[str, Any]:
    """Verify room + phone tail against the database; slot updates for success, a retry, or giving up."""
    if not room or not tail:
        return {}
    with session_scope() as session:
        owner = identity.verify(session, room=room, phone_tail=tail)
        if owner is not None:
            identity.link_conversation(
                session,
                channel=tracker.get_latest_input_channel() or "rest",
                sender_id=tracker.sender_id,
                owner_id=owner.owner_id,
            )
    if owner is not None:
        dispatcher.utter_message(response="utter_identity_verified", owner_name=owner.name)
        return {"verified_owner_id": float(owner.owner_id), "identity_attempts": 0.0}
    attempts = int(tracker.get_slot("identity_attempts") or 0) + 1
    if attempts >= identity.MAX_ATTEMPTS:
        return {
            "room": None,
            "phone_tail": None,
            "identity_attempts": float(attempts),
            "identity_failed": True,
        }
    dispatcher.utter_message(response="utter_identity_mismatch")
    return {"room": None, "phone_tail": None, "identity_attempts": float(attempts)}


class IdentityFormValidation(FormValidationAction, metaclass=abc.ABCMeta):
    """Asks room and phone tail first, unless the conversation is already verified.

    Abstract, so that rasa-sdk's action scan registers only the concrete forms.
    """

    @abc.abstractmethod
    def name(self) -> str:
        """Each form names itself."""

    async def required_slots(
        self,
        domain_slots: List[str],
        dispatcher: CollectingDispatcher,
        tracker: Tracker,
        domain: Dict[str, Any],
    ) -> List[str]:
        """Skip identity when verified; ask nothing more once identity has failed too often."""
        if tracker.get_slot("identity_failed"):
            return []
        if is_verified(tracker):
            return [slot for slot in domain_slots if slot not in IDENTITY_SLOTS]
        return domain_slots

    def validate_room(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        """Accept a parseable unit address, then verify if the phone tail is known too."""
        address = parse_unit(str(value or ""))
        if address is None:
            dispatcher.utter_message(response="utter_ask_room")
            return {"room": None}
        return {
            "room": address.label,
            **check_identity(dispatcher, tracker, address.label, tracker.get_slot("phone_tail")),
        }

    def validate_phone_tail(
        self, value: Any, dispatcher: CollectingDispatcher, tracker: Tracker, domain: Dict[str, Any]
    ) -> Dict[str, Any]:
        """Accept four digits, then verify against the room."""
        tail = str(value or "").strip()
        if len(tail) != 4 or not tail.isdigit():
            return {"phone_tail": None}
        if is_verified(tracker):
            return {"phone_tail": tail}
        return {"phone_tail": tail, **check_identity(dispatcher, tracker, tracker.get_slot("room"), tail)}
