"""The data subject's rights (bot/privacy/subject.py) on SQLite and PostgreSQL: an owner with verified web chat
and WeChat conversations (their events written by Rasa's own SQLTrackerStore), a REST conversation, records,
notes, reminders, a call task, an opt-out, an outbox message, WeChat rows, identity attempts, an NLU correction
and audit rows; another owner beside him. The export holds all of his and none of the other's; the erasure
leaves nothing personal of his in any table (every table of the schema and Rasa's ``events`` are read back),
keeps the accounts, leaves the other owner's rows as they were, writes one audit row of counts, and is one
transaction."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
import sqlalchemy as sa
from sqlalchemy import select

from bot import clock
from bot.db import audit, models
from bot.db.models import Base, Owner
from bot.db.payment_models import Payment, PaymentSource
from bot.db.reminder_models import (
    CallTask,
    CallTaskState,
    Reminder,
    ReminderOptOut,
    ReminderPurpose,
    ReminderState,
)
from bot.db.session import session_scope
from bot.owners import identity as owners
from bot.owners import importer
from bot.privacy import subject
from bot.privacy.subject import ERASED_NAME, ERASED_TEXT, SubjectError
from bot.rasa.events import events, events_exist
from bot.services import escalations, owner_requests
from bot.services.escalations import Reason
from tests.unit.test_transcripts import domain, opening, save, tracker_store  # noqa: F401  (fixtures)

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo" / "arrears.csv"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)
LATER = dt.datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI)

WEB = "9f1c2e3d4b5a69788796a5b4c3d2e1f0.1795000000." + "ab" * 32  # a web chat session id
OPENID = "oWangJianGuo_openid_7Q2x"
REST = "rest-wang-7731"
ZHANG_OPENID = "oZhangWei_openid_9K4m"
NAME, PHONE, MASKED = "王建国", "13812346688", "138****6688"
# What he wrote or what was written about him, in free texts (each must go).
FREE_TEXTS = (
    "客厅天花板渗水，楼上漏下来的",
    "楼道保安夜里不巡逻",
    "十月电梯费多收了一百",
    "分三个月缴清，每月十号",
    "同意，按月跟进",
    "业主情绪激动，说要找媒体",
    "已约师傅周六上门看渗水",
    "别再发消息了",
    "师傅明天上午到，请留人在家",
    "我家暖气片漏水了",
    "主卧北墙",
    "周六上午九点后",
    "先前没核实身份时报的：阳台下水道堵了",
)


def second(offset: float) -> float:
    return T0.timestamp() + offset


def user(text_: str, intent: str, channel: str, offset: float, client: str) -> Any:
    from rasa.shared.core.events import UserUttered

    return UserUttered(
        text_, intent={"name": intent, "confidence": 0.5}, input_channel=channel, message_id=f"m-{offset}",
        metadata={"client": client}, timestamp=second(offset),
    )  # fmt: skip


def bot_said(text_: str, offset: float, **metadata: Any) -> Any:
    from rasa.shared.core.events import BotUttered

    return BotUttered(text_, metadata=metadata or None, timestamp=second(offset))


def build(url: str, store: Any, domain: Any) -> Dict[str, Any]:  # noqa: F811
    """王建国 (3-2-501) with everything the bot can hold on an owner; 张伟 beside him with a little of his own."""
    ids: Dict[str, Any] = {"url": url}
    save(store, domain, WEB, [
        *opening(0),
        user("你好，我是王建国，3栋2单元501，电话13812346688", "provide_identity", "socketio", 5, "ip:203.0.113.9"),
        bot_said("王先生您好，已核实您的身份。", 6),
        user("我家暖气片漏水了", "report_repair", "socketio", 30, "ip:203.0.113.9"),
        bot_said("师傅明天上午到，请留人在家", 40, staff="li"),
    ])  # fmt: skip
    save(store, domain, OPENID, [
        *opening(100),
        user("3栋2单元501 尾号6688", "provide_identity", "wechat", 105, f"wechat:{OPENID}"),
        user("下周五交八百", "promise_to_pay", "wechat", 110, f"wechat:{OPENID}"),
    ])  # fmt: skip
    save(store, domain, REST, [*opening(200), user("保安不巡逻，我要投诉", "file_complaint", "rest", 205, f"rest:{REST}")])
    save(store, domain, ZHANG_OPENID, [*opening(300), user("5号楼1203 尾号1111", "provide_identity", "wechat", 305, f"wechat:{ZHANG_OPENID}")])
    with clock.frozen(T0), session_scope(url) as session:
        importer.import_arrears(session, DEMO)
        wang = session.execute(select(Owner).where(Owner.name == NAME)).scalar_one()
        zhang = session.execute(select(Owner).where(Owner.name == "张伟")).scalar_one()
        ids["wang"], ids["zhang"], ids["unit"] = int(wang.id), int(zhang.id), int(wang.unit_id)
        owners.link_conversation(session, channel="socketio", sender_id=WEB, owner_id=wang.id)
        owners.link_conversation(session, channel="wechat", sender_id=OPENID, owner_id=wang.id)
        owners.link_conversation(session, channel="wechat", sender_id=ZHANG_OPENID, owner_id=zhang.id)

        def make(model: Any, message: str, sender: str, **fields: Any) -> Any:
            return owner_requests.create(session, model, message_id=message, sender_id=sender, **fields)

        early = make(models.RepairOrder, "r-0", WEB, owner_id=None, item="下水道", location="阳台", description=FREE_TEXTS[12], preferred_time="尽快")
        promise = make(models.PaymentPromise, "p-1", OPENID, owner_id=wang.id, amount=Decimal("800.00"), due_date=dt.date(2026, 11, 27))
        repair = make(models.RepairOrder, "r-1", OPENID, owner_id=wang.id, item="暖气", location=FREE_TEXTS[10], description=FREE_TEXTS[0], preferred_time=FREE_TEXTS[11])
        complaint = make(models.Complaint, "c-1", REST, owner_id=wang.id, description=FREE_TEXTS[1])
        check = make(models.BillCheckRequest, "b-1", OPENID, owner_id=wang.id, description=FREE_TEXTS[2])
        plan = make(models.InstalmentRequest, "i-1", OPENID, owner_id=wang.id, proposed_plan=FREE_TEXTS[3])
        plan.decided_by, plan.decided_at, plan.decision_note = "zhao", clock.now(), FREE_TEXTS[4]
        plan.status = models.InstalmentStatus.APPROVED
        escalation = escalations.escalate(
            session, reason=Reason.THREATEN_ESCALATION, detail=FREE_TEXTS[5], owner_id=wang.id, channel="socketio",
            sender_id=WEB, message_id="e-1",
        )  # fmt: skip
        zhang_promise = make(models.PaymentPromise, "p-z", ZHANG_OPENID, owner_id=zhang.id, amount=Decimal("3600.00"), due_date=dt.date(2026, 12, 5))
        # 张伟 once wrote in 王建国's web chat (a neighbour on his phone): the record keeps its text, not the id.
        zhang_in_web = make(models.Complaint, "c-z", WEB, owner_id=zhang.id, description="电梯太吵")
        session.add(models.RecordNote(record_type="repairs", record_id=repair.id, author="li", text=FREE_TEXTS[6], created_at=clock.now()))
        session.add(models.EscalationEvent(
            escalation_id=escalation.id, at=clock.now(), action=models.EscalationAction.CLAIM, actor="li", assignee="li",
            from_state=models.EscalationState.PENDING, to_state=models.EscalationState.OPEN,
        ))  # fmt: skip
        reminder = Reminder(
            owner_id=wang.id, unit_id=wang.unit_id, sender_id=OPENID, channel="wechat", purpose=ReminderPurpose.DUE_MORNING,
            due_at=clock.utc_now(), first_due_at=clock.utc_now(), state=ReminderState.CALL_TASK, reason="window_closed",
            promise_id=promise.id, dedupe_key=f"promise:{promise.id}:due_morning:2026-11-27", created_at=clock.utc_now(),
        )  # fmt: skip
        monthly = Reminder(
            owner_id=wang.id, unit_id=wang.unit_id, sender_id=WEB, channel="socketio", purpose=ReminderPurpose.MONTHLY_BILL,
            due_at=clock.utc_now(), first_due_at=clock.utc_now(), state=ReminderState.SCHEDULED, period="2026-12",
            dedupe_key=f"monthly:{wang.id}:2026-12", created_at=clock.utc_now(),
        )  # fmt: skip
        session.add_all([reminder, monthly])
        session.flush()
        call = CallTask(
            unit_id=wang.unit_id, owner_id=wang.id, reason="window_closed", reminder_id=reminder.id, promise_id=promise.id,
            state=CallTaskState.DONE, assignee="wang", note=f"打了{PHONE}，说周五交", created_at=clock.utc_now(),
        )  # fmt: skip
        opt_out = ReminderOptOut(sender_id=WEB, channel="socketio", how="chat", text=FREE_TEXTS[7], opted_out_at=clock.utc_now())
        outbox = models.OutboxMessage(
            sender_id=WEB, channel="socketio", kind=models.OutboxKind.TEXT, text=FREE_TEXTS[8], staff="li",
            state=models.OutboxState.DELIVERED, attempts=1, created_at=clock.now(),
        )  # fmt: skip
        session.add_all([call, opt_out, outbox])
        session.add_all([
            models.WeChatInboundMessage(dedupe_key="msg:24601", openid=OPENID, msg_type="text", status=models.WeChatDelivery.REPLIED, reply="好的"),
            models.WeChatInboundMessage(dedupe_key=f"event:{OPENID}:1795000000", openid=OPENID, msg_type="event", status=models.WeChatDelivery.IGNORED),
            models.WeChatInboundMessage(dedupe_key="msg:99999", openid=ZHANG_OPENID, msg_type="text", status=models.WeChatDelivery.REPLIED, reply="好"),
            models.WeChatPendingChoice(openid=OPENID, choices='[{"title": "报修", "payload": "/report_repair"}]'),
            models.WeChatSubscriptionEvent(openid=OPENID, event="subscribe", event_time=clock.utc_now()),
            models.WeChatCallbackSignature(signature="a" * 40, nonce="n1", dedupe_key=f"event:{OPENID}:1795000000", expires_at=clock.utc_now()),
            models.WeChatCallbackSignature(signature="b" * 40, nonce="n2", dedupe_key="msg:99999", expires_at=clock.utc_now()),
            models.IdentityAttempt(unit_code="3-2-501", client_key="ip:203.0.113.9", channel="socketio", sender_id=WEB, succeeded=True, attempted_at=clock.now()),
            models.IdentityAttempt(unit_code="3-2-501", client_key=f"wechat:{OPENID}", channel="wechat", sender_id=OPENID, succeeded=False, attempted_at=clock.now()),
            models.IdentityAttempt(unit_code="3-2-501", client_key="ip:198.51.100.4", channel="socketio", sender_id="someone-else", succeeded=False, attempted_at=clock.now()),
            models.RateLimitHit(key=f"unverified-record:wechat:{OPENID}", at=clock.now()),
            models.RateLimitHit(key="unverified-record:ip:198.51.100.4", at=clock.now()),
            Payment(unit_id=wang.unit_id, amount=Decimal("200.00"), paid_at=clock.utc_now(), channel="微信", reference="WX-1",
                    source=PaymentSource.STAFF, recorded_by="li", created_at=clock.utc_now()),
        ])  # fmt: skip
        event_id = session.execute(
            select(events.c.id).where(events.c.sender_id == OPENID, events.c.type_name == "user").order_by(events.c.id.desc())
        ).scalars().first()
        session.add(models.NluCorrection(
            event_id=event_id, sender_id=OPENID, text="下周五交八百", predicted_intent="promise_to_pay", confidence=Decimal("0.5"),
            decision=models.NluDecision.CORRECTED, intent="promise_to_pay", decided_by="zhao", decided_at=clock.now(),
        ))  # fmt: skip
        session.flush()
        ids.update(
            promise=promise.number, repair=repair.number, early=early.number, complaint=complaint.number, check=check.number,
            plan=plan.number, escalation=escalation.number, escalation_id=int(escalation.id), repair_id=int(repair.id),
            zhang_promise=zhang_promise.number, zhang_in_web=int(zhang_in_web.id), call=int(call.id), event=int(event_id),
            outbox=int(outbox.id), reminder=int(reminder.id),
        )  # fmt: skip
        for entry in (
            dict(actor="li", action="owner_viewed", target=f"owner:{wang.id}"),
            dict(actor="li", action="conversation_viewed", target=WEB, detail={"owner_id": wang.id, "entries": 5}),
            dict(actor="li", action="conversation_replied", target="W-3F9K-2A7Q", detail={"outbox_id": outbox.id, "channel": "socketio", "text": FREE_TEXTS[8]}),
            dict(actor="li", action="record_noted", target=repair.number, detail={"kind": "repairs", "record_id": repair.id, "text": FREE_TEXTS[6]}),
            dict(actor="zhao", action="nlu_decided", target=f"event:{event_id}", detail={"text": "下周五交八百", "predicted": "promise_to_pay", "intent": "promise_to_pay"}),
            dict(actor="wang", action="call_done", target=f"call:{call.id}", detail={"record_id": call.id, "text": call.note}),
            dict(actor="li", action="conversations_listed", detail={"sender": OPENID, "rows": 1}),
            dict(actor="import", action="owner_retired", target=f"owner:{zhang.id}", detail={"reason": "roster", "unit": "5-1203", "new_owner_id": zhang.id, "new_owner_phone": "137****1111"}),
            dict(actor="li", action="owner_viewed", target=f"owner:{zhang.id}"),
        ):
            audit.record(session, **entry)  # type: ignore[arg-type]
    return ids


@pytest.fixture
def estate(database_url: str, tracker_store: Any, domain: Any) -> Dict[str, Any]:  # noqa: F811
    return build(database_url, tracker_store, domain)


# --- reading every table back --------------------------------------------------------------------------


def every_row(url: str) -> Dict[str, List[Dict[str, Any]]]:
    """Every row of every table of the schema and of Rasa's ``events``, as stored, by table."""
    with session_scope(url) as session:
        found = {
            table.name: [dict(row._mapping) for row in session.execute(select(table).order_by(*table.primary_key.columns))]
            for table in Base.metadata.sorted_tables
        }
        found["events"] = (
            [dict(row._mapping) for row in session.execute(sa.text("SELECT * FROM events ORDER BY id"))] if events_exist(session) else []
        )
    return found


