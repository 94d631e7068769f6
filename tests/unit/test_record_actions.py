"""Actions that read and write owner records, on a real SQLite database with the demo estate loaded."""

import asyncio
import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from rasa_sdk.events import ActiveLoop, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from sqlalchemy import func, select

from actions import fallback, forms, owner_data
from actions import identity as identity_actions
from bot import clock
from bot.db import models
from bot.db.session import session_scope
from bot.services import escalations
from bot.settings import get_settings
from tests.builders import run, tracker, validate

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def database(estate_env: str) -> str:
    return estate_env


def count(url: str, model) -> int:
    with session_scope(url) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


def owner_id(url: str, room: str = "3栋2单元501", tail: str = "6688") -> float:
    from bot.owners import identity

    with session_scope(url) as session:
        return float(identity.verify(session, room=room, phone_tail=tail).owner_id)


def test_right_room_and_tail_verify_and_link_the_conversation(database: str) -> None:
    action = forms.ValidateArrearsForm()
    messages, result = validate(action, tracker(slots={"room": "3栋2单元501"}), "phone_tail", "6688")
    assert result == {"phone_tail": "6688", "verified_owner_id": owner_id(database), "identity_attempts": 0.0}
    assert messages[0]["response"] == "utter_identity_verified" and messages[0]["owner_name"] == "王建国"
    assert count(database, models.ConversationLink) == 0  # a REST sender id is chosen by the client
    web = tracker(slots={"room": "3栋2单元501"}, channel="socketio", sender="signed-web-id")
    validate(action, web, "phone_tail", "6688")
    owner = owner_id(database)
    with session_scope(database) as session:
        link = session.execute(select(models.ConversationLink)).scalar_one()
        assert (link.channel, link.sender_id, float(link.owner_id)) == ("socketio", "signed-web-id", owner)


def test_wrong_tail_three_times_gives_up(database: str) -> None:
    action = forms.ValidateArrearsForm()
    messages, result = validate(action, tracker(slots={"room": "3栋2单元501"}), "phone_tail", "0000")
    assert result == {"phone_tail": None, "room": None, "identity_attempts": 1.0}
    assert messages[0]["response"] == "utter_identity_mismatch"
    _, result = validate(
        action, tracker(slots={"room": "3栋2单元501", "identity_attempts": 2.0}), "phone_tail", "0000"
    )
    assert result["identity_failed"] is True
    required = asyncio.run(
        action.required_slots(
            ["room", "phone_tail"], CollectingDispatcher(), tracker(slots={"identity_failed": True}), {}
        )
    )
    assert required == []


def test_verified_conversations_are_not_asked_again(database: str) -> None:
    action = forms.ValidatePromiseForm()
    required = asyncio.run(
        action.required_slots(
            ["room", "phone_tail", "promise_date"],
            CollectingDispatcher(),
            tracker(slots={"verified_owner_id": owner_id(database)}),
            {},
        )
    )
    assert required == ["promise_date"]


def test_unparseable_room_is_asked_again() -> None:
    messages, result = validate(forms.ValidateArrearsForm(), tracker(), "room", "不知道")
    assert result == {"room": None}
    assert messages[0]["response"] == "utter_ask_room"


def test_arrears_are_told_only_to_the_verified_owner(database: str) -> None:
    messages, events = run(
        owner_data.ActionTellArrears(), tracker(slots={"verified_owner_id": owner_id(database)})
    )
    assert messages[0]["response"] == "utter_arrears"
    assert (messages[0]["unit"], messages[0]["amount"], messages[0]["since"], messages[0]["months"]) == (
        "3栋2单元501",
        "2,460.00",
        "2026年3月",
        9,
    )
    assert events == []


def test_third_wrong_tail_escalates_at_once_and_the_form_ends_silently(database: str) -> None:
    action = forms.ValidateArrearsForm()
    asking = tracker(slots={"room": "3栋2单元501", "identity_attempts": 2.0}, message_id="m-3")
    messages, result = validate(action, asking, "phone_tail", "0000")
    assert [m["response"] for m in messages] == ["utter_identity_failed"]
    assert result == {
        "room": None,
        "phone_tail": None,
        "identity_attempts": 0.0,
        "identity_failed": True,
    }
    assert "2460" not in str(messages) and "2,460" not in str(messages) and "王建国" not in str(messages)
    with session_scope(database) as session:
        escalation = session.execute(select(models.Escalation)).scalar_one()
        assert (escalation.reason, escalation.owner_id, escalation.sender_id, escalation.number) == (
            "identity_failed",
            None,
            "owner-1",
            messages[0]["number"],
        )
    messages, events = run(owner_data.ActionTellArrears(), tracker(slots={"identity_failed": True}))
    assert messages == []
    assert events == [SlotSet("identity_failed", False), SlotSet("identity_attempts", 0.0)]
    assert count(database, models.Escalation) == 1


