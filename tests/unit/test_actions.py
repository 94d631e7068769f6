"""Every action, run with a CollectingDispatcher and hand-built trackers: no model, no server."""

import asyncio
from typing import Any, Dict, List, Optional

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions.fallback import ActionHandleFallback, consecutive_fallbacks
from actions.objections import ActionAffirm, ActionAnswerObjection, ActionDeny
from actions.promises import ActionConfirmPromise
from bot import offers
from bot.playbook import default_playbook
from bot.services.promises import follow_up
from tests.builders import tracker_after


def tracker(
    *intents: str,
    slots: Optional[Dict[str, Any]] = None,
    entities: Optional[List[Dict[str, Any]]] = None,
    metadata: Optional[Dict[str, Any]] = None,
) -> Tracker:
    return tracker_after(*intents, slots=slots, entities=entities, metadata=metadata)


def run(action, tracker_: Tracker) -> tuple[list, list]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker_, {}))
    return [m.get("text") or m.get("response") for m in dispatcher.messages], events


def test_a_question_at_a_read_back_is_answered_and_the_record_read_back_again() -> None:
    entry = default_playbook().get("ask_fee_usage")
    slots = {
        "pending_offer": "repair_readback",
        "repair_item": "暖气",
        "repair_location": "3栋2单元501客厅",
        "repair_description": "暖气片不热",
        "repair_time": "11月28日（周六）下午",
    }
    dispatcher = CollectingDispatcher()
    events = asyncio.run(ActionAnswerObjection().run(dispatcher, tracker("ask_fee_usage", slots=slots), {}))
    assert dispatcher.messages[0]["text"] == entry.answers[0]
    assert dispatcher.messages[1]["response"] == "utter_confirm_repair"
    assert (dispatcher.messages[1]["location"], dispatcher.messages[1]["time"]) == (
        "3栋2单元501客厅",
        "11月28日（周六）下午",
    )
    assert len(dispatcher.messages) == 2  # no new offer competes with the read-back
    assert events == [SlotSet("last_objection", "ask_fee_usage"), SlotSet("pending_offer", "repair_readback")]


def test_objection_gets_its_playbook_answer_and_offer() -> None:
    entry = default_playbook().get("objection_heating")
    messages, events = run(ActionAnswerObjection(), tracker("objection_heating"))
    assert messages == [entry.answers[0], entry.offer.text]
    assert events == [
        SlotSet("last_objection", "objection_heating"),
        SlotSet("pending_offer", "repair_order"),
    ]


def test_repeated_objection_rotates_the_answer() -> None:
    entry = default_playbook().get("objection_fee_too_high")
    messages, _ = run(
        ActionAnswerObjection(), tracker("objection_fee_too_high", "deny", "objection_fee_too_high")
    )
    assert messages[0] == entry.answers[1]


@pytest.mark.parametrize("intent", sorted(set(default_playbook().intents) - {"threaten_escalation"}))
def test_every_playbook_intent_is_answered(intent: str) -> None:
    messages, events = run(ActionAnswerObjection(), tracker(intent))
    assert len(messages) == 2 and all(messages)
    assert SlotSet("last_objection", intent) in events


def test_unknown_intent_falls_back_to_rephrase() -> None:
    messages, events = run(ActionAnswerObjection(), tracker("greet"))
    assert messages == ["utter_default"] and events == []


def test_affirm_takes_up_the_offer_and_steers_to_a_date() -> None:
    entry = default_playbook().get("objection_heating")
    slots = {"pending_offer": "repair_order", "last_objection": "objection_heating"}
    messages, events = run(ActionAffirm(), tracker("objection_heating", "affirm", slots=slots))
    assert messages == [offers.accepted_reply("repair_order"), entry.follow_up]
    assert events == [SlotSet("pending_offer", None)]


def test_deny_declines_politely_and_steers_to_a_date() -> None:
    slots = {"pending_offer": "itemised_breakdown", "last_objection": "objection_fee_too_high"}
    messages, events = run(ActionDeny(), tracker("objection_fee_too_high", "deny", slots=slots))
    assert messages == [offers.declined_reply(), default_playbook().get("objection_fee_too_high").follow_up]
    assert events == [SlotSet("pending_offer", None)]


def test_yes_or_no_without_an_offer() -> None:
    assert run(ActionAffirm(), tracker("affirm")) == (["utter_anything_else"], [])
    assert run(ActionDeny(), tracker("deny")) == (["utter_anything_else"], [])


def test_yes_to_a_person_after_fallbacks_uses_the_default_follow_up() -> None:
    messages, _ = run(
        ActionAffirm(), tracker("nlu_fallback", "affirm", slots={"pending_offer": "staff_callback"})
    )
    assert messages == [offers.accepted_reply("staff_callback"), follow_up()]


def test_promise_is_repeated_with_weekday_before_recording() -> None:
    slots = {"promise_date": "2026-12-04", "promise_amount": 2460.0}
    messages, events = run(ActionConfirmPromise(), tracker("promise_to_pay", slots=slots))
    assert messages == ["跟您确认一下：您打算在12月4日（周五）交2,460.00元，对吗？"]
    assert events == [SlotSet("pending_offer", "payment_promise")]


def test_no_to_the_repeated_promise_records_nothing_and_clears_the_date() -> None:
    slots = {"pending_offer": "payment_promise", "promise_date": "2026-12-04", "promise_amount": 10.0}
    messages, events = run(ActionDeny(), tracker("promise_to_pay", "deny", slots=slots))
    assert messages == ["utter_promise_not_recorded"]
    assert events == [
        SlotSet("pending_offer", None),
        SlotSet("promise_date", None),
        SlotSet("promise_amount", None),
    ]


def test_escalation_threat_gets_an_answer_without_an_offer() -> None:
    entry = default_playbook().get("threaten_escalation")
    messages, events = run(ActionAnswerObjection(), tracker("threaten_escalation"))
    assert messages == [entry.answers[0]]
    assert events == [SlotSet("last_objection", "threaten_escalation")]


def test_first_fallback_asks_to_rephrase() -> None:
    assert run(ActionHandleFallback(), tracker("greet", "nlu_fallback")) == (["utter_default"], [])


def test_second_fallback_in_a_row_offers_a_person() -> None:
    messages, events = run(ActionHandleFallback(), tracker("greet", "nlu_fallback", "nlu_fallback"))
    assert messages == ["utter_offer_human"]
    assert events == [SlotSet("pending_offer", "staff_callback")]


def test_consecutive_fallbacks_counts_only_the_latest_run() -> None:
    assert consecutive_fallbacks(["nlu_fallback", "greet", "nlu_fallback"]) == 1
    assert consecutive_fallbacks(["greet", "nlu_fallback", "nlu_fallback"]) == 2
    assert consecutive_fallbacks([]) == 0


def test_the_action_server_registers_every_action_package_cleanly() -> None:
    from rasa_sdk.executor import ActionExecutor

    executor = ActionExecutor()
    executor.register_package("actions")
    assert {"validate_promise_form", "action_answer_objection", "action_record_promise"} <= set(executor.actions)
    # The abstract base is registered under no name (its concrete forms are; their run may be the base's).
    registered = {type(getattr(run, "__self__", run)).__name__ for run in executor.actions.values()}
    assert "IdentityFormValidation" not in registered and "ValidateArrearsForm" in registered