def utc(moment: dt.datetime) -> dt.datetime:
    """A stored UTC time (naive on SQLite) as an aware one."""
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def as_text(value: Any) -> str:
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def occurrences(url: str, needles: Any) -> List[Tuple[str, str]]:
    """(table, needle) for each needle found in any stored value of any table."""
    hits = []
    for table, rows in every_row(url).items():
        for row in rows:
            for value in row.values():
                stored = as_text(value)
                hits += [(table, needle) for needle in needles if needle in stored]
    return sorted(set(hits))


def personal() -> Tuple[str, ...]:
    return (NAME, PHONE, MASKED, WEB, OPENID, REST, "203.0.113.9", *FREE_TEXTS)


def rows_of(url: str, model: Any, **where: Any) -> List[Any]:
    with session_scope(url) as session:
        query = select(model).filter_by(**where).order_by(*model.__table__.primary_key.columns)
        found = list(session.execute(query).scalars())
        for row in found:
            session.expunge(row)
        return found


def zhangs(url: str, zhang: int) -> Dict[str, Any]:
    """Everything of 张伟's (and the other conversation's rows), to compare before and after."""
    every = every_row(url)
    with session_scope(url) as session:
        owner = session.get(Owner, zhang)
        return {
            "owner": (owner.name, owner.phone, owner.unit_id, owner.retired_at),
            "events": [row for row in every["events"] if row["sender_id"] == ZHANG_OPENID],
            "links": [row for row in every["conversation_links"] if row["sender_id"] == ZHANG_OPENID],
            "promises": [row for row in every["payment_promises"] if row["sender_id"] == ZHANG_OPENID],
            "wechat": [row for row in every["wechat_inbound_messages"] if row["openid"] == ZHANG_OPENID],
            "signatures": [row for row in every["wechat_callback_signatures"] if row["dedupe_key"] == "msg:99999"],
            "attempts": [row for row in every["identity_attempts"] if row["sender_id"] == "someone-else"],
            "hits": [row for row in every["rate_limit_hits"] if "198.51.100.4" in row["key"]],
            "audit": [row for row in every["audit_log"] if row["target"] == f"owner:{zhang}"],
        }


