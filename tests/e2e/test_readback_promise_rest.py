"""A payment date said at a read-back is kept and taken up after the record: whole conversations over REST.

The real Rasa and action servers; no message date is sent, so dates resolve on the suite's clock (2026-11-25,
a Wednesday: 明天上午 is 11月26日（周四）上午, 下周五 12月4日, 下下周一 12月7日). Expected sentences are built
from the data (domain.yml responses, data/wording.yml), never copied; every stored row is checked.
"""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any, Callable, List

import pytest
from sqlalchemy import select

from bot import wording
from bot.db import models
from bot.db.session import session_scope
from bot.owners.units import parse_unit
from bot.playbook import default_playbook
from bot.services import promises
from tests.e2e.promise_checks import assert_promised, open_promise
from tests.fakes.wording import response

pytestmark = [pytest.mark.e2e, pytest.mark.model]

ROOM = "8幢1单元302室"  # an owner no other end-to-end conversation promises for (their promises would move here)
Say = Callable[[str], List[str]]


def conversation(servers: Any) -> tuple[str, Say]:
    owner = f"owner-{uuid.uuid4().hex}"
    return owner, lambda text: servers.say(owner, text)


def verify(say: Say) -> None:
    assert say("我欠多少物业费") == [response("utter_ask_room")]
    assert say(ROOM) == [response("utter_ask_phone_tail")]
    assert say("6666")[0].startswith("核对成功")


def owner_of(database_url: str, room: str) -> tuple[int, int]:
    """The current owner's id and unit id for ``room``."""
    address = parse_unit(room)
    assert address is not None
    with session_scope(database_url) as session:
        row = session.execute(
            select(models.Owner.id, models.Unit.id).join(models.Unit).where(models.Unit.code == address.code)
        ).one()
        return int(row[0]), int(row[1])


def kept(date: str, record: str) -> str:
    return wording.text("forms.promise_kept", date=date, record=wording.text(record))


def brief(record: str) -> str:
    return wording.text("forms.readback_brief", record=wording.text(record))


def recorded_promise(date: str, amount: str) -> str:
    """The promise confirmation up to the record number, which the test cannot know in advance."""
    return response("utter_promise_recorded", date=date, amount=amount, number="{number}", channels="").split(
        "{number}"
    )[0]


def test_a_promise_said_at_the_repair_read_back_is_read_back_and_recorded_after_the_order(servers) -> None:
    owner, say = conversation(servers)
    owner_id, unit_id = owner_of(servers.database_url, ROOM)
    before = open_promise(servers.database_url, ROOM)
    verify(say)
    heating = default_playbook().get("objection_heating")
    assert say("暖气不热，这个月物业费先不交") == [heating.answers[0], heating.offer.text]
    assert say("好的") == [response("utter_ask_repair_location")]
    assert say("8幢1单元302室客厅和卧室") == [response("utter_ask_repair_time")]
    readback = response(
        "utter_confirm_repair", item="暖气", location="8幢1单元302室客厅和卧室", description="暖气不热", time="11月26日（周四）上午"
    )
    assert say("明天上午家里有人") == [readback]
    # the payment date is kept and the read-back asked again: nothing is written yet
    assert say("那就下周五交吧") == [kept("12月4日（周五）", "forms.record_repair"), brief("forms.record_repair")]
    with session_scope(servers.database_url) as session:
        assert session.execute(select(models.RepairOrder).where(models.RepairOrder.sender_id == owner)).first() is None
    # the order is written, then the promise read back
    replies = say("对")
    assert replies[0].startswith("已为您登记维修单")
    assert replies[1:] == [promises.confirmation_question(dt.date(2026, 12, 4), Decimal("4100.00"))]
    # a correction of the date is read back again, then confirmed and recorded
    assert say("不对，是下下周一") == [promises.confirmation_question(dt.date(2026, 12, 7), Decimal("4100.00"))]
    confirmed = say("对的")
    assert len(confirmed) == 1 and confirmed[0].startswith(recorded_promise("12月7日（周一）", "4,100.00"))

    with session_scope(servers.database_url) as session:
        (order,) = session.execute(select(models.RepairOrder).where(models.RepairOrder.sender_id == owner)).scalars()
        assert (
            order.item, order.location, order.description, order.preferred_time, order.status, order.owner_id,
        ) == ("暖气", "8幢1单元302室客厅和卧室", "暖气不热", "11月26日（周四）上午", models.RecordStatus.OPEN, owner_id)
        assert order.number in replies[0] and order.source_message_id
        stored = session.execute(
            select(models.PaymentPromise).where(models.PaymentPromise.sender_id == owner)
        ).scalar_one()
        assert (stored.due_date, stored.amount, stored.owner_id, stored.status) == (
            dt.date(2026, 12, 7), Decimal("4100.00"), owner_id, models.PromiseStatus.OPEN,
        )
        assert session.get(models.Owner, stored.owner_id).unit_id == unit_id
        assert stored.source_message_id and stored.source_message_id != order.source_message_id
        assert stored.number in confirmed[0]
    assert_promised(
        servers.database_url, ROOM, sender_id=owner, due=dt.date(2026, 12, 7), amount=Decimal("4100.00"), before=before
    )


