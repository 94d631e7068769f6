"""Whole conversations over the REST channel against the real Rasa server and action server."""

import datetime as dt
import re
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from bot import wording
from bot.db import models
from bot.db.session import session_scope
from bot.playbook import default_playbook
from bot.service_config import get_service_config
from bot.services import promises
from tests.e2e.promise_checks import assert_promised, open_promise
from tests.fakes.wording import response, response_variants, says

pytestmark = [pytest.mark.e2e, pytest.mark.model]
TODAY = "2026-11-23"
CHANNELS = "、".join(method.split(" ")[0] for method in get_service_config().payment_methods[:2])


def test_identity_heating_repair_and_promise_land_in_the_database(servers) -> None:
    owner = f"owner-{uuid.uuid4().hex}"
    heating = default_playbook().get("objection_heating")
    say = lambda text: servers.say(owner, text, date=TODAY)  # noqa: E731
    before = open_promise(servers.database_url, "3栋2单元501")  # a promise of an earlier test moves here

    assert says(say("你好"), "utter_greet")

    assert say("我欠多少物业费") == response_variants("utter_ask_room")
    assert say("3栋2单元501") == response_variants("utter_ask_phone_tail")
    replies = say("6688")
    assert replies[:2] == [
        response("utter_identity_verified", owner_name="王建国"),
        response("utter_arrears", unit="3栋2单元501", amount="2,460.00", since="2026年3月", months=9),
    ]

    replies = say("暖氣一點都唔熱，管理費我唔交住")
    assert replies == [heating.answers[0], heating.offer.text]

    # the heating answer already said what is broken: the form asks only where and when
    assert say("好的") == response_variants("utter_ask_repair_location")
    assert say("3栋2单元501 客厅和卧室") == response_variants("utter_ask_repair_time")
    order = {"item": "暖气", "location": "3栋2单元501客厅和卧室", "time": "11月24日（周二）上午"}
    assert say("明天上午") == [response("utter_confirm_repair", description="暖气一点都唔热", **order)]
    replies = say("对")
    repair_reply = replies[0]
    number = re.search(r"BX\d{12}", repair_reply)
    assert number is not None and repair_reply == response("utter_repair_recorded", number=number[0], **order)

    replies = say("下周五交")
    assert replies == [promises.confirmation_question(dt.date(2026, 12, 4), Decimal("2460.00"))]
    replies = say("对")
    assert len(replies) == 1, replies  # the confirmation, and nothing after it

    with session_scope(servers.database_url) as session:
        repair = session.execute(
            select(models.RepairOrder).where(models.RepairOrder.sender_id == owner)
        ).scalar_one()
        assert (repair.item, repair.location, repair.description, repair.preferred_time) == (
            "暖气",
            "3栋2单元501客厅和卧室",
            "暖气一点都唔热",
            "11月24日（周二）上午",
        )
        assert repair.number == number[0]
    promise = assert_promised(
        servers.database_url, "3栋2单元501", sender_id=owner, due=dt.date(2026, 12, 4), amount=Decimal("2460.00"), before=before
    )
    assert replies[0] == response(
        "utter_promise_recorded", date="12月4日（周五）", amount="2,460.00", number=promise.number, channels=CHANNELS
    )


def test_vague_date_is_asked_back_and_nothing_disclosed_without_identity(servers) -> None:
    owner = f"owner-{uuid.uuid4().hex}"
    assert servers.say(owner, "我欠了多少钱", date=TODAY) == response_variants("utter_ask_room")
    assert servers.say(owner, "5号楼1203", date=TODAY) == response_variants("utter_ask_phone_tail")
    replies = servers.say(owner, "9999", date=TODAY)
    assert replies == [response("utter_identity_mismatch"), response("utter_ask_room")]
    assert not re.search(r"\d元|3,600|3600|张伟", "".join(replies))

    assert servers.say(owner, "5号楼1203", date=TODAY) == response_variants("utter_ask_phone_tail")
    replies = servers.say(owner, "1111", date=TODAY)
    assert replies[0] == response("utter_identity_verified", owner_name="张伟")
    assert "3,600.00元" in replies[1]

    replies = servers.say(owner, "年后一定交", date=TODAY)
    assert wording.text("promises.ask_back_vague", expression="年后") in replies, replies
    replies = servers.say(owner, "12月20号", date=TODAY)
    assert replies == [promises.confirmation_question(dt.date(2026, 12, 20), Decimal("3600.00"))]