# --- export ---------------------------------------------------------------------------------------------


def test_collect_holds_everything_on_the_owner_and_nothing_of_the_other(estate: Dict[str, Any]) -> None:
    url, wang = estate["url"], estate["wang"]
    with clock.frozen(LATER), session_scope(url) as session:
        data = subject.collect(session, owner_id=wang)
    assert data["format"] == "wuye-privacy-export/1" and data["exported_at"] == LATER.isoformat()
    owner = data["owner"]
    assert (owner["id"], owner["name"], owner["phone"], owner["unit"], owner["current"], owner["erased"]) == (
        wang, NAME, PHONE, "3-2-501", True, False
    )  # fmt: skip
    assert (owner["owned_from"], owner["owned_until"], owner["retired_at"], owner["retired_reason"]) == (None, None, None, None)
    assert data["unit"]["code"] == "3-2-501" and data["accounts_period"] == {"from": None, "until": None}
    assert [(bill["period"], bill["amount_due"]) for bill in data["bills"]] == [
        (bill.period, str(bill.amount_due)) for bill in rows_of(url, models.Bill, unit_id=estate["unit"])
    ]
    assert [(payment["amount"], payment["reference"], payment["channel"]) for payment in data["payments"]] == [("200.00", "WX-1", "微信")]
    assert [(row["number"], row["amount"], row["due_date"], row["status"]) for row in data["payment_promises"]] == [
        (estate["promise"], "800.00", "2026-11-27", "open")
    ]
    assert sorted(row["number"] for row in data["repair_orders"]) == sorted([estate["repair"], estate["early"]])
    assert [row["description"] for row in data["repair_orders"]] == [FREE_TEXTS[12], FREE_TEXTS[0]]
    assert [row["description"] for row in data["complaints"]] == [FREE_TEXTS[1]]  # not 张伟's complaint in the same chat
    assert [row["description"] for row in data["bill_check_requests"]] == [FREE_TEXTS[2]]
    assert [(row["proposed_plan"], row["decision_note"], row["status"]) for row in data["instalment_requests"]] == [
        (FREE_TEXTS[3], FREE_TEXTS[4], "approved")
    ]
    assert [(row["reason"], row["detail"]) for row in data["escalations"]] == [("threaten_escalation", FREE_TEXTS[5])]
    assert [(row["action"], row["actor"]) for row in data["escalation_events"]] == [("claim", "li")]
    assert [row["text"] for row in data["record_notes"]] == [FREE_TEXTS[6]]
    label = data["conversations"][0]["conversation"]
    assert label.startswith("webchat:") and len(label) == len("webchat:") + 12
    assert [(row["channel"], row["sender_id"]) for row in data["conversation_links"]] == [("socketio", label), ("wechat", OPENID)]
    conversations = {item["conversation"]: item for item in data["conversations"]}
    assert set(conversations) == {label, OPENID, REST}
    assert {key: item["channel"] for key, item in conversations.items()} == {label: "socketio", OPENID: "wechat", REST: "rest"}
    said = [(entry.get("speaker"), entry.get("staff"), entry.get("text")) for entry in conversations[label]["messages"] if entry["kind"] == "message"]
    assert said == [
        ("owner", None, "你好，我是王建国，3栋2单元501，电话13812346688"),
        ("bot", None, "王先生您好，已核实您的身份。"),
        ("owner", None, "我家暖气片漏水了"),
        ("staff", "li", "师傅明天上午到，请留人在家"),
    ]
    assert [entry.get("text") for entry in conversations[OPENID]["messages"] if entry["kind"] == "message"] == [
        "3栋2单元501 尾号6688", "下周五交八百"
    ]
    assert conversations[OPENID]["messages"][1]["at"] == dt.datetime.fromtimestamp(second(105), SHANGHAI).isoformat()
    assert [entry.get("text") for entry in conversations[REST]["messages"] if entry["kind"] == "message"] == ["保安不巡逻，我要投诉"]
    assert [(row["purpose"], row["state"]) for row in data["reminders"]] == [("due_morning", "call_task"), ("monthly_bill", "scheduled")]
    assert [(row["state"], row["note"]) for row in data["call_tasks"]] == [("done", f"打了{PHONE}，说周五交")]
    assert [(row["how"], row["text"], row["sender_id"]) for row in data["reminder_opt_outs"]] == [("chat", FREE_TEXTS[7], label)]
    assert [(row["text"], row["staff"]) for row in data["outbox_messages"]] == [(FREE_TEXTS[8], "li")]
    assert sorted(row["dedupe_key"] for row in data["wechat_inbound_messages"]) == sorted(["msg:24601", f"event:{OPENID}:1795000000"])
    assert [row["openid"] for row in data["wechat_pending_choices"]] == [OPENID]
    assert [row["event"] for row in data["wechat_subscription_events"]] == ["subscribe"]
    assert [row["dedupe_key"] for row in data["wechat_callback_signatures"]] == [f"event:{OPENID}:1795000000"]
    assert sorted((row["client_key"], row["succeeded"]) for row in data["identity_attempts"]) == [
        ("ip:203.0.113.9", True), (f"wechat:{OPENID}", False)
    ]  # fmt: skip
    assert [row["key"] for row in data["rate_limit_hits"]] == [f"unverified-record:wechat:{OPENID}"]
    assert [row["text"] for row in data["nlu_corrections"]] == ["下周五交八百"]
    assert [(row["action"], row["target"]) for row in data["audit_log"]] == [
        ("owner_viewed", f"owner:{wang}"), ("conversation_viewed", label), ("conversation_replied", "W-3F9K-2A7Q"),
        ("record_noted", estate["repair"]), ("nlu_decided", f"event:{estate['event']}"), ("call_done", f"call:{estate['call']}"),
        ("conversations_listed", None),
    ]  # fmt: skip
    exported = json.dumps(data, ensure_ascii=False)
    assert WEB not in exported  # a web chat session id is a bearer credential: never written out
    for other in ("张伟", "13700001111", ZHANG_OPENID, "电梯太吵", estate["zhang_promise"]):
        assert other not in exported


