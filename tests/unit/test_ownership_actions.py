"""A conversation verified before a transfer is not verified after it: the actions read the database, not the slot
(the demo estate in SQLite; the stored rules are tested on both databases in test_ownership.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import forms, owner_data
from actions import identity as identity_actions
from bot.db import models
from bot.db.session import session_scope
from bot.owners import identity, ownership
from tests.builders import run, tracker, user_event, validate

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
ROOM = "3栋2单元501"


@pytest.fixture
def former(estate_env: str) -> Dict[str, Any]:
    """王建国 (3栋2单元501, tail 6688) transferred to 孙丽 (tail 0001) by a manager; his id and the database."""
    with session_scope(estate_env) as session:
        wang = identity.verify(session, room=ROOM, phone_tail="6688")
        assert wang is not None
        done = ownership.transfer(
            session, owner_id=wang.owner_id, on=dt.date(2026, 11, 24), actor="li", new_name="孙丽", new_phone="13955550001"
        )
    return {"url": estate_env, "wang": float(wang.owner_id), "sun": float(done.new_owner_id)}


def verified_before(former: Dict[str, Any], *, entities: Optional[List[Dict[str, Any]]] = None) -> Any:
    """A REST conversation that verified as 王建国 before the transfer; Rasa hands the form its prefilled slots."""
    entities = entities or []
    slots = {"verified_owner_id": former["wang"], "room": ROOM, "phone_tail": "6688"}
    events = [
        user_event("ask_arrears", text="我欠多少物业费", entities=entities),
        {"event": "slot", "name": "room", "value": ROOM},
        {"event": "slot", "name": "phone_tail", "value": "6688"},
    ]
    return tracker("ask_arrears", slots, text="我欠多少物业费", entities=entities, events=events)


def slot_events(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {event["name"]: event["value"] for event in events if event.get("event") == "slot"}


def attempts(url: str) -> List[Any]:
    with session_scope(url) as session:
        return [row.succeeded for row in session.execute(select(models.IdentityAttempt)).scalars()]


def test_the_arrears_are_not_told_on_a_slot_verified_before_the_transfer(former: Dict[str, Any]) -> None:
    messages, _ = run(owner_data.ActionTellArrears(), tracker(slots={"verified_owner_id": former["wang"]}))
    assert "utter_arrears" not in [message.get("response") for message in messages]
    assert "2,460" not in str(messages) and "孙丽" not in str(messages)
    assert [message.get("response") for message in messages] == ["utter_identity_failed"]
    # The new owner's verification is honoured.
    messages, _ = run(owner_data.ActionTellArrears(), tracker(slots={"verified_owner_id": former["sun"]}))
    assert messages[0]["response"] == "utter_arrears" and messages[0]["amount"] == "2,460.00"


def test_the_form_forgets_the_stale_identity_and_asks_afresh(former: Dict[str, Any]) -> None:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(forms.ValidateArrearsForm().run(dispatcher, verified_before(former), DOMAIN))
    assert dispatcher.messages == []  # no "does not match" for a tail the owner did not type now
    # Both identity slots empty again: Rasa's form asks for the room next (the e2e test hears it).
    assert slot_events(events) == {"verified_owner_id": None, "room": None, "phone_tail": None}
    assert attempts(former["url"]) == []  # nothing counted against the unit


def test_a_room_given_in_this_very_message_is_kept(former: Dict[str, Any]) -> None:
    dispatcher = CollectingDispatcher()
    said = [{"entity": "room", "value": ROOM, "start": 0, "end": 8}]
    events = asyncio.run(forms.ValidateArrearsForm().run(dispatcher, verified_before(former, entities=said), DOMAIN))
    assert slot_events(events) == {"verified_owner_id": None, "phone_tail": None, "room": ROOM}


def test_the_old_phone_tail_no_longer_verifies_and_the_new_owners_does(former: Dict[str, Any]) -> None:
    action = forms.ValidateArrearsForm()
    messages, result = validate(action, tracker(slots={"room": ROOM}), "phone_tail", "6688")
    assert [message["response"] for message in messages] == ["utter_identity_mismatch"]
    assert result == {"phone_tail": None, "room": None, "identity_attempts": 1.0}
    messages, result = validate(action, tracker(slots={"room": ROOM}, sender="owner-2"), "phone_tail", "0001")
    assert messages[0]["response"] == "utter_identity_verified" and messages[0]["owner_name"] == "孙丽"
    assert result["verified_owner_id"] == former["sun"]
    assert attempts(former["url"]) == [False, True]
    assert identity_actions.verified_owner_id(tracker(slots={"verified_owner_id": former["wang"]})) is None
