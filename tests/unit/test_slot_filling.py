"""Forms read what a message means: the rules in bot.services.slot_filling and the form actions over them."""

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest
import yaml
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import forms
from actions import promises as promise_actions
from bot import wording
from bot.services import promises
from bot.services import slot_filling as sf

ROOT = Path(__file__).resolve().parents[2]
TODAY = dt.date(2026, 11, 23)  # a Monday
DOMAIN = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
HEATING = {
    "repair_item": "暖气",
    "repair_location": "3栋2单元501客厅",
    "repair_description": "暖气片不热",
    "repair_time": "11月24日（周二）上午",
}


# --- one message or several, in any order ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3栋2单元501客厅暖气片不热，明天上午家里有人", HEATING),
        ("明天上午家里有人，3栋2单元501客厅暖气片不热", HEATING),
        ("3棟2單元501客廳暖氣片不熱，聽日上午屋企有人", {**HEATING, "repair_description": "暖气片不热"}),
        (
            "5号楼1203厨房水管漏水，周六下午3点以后都在家",
            {
                "repair_item": "水管",
                "repair_location": "5号楼1203厨房",
                "repair_description": "水管漏水",
                "repair_time": "11月28日（周六）下午3点以后",
            },
        ),
        (
            "卫生间的排风扇不转了，后天上午",
            {
                "repair_item": "排风扇",
                "repair_location": "卫生间",
                "repair_description": "排风扇不转了",
                "repair_time": "11月25日（周三）上午",
            },
        ),
        (
            "5号楼一层大堂的电梯卡住了",
            {"repair_item": "电梯", "repair_location": "5号楼1层大堂", "repair_description": "电梯卡住了"},
        ),
    ],
)
def test_one_message_fills_every_repair_slot_it_mentions(text: str, expected: Dict[str, str]) -> None:
    assert sf.read_repair(text, today=TODAY).slots() == expected


@pytest.mark.parametrize(
    ("requested", "text", "expected"),
    [
        # the observed conversation: each answer fits another question than the one asked
        ("repair_location", "暖气片摸上去是凉的，屋里只有16度", {"repair_item": "暖气", "repair_description": "暖气片摸上去是凉的，屋里只有16度"}),
        ("repair_description", "明天上午家里有人", {"repair_time": "11月24日（周二）上午"}),
        ("repair_description", "周末都可以来", {"repair_time": "周末"}),
        ("repair_location", "3栋2单元501 客厅和卧室", {"repair_location": "3栋2单元501客厅和卧室"}),
        # a plain answer no rule knows is kept for the slot asked
        ("repair_location", "垃圾房旁边那个位置", {"repair_location": "垃圾房旁边那个位置"}),
        ("repair_location", "地下二层B区", {"repair_location": "地下2层b区"}),
        ("repair_time", "越快越好", {"repair_time": "越快越好"}),
        ("repair_time", "随时都可以", {"repair_time": "随时"}),
        ("repair_item", "电梯", {"repair_item": "电梯"}),
    ],
)
def test_an_answer_fills_the_slot_it_means(requested: str, text: str, expected: Dict[str, str]) -> None:
    assert sf.read_repair(text, today=TODAY, requested=requested).slots() == expected


@pytest.mark.parametrize("text", ["下周五交钱", "下周五我就把物业费交了", "我下周五交", "下礼拜五过数"])
def test_a_promise_to_pay_is_never_a_visiting_time(text: str) -> None:
    details = sf.read_repair(text, today=TODAY, intent="promise_to_pay", requested="repair_time")
    assert details.slots() == {}
    assert details.payment_date == "2026-12-04"


@pytest.mark.parametrize(
    ("text", "intent"),
    [("算了", "deny"), ("不用了，不修了", "deny"), ("物业费怎么交", "ask_payment_methods"), ("好的", "affirm"), ("谢谢", "thank")],
)
def test_cancels_questions_and_small_talk_fill_nothing(text: str, intent: str) -> None:
    assert sf.read_repair(text, today=TODAY, intent=intent, requested="repair_location").slots() == {}


def test_home_alone_is_not_a_location_but_is_flagged() -> None:
    details = sf.read_repair("在家里", today=TODAY, requested="repair_location")
    assert details.slots() == {} and details.home_only