def test_fifth_failure_on_a_unit_locks_it_records_one_escalation_and_offers_a_person(database: str) -> None:
    from bot import wording

    action = forms.ValidateArrearsForm()
    for n in range(4):
        fresh = tracker(slots={"room": "3栋2单元501"}, sender=f"web-{n}", channel="socketio", message_id=f"m{n}")
        validate(action, fresh, "phone_tail", f"{n:04d}")
    fifth = tracker(slots={"room": "3栋2单元501"}, sender="web-5", channel="socketio", message_id="m5")
    messages, result = validate(action, fifth, "phone_tail", "0005")
    assert messages == [{**messages[0], "text": wording.text("identity.locked")}]
    assert result["identity_failed"] is True and result["pending_offer"] == "staff_callback"
    # the right tail now opens nothing, and a new lock escalation is not recorded for it
    right = tracker(slots={"room": "3栋2单元501"}, sender="web-6", channel="socketio", message_id="m6")
    messages, result = validate(action, right, "phone_tail", "6688")
    assert "verified_owner_id" not in result and "王建国" not in str(messages)
    with session_scope(database) as session:
        locks = session.execute(select(models.Escalation)).scalars().all()
        assert [(e.reason, e.detail, e.sender_id) for e in locks] == [("identity_locked", "unit 3-2-501", "web-5")]


@pytest.mark.parametrize(
    ("value", "expected_text"),
    [("年后", "“年后”具体是哪一天"), ("2026-11-01", "已经过去"), ("2027-03-01", "90天内")],
)
def test_promise_date_must_be_concrete_and_within_90_days(
    database: str, value: str, expected_text: str
) -> None:
    messages, result = validate(forms.ValidatePromiseForm(), tracker(), "promise_date", value)
    assert result == {"promise_date": None}
    assert expected_text in messages[0]["text"]


def test_promise_amount_defaults_to_the_arrears(database: str) -> None:
    slots = {"verified_owner_id": owner_id(database)}
    _, result = validate(forms.ValidatePromiseForm(), tracker(slots=slots), "promise_date", "2026-12-04")
    assert result == {"promise_date": "2026-12-04", "promise_amount": "2460.00"}
    _, result = validate(
        forms.ValidatePromiseForm(),
        tracker(slots={**slots, "promise_amount": "500.00"}),
        "promise_date",
        "2026-12-04",
    )
    assert result == {"promise_date": "2026-12-04"}


@pytest.mark.parametrize(("value", "expected"), [(800, "800.00"), ("1200.5", "1200.50"), ("0", None), ("-3", None), ("多少", None), ("NaN", None)])
def test_promise_amount_must_be_positive(value: object, expected: object) -> None:
    messages, result = validate(forms.ValidatePromiseForm(), tracker(), "promise_amount", value)
    assert result == {"promise_amount": expected}
    assert bool(messages) is (expected is None)


def test_promise_is_recorded_once_and_confirmed_with_stored_values(database: str) -> None:
    slots = {"verified_owner_id": owner_id(database), "promise_date": "2026-12-04", "promise_amount": "2460.00"}
    messages, events = run(owner_data.ActionRecordPromise(), tracker(slots=slots, message_id="m-9"))
    run(owner_data.ActionRecordPromise(), tracker(slots=slots, message_id="m-9"))
    assert count(database, models.PaymentPromise) == 1
    with session_scope(database) as session:
        promise = session.execute(select(models.PaymentPromise)).scalar_one()
        assert (promise.due_date, promise.amount, promise.status) == (
            dt.date(2026, 12, 4),
            Decimal("2460.00"),
            models.PromiseStatus.OPEN,
        )
    assert messages[0]["response"] == "utter_promise_recorded"
    assert (messages[0]["date"], messages[0]["amount"], messages[0]["number"]) == (
        "12月4日（周五）",
        "2,460.00",
        promise.number,
    )
    assert SlotSet("promise_date", None) in events and SlotSet("pending_offer", None) in events


def test_a_failed_write_never_confirms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'no-tables.db'}")
    get_settings.cache_clear()
    slots = {"verified_owner_id": 1.0, "promise_date": "2026-12-04", "promise_amount": "10.00"}
    messages, events = run(owner_data.ActionRecordPromise(), tracker(slots=slots))
    get_settings.cache_clear()
    assert [m["response"] for m in messages] == ["utter_save_failed"]
    assert SlotSet("pending_offer", "staff_callback") in events