def test_export_writes_json_and_readable_text_and_is_audited(estate: Dict[str, Any], tmp_path: Path) -> None:
    url, wang = estate["url"], estate["wang"]
    with clock.frozen(LATER), session_scope(url) as session:
        json_path, text_path = subject.export(session, owner_id=wang, directory=tmp_path / "out", actor="cli:ops")
        expected = subject.collect(session, owner_id=wang)
    assert (json_path.name, text_path.name) == (f"owner-{wang}-20261128-100000.json", f"owner-{wang}-20261128-100000.txt")
    written = json.loads(json_path.read_text(encoding="utf-8"))
    assert NAME in json_path.read_text(encoding="utf-8")  # UTF-8 as it is, not \\u escapes
    expected["audit_log"] = [row for row in expected["audit_log"] if row["action"] != "privacy_exported"]
    assert written == expected
    readable = text_path.read_text(encoding="utf-8")
    for wanted in (
        "个人信息导出", "导出时间：2026-11-28 10:00", f"姓名：{NAME}", f"手机号：{PHONE}", "房号：3-2-501（3栋2单元501）",
        "业主期间：（未记录起始日） 起，至今", "状态：现业主", FREE_TEXTS[0], FREE_TEXTS[6], estate["promise"],
        "金额：800.00", "承诺日期：2026-11-27", "状态：未结", "会话记录", "（微信公众号，oWangJianGuo_openid_7Q2x）",
        "2026-11-24 09:01 业主：3栋2单元501 尾号6688", "客服（li）：师傅明天上午到，请留人在家", "十一、员工备注",
        "与您有关的操作记录", "操作人：li；操作：owner_viewed",
    ):  # fmt: skip
        assert wanted in readable, wanted
    assert WEB not in readable and "张伟" not in readable
    [entry] = [row for row in every_row(url)["audit_log"] if row["action"] == "privacy_exported"]
    assert (entry["actor"], entry["target"], utc(entry["at"])) == ("cli:ops", f"owner:{wang}", LATER)
    detail = entry["detail"]
    assert detail == {"via": "cli", "format": "json+txt", **subject.counts(written)}
    assert (detail["conversations"], detail["messages"], detail["repair_orders"], detail["audit_log"]) == (3, 7, 2, 7)


