"""Whole conversations over the REST channel against the real Rasa server and action server."""

import datetime as dt
import re
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select

from bot.db import models
from bot.db.session import session_scope
from bot.playbook import default_playbook

pytestmark = [pytest.mark.e2e, pytest.mark.model]
TODAY = "2026-11-23"


def test_identity_heating_repair_and_promise_land_in_the_database(servers) -> None:
    owner = f"owner-{uuid.uuid4().hex}"
    heating = default_playbook().get("objection_heating")
    say = lambda text: servers.say(owner, text, date=TODAY)  # noqa: E731

    assert any("您好" in reply for reply in say("你好"))

    replies = say("我欠多少物业费")
    assert replies == ["为了保护您的信息，需要先核对身份。请告诉我您的房号（例如3栋2单元501）。"]
    replies = say("3栋2单元501")
    assert replies == ["请再告诉我登记手机号的后四位。"]
    replies = say("6688")
    assert replies[0] == "核对成功，王建国您好。"
    assert replies[1] == "3栋2单元501目前欠物业费2,460.00元，从2026年3月起，共9个月。"

    replies = say("暖氣一點都唔熱，管理費我唔交住")
    assert replies == [heating.answers[0], heating.offer.text]

    # the heating answer already said what is broken: the form asks only where and when
    assert say("好的") == ["具体在哪个位置？比如“3栋2单元501室内”或“5号楼一层大堂”。"]
    assert say("3栋2单元501 客厅和卧室") == ["您希望师傅什么时候上门？比如“明天上午”“周六下午”。"]
    replies = say("明天上午")
    assert replies == [
        "跟您确认一下维修单：暖气，位置：3栋2单元501客厅和卧室，情况：暖气一点都唔热，希望上门时间：11月24日（周二）上午。对吗？"
    ]
    replies = say("对")
    assert replies[0].startswith("已为您登记维修单，单号BX")
    repair_reply = replies[0]

    replies = say("下周五交")
    assert replies == ["跟您确认一下：您打算在12月4日（周五）交2,460.00元，对吗？"]
    replies = say("对")
    assert len(replies) == 1, replies  # the confirmation, and nothing after it
    assert replies[0].startswith("好的，已记录：您承诺在12月4日（周五）交2,460.00元，编号CN")

    with session_scope(servers.database_url) as session:
        repair = session.execute(
            select(models.RepairOrder).where(models.RepairOrder.sender_id == owner)
        ).scalar_one()
        promise = session.execute(
            select(models.PaymentPromise).where(models.PaymentPromise.sender_id == owner)
        ).scalar_one()
        assert (repair.item, repair.location, repair.description, repair.preferred_time) == (
            "暖气",
            "3栋2单元501客厅和卧室",
            "暖气一点都唔热",
            "11月24日（周二）上午",
        )
        assert repair.number in repair_reply
        assert promise.number in replies[0]
        assert (promise.due_date, promise.amount) == (dt.date(2026, 12, 4), Decimal("2460.00"))
        assert promise.status == models.PromiseStatus.OPEN


def test_vague_date_is_asked_back_and_nothing_disclosed_without_identity(servers) -> None:
    owner = f"owner-{uuid.uuid4().hex}"
    replies = servers.say(owner, "我欠了多少钱", date=TODAY)
    assert replies and "房号" in replies[0]
    assert servers.say(owner, "5号楼1203", date=TODAY) == ["请再告诉我登记手机号的后四位。"]
    replies = servers.say(owner, "9999", date=TODAY)
    assert replies == [
        "抱歉，房号和手机尾号对不上，请再核对一下。",
        "为了保护您的信息，需要先核对身份。请告诉我您的房号（例如3栋2单元501）。",
    ]
    assert not re.search(r"\d元|3,600|3600|张伟", "".join(replies))

    replies = servers.say(owner, "5号楼1203", date=TODAY)
    assert replies == ["请再告诉我登记手机号的后四位。"]
    replies = servers.say(owner, "1111", date=TODAY)
    assert replies[0] == "核对成功，张伟您好。"
    assert "3,600.00元" in replies[1]

    replies = servers.say(owner, "年后一定交", date=TODAY)
    assert any("“年后”具体是哪一天" in reply for reply in replies), replies
    replies = servers.say(owner, "12月20号", date=TODAY)
    assert replies == ["跟您确认一下：您打算在12月20日（周日）交3,600.00元，对吗？"]