def test_a_promise_said_at_the_instalment_read_back_is_taken_up_after_the_request_is_cancelled(servers) -> None:
    owner, say = conversation(servers)
    owner_id, _ = owner_of(servers.database_url, ROOM)
    before = open_promise(servers.database_url, ROOM)
    verify(say)
    assert say("我想分三个月交") == [response("utter_confirm_instalment", plan="分3个月")]
    assert say("那就下周五交吧") == [kept("12月4日（周五）", "forms.record_instalment"), brief("forms.record_instalment")]
    replies = say("算了")
    assert replies == [
        wording.text("forms.cancelled_promise_kept", record=wording.text("forms.record_instalment")),
        promises.confirmation_question(dt.date(2026, 12, 4), Decimal("4100.00")),
    ]
    confirmed = say("对")
    assert len(confirmed) == 1 and confirmed[0].startswith(recorded_promise("12月4日（周五）", "4,100.00"))
    with session_scope(servers.database_url) as session:
        assert (
            session.execute(select(models.InstalmentRequest).where(models.InstalmentRequest.sender_id == owner)).first()
            is None
        )
        stored = session.execute(
            select(models.PaymentPromise).where(models.PaymentPromise.sender_id == owner)
        ).scalar_one()
        assert (stored.due_date, stored.amount, stored.owner_id, stored.status) == (
            dt.date(2026, 12, 4), Decimal("4100.00"), owner_id, models.PromiseStatus.OPEN,
        )
        assert stored.number in confirmed[0]
    assert_promised(
        servers.database_url, ROOM, sender_id=owner, due=dt.date(2026, 12, 4), amount=Decimal("4100.00"), before=before
    )


def test_a_promise_said_in_a_complaint_is_read_back_right_after_the_complaint_is_recorded(servers) -> None:
    owner, say = conversation(servers)
    owner_id, _ = owner_of(servers.database_url, ROOM)
    before = open_promise(servers.database_url, ROOM)
    verify(say)
    assert say("我要投诉") == [response("utter_ask_complaint_description")]
    description = "保安昨晚对我态度很差，还骂人，处理好了我下周五再交物业费"
    replies = say(description)
    assert replies[0].startswith(response("utter_complaint_recorded", number="{number}").split("{number}")[0])
    assert replies[1:] == [promises.confirmation_question(dt.date(2026, 12, 4), Decimal("4100.00"))]
    confirmed = say("对")
    assert len(confirmed) == 1 and confirmed[0].startswith(recorded_promise("12月4日（周五）", "4,100.00"))
    with session_scope(servers.database_url) as session:
        (complaint,) = session.execute(select(models.Complaint).where(models.Complaint.sender_id == owner)).scalars()
        assert (complaint.description, complaint.owner_id, complaint.status) == (
            description, owner_id, models.RecordStatus.OPEN,
        )
        assert complaint.number in replies[0]
        stored = session.execute(
            select(models.PaymentPromise).where(models.PaymentPromise.sender_id == owner)
        ).scalar_one()
        assert (stored.due_date, stored.amount, stored.owner_id, stored.status) == (
            dt.date(2026, 12, 4), Decimal("4100.00"), owner_id, models.PromiseStatus.OPEN,
        )
        assert stored.number in confirmed[0] and stored.source_message_id != complaint.source_message_id
    assert_promised(
        servers.database_url, ROOM, sender_id=owner, due=dt.date(2026, 12, 4), amount=Decimal("4100.00"), before=before
    )