# --- instalment plans ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "plan"),
    [
        ("我想分三个月交", "分3个月"),
        ("分6期，每个月还500块", "分6期，每月500元"),
        ("先交1000块，剩下的分两个月交", "分2个月，先交1000元"),
        ("能按月交吗", "按月交"),
        ("半年内还清行不行", "半年内交清"),
        ("分開三期俾得唔得", "分3期"),
        ("物业费可以分期吗", None),
    ],
)
def test_a_stated_plan_is_recognised(text: str, plan: Optional[str]) -> None:
    assert sf.read_instalment_plan(text, intent="request_installment") == plan


@pytest.mark.parametrize(("text", "intent"), [("好的", "affirm"), ("嗯", "affirm"), ("可以", "affirm"), ("算了", "deny")])
def test_a_bare_yes_or_no_is_never_a_plan(text: str, intent: str) -> None:
    assert sf.read_instalment_plan(text, intent=intent, requested=True) is None


def test_a_free_answer_about_money_is_kept_when_the_plan_was_asked() -> None:
    assert sf.read_instalment_plan("先交一半，剩下的年后交", requested=True) == "先交一半"
    assert sf.read_instalment_plan("过完年手头宽裕点再说", requested=True) is None


# --- far dates -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("said", ["明年11月", "2027年10月份", "明年三月份", "3月", "明年"])
def test_a_far_month_is_too_far_not_vague(said: str) -> None:
    expected = promises.DateVerdict.VAGUE if said == "明年" else promises.DateVerdict.TOO_FAR
    assert sf.promise_verdict(said, today=TODAY) == (None, expected)


def test_a_near_month_is_vague_and_a_day_is_judged() -> None:
    assert sf.promise_verdict("2月份", today=TODAY) == (None, promises.DateVerdict.VAGUE)
    assert sf.promise_verdict("2026-12-04", today=TODAY) == (dt.date(2026, 12, 4), promises.DateVerdict.OK)
    assert sf.promise_verdict("明年3月5号", today=TODAY)[1] is promises.DateVerdict.TOO_FAR


# --- replies to a read-back -----------------------------------------------------------------------------

PROMISE = {"promise_date": "2026-12-04", "promise_amount": "2460.00"}


@pytest.mark.parametrize("text", ["对", "对，就12月4号", "是的，就下周五", "没错，12月4日交2460元", "下周五交"])
def test_a_yes_that_repeats_the_promise_confirms(text: str) -> None:
    assert sf.review_promise(text, today=TODAY, current=PROMISE).outcome is sf.Outcome.CONFIRMED


@pytest.mark.parametrize(
    ("text", "changes"),
    [
        ("不对，改成12月5号", {"promise_date": "2026-12-05"}),
        ("不是12月4号，是12月5号", {"promise_date": "2026-12-05"}),
        ("对，不过只交1000元", {"promise_amount": "1000.00"}),
    ],
)
def test_a_different_date_or_amount_corrects_the_promise(text: str, changes: Dict[str, str]) -> None:
    review = sf.review_promise(text, today=TODAY, current=PROMISE)
    assert (review.outcome, review.changes) == (sf.Outcome.CORRECTED, changes)


@pytest.mark.parametrize("text", ["明年11月", "改成2027年10月份"])
def test_a_far_correction_is_refused_with_the_90_day_rule(text: str) -> None:
    review = sf.review_promise(text, today=TODAY, current=PROMISE)
    assert review.outcome is sf.Outcome.REJECTED
    latest = promises.format_date(promises.latest_date(TODAY), today=TODAY)
    assert review.message == wording.text("promises.too_far", max_days=promises.MAX_PROMISE_DAYS, latest=latest)


@pytest.mark.parametrize(
    ("text", "outcome", "changes"),
    [
        ("对，就是明天上午", sf.Outcome.CONFIRMED, {}),
        ("对的", sf.Outcome.CONFIRMED, {}),
        ("不对，改成周六下午", sf.Outcome.CORRECTED, {"repair_time": "11月28日（周六）下午"}),
        ("时间改到后天下午吧", sf.Outcome.CORRECTED, {"repair_time": "11月25日（周三）下午"}),
        ("不对，是厨房", sf.Outcome.CORRECTED, {"repair_location": "3栋2单元501厨房"}),
        ("不是客厅，是3栋2单元502卧室", sf.Outcome.CORRECTED, {"repair_location": "3栋2单元502卧室"}),
        ("不对，是水管", sf.Outcome.CORRECTED, {"repair_item": "水管"}),
        ("不对", sf.Outcome.DENIED, {}),
        ("算了，不修了", sf.Outcome.CANCELLED, {}),
    ],
)
def test_replies_to_the_repair_read_back(text: str, outcome: sf.Outcome, changes: Dict[str, str]) -> None:
    review = sf.review_repair(text, today=TODAY, current=HEATING)
    assert (review.outcome, review.changes) == (outcome, changes)