def test_an_unknown_owner_is_refused(database_url: str) -> None:
    with session_scope(database_url) as session:
        with pytest.raises(SubjectError) as refused:
            subject.collect(session, owner_id=4242)
        assert refused.value.code == "no_owner"
        with pytest.raises(SubjectError):
            subject.erase(session, owner_id=4242, actor="cli:ops")
        with pytest.raises(SubjectError) as unit:
            subject.current_owners_of_unit(session, unit_code="9-9-999")
        assert unit.value.code == "no_unit"


# --- erase ----------------------------------------------------------------------------------------------


def test_erase_leaves_nothing_personal_anywhere_and_keeps_the_accounts(estate: Dict[str, Any]) -> None:
    url, wang, zhang = estate["url"], estate["wang"], estate["zhang"]
    assert occurrences(url, personal()) != []  # the scan finds them before
    zhang_before = zhangs(url, zhang)
    with clock.frozen(LATER), session_scope(url) as session:
        done = subject.erase(session, owner_id=wang, actor="cli:ops")
    assert done == {
        "conversations": 3, "audit_log": 7, "events": done["events"], "call_tasks": 1, "reminders": 2,
        "conversation_links": 2, "reminder_opt_outs": 1, "outbox_messages": 1, "nlu_corrections": 1, "identity_attempts": 2,
        "rate_limit_hits": 1, "wechat_inbound_messages": 2, "wechat_pending_choices": 1, "wechat_subscription_events": 1,
        "wechat_callback_signatures": 1, "bill_check_requests": 1, "complaints": 2, "escalations": 1,
        "instalment_requests": 1, "payment_promises": 1, "repair_orders": 2, "record_notes": 1, "owners": 1,
    }  # fmt: skip
    assert done["events"] >= 13

    assert occurrences(url, personal()) == []
    every = every_row(url)
    assert [row for row in every["events"] if row["sender_id"] != ZHANG_OPENID] == []
    assert zhangs(url, zhang) == zhang_before

    [owner] = rows_of(url, Owner, id=wang)
    assert (owner.name, owner.phone, owner.unit_id, owner.owned_from, owner.owned_until, owner.retired_at) == (
        ERASED_NAME, "", estate["unit"], None, None, None
    )  # fmt: skip
    [promise] = rows_of(url, models.PaymentPromise, number=estate["promise"])
    assert (promise.owner_id, promise.amount, promise.due_date, promise.status, promise.sender_id) == (
        wang, Decimal("800.00"), dt.date(2026, 11, 27), models.PromiseStatus.OPEN, f"erased-{wang}-2"
    )  # fmt: skip
    [repair] = rows_of(url, models.RepairOrder, number=estate["repair"])
    assert (repair.item, repair.location, repair.description, repair.preferred_time, repair.status, repair.sender_id) == (
        "暖气", ERASED_TEXT, ERASED_TEXT, ERASED_TEXT, models.RecordStatus.OPEN, f"erased-{wang}-2"
    )  # fmt: skip
    [early] = rows_of(url, models.RepairOrder, number=estate["early"])
    assert (early.owner_id, early.item, early.description, early.sender_id) == (None, "下水道", ERASED_TEXT, f"erased-{wang}-1")
    [complaint] = rows_of(url, models.Complaint, number=estate["complaint"])
    assert (complaint.description, complaint.sender_id) == (ERASED_TEXT, f"erased-{wang}-3")
    [plan] = rows_of(url, models.InstalmentRequest, number=estate["plan"])
    assert (plan.proposed_plan, plan.decision_note, plan.status, plan.decided_by) == (
        ERASED_TEXT, ERASED_TEXT, models.InstalmentStatus.APPROVED, "zhao"
    )  # fmt: skip
    [escalation] = rows_of(url, models.Escalation, number=estate["escalation"])
    assert (escalation.reason, escalation.detail, escalation.channel, escalation.sender_id) == (
        "threaten_escalation", ERASED_TEXT, "socketio", f"erased-{wang}-1"
    )  # fmt: skip
    [other] = rows_of(url, models.Complaint, id=estate["zhang_in_web"])
    assert (other.owner_id, other.description, other.sender_id) == (zhang, "电梯太吵", f"erased-{wang}-1")
    [note] = rows_of(url, models.RecordNote, record_id=estate["repair_id"])
    assert (note.author, note.text) == ("li", ERASED_TEXT)
    assert [(bill.period, bill.amount_due) for bill in rows_of(url, models.Bill, unit_id=estate["unit"])] != []
    [payment] = rows_of(url, Payment, reference="WX-1")
    assert (payment.amount, payment.recorded_by) == (Decimal("200.00"), "li")
    [opt_out] = rows_of(url, ReminderOptOut)
    assert (opt_out.owner_id, opt_out.unit_id, opt_out.how, opt_out.sender_id, opt_out.text) == (
        wang, estate["unit"], "erased", None, None
    )  # fmt: skip
    assert rows_of(url, Reminder) == [] and rows_of(url, CallTask) == []

    audits = {(row["action"], row["target"]): row["detail"] for row in every["audit_log"]}
    assert audits[("owner_viewed", f"owner:{wang}")] is None
    assert audits[("conversation_viewed", f"owner:{wang}")] == {"owner_id": wang, "entries": 5}
    assert audits[("conversation_replied", f"owner:{wang}")] == {"outbox_id": estate["outbox"], "channel": "socketio", "text": ERASED_TEXT}
    assert audits[("record_noted", estate["repair"])] == {"kind": "repairs", "record_id": estate["repair_id"], "text": ERASED_TEXT}
    assert audits[("nlu_decided", f"event:{estate['event']}")] == {"text": ERASED_TEXT, "predicted": "promise_to_pay", "intent": "promise_to_pay"}
    assert audits[("call_done", f"call:{estate['call']}")] == {"record_id": estate["call"], "text": ERASED_TEXT}
    assert audits[("conversations_listed", None)] == {"sender": ERASED_TEXT, "rows": 1}
    assert audits[("owner_retired", f"owner:{zhang}")] == {  # 张伟's row as it was
        "reason": "roster", "unit": "5-1203", "new_owner_id": zhang, "new_owner_phone": "137****1111"
    }  # fmt: skip
    [erased] = [row for row in every["audit_log"] if row["action"] == "privacy_erased"]
    assert (erased["actor"], erased["target"], utc(erased["at"]), erased["detail"]) == ("cli:ops", f"owner:{wang}", LATER, done)

    with session_scope(url) as session:
        assert owners.verify(session, room="3栋2单元501", phone_tail="6688") is None
        assert owners.verify(session, room="3栋2单元501", phone_tail="") is None
        with pytest.raises(SubjectError) as again:
            subject.erase(session, owner_id=wang, actor="cli:ops")
        assert again.value.code == "already_erased"
    assert len([row for row in every_row(url)["audit_log"] if row["action"] == "privacy_erased"]) == 1