def test_records_need_a_verified_owner(database: str) -> None:
    messages, _ = run(owner_data.ActionRecordInstalment(), tracker(slots={"instalment_plan": "分三期"}))
    assert [m["response"] for m in messages] == ["utter_identity_failed"]
    assert count(database, models.InstalmentRequest) == 0
    with session_scope(database) as session:
        assert session.execute(select(models.Escalation.reason)).scalar_one() == "identity_failed"


def test_repair_order_from_the_form(database: str) -> None:
    slots = {
        "repair_item": "暖气",
        "repair_location": "3栋2单元501",
        "repair_description": "不热",
        "repair_time": "明天上午",
    }
    messages, events = run(owner_data.ActionRecordRepair(), tracker(slots=slots))
    with session_scope(database) as session:
        order = session.execute(select(models.RepairOrder)).scalar_one()
        stored = (order.item, order.location, order.description, order.preferred_time, order.owner_id, order.number)
    assert stored == ("暖气", "3栋2单元501", "不热", "明天上午", None, messages[0]["number"])
    assert messages == [
        {
            **messages[0],
            "response": "utter_repair_recorded",
            "number": stored[5],
            "item": "暖气",
            "location": "3栋2单元501",
            "time": "明天上午",
        }
    ]
    assert SlotSet("repair_item", None) in events


def test_complaint_bill_check_and_instalment(database: str) -> None:
    verified = {"verified_owner_id": owner_id(database)}
    messages, _ = run(
        owner_data.ActionRecordComplaint(),
        tracker(slots={"complaint_description": "保安态度差"}, message_id="a"),
    )
    assert messages[0]["response"] == "utter_complaint_recorded"
    messages, _ = run(
        owner_data.ActionRecordBillCheck(), tracker(slots={**verified, "bill_issue": "已交过"}, message_id="b")
    )
    assert messages[0]["response"] == "utter_bill_check_recorded"
    messages, _ = run(
        owner_data.ActionRecordInstalment(),
        tracker(slots={**verified, "instalment_plan": "分三期"}, message_id="c"),
    )
    assert messages[0]["response"] == "utter_instalment_recorded"
    with session_scope(database) as session:
        request = session.execute(select(models.InstalmentRequest)).scalar_one()
        assert request.status == models.InstalmentStatus.PENDING
    assert count(database, models.Complaint) == 1 and count(database, models.BillCheckRequest) == 1


def test_escalation_records_and_tells_when_staff_answer(database: str) -> None:
    messages, events = run(owner_data.ActionEscalate(), tracker("request_human", text="我要找人工"))
    assert messages[0]["response"] == "utter_escalated" and messages[0]["number"].startswith("RG")
    assert "0755-8888 6666" in messages[0]["staff_answer"]
    with session_scope(database) as session:
        assert session.execute(select(models.Escalation.reason)).scalar_one() == "request_human"
    assert events == [SlotSet("pending_offer", None)]


def test_third_fallback_in_a_row_escalates(database: str) -> None:
    events = [{"event": "user", "parse_data": {"intent": {"name": "nlu_fallback"}}} for _ in range(3)]
    messages, _ = run(fallback.ActionHandleFallback(), tracker("nlu_fallback", events=events))
    assert messages[0]["response"] == "utter_escalated"
    with session_scope(database) as session:
        assert session.execute(select(models.Escalation.reason)).scalar_one() == "fallback"


def test_escalation_quotes_staff_hours_from_the_one_clock(database: str) -> None:
    evening = dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.timezone.utc)  # 22:00 in Shanghai
    with clock.frozen(evening):
        messages, _ = run(owner_data.ActionEscalate(), tracker("request_human", text="我要找人工"))
        assert messages[0]["staff_answer"] == escalations.staff_answer()
    assert "11月24日09:00" in messages[0]["staff_answer"]


def test_payment_methods_come_from_configuration() -> None:
    messages, _ = run(owner_data.ActionPaymentMethods(), tracker("ask_payment_methods"))
    assert messages[0]["response"] == "utter_payment_methods"
    assert messages[0]["link"] == "https://pay.example-wuye.cn/fee"
    assert "支付宝" in messages[0]["methods"]


def test_cancel_form_clears_it_and_records_nothing() -> None:
    slots = {"repair_item": "电梯", "repair_location": "5号楼"}
    messages, events = run(
        owner_data.ActionCancelForm(), tracker("deny", slots=slots, active_loop="repair_form")
    )
    assert messages[0]["response"] == "utter_form_cancelled"
    assert events[:2] == [ActiveLoop(None), SlotSet("requested_slot", None)]
    assert SlotSet("repair_item", None) in events and SlotSet("repair_description", None) in events


