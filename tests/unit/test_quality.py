"""The QA scan (bot/quality) on SQLite and PostgreSQL: each kind found from rows the test writes (audit rows,
outbox rows, owners' messages through Rasa's own SQLTrackerStore, records, reminders, WeChat delivery rows),
every field asserted, on a frozen clock; and the filters, the counts per day and the range checks."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from sqlalchemy import select

from bot import clock, compliance, quality
from bot.casework import follow_up
from bot.casework.owner_view import RecordKind
from bot.conversations import outbox
from bot.conversations.handles import handle_of
from bot.db import audit, models
from bot.db.models import OutboxKind, OutboxState, RecordStatus, WeChatDelivery
from bot.db.reminder_models import Reminder, ReminderPurpose, ReminderState
from bot.db.session import session_scope
from bot.owners import importer
from bot.service_config import get_service_config
from bot.services import owner_requests
from tests.unit.test_transcripts import domain, save, tracker_store  # noqa: F401  (fixtures)

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo" / "arrears.csv"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=SHANGHAI)
YESTERDAY = dt.date(2026, 11, 24)
TODAY = dt.date(2026, 11, 25)

WEB = "web-qa-7f3a9c"
WEB_CONFIRMED = "web-qa-confirmed-41"
WX = "oWx-qa-openid-5521"
ALL_SENDERS = (WEB, WEB_CONFIRMED, WX)
UTILITIES_REASON = "物业服务人不得采取停止供电、供水、供热、供燃气等方式催交物业费，以此相威胁同样不可以。"


def local(month: int, day: int, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, tzinfo=SHANGHAI)


def user_said(moment: dt.datetime, text: str, intent: str, number: int) -> List[Any]:
    from rasa.shared.core.events import ActionExecuted, UserUttered

    return [
        UserUttered(
            text,
            intent={"name": intent, "confidence": 0.93},
            input_channel="socketio",
            message_id=f"qa-{number}",
            timestamp=moment.timestamp(),
        ),
        ActionExecuted("action_listen", timestamp=moment.timestamp() + 1),
    ]


def bot_said(moment: dt.datetime, text: str) -> List[Any]:
    from rasa.shared.core.events import BotUttered

    return [BotUttered(text, timestamp=moment.timestamp())]


@pytest.fixture
def qa_estate(database_url: str, tracker_store: Any, domain: Any) -> Dict[str, Any]:  # noqa: F811
    """One row (or conversation) for each finding, and near misses beside each."""
    url = database_url
    ids: Dict[str, Any] = {"url": url}
    with session_scope(url) as session:
        importer.import_arrears(session, DEMO)
        wang = session.execute(select(models.Owner).where(models.Owner.name == "王建国")).scalar_one()
        zhang = session.execute(select(models.Owner).where(models.Owner.name == "张伟")).scalar_one()
        ids.update(wang=int(wang.id), zhang=int(zhang.id), zhang_unit=int(zhang.unit_id))

    # (a) refused texts, as the guard's callers audit them.
    with clock.frozen(local(11, 24, 10, 0)), session_scope(url) as session:
        audit.record(
            session, actor="wang", action="staff_reply_refused", target=handle_of(WEB),
            detail={"category": "utilities", "reason": UTILITIES_REASON, "text": "再不交就停你家水", "handle": handle_of(WEB)},
        )  # fmt: skip
    with clock.frozen(local(11, 24, 11, 0)), session_scope(url) as session:
        audit.record(
            session, actor="system", action="outgoing_refused", target="reminder:7",
            detail={"category": "access", "reason": "不能以门禁相逼。", "source": "reminder"},
        )  # fmt: skip
    with clock.frozen(local(11, 22, 11, 0)), session_scope(url) as session:  # before the range
        audit.record(
            session, actor="wang", action="staff_reply_refused", target=handle_of(WEB),
            detail={"category": "shaming", "reason": "r", "text": "贴公告栏", "handle": handle_of(WEB)},
        )  # fmt: skip

    # (a) staff replies that went out: one the guard flags, one clean, one flagged but never sent (failed).
    def staff_reply(moment: dt.datetime, text: str, state: OutboxState) -> None:
        with clock.frozen(moment), session_scope(url) as session:
            entry = outbox.enqueue(
                session, sender_id=WX, channel="wechat", kind=OutboxKind.TEXT, text=text, staff="zhao"
            )
            session.get(models.OutboxMessage, entry.id).state = state

    staff_reply(local(11, 24, 12, 0), "再不交物业费，下周就停您家的水", OutboxState.DELIVERED)
    staff_reply(local(11, 24, 12, 5), "您好，师傅明天上午上门维修暖气", OutboxState.DELIVERED)
    staff_reply(local(11, 24, 12, 10), "不交就停水停电", OutboxState.FAILED)

    # (c) repairs and complaints against the staff hours (09:00-18:00 every day).
    def make(moment: dt.datetime, model: Any, key: str, sender: str, **fields: Any) -> Tuple[int, str]:
        with clock.frozen(moment), session_scope(url) as session:
            record = owner_requests.create(session, model, message_id=key, sender_id=sender, **fields)
            return int(record.id), str(record.number)

    repair = {
        "owner_id": ids["wang"],
        "location": "客厅",
        "description": "坏了",
        "preferred_time": "周六上午",
    }
    ids["r_late"] = make(local(11, 24, 10, 0), models.RepairOrder, "r-late", WEB, item="暖气", **repair)
    with session_scope(url) as session:  # assigned without a response (no workflow change, no note)
        session.get(models.RepairOrder, ids["r_late"][0]).assignee = "li"
    ids["c_answered"] = make(
        local(11, 24, 10, 30), models.Complaint, "c-ok", WEB, owner_id=ids["wang"], description="保洁差"
    )
    with clock.frozen(local(11, 24, 11, 0)), session_scope(url) as session:
        follow_up.add_note(
            session, kind=RecordKind.COMPLAINTS, record_id=ids["c_answered"][0], staff="zhao", text="已联系"
        )
    ids["c_slow"] = make(
        local(11, 24, 17, 30), models.Complaint, "c-slow", WEB, owner_id=ids["wang"], description="噪音"
    )
    with clock.frozen(local(11, 25, 9, 30)), session_scope(url) as session:
        follow_up.change_status(
            session,
            kind=RecordKind.COMPLAINTS,
            record_id=ids["c_slow"][0],
            status=RecordStatus.IN_PROGRESS,
            staff="zhao",
        )
        audit.record(
            session, actor="zhao", action="record_status_changed", target=ids["c_slow"][1],
            detail={"kind": "complaints", "record_id": ids["c_slow"][0], "status": "in_progress"},
        )  # fmt: skip
    with clock.frozen(local(11, 25, 9, 50)), session_scope(url) as session:
        follow_up.add_note(
            session, kind=RecordKind.COMPLAINTS, record_id=ids["c_slow"][0], staff="zhao", text="跟进"
        )
    make(local(11, 25, 9, 0), models.RepairOrder, "r-today", WEB, item="电梯", **repair)  # due 18:00 today
    make(local(11, 24, 20, 0), models.RepairOrder, "r-evening", WEB, item="门禁", **repair)  # due 18:00 today

    # (d) promises.
    promise = {"owner_id": ids["zhang"], "amount": Decimal("3600.00"), "due_date": dt.date(2026, 12, 4)}
    ids["p_wechat"] = make(local(11, 24, 14, 0), models.PaymentPromise, "wechat-9001", WX, **promise)
    with session_scope(url) as session:
        session.add(
            models.WeChatInboundMessage(
                dedupe_key="msg:9001", openid=WX, msg_type="text", status=WeChatDelivery.FAILED,
                received_at=local(11, 24, 14, 0),
            )
        )  # fmt: skip
    ids["p_unsaid"] = make(local(11, 24, 15, 0), models.PaymentPromise, "qa-p2", WEB, **promise)
    ids["p_said"] = make(local(11, 24, 15, 30), models.PaymentPromise, "qa-p3", WEB_CONFIRMED, **promise)
    ids["p_old"] = make(local(11, 20, 9, 0), models.PaymentPromise, "qa-p4", WEB_CONFIRMED, **promise)
    with session_scope(url) as session:
        due = local(11, 24, 9, 0).astimezone(dt.timezone.utc)
        session.add(
            Reminder(
                owner_id=ids["zhang"], unit_id=ids["zhang_unit"], sender_id=WEB_CONFIRMED, channel="socketio",
                purpose=ReminderPurpose.DAY_BEFORE, due_at=due, first_due_at=due, state=ReminderState.FAILED,
                reason="session_ended", promise_id=ids["p_old"][0], dedupe_key="promise:qa:day_before",
                attempts=1, created_at=due,
            )
        )  # fmt: skip

    # Owners' messages and the bot's answers, written by Rasa's SQLTrackerStore.
    save(
        tracker_store, domain, WEB,
        user_said(local(11, 22, 9, 0), "我要打12345", "threaten_escalation", 0)  # before the range
        + user_said(local(11, 24, 13, 0), "再这样我就去法院起诉你们", "threaten_escalation", 1)
        + user_said(local(11, 24, 13, 5), "我要找记者曝光你们", "objection_poor_service", 2)
        + user_said(local(11, 24, 13, 10), "我一定要投诉到底", "threaten_escalation", 3)
        + user_said(local(11, 24, 13, 15), "好的", "affirm", 4)
        + user_said(local(11, 24, 15, 0), "下周五交", "promise_to_pay", 5)
        + bot_said(local(11, 24, 15, 0) + dt.timedelta(seconds=2), "好的，我再确认一下日期。")
        + user_said(local(11, 24, 15, 5), "谢谢", "thank", 6),
    )  # fmt: skip
    save(
        tracker_store, domain, WEB_CONFIRMED,
        user_said(local(11, 24, 15, 30), "下周五交", "promise_to_pay", 7)
        + bot_said(local(11, 24, 15, 30) + dt.timedelta(seconds=2), f"好的，已记录，编号{ids['p_said'][1]}。"),
    )  # fmt: skip
    return ids


def scan(url: str, **filters: Any) -> List[quality.Finding]:
    with clock.frozen(NOW), session_scope(url) as session:
        return quality.scan(
            session, day_from=YESTERDAY, day_to=TODAY, hours=get_service_config().staff, **filters
        )


def test_the_scan_finds_each_kind_with_its_fields(qa_estate: Dict[str, Any]) -> None:
    found = scan(qa_estate["url"])
    web, wx = handle_of(WEB), handle_of(WX)
    assert [(f.kind, f.at, f.handle, f.link, f.category, f.staff, f.reference) for f in found] == [
        ("promise_unconfirmed", local(11, 24, 9, 0), handle_of(WEB_CONFIRMED), f"/conversations/{handle_of(WEB_CONFIRMED)}",
         "reminder_failed", None, qa_estate["p_old"][1]),
        ("staff_refused", local(11, 24, 10, 0), web, f"/conversations/{web}", "utilities", "wang", None),
        ("unanswered", local(11, 24, 10, 0), web, f"/conversations/{web}", "repair", "li", qa_estate["r_late"][1]),
        ("staff_refused", local(11, 24, 11, 0), None, None, "access", None, "reminder:7"),
        ("staff_flagged", local(11, 24, 12, 0), wx, f"/conversations/{wx}", "utilities", "zhao", None),
        ("owner_threat", local(11, 24, 13, 0), web, f"/conversations/{web}", "court", None, None),
        ("owner_threat", local(11, 24, 13, 5), web, f"/conversations/{web}", "media", None, None),
        ("owner_threat", local(11, 24, 13, 10), web, f"/conversations/{web}", "other", None, None),
        ("promise_unconfirmed", local(11, 24, 14, 0), wx, f"/conversations/{wx}", "wechat_failed", None,
         qa_estate["p_wechat"][1]),
        ("promise_unconfirmed", local(11, 24, 15, 0), web, f"/conversations/{web}", "not_said", None,
         qa_estate["p_unsaid"][1]),
        ("unanswered", local(11, 24, 17, 30), web, f"/conversations/{web}", "complaint", None, qa_estate["c_slow"][1]),
    ]  # fmt: skip
    summaries = [finding.summary for finding in found]
    assert (
        summaries[0]
        == f"缴费承诺 {qa_estate['p_old'][1]}（12-04 前交 3600.00 元）：承诺前一天的提醒没有送达（session_ended）"
    )
    assert summaries[1] == f"员工回复被拦截：再不交就停你家水。{UTILITIES_REASON}"
    assert summaries[2] == f"报修 {qa_estate['r_late'][1]}（暖气）截至 11-24 18:00 未答复，至今无人处理"
    assert summaries[3] == "发给业主的文字被拦截（提醒）。不能以门禁相逼。"
    assert summaries[4].startswith("员工回复已送达，但含违规内容：再不交物业费，下周就停您家的水。")
    assert summaries[4].endswith(compliance.findings("再不交物业费，下周就停您家的水")[0].reason)
    assert summaries[5:8] == [
        "业主：再这样我就去法院起诉你们",
        "业主：我要找记者曝光你们",
        "业主：我一定要投诉到底",
    ]
    assert summaries[8].endswith("：微信回复发送失败，业主没有收到承诺确认")
    assert summaries[9].endswith("：对话里没有发出承诺确认")
    assert summaries[10] == f"投诉 {qa_estate['c_slow'][1]}应在 11-24 18:00 前答复，11-25 09:30 才首次处理"
    for finding in found:
        for sender in ALL_SENDERS:
            assert sender not in finding.summary and sender not in (finding.link or "")


def test_the_filters_narrow_by_kind_category_staff_and_days(qa_estate: Dict[str, Any]) -> None:
    url = qa_estate["url"]
    assert [f.category for f in scan(url, kinds=["owner_threat"])] == ["court", "media", "other"]
    assert [(f.kind, f.at) for f in scan(url, category="utilities")] == [
        ("staff_refused", local(11, 24, 10, 0)),
        ("staff_flagged", local(11, 24, 12, 0)),
    ]
    assert [(f.kind, f.reference) for f in scan(url, staff="li")] == [("unanswered", qa_estate["r_late"][1])]
    assert [f.kind for f in scan(url, staff="zhao")] == ["staff_flagged"]
    assert [f.kind for f in scan(url, kinds=["unanswered", "staff_refused"], staff="wang")] == [
        "staff_refused"
    ]
    with clock.frozen(NOW), session_scope(url) as session:
        earlier = quality.scan(session, day_from=dt.date(2026, 11, 22), day_to=dt.date(2026, 11, 22))
    assert [(f.kind, f.category, f.at) for f in earlier] == [
        ("owner_threat", "hotline", local(11, 22, 9, 0)),
        ("staff_refused", "shaming", local(11, 22, 11, 0)),
    ]
    with clock.frozen(NOW), session_scope(url) as session:
        assert quality.scan(session, day_from=TODAY, day_to=TODAY) == []


def test_counts_per_day_cover_every_kind_and_day(qa_estate: Dict[str, Any]) -> None:
    found = scan(qa_estate["url"])
    counts = quality.counts_per_day(found, day_from=dt.date(2026, 11, 23), day_to=TODAY)
    assert counts == {
        "staff_refused": [0, 2, 0],
        "staff_flagged": [0, 1, 0],
        "owner_threat": [0, 3, 0],
        "unanswered": [0, 2, 0],
        "promise_unconfirmed": [0, 3, 0],
    }


def test_a_record_is_late_only_once_its_deadline_has_passed(qa_estate: Dict[str, Any]) -> None:
    url = qa_estate["url"]
    with clock.frozen(local(11, 25, 18, 1)), session_scope(url) as session:
        late = quality.scan(session, day_from=YESTERDAY, day_to=TODAY, kinds=["unanswered"])
    assert [(f.at, f.category) for f in late] == [
        (local(11, 24, 10, 0), "repair"),
        (local(11, 24, 17, 30), "complaint"),
        (local(11, 24, 20, 0), "repair"),
        (local(11, 25, 9, 0), "repair"),
    ]
    assert late[2].summary.endswith("（门禁）截至 11-25 18:00 未答复，至今无人处理")


def test_the_deadline_is_the_close_of_the_first_working_day() -> None:
    hours = get_service_config().staff
    assert quality.response_deadline(local(11, 24, 10, 0), hours) == local(11, 24, 18, 0)
    assert quality.response_deadline(local(11, 24, 18, 30), hours) == local(11, 25, 18, 0)
    assert quality.response_deadline(local(11, 24, 7, 0), hours) == local(11, 24, 18, 0)


def test_threat_words_in_every_writing_style() -> None:
    assert quality.threat_categories("再不处理我就打12345") == ["hotline"]
    assert quality.threat_categories("我會去法院告你哋") == ["court"]
    assert quality.threat_categories("我要去住 建 局和消協投訴") == ["authority"]
    assert quality.threat_categories("我要找記者曝光") == ["media"]
    assert quality.threat_categories("好的，下周五交") == []
    assert quality.threat_categories("放心，我不会去12345投诉的") == []
    assert quality.threat_categories("我不打算找记者，但你们再不修我就去法院") == ["court"]


def test_a_bad_range_or_kind_is_refused(database_url: str) -> None:
    with session_scope(database_url) as session:
        with pytest.raises(ValueError):
            quality.scan(session, day_from=TODAY, day_to=YESTERDAY)
        with pytest.raises(ValueError):
            quality.scan(session, day_from=TODAY - dt.timedelta(days=quality.MAX_DAYS), day_to=TODAY)
        with pytest.raises(ValueError):
            quality.scan(session, day_from=TODAY, day_to=TODAY, kinds=["nonsense"])
        assert (
            quality.scan(session, day_from=TODAY - dt.timedelta(days=quality.MAX_DAYS - 1), day_to=TODAY)
            == []
        )
