"""A verified WeChat openid stays bound to its owner; a REST sender id never counts as verified by a link."""

import asyncio
from pathlib import Path
from typing import Any, Dict, Iterator, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from actions import forms
from actions import identity as identity_actions
from actions.owner_data import ActionTellArrears
from bot.db import migrate
from bot.db.session import get_engine, session_scope
from bot.owners import identity, importer
from bot.settings import get_settings
from tests import builders

ROOT = Path(__file__).resolve().parents[2]
OPENID = "oWECHAT-verified-owner"


@pytest.fixture
def owner_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[int]:
    """The demo estate in a fresh database, with 3栋2单元501's owner linked on wechat and socketio."""
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    get_settings.cache_clear()
    migrate.upgrade(url)
    with session_scope(url) as session:
        importer.import_arrears(session, ROOT / "data" / "demo" / "arrears.csv")
        owner = identity.verify(session, room="3栋2单元501", phone_tail="6688")
        assert owner is not None
        for channel in ("wechat", "socketio", "rest"):
            identity.link_conversation(session, channel=channel, sender_id=OPENID, owner_id=owner.owner_id)
    yield owner.owner_id
    get_engine(url).dispose()
    get_settings.cache_clear()


def tracker(channel: Optional[str], sender: str = OPENID, slots: Optional[Dict[str, Any]] = None) -> Tracker:
    return builders.tracker("ask_arrears", slots, text="我欠多少物业费", channel=channel, sender=sender)


@pytest.mark.parametrize("channel", ["wechat", "socketio"])
def test_a_linked_sender_on_a_trusted_channel_is_verified(owner_id: int, channel: str) -> None:
    assert identity_actions.verified_owner_id(tracker(channel)) == owner_id
    assert identity_actions.is_verified(tracker(channel))


@pytest.mark.parametrize("channel", ["rest", None, "facebook", "WeChat"])
def test_a_link_never_counts_on_other_channels(owner_id: int, channel: Optional[str]) -> None:
    # Even with a link stored for "rest": a REST client picks any sender id it likes.
    assert identity_actions.verified_owner_id(tracker(channel)) is None
    assert not identity_actions.is_verified(tracker(channel))


def test_an_unlinked_sender_is_not_verified(owner_id: int) -> None:
    assert identity_actions.verified_owner_id(tracker("wechat", sender="oSomeoneElse")) is None


def test_the_slot_is_a_claim_honoured_only_for_a_current_owner(owner_id: int) -> None:
    claim = {"verified_owner_id": float(owner_id)}
    assert identity_actions.verified_owner_id(tracker("rest", slots=claim)) == owner_id
    assert identity_actions.verified_owner_id(tracker("rest", slots={"verified_owner_id": 999.0})) is None
    # On a trusted channel the open link decides: a slot without one is not honoured.
    assert identity_actions.verified_owner_id(tracker("wechat", sender="oSomeoneElse", slots=claim)) is None


def test_the_latest_message_decides_the_channel(owner_id: int) -> None:
    # Linked on wechat, but the latest message came in over REST with the same id: not verified.
    state = tracker("wechat")
    later = {
        "event": "user",
        "text": "我欠多少物业费",
        "parse_data": state.latest_message,
        "input_channel": "rest",
    }
    mixed = Tracker(
        OPENID, {}, state.latest_message, [*state.events, later], False, None, {}, "action_listen"
    )
    assert identity_actions.verified_owner_id(mixed) is None


def test_a_linked_wechat_owner_is_not_asked_for_identity_again(owner_id: int) -> None:
    dispatcher = CollectingDispatcher()
    validation = forms.ValidateArrearsForm()
    slots = asyncio.run(validation.required_slots(["room", "phone_tail"], dispatcher, tracker("wechat"), {}))
    assert slots == []
    slots = asyncio.run(validation.required_slots(["room", "phone_tail"], dispatcher, tracker("rest"), {}))
    assert slots == ["room", "phone_tail"]

    dispatcher = CollectingDispatcher()
    asyncio.run(ActionTellArrears().run(dispatcher, tracker("wechat"), {}))
    assert dispatcher.messages[0]["response"] == "utter_arrears"
    assert dispatcher.messages[0]["unit"] == "3栋2单元501"


def test_verification_on_wechat_links_the_openid(owner_id: int) -> None:
    dispatcher = CollectingDispatcher()
    new_openid = "oWECHAT-new"
    slots = asyncio.run(
        identity_actions.check_identity(dispatcher, tracker("wechat", sender=new_openid), "3栋2单元501", "6688")
    )
    assert slots["verified_owner_id"] == float(owner_id)
    assert identity_actions.verified_owner_id(tracker("wechat", sender=new_openid)) == owner_id