@pytest.mark.parametrize(
    ("text", "outcome", "changes"),
    [
        ("好的", sf.Outcome.CONFIRMED, {}),
        ("对，就分三个月", sf.Outcome.CONFIRMED, {}),
        ("不对，改成分六个月", sf.Outcome.CORRECTED, {"instalment_plan": "分6个月"}),
        ("不对", sf.Outcome.DENIED, {}),
        ("算了", sf.Outcome.CANCELLED, {}),
    ],
)
def test_replies_to_the_instalment_read_back(text: str, outcome: sf.Outcome, changes: Dict[str, str]) -> None:
    review = sf.review_instalment(text, current={"instalment_plan": "分3个月"})
    assert (review.outcome, review.changes) == (outcome, changes)


# --- the form actions over the rules ----------------------------------------------------------------------


def _tracker(
    text: str,
    intent: str,
    *,
    slots: Optional[Dict[str, Any]] = None,
    form: Optional[str] = None,
    earlier: Optional[List[tuple]] = None,
) -> Tracker:
    latest = {
        "text": text,
        "intent": {"name": intent, "confidence": 0.9},
        "entities": sf.message_entities(text, TODAY),
        "metadata": {"date": TODAY.isoformat()},
    }
    events = [
        {"event": "user", "text": said, "parse_data": {"intent": {"name": name}, "entities": sf.message_entities(said, TODAY)}}
        for said, name in earlier or []
    ] + [{"event": "user", "text": text, "parse_data": latest, "input_channel": "rest"}]
    return Tracker(
        "owner-1",
        {"identity_attempts": 0.0, "identity_failed": False, **(slots or {})},
        latest,
        events,
        False,
        None,
        {"name": form} if form else {},
        "action_listen",
    )


def _run(action: Any, tracker: Tracker) -> tuple:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker, DOMAIN))
    return [m.get("text") or m.get("response") for m in dispatcher.messages], events