def test_identity_given_outside_a_form(database: str) -> None:
    messages, events = run(
        owner_data.ActionVerifyIdentity(),
        tracker("provide_identity", slots={"room": "A座808", "phone_tail": "8080"}),
    )
    assert [m["response"] for m in messages] == ["utter_identity_verified", "utter_anything_else"]
    assert SlotSet("verified_owner_id", owner_id(database, "A座808", "8080")) in events
    messages, _ = run(owner_data.ActionVerifyIdentity(), tracker("provide_identity", slots={"room": "A座808"}))
    assert messages[0]["response"] == "utter_ask_phone_tail"


def test_identity_helper_ignores_incomplete_input() -> None:
    assert asyncio.run(identity_actions.check_identity(CollectingDispatcher(), tracker(), None, "6688")) == {}


def test_a_database_that_is_down_confirms_nothing_and_offers_a_person(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/down")
    get_settings.cache_clear()
    try:
        slots = {"verified_owner_id": 1.0, "promise_date": "2026-12-04", "promise_amount": "10.00"}
        messages, events = run(owner_data.ActionRecordPromise(), tracker(slots=slots))
        assert [m["response"] for m in messages] == ["utter_save_failed"]
        assert SlotSet("pending_offer", "staff_callback") in events
        messages, events = run(owner_data.ActionTellArrears(), tracker(slots={"verified_owner_id": 1.0}))
        assert [m["response"] for m in messages] == ["utter_save_failed"]
        messages, result = validate(
            forms.ValidateArrearsForm(), tracker(slots={"room": "3栋2单元501"}), "phone_tail", "6688"
        )
        assert "verified_owner_id" not in result and result["identity_failed"] is True
    finally:
        get_settings.cache_clear()


def test_the_same_message_submitted_twice_at_once_makes_one_record_and_both_answers_quote_it(
    database: str,
) -> None:
    slots = {
        "repair_item": "电梯",
        "repair_location": "5号楼",
        "repair_description": "电梯门关不上",
        "repair_time": "今天下午",
    }
    same = tracker(slots=slots, message_id="wx-retry-1")

    async def both() -> list:
        dispatchers = [CollectingDispatcher(), CollectingDispatcher()]
        await asyncio.gather(*(owner_data.ActionRecordRepair().run(d, same, {}) for d in dispatchers))
        return [d.messages for d in dispatchers]

    first, second = asyncio.run(both())
    with session_scope(database) as session:
        order = session.execute(select(models.RepairOrder)).scalar_one()
        assert (order.item, order.location, order.description, order.preferred_time) == (
            "电梯",
            "5号楼",
            "电梯门关不上",
            "今天下午",
        )
    assert [m["response"] for m in first + second] == ["utter_repair_recorded"] * 2
    assert first[0]["number"] == second[0]["number"] == order.number


def test_an_attacker_with_fresh_sessions_learns_no_name_and_no_amount(database: str) -> None:
    """200 tails against one unit from fresh web chat sessions, then 200 units with one tail over WeChat."""
    action = forms.ValidateArrearsForm()
    seen = []
    for n in range(200):
        tail = "6688" if n == 120 else f"{(n * 7919) % 10000:04d}".replace("6688", "0000")
        fresh = tracker(
            slots={"room": "3栋2单元501"},
            sender=f"web-{n}",
            channel="socketio",
            metadata={"client": "ip:203.0.113.7"},
            message_id=f"t{n}",
        )
        messages, result = validate(action, fresh, "phone_tail", tail)
        assert "verified_owner_id" not in result
        seen.extend(messages)
    units = [f"{b}栋{e}单元{r}" for b in range(1, 11) for e in (1, 2) for r in range(501, 511)]
    for n, unit in enumerate(units):  # 3栋2单元501 is among them, with its right tail
        fresh = tracker(
            slots={"room": unit},
            sender=f"oAttacker-{n}",
            channel="wechat",
            metadata={"client": "wechat:oAttacker"},
            message_id=f"u{n}",
        )
        messages, result = validate(action, fresh, "phone_tail", "6688")
        assert "verified_owner_id" not in result
        seen.extend(messages)
    said = str(seen)
    assert "王建国" not in said and "2,460" not in said and "2460" not in said
    assert not any(m.get("response") == "utter_identity_verified" for m in seen)
    # staff hear of the lock once, not once per try
    with session_scope(database) as session:
        reasons = session.execute(select(models.Escalation.reason)).scalars().all()
    assert reasons.count("identity_locked") == 1
    # a real owner elsewhere, on their own phone, is not slowed down
    owner = tracker(slots={"room": "5号楼1203"}, sender="oOwner", channel="wechat", metadata={"client": "wechat:oOwner"})
    messages, result = validate(action, owner, "phone_tail", "1111")
    assert result["verified_owner_id"] == owner_id(database, "5号楼1203", "1111")