def test_erase_is_one_transaction(estate: Dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    url, wang = estate["url"], estate["wang"]
    before = every_row(url)

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the database went away")

    monkeypatch.setattr(subject.audit, "record", broken)
    with pytest.raises(RuntimeError):
        with clock.frozen(LATER), session_scope(url) as session:
            subject.erase(session, owner_id=wang, actor="cli:ops")
    assert every_row(url) == before


def test_two_erased_co_owners_of_a_unit_do_not_collide_and_a_former_owner_keeps_his_period(database_url: str) -> None:
    with clock.frozen(T0), session_scope(database_url) as session:
        importer.import_arrears(session, DEMO)
        wang = session.execute(select(Owner).where(Owner.name == NAME)).scalar_one()
        spouse = Owner(unit_id=wang.unit_id, name="刘芳", phone="13600002222")
        former = Owner(
            unit_id=wang.unit_id, name="赵前", phone="13500003333", owned_from=dt.date(2020, 1, 1), owned_until=dt.date(2025, 6, 30),
            retired_at=clock.utc_now(), retired_reason=models.OwnerRetirement.TRANSFER, retired_by="li",
        )  # fmt: skip
        session.add_all([spouse, former])
        session.flush()
        ids = (int(wang.id), int(spouse.id), int(former.id))
    with clock.frozen(LATER), session_scope(database_url) as session:
        for owner_id in ids:
            subject.erase(session, owner_id=owner_id, actor="cli:ops")
    stored = [(row.name, row.phone, row.owned_from, row.owned_until, row.retired_by) for row in rows_of(database_url, Owner, unit_id=wang.unit_id)]
    assert stored == [
        (ERASED_NAME, "", None, None, None),
        (ERASED_NAME, "-", None, None, None),
        (ERASED_NAME, "", dt.date(2020, 1, 1), dt.date(2025, 6, 30), "li"),
    ]
    with session_scope(database_url) as session:
        for tail in ("6688", "2222", "3333"):
            assert owners.verify(session, room="3-2-501", phone_tail=tail) is None
        assert [row.how for row in session.execute(select(ReminderOptOut).order_by(ReminderOptOut.id)).scalars()] == ["erased", "erased"]


def test_a_former_owners_export_holds_only_the_accounts_of_his_period(database_url: str) -> None:
    with clock.frozen(T0), session_scope(database_url) as session:
        importer.import_arrears(session, DEMO)
        wang = session.execute(select(Owner).where(Owner.name == NAME)).scalar_one()
        former = Owner(
            unit_id=wang.unit_id, name="赵前", phone="13500003333", owned_from=dt.date(2025, 1, 1), owned_until=dt.date(2025, 6, 30),
            retired_at=clock.utc_now(), retired_reason=models.OwnerRetirement.TRANSFER, retired_by="li",
        )  # fmt: skip
        session.add(former)
        session.add_all([
            models.Bill(unit_id=wang.unit_id, period="2024-12", amount_due=Decimal("100.00"), amount_paid=Decimal("100.00")),
            models.Bill(unit_id=wang.unit_id, period="2025-03", amount_due=Decimal("300.00"), amount_paid=Decimal("300.00")),
            models.Bill(unit_id=wang.unit_id, period="2025-06", amount_due=Decimal("300.00"), amount_paid=Decimal("0")),
        ])  # fmt: skip
        for reference, paid in (("A", dt.datetime(2024, 12, 31, 16, 30)), ("B", dt.datetime(2025, 3, 5, 2)), ("C", dt.datetime(2025, 6, 30, 17))):
            # B is paid on 3-5 and A on 2025-01-01 in Shanghai; C on 2025-07-01, after his period
            session.add(Payment(unit_id=wang.unit_id, amount=Decimal("1.00"), paid_at=paid.replace(tzinfo=dt.timezone.utc),
                                reference=reference, source=PaymentSource.IMPORT, recorded_by="cli:x", created_at=clock.utc_now()))  # fmt: skip
        session.flush()
        former_id = int(former.id)
    with clock.frozen(LATER), session_scope(database_url) as session:
        data = subject.collect(session, owner_id=former_id)
    assert data["accounts_period"] == {"from": "2025-01-01", "until": "2025-06-30"}
    assert [bill["period"] for bill in data["bills"]] == ["2025-03", "2025-06"]
    assert [payment["reference"] for payment in data["payments"]] == ["A", "B"]
    assert (data["owner"]["current"], data["owner"]["retired_reason"], data["owner"]["owned_until"]) == (False, "transfer", "2025-06-30")


def test_without_rasas_table_export_and_erase_still_work(database_url: str) -> None:
    with clock.frozen(T0), session_scope(database_url) as session:
        importer.import_arrears(session, DEMO)
        wang = session.execute(select(Owner).where(Owner.name == NAME)).scalar_one()
        owners.link_conversation(session, channel="wechat", sender_id=OPENID, owner_id=wang.id)
        wang_id = int(wang.id)
    with session_scope(database_url) as session:
        assert not events_exist(session)
        data = subject.collect(session, owner_id=wang_id)
        assert [(item["conversation"], item["messages"]) for item in data["conversations"]] == [(OPENID, [])]
        done = subject.erase(session, owner_id=wang_id, actor="cli:ops")
    assert (done["events"], done["conversation_links"]) == (0, 1)
    assert occurrences(database_url, (NAME, PHONE, OPENID)) == []

