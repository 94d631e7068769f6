"""The bot answers with the supervisors' latest wording (a CollectingDispatcher and hand-built trackers, the
database found through DATABASE_URL as in the action server), and with the YAML's when the database is down."""

from __future__ import annotations

import asyncio
import logging
from typing import Iterator

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy.orm import Session

from actions.objections import ActionAffirm, ActionAnswerObjection, ActionDeny
from bot import offers
from bot.playbook import default_playbook
from bot.services import playbook_edits
from bot.settings import get_settings
from tests.builders import tracker_after

HEATING = "objection_heating"
NEW_ANSWERS = [
    "暖气不热确实难受，我们今天就安排师傅上门测温，找出原因马上处理。物业费也请您按时交上。",
    "您说的情况我们记下了，工程人员会上门排查暖气，每一步进展都告诉您。物业费这边还请您安排一下。",
]
NEW_OFFER = "我马上给您登记暖气报修，师傅今天上门，可以吗？"
NEW_FOLLOW_UP = "暖气的事我们跟到底，您看物业费哪天方便交上？"


@pytest.fixture
def bot_database(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The action server's database is the test database."""
    monkeypatch.setenv("DATABASE_URL", database_url)
    get_settings.cache_clear()
    playbook_edits.clear_cache()
    yield database_url
    get_settings.cache_clear()
    playbook_edits.clear_cache()


def run(action, tracker: Tracker) -> tuple[list, list]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, {}))
    return [m.get("text") or m.get("response") for m in dispatcher.messages], events


def test_the_bot_answers_with_the_edited_wording(bot_database: str, session: Session) -> None:
    messages, _ = run(ActionAnswerObjection(), tracker_after(HEATING))
    yaml_entry = default_playbook().get(HEATING)
    assert yaml_entry is not None and messages == [yaml_entry.answers[0], yaml_entry.offer.text]

    playbook_edits.save(
        session,
        intent=HEATING,
        fields={"answers": NEW_ANSWERS, "offer.text": NEW_OFFER, "follow_up": NEW_FOLLOW_UP},
        actor="li",
        based_on=0,
    )
    session.commit()

    messages, _ = run(ActionAnswerObjection(), tracker_after(HEATING))
    assert messages == [NEW_ANSWERS[0], NEW_OFFER]
    messages, _ = run(ActionAnswerObjection(), tracker_after(HEATING, "deny", HEATING))
    assert messages[0] == NEW_ANSWERS[1]
    slots = {"pending_offer": "repair_order", "last_objection": HEATING}
    messages, _ = run(ActionAffirm(), tracker_after(HEATING, "affirm", slots=slots))
    assert messages == [offers.accepted_reply("repair_order"), NEW_FOLLOW_UP]
    messages, _ = run(ActionDeny(), tracker_after(HEATING, "deny", slots=slots))
    assert messages == [offers.declined_reply(), NEW_FOLLOW_UP]


def test_the_yaml_wording_when_the_database_is_unreachable(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
    get_settings.cache_clear()
    playbook_edits.clear_cache()
    try:
        with caplog.at_level(logging.ERROR, logger="actions.objections"):
            messages, _ = run(ActionAnswerObjection(), tracker_after(HEATING))
    finally:
        get_settings.cache_clear()
    entry = default_playbook().get(HEATING)
    assert entry is not None and messages == [entry.answers[0], entry.offer.text]
    assert any("YAML playbook" in record.getMessage() for record in caplog.records)