def _slots(events: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot" and e["name"] != "requested_slot"}


def test_repair_form_fills_all_four_slots_from_the_first_message() -> None:
    _, events = _run(forms.ValidateRepairForm(), _tracker("3栋2单元501客厅暖气片不热，明天上午家里有人", "report_repair"))
    assert _slots(events) == HEATING


def test_repair_form_reads_the_message_that_led_to_the_offer() -> None:
    tracker = _tracker("好的", "affirm", earlier=[("暖气不热，这个月物业费先不交", "objection_heating")])
    _, events = _run(forms.ValidateRepairForm(), tracker)
    assert _slots(events) == {"repair_item": "暖气", "repair_description": "暖气不热"}


def test_a_promise_said_for_the_repair_time_is_put_aside_and_the_time_asked_again() -> None:
    slots = {k: v for k, v in HEATING.items() if k != "repair_time"} | {"requested_slot": "repair_time"}
    messages, events = _run(forms.ValidateRepairForm(), _tracker("下周五交钱", "promise_to_pay", slots=slots, form="repair_form"))
    assert _slots(events) == {"promise_date": "2026-12-04", "promise_waiting": True}
    assert messages == [wording.text("forms.promise_put_aside", date="12月4日（周五）")]


def test_a_bare_yes_to_a_form_question_is_asked_again_not_stored(estate_env: str) -> None:
    # estate_env: the instalment form checks the verified owner (id 1, the demo estate's first) in the database
    slots = {"repair_item": "暖气", "requested_slot": "repair_location"}
    _, events = _run(forms.ValidateRepairForm(), _tracker("好的", "affirm", slots=slots, form="repair_form"))
    assert _slots(events) == {"repair_location": None}
    _, events = _run(
        forms.ValidateInstalmentForm(),
        _tracker("好的", "affirm", slots={"verified_owner_id": 1.0, "requested_slot": "instalment_plan"}, form="instalment_form"),
    )
    assert _slots(events) == {"instalment_plan": None}


def test_a_question_in_the_middle_of_the_form_fills_nothing_so_the_form_lets_the_rules_answer() -> None:
    slots = {"repair_item": "暖气", "requested_slot": "repair_location"}
    _, events = _run(forms.ValidateRepairForm(), _tracker("物业费怎么交", "ask_payment_methods", slots=slots, form="repair_form"))
    assert _slots(events) == {}


def test_instalment_plan_stated_in_the_request_is_taken() -> None:
    _, events = _run(forms.ValidateInstalmentForm(), _tracker("我想分三个月交", "request_installment"))
    assert _slots(events) == {"instalment_plan": "分3个月"}


@pytest.mark.parametrize(
    ("text", "intent", "said"),
    [
        ("我要投诉", "file_complaint", None),
        ("我要投诉保安", "file_complaint", None),
        ("我要投诉你们保安态度差", "file_complaint", "我要投诉你们保安态度差"),
        ("保安昨晚对我态度很差，还骂人", "file_complaint", "保安昨晚对我态度很差，还骂人"),
        ("算了", "deny", None),
    ],
)
def test_a_complaint_is_what_happened_not_the_request_to_complain(text: str, intent: str, said: Optional[str]) -> None:
    assert sf.read_complaint(text, intent=intent) == said


def test_the_promise_form_takes_the_date_from_its_request_but_never_replaces_a_date_put_aside() -> None:
    _, events = _run(forms.ValidatePromiseForm(), _tracker("我下周五交", "promise_to_pay", slots={"verified_owner_id": None}))
    assert _slots(events)["promise_date"] == "2026-12-04"
    waiting = {"promise_date": "2026-12-04", "promise_waiting": True}
    action = forms.ValidatePromiseForm()
    found = asyncio.run(action.extract_promise_date(CollectingDispatcher(), _tracker("对，就是明天上午", "affirm", slots=waiting), DOMAIN))
    assert found == {}


def test_far_month_in_the_promise_form_gets_the_90_day_rule() -> None:
    dispatcher = CollectingDispatcher()
    result = asyncio.run(
        forms.ValidatePromiseForm().validate_promise_date("明年11月", dispatcher, _tracker("明年11月", "promise_to_pay"), DOMAIN)
    )
    assert result == {"promise_date": None}
    assert "90天内" in dispatcher.messages[0]["text"]


@pytest.mark.parametrize(
    ("pending", "slots", "text", "intent", "expected"),
    [
        ("payment_promise", PROMISE, "对，就12月4号", "promise_to_pay", [SlotSet("pending_offer", "payment_promise_confirmed")]),
        ("repair_readback", HEATING, "对，就是明天上午", "affirm", [SlotSet("pending_offer", "repair_confirmed")]),
        ("instalment_readback", {"instalment_plan": "分3个月"}, "好的", "affirm", [SlotSet("pending_offer", "instalment_confirmed")]),
    ],
)
def test_a_confirming_reply_lets_the_rules_write_the_record(
    pending: str, slots: Dict[str, Any], text: str, intent: str, expected: list
) -> None:
    messages, events = _run(
        promise_actions.ActionReviewReadback(), _tracker(text, intent, slots={**slots, "pending_offer": pending})
    )
    assert (messages, events) == ([], expected)


def test_a_correction_replaces_the_value_and_reads_back_again() -> None:
    messages, events = _run(
        promise_actions.ActionReviewReadback(),
        _tracker("不对，改成周六下午", "deny", slots={**HEATING, "pending_offer": "repair_readback"}),
    )
    assert events == [SlotSet("repair_time", "11月28日（周六）下午"), SlotSet("pending_offer", "repair_readback")]
    assert messages == ["utter_confirm_repair"]


def test_cancel_at_the_read_back_clears_everything() -> None:
    messages, events = _run(
        promise_actions.ActionReviewReadback(),
        _tracker("算了", "deny", slots={**HEATING, "pending_offer": "repair_readback"}),
    )
    assert messages == ["utter_form_cancelled"]
    assert events == [SlotSet("pending_offer", None), *(SlotSet(slot, None) for slot in HEATING)]


def test_read_backs_quote_the_values() -> None:
    dispatcher = CollectingDispatcher()
    tracker = _tracker("…", "affirm", slots=HEATING)
    events = asyncio.run(promise_actions.ActionConfirmRepair().run(dispatcher, tracker, DOMAIN))
    assert events == [SlotSet("pending_offer", "repair_readback")]
    message = dispatcher.messages[0]
    assert (message["response"], message["item"], message["location"], message["time"]) == (
        "utter_confirm_repair",
        "暖气",
        "3栋2单元501客厅",
        "11月24日（周二）上午",
    )
