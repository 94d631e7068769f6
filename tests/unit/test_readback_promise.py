"""A payment date said at a record's read-back is kept, the record asked about again, and the promise taken up after.

Actions run with a CollectingDispatcher and hand-built trackers; dates resolve on the suite's clock
(2026-11-25, a Wednesday: 下周五 is 12月4日, 下下周一 12月7日). Records are written to the demo estate.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from decimal import Decimal
from typing import Any, Dict, List, Optional, Tuple

import pytest
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import select

from actions import forms, owner_data
from actions.objections import ActionAnswerObjection
from actions.promises import (
    ActionConfirmInstalment,
    ActionConfirmPromise,
    ActionConfirmRepair,
    ActionReviewReadback,
)
from bot import wording
from bot.db import models
from bot.db.session import session_scope
from bot.owners import identity
from bot.playbook import default_playbook
from bot.services import promises, slot_filling
from tests.builders import tracker

SUITE_DAY = dt.date(2026, 11, 25)
NEXT_FRIDAY = "2026-12-04"
REPAIR = {
    "repair_item": "暖气",
    "repair_location": "3栋2单元501客厅和卧室",
    "repair_description": "暖气片不热",
    "repair_time": "11月26日（周四）上午",
}
INSTALMENT = {"instalment_plan": "分3个月"}


def said(text: str, intent: str, slots: Dict[str, Any], message_id: str = "m-1"):
    """A tracker whose latest message is ``text`` with its rule entities, as the NLU pipeline reports them.

    No message date: the suite's clock decides.
    """
    entities = slot_filling.message_entities(text, SUITE_DAY)
    return tracker(intent, slots, text=text, entities=entities, metadata={}, message_id=message_id)


def run(action: Any, tracker_: Any) -> Tuple[List[Dict[str, Any]], List[Any]]:
    dispatcher = CollectingDispatcher()
    events = asyncio.run(action.run(dispatcher, tracker_, {}))
    return dispatcher.messages, events


def texts(messages: List[Dict[str, Any]]) -> List[Optional[str]]:
    return [message.get("text") or message.get("response") for message in messages]


def kept(record: str, date: str = "12月4日（周五）") -> str:
    return wording.text("forms.promise_kept", date=date, record=wording.text(record))


def brief(record: str) -> str:
    return wording.text("forms.readback_brief", record=wording.text(record))


@pytest.mark.parametrize(
    ("text", "intent", "expected"),
    [
        ("那就下周五交吧", "promise_to_pay", NEXT_FRIDAY),
        ("那就下周五交吧", "affirm", NEXT_FRIDAY),  # pay wording, whatever the NLU said
        ("好的，月底前把物业费交了", "affirm", "2026-11-30"),
        ("算了不修了，下周五交吧", "deny", NEXT_FRIDAY),
        ("下周五", "promise_to_pay", NEXT_FRIDAY),  # the NLU heard a promise: its date
        ("下周五", "deny", None),
        ("不对，改成周六下午", "deny", None),  # a visiting time
        ("周六下午交给师傅钥匙", "affirm", None),  # 交给 is no payment
        ("明天上午家里有人", "affirm", None),
        ("对", "affirm", None),
        ("不对，改成分五个月，每月15号交", "deny", None),  # an instalment schedule, not a promise
    ],
)
def test_a_payment_date_is_a_date_with_pay_wording_or_in_a_promise(text: str, intent: str, expected: Optional[str]) -> None:
    assert slot_filling.payment_date_said(text, today=SUITE_DAY, intent=intent) == expected


def test_a_payment_date_at_the_repair_read_back_is_kept_and_the_read_back_asked_again_briefly() -> None:
    messages, events = run(
        ActionReviewReadback(), said("那就下周五交吧", "promise_to_pay", {**REPAIR, "pending_offer": "repair_readback"})
    )
    assert texts(messages) == [kept("forms.record_repair"), brief("forms.record_repair")]
    assert events == [
        SlotSet("promise_date", NEXT_FRIDAY),
        SlotSet("promise_waiting", True),
        SlotSet("pending_offer", "repair_readback"),
    ]


@pytest.mark.parametrize(("text", "intent"), [("对，下周五交", "affirm"), ("算了，不修了，下周五交吧", "deny")])
def test_a_yes_or_a_cancel_with_a_payment_date_neither_writes_nor_drops_the_record(text: str, intent: str) -> None:
    messages, events = run(ActionReviewReadback(), said(text, intent, {**REPAIR, "pending_offer": "repair_readback"}))
    assert texts(messages) == [kept("forms.record_repair"), brief("forms.record_repair")]
    assert events == [
        SlotSet("promise_date", NEXT_FRIDAY),
        SlotSet("promise_waiting", True),
        SlotSet("pending_offer", "repair_readback"),
    ]


def test_a_visiting_time_the_nlu_read_as_a_promise_is_a_correction_not_a_payment_date() -> None:
    messages, events = run(
        ActionReviewReadback(),
        said("不对，改成周六下午", "promise_to_pay", {**REPAIR, "pending_offer": "repair_readback"}),
    )
    assert texts(messages) == ["utter_confirm_repair"]
    assert events == [SlotSet("repair_time", "11月28日（周六）下午"), SlotSet("pending_offer", "repair_readback")]
    saturday = {**REPAIR, "repair_time": "11月28日（周六）下午", "pending_offer": "repair_readback"}
    messages, events = run(ActionReviewReadback(), said("对，就是周六下午", "promise_to_pay", saturday))
    assert (messages, events) == ([], [SlotSet("pending_offer", "repair_confirmed")])


def test_a_promise_without_pay_wording_is_kept_when_it_changes_nothing_in_the_record() -> None:
    messages, events = run(
        ActionReviewReadback(), said("行，下周五吧", "promise_to_pay", {**INSTALMENT, "pending_offer": "instalment_readback"})
    )
    assert texts(messages) == [kept("forms.record_instalment"), brief("forms.record_instalment")]
    assert events == [
        SlotSet("promise_date", NEXT_FRIDAY),
        SlotSet("promise_waiting", True),
        SlotSet("pending_offer", "instalment_readback"),
    ]
    messages, events = run(
        ActionReviewReadback(), said("好，下周五给你们转过去", "affirm", {**REPAIR, "pending_offer": "repair_readback"})
    )
    assert texts(messages) == [kept("forms.record_repair"), brief("forms.record_repair")]
    assert events[:2] == [SlotSet("promise_date", NEXT_FRIDAY), SlotSet("promise_waiting", True)]


def test_a_correction_with_a_payment_date_is_applied_and_the_record_read_back_in_full() -> None:
    messages, events = run(
        ActionReviewReadback(),
        said("不对，改成周六下午，下周五交钱", "deny", {**REPAIR, "pending_offer": "repair_readback"}),
    )
    assert texts(messages) == [kept("forms.record_repair"), "utter_confirm_repair"]
    assert messages[1]["time"] == "11月28日（周六）下午"
    assert events == [
        SlotSet("repair_time", "11月28日（周六）下午"),
        SlotSet("promise_date", NEXT_FRIDAY),
        SlotSet("promise_waiting", True),
        SlotSet("pending_offer", "repair_readback"),
    ]


def test_a_payment_date_at_the_instalment_read_back_is_kept_too() -> None:
    messages, events = run(
        ActionReviewReadback(), said("可以，那我下周五交", "affirm", {**INSTALMENT, "pending_offer": "instalment_readback"})
    )
    assert texts(messages) == [kept("forms.record_instalment"), brief("forms.record_instalment")]
    assert events == [
        SlotSet("promise_date", NEXT_FRIDAY),
        SlotSet("promise_waiting", True),
        SlotSet("pending_offer", "instalment_readback"),
    ]
    # the next yes confirms the request; the rules then file it and take the promise up
    waiting = {**INSTALMENT, "pending_offer": "instalment_readback", "promise_date": NEXT_FRIDAY, "promise_waiting": True}
    messages, events = run(ActionReviewReadback(), said("好的", "affirm", waiting))
    assert (messages, events) == ([], [SlotSet("pending_offer", "instalment_confirmed")])


def test_a_cancel_after_the_date_was_kept_cancels_and_keeps_the_date() -> None:
    waiting = {**REPAIR, "pending_offer": "repair_readback", "promise_date": NEXT_FRIDAY, "promise_waiting": True}
    messages, events = run(ActionReviewReadback(), said("算了", "deny", waiting))
    assert texts(messages) == [wording.text("forms.cancelled_promise_kept", record=wording.text("forms.record_repair"))]
    assert events == [SlotSet("pending_offer", None), *(SlotSet(slot, None) for slot in REPAIR)]


def test_a_payment_date_asked_with_a_question_at_the_read_back_is_kept_and_the_record_read_back() -> None:
    entry = default_playbook().get("objection_fee_too_high")
    slots = {**REPAIR, "pending_offer": "repair_readback"}
    messages, events = run(ActionAnswerObjection(), said("你们收费太贵了，下周五再交吧", "objection_fee_too_high", slots))
    assert texts(messages) == [entry.answers[0], kept("forms.record_repair"), "utter_confirm_repair"]
    assert events == [
        SlotSet("last_objection", "objection_fee_too_high"),
        SlotSet("promise_date", NEXT_FRIDAY),
        SlotSet("promise_waiting", True),
        SlotSet("pending_offer", "repair_readback"),
    ]


def test_a_payment_date_asked_with_how_to_pay_at_a_read_back_is_kept_before_the_record_is_read_again() -> None:
    question = "下周五交，怎么交？"
    messages, events = run(ActionConfirmRepair(), said(question, "ask_payment_methods", {**REPAIR, "pending_offer": "repair_readback"}))
    assert texts(messages) == [kept("forms.record_repair"), "utter_confirm_repair"]
    assert events == [
        SlotSet("promise_date", NEXT_FRIDAY),
        SlotSet("promise_waiting", True),
        SlotSet("pending_offer", "repair_readback"),
    ]
    waiting = {**INSTALMENT, "pending_offer": "instalment_readback"}
    messages, events = run(ActionConfirmInstalment(), said(question, "ask_payment_methods", waiting))
    assert texts(messages) == [kept("forms.record_instalment"), "utter_confirm_instalment"]
    assert events[:2] == [SlotSet("promise_date", NEXT_FRIDAY), SlotSet("promise_waiting", True)]
    # the first read-back after the form (no read-back pending yet) keeps nothing: the form put the date aside
    messages, events = run(ActionConfirmRepair(), said("明天上午，下周五交钱", "promise_to_pay", {**REPAIR, "pending_offer": "repair_order"}))
    assert (texts(messages), events) == (["utter_confirm_repair"], [SlotSet("pending_offer", "repair_readback")])


def test_a_date_at_the_promise_read_back_is_a_correction_not_a_date_to_keep() -> None:
    slots = {"pending_offer": "payment_promise", "promise_date": NEXT_FRIDAY, "promise_amount": "2460.00"}
    messages, events = run(ActionReviewReadback(), said("不对，是下下周一", "deny", slots))
    assert texts(messages) == [promises.confirmation_question(dt.date(2026, 12, 7), Decimal("2460.00"))]
    assert events == [SlotSet("promise_date", "2026-12-07"), SlotSet("pending_offer", "payment_promise")]


def test_the_kept_date_becomes_a_promise_read_back_and_is_written_with_its_date(estate_env: str) -> None:
    with session_scope(estate_env) as session:
        owner_id = int(identity.verify(session, room="3栋2单元501", phone_tail="6688").owner_id)
    verified = {"verified_owner_id": float(owner_id)}
    # the repair is confirmed and written
    waiting = {**REPAIR, **verified, "pending_offer": "repair_readback", "promise_date": NEXT_FRIDAY, "promise_waiting": True}
    _, events = run(ActionReviewReadback(), said("对", "affirm", waiting))
    assert events == [SlotSet("pending_offer", "repair_confirmed")]
    messages, events = run(owner_data.ActionRecordRepair(), said("对", "affirm", {**waiting, "pending_offer": "repair_confirmed"}, "m-2"))
    assert texts(messages) == ["utter_repair_recorded"]
    assert SlotSet("promise_date", None) not in events  # the kept date outlives the repair's slots
    # the promise form takes the kept date up: the waiting flag goes, the amount defaults to the arrears
    dispatcher = CollectingDispatcher()
    taken = asyncio.run(
        forms.ValidatePromiseForm().validate_promise_date(
            NEXT_FRIDAY, dispatcher, said("对", "affirm", {**verified, "promise_date": NEXT_FRIDAY, "promise_waiting": True}), {}
        )
    )
    assert (dispatcher.messages, taken) == ([], {"promise_date": NEXT_FRIDAY, "promise_waiting": None, "promise_amount": "2460.00"})
    # read back as "您打算在12月4日（周五）交…，对吗？", corrected, confirmed, written
    promise_slots = {**verified, "promise_date": NEXT_FRIDAY, "promise_amount": "2460.00"}
    messages, events = run(ActionConfirmPromise(), said("对", "affirm", promise_slots))
    assert texts(messages) == [promises.confirmation_question(dt.date(2026, 12, 4), Decimal("2460.00"))]
    assert events == [SlotSet("pending_offer", "payment_promise")]
    messages, events = run(
        ActionReviewReadback(), said("不对，是下下周一", "deny", {**promise_slots, "pending_offer": "payment_promise"})
    )
    assert events == [SlotSet("promise_date", "2026-12-07"), SlotSet("pending_offer", "payment_promise")]
    corrected = {**promise_slots, "promise_date": "2026-12-07"}
    _, events = run(ActionReviewReadback(), said("对的", "affirm", {**corrected, "pending_offer": "payment_promise"}))
    assert events == [SlotSet("pending_offer", "payment_promise_confirmed")]
    messages, _ = run(owner_data.ActionRecordPromise(), said("对的", "affirm", corrected, "m-5"))
    with session_scope(estate_env) as session:
        order = session.execute(select(models.RepairOrder)).scalar_one()
        assert (order.item, order.location, order.description, order.preferred_time, order.status, order.owner_id) == (
            "暖气", "3栋2单元501客厅和卧室", "暖气片不热", "11月26日（周四）上午", models.RecordStatus.OPEN, owner_id,
        )
        promise = session.execute(select(models.PaymentPromise)).scalar_one()
        unit = session.get(models.Owner, owner_id).unit.code
        assert (
            promise.due_date, promise.amount, promise.owner_id, promise.status, promise.sender_id,
            promise.source_message_id, promise.reschedule_count,
        ) == (dt.date(2026, 12, 7), Decimal("2460.00"), owner_id, models.PromiseStatus.OPEN, "owner-1", "m-5", 0)
    assert unit == "3-2-501"
    assert messages[0]["response"] == "utter_promise_recorded" and messages[0]["number"] == promise.number


COMPLAINT = "保安态度很差，我要投诉，处理好了下周五再交物业费"


def test_a_promise_said_with_a_complaint_is_read_back_right_after_it_is_recorded(estate_env: str) -> None:
    with session_scope(estate_env) as session:
        owner_id = int(identity.verify(session, room="3栋2单元501", phone_tail="6688").owner_id)
    slots = {"verified_owner_id": float(owner_id), "complaint_description": COMPLAINT}
    messages, events = run(owner_data.ActionRecordComplaint(), said(COMPLAINT, "file_complaint", slots))
    assert texts(messages) == [
        "utter_complaint_recorded",
        promises.confirmation_question(dt.date(2026, 12, 4), Decimal("2460.00")),
    ]
    assert events == [
        SlotSet("complaint_description", None),
        SlotSet("pending_offer", None),
        SlotSet("promise_date", NEXT_FRIDAY),
        SlotSet("promise_amount", "2460.00"),
        SlotSet("pending_offer", "payment_promise"),
    ]
    with session_scope(estate_env) as session:
        complaint = session.execute(select(models.Complaint)).scalar_one()
        assert (complaint.description, complaint.owner_id, complaint.status, complaint.number) == (
            COMPLAINT, owner_id, models.RecordStatus.OPEN, messages[0]["number"],
        )
        assert session.execute(select(models.PaymentPromise)).first() is None  # written only on the yes


def test_a_promise_said_with_a_bill_check_is_read_back_and_an_unverified_complainant_asked_to_verify(
    estate_env: str,
) -> None:
    with session_scope(estate_env) as session:
        owner_id = int(identity.verify(session, room="3栋2单元501", phone_tail="6688").owner_id)
    issue = "11月的账单多收了，核对清楚了我下周五就交"
    slots = {"verified_owner_id": float(owner_id), "bill_issue": issue}
    messages, events = run(owner_data.ActionRecordBillCheck(), said(issue, "dispute_bill", slots))
    assert texts(messages) == [
        "utter_bill_check_recorded",
        promises.confirmation_question(dt.date(2026, 12, 4), Decimal("2460.00")),
    ]
    assert events[-3:] == [
        SlotSet("promise_date", NEXT_FRIDAY),
        SlotSet("promise_amount", "2460.00"),
        SlotSet("pending_offer", "payment_promise"),
    ]
    # without identity the complaint is recorded and the owner asked to say the date as a promise
    messages, events = run(
        owner_data.ActionRecordComplaint(), said(COMPLAINT, "file_complaint", {"complaint_description": COMPLAINT}, "m-2")
    )
    assert texts(messages) == [
        "utter_complaint_recorded",
        wording.text("forms.promise_verify_first", date="12月4日（周五）"),
    ]
    assert events == [SlotSet("complaint_description", None), SlotSet("pending_offer", None)]


def test_a_complaint_without_a_payment_date_is_only_recorded(estate_env: str) -> None:
    text = "保安昨晚对我态度很差，还骂人"
    messages, events = run(owner_data.ActionRecordComplaint(), said(text, "file_complaint", {"complaint_description": text}))
    assert texts(messages) == ["utter_complaint_recorded"]
    assert events == [SlotSet("complaint_description", None), SlotSet("pending_offer", None)]
