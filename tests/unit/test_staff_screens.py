"""The staff console's queue, conversation and owner screens and the JSON API, on SQLite and PostgreSQL, with
real rows: the values shown and returned, filters and orders, claim / assign / resolve and their refusals,
roles, CSRF, masked phones, 404s, and the audit rows each view and change writes. Transcripts are written by
Rasa's own SQLTrackerStore."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from bot import clock
from bot.conversations import outbox
from bot.conversations.handles import handle_of
from bot.db import models
from bot.db.models import EscalationState
from bot.db.session import session_scope
from bot.db.staff_models import AuditEntry
from bot.owners import identity, importer
from bot.services import escalations, owner_requests
from bot.services.escalations import Reason
from tests.unit.test_staff_app import (  # noqa: F401  (fixtures)
    app,
    client,
    csrf_of,
    local_settings,
    log_in,
    staff_db,
)
from tests.unit.test_transcripts import conversation, domain, save, tracker_store  # noqa: F401  (fixtures)

DEMO = Path(__file__).resolve().parents[2] / "data" / "demo" / "arrears.csv"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))
T0 = dt.datetime(2026, 11, 24, 9, 0, tzinfo=SHANGHAI)
# Staff see and address conversations by their handles, never their sender ids.
WEB, WX, ANON, NOBODY = (handle_of(sender) for sender in ("web-1", "wx-zhang", "anon-1", "nobody"))
LATER = T0 + dt.timedelta(hours=2)
ROW_IDS = re.compile(r'<tr data-id="(\d+)"')


def at(minutes: float) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def owner_named(session: Any, name: str) -> models.Owner:
    return session.execute(select(models.Owner).where(models.Owner.name == name)).scalar_one()


@pytest.fixture
def estate(staff_db: str) -> Dict[str, Any]:  # noqa: F811
    """The demo estate, a second bill for 王建国, his records in conversation web-1, and four escalations."""
    url = staff_db
    ids: Dict[str, Any] = {"url": url}
    with session_scope(url) as session:
        importer.import_arrears(session, DEMO)
        wang = owner_named(session, "王建国")
        zhang = owner_named(session, "张伟")
        ids["wang"], ids["zhang"] = int(wang.id), int(zhang.id)
        session.add(models.Bill(unit_id=wang.unit_id, period="2026-10", amount_due=Decimal("300.00"), amount_paid=Decimal("120.50")))
        identity.link_conversation(session, channel="socketio", sender_id="web-1", owner_id=wang.id)
    with clock.frozen(at(0)), session_scope(url) as session:

        def make(model: Any, message_id: str, sender: str = "web-1", **fields: Any) -> models.Base:
            return owner_requests.create(session, model, message_id=message_id, sender_id=sender, **fields)

        ids["promise"] = make(
            models.PaymentPromise, "p-1", owner_id=wang.id, amount=Decimal("800.00"), due_date=dt.date(2026, 11, 30)
        ).number
        make(models.PaymentPromise, "p-2", sender="wx-zhang", owner_id=zhang.id, amount=Decimal("3600.00"), due_date=dt.date(2026, 12, 5))
        ids["repair"] = make(
            models.RepairOrder, "r-1", owner_id=wang.id, item="暖气", location="客厅", description="暖气不热", preferred_time="周六上午"
        ).number
        ids["complaint"] = make(models.Complaint, "c-1", owner_id=wang.id, description="保安态度差").number
        ids["bill_check"] = make(models.BillCheckRequest, "b-1", owner_id=wang.id, description="十月电梯费多收").number
        ids["instalment"] = make(models.InstalmentRequest, "i-1", owner_id=wang.id, proposed_plan="分三个月缴清").number

    def escalate(minute: float, sender: str, reason: Reason, channel: str, owner: Any) -> int:
        with clock.frozen(at(minute)), session_scope(url) as session:
            made = escalations.escalate(
                session, reason=reason, detail=None, owner_id=owner, channel=channel, sender_id=sender,
                message_id=f"e-{sender}-{minute}",
            )  # fmt: skip
            return int(made.id)

    ids["e_web"] = escalate(1, "web-1", Reason.REQUEST_HUMAN, "socketio", ids["wang"])
    ids["e_wx"] = escalate(10, "wx-zhang", Reason.THREATEN_ESCALATION, "wechat", ids["zhang"])
    ids["e_anon"] = escalate(30, "anon-1", Reason.FALLBACK, "socketio", None)
    ids["e_rest"] = escalate(50, "rest-1", Reason.IDENTITY_FAILED, "rest", None)
    with session_scope(url) as session:
        session.execute(AuditEntry.__table__.delete())
    return ids


@pytest.fixture
def as_user(app: FastAPI) -> Iterator[Any]:  # noqa: F811
    """``as_user("wang")``: a client signed in as that user."""
    clients: List[TestClient] = []

    def signed_in(username: str) -> TestClient:
        browser = TestClient(app)
        clients.append(browser)
        assert log_in(browser, username).status_code == 303
        return browser

    yield signed_in
    for browser in clients:
        browser.close()


def audit_of(url: str, action: str) -> List[Dict[str, Any]]:
    with session_scope(url) as session:
        rows = session.execute(
            select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
        ).scalars()
        return [
            {
                "at": row.at if row.at.tzinfo else row.at.replace(tzinfo=dt.timezone.utc),
                "actor": row.actor,
                "target": row.target,
                "detail": row.detail,
            }
            for row in rows
        ]


def stored_escalation(url: str, escalation_id: int) -> models.Escalation:
    with session_scope(url) as session:
        row = session.get(models.Escalation, escalation_id)
        session.expunge(row)
        return row


def row_ids(html: str) -> List[int]:
    return [int(value) for value in ROW_IDS.findall(html)]


# --- the queue ------------------------------------------------------------------------------------------


def test_the_queue_shows_reason_unit_channel_waiting_state_and_assignee(estate: Dict[str, Any], as_user: Any) -> None:
    wang = as_user("wang")
    with clock.frozen(LATER):
        page = wang.get("/queue")
    assert page.status_code == 200 and "待办队列" in page.text
    assert row_ids(page.text) == [estate["e_web"], estate["e_wx"], estate["e_anon"], estate["e_rest"]]  # waiting longest
    first = page.text.split(f'<tr data-id="{estate["e_web"]}"')[1].split("</tr>")[0]
    assert "要求人工" in first and "3-2-501" in first and f'href="/owners/{estate["wang"]}"' in first
    assert "网页聊天" in first and "1小时59分" in first and "待机器人处理" in first
    assert f'href="/conversations/{WEB}"' in first and "2026-11-24 09:01" in first
    wechat = page.text.split(f'<tr data-id="{estate["e_wx"]}"')[1].split("</tr>")[0]
    assert "扬言投诉升级" in wechat and "微信公众号" in wechat and "5-1203" in wechat and "1小时50分" in wechat
    anonymous = page.text.split(f'<tr data-id="{estate["e_anon"]}"')[1].split("</tr>")[0]
    assert "机器人无法处理" in anonymous and "未核实" in anonymous
    assert re.findall(r"<script[^>]*>", page.text) == ['<script src="/static/console.js">'] and "style=" not in page.text
    assert audit_of(estate["url"], "queue_viewed") == [
        {"at": LATER, "actor": "wang", "target": None, "detail": {"state": "active", "sort": "waiting", "rows": 4}}
    ]


def test_queue_filters_and_orders(estate: Dict[str, Any], as_user: Any) -> None:
    zhao = as_user("zhao")
    with clock.frozen(at(60)):
        token = csrf_of(zhao.get("/queue").text)
        assert zhao.post(f"/conversations/{WX}/take-over", data={"csrf_token": token}, follow_redirects=False).status_code == 303
        assert zhao.post(f"/queue/{estate['e_rest']}/resolve", data={"csrf_token": token, "outcome": "已处理"}, follow_redirects=False).status_code == 303

        def ids(**params: Any) -> List[int]:
            response = zhao.get("/queue", params=params)
            assert response.status_code == 200
            return row_ids(response.text)

        e = estate
        assert ids() == [e["e_web"], e["e_wx"], e["e_anon"]]  # unresolved, waiting longest (e_wx waits until now)
        assert ids(state="pending") == [e["e_web"], e["e_anon"]]
        assert ids(state="open") == [e["e_wx"]]
        assert ids(state="resolved") == [e["e_rest"]]
        assert ids(state="all", sort="newest") == [e["e_rest"], e["e_anon"], e["e_wx"], e["e_web"]]
        assert ids(state="all", sort="reason") == [e["e_anon"], e["e_rest"], e["e_web"], e["e_wx"]]
        assert ids(reason="fallback") == [e["e_anon"]]
        assert ids(channel="socketio") == [e["e_web"], e["e_anon"]]
        assert ids(channel="wechat", state="all") == [e["e_wx"]]
        assert ids(assignee="zhao", state="all") == [e["e_wx"]]  # resolving a pending one takes nobody on
        assert ids(mine="true") == [e["e_wx"]]
        assert ids(state="bogus", sort="bogus") == [e["e_web"], e["e_wx"], e["e_anon"]]  # defaults, not a 500
    wang = as_user("wang")
    assert row_ids(wang.get("/queue", params={"mine": "true"}).text) == []


def test_claim_assign_and_resolve_through_the_forms_with_audit_rows(estate: Dict[str, Any], as_user: Any) -> None:
    url, escalation = estate["url"], estate["e_web"]
    wang, zhao = as_user("wang"), as_user("zhao")
    with clock.frozen(at(20)):
        page = wang.get("/queue", params={"sort": "newest"})
        assert "认领" in page.text and "分派" not in page.text  # a collector cannot assign
        token = csrf_of(page.text)
        claimed = wang.post(
            f"/queue/{escalation}/claim", data={"csrf_token": token, "next": "/queue?sort=newest"}, follow_redirects=False
        )
        assert claimed.status_code == 303 and claimed.headers["location"] == "/queue?sort=newest"
    row = stored_escalation(url, escalation)
    # Claiming makes wang responsible; the bot keeps the chat, so the owner is told nothing and nothing pauses.
    assert (row.state, row.assignee) == (EscalationState.PENDING, "wang")
    assert outbox_rows(url, "web-1") == []
    assert audit_of(url, "escalation_claimed") == [
        {
            "at": at(20),
            "actor": "wang",
            "target": row.number,
            "detail": {"escalation_id": escalation, "conversation": WEB, "state": "pending"},
        }
    ]
    after_claim = wang.get("/queue").text.split(f'<tr data-id="{escalation}"')[1].split("</tr>")[0]
    assert "待机器人处理" in after_claim and "王小明" in after_claim and "认领" not in after_claim
    # Taking the chat over is the separate, explicit step: now the owner is told and Rasa pauses it.
    with clock.frozen(at(21)):
        taken = wang.post(f"/conversations/{WEB}/take-over", data={"csrf_token": token}, follow_redirects=False)
        assert taken.status_code == 303
    assert (stored_escalation(url, escalation).state, stored_escalation(url, escalation).assignee) == (
        EscalationState.OPEN,
        "wang",
    )
    assert [(kind, staff) for kind, _, staff, _ in outbox_rows(url, "web-1")] == [("control", "wang"), ("joined", "wang")]
    after_take = wang.get("/queue").text.split(f'<tr data-id="{escalation}"')[1].split("</tr>")[0]
    assert "人工处理中" in after_take and "王小明" in after_take and "解决" in after_take

    # Someone else cannot take or settle it: a polite page, nothing changed, nothing audited.
    zhao_token = csrf_of(zhao.get("/queue").text)
    for action in ("claim", "resolve"):
        refused = zhao.post(f"/queue/{escalation}/{action}", data={"csrf_token": zhao_token})
        assert refused.status_code == 409 and "这个会话正由 王小明 处理" in refused.text
    # A collector cannot assign; a POST without the token is refused; an unknown escalation is 404.
    assign = {"csrf_token": token, "assignee": "wang"}
    assert wang.post(f"/queue/{estate['e_anon']}/assign", data=assign).status_code == 403
    assert wang.post(f"/queue/{estate['e_anon']}/claim", data={}).status_code == 403
    assert wang.post("/queue/999999/claim", data={"csrf_token": token}).status_code == 404
    assert stored_escalation(url, estate["e_anon"]).state is EscalationState.PENDING

    # A supervisor gives it to himself (taking it from wang), to an unknown name (refused), then wang resolves
    # another one the supervisor gave him.
    with clock.frozen(at(25)):
        given = zhao.post(f"/queue/{escalation}/assign", data={"csrf_token": zhao_token, "assignee": "zhao"}, follow_redirects=False)
        assert given.status_code == 303
        unknown = zhao.post(f"/queue/{estate['e_anon']}/assign", data={"csrf_token": zhao_token, "assignee": "ghost"})
        assert unknown.status_code == 400 and "请选择一位在职的员工" in unknown.text
        assert zhao.post(f"/queue/{estate['e_anon']}/assign", data={"csrf_token": zhao_token, "assignee": "wang"}).status_code == 200
    # Assigning the pending one left the chat with the bot (nobody silenced, the owner told nothing); assigning the
    # held one moved the hold to zhao without a second notice.
    assert (stored_escalation(url, estate["e_anon"]).state, stored_escalation(url, estate["e_anon"]).assignee) == (
        EscalationState.PENDING,
        "wang",
    )
    assert outbox_rows(url, "anon-1") == []
    assert [kind for kind, _, _, _ in outbox_rows(url, "web-1")] == ["control", "joined"]
    with clock.frozen(at(39)):
        unsaid = wang.post(f"/queue/{estate['e_anon']}/resolve", data={"csrf_token": token, "outcome": "  "})
        assert unsaid.status_code == 400 and "请写下处理结果" in unsaid.text  # 解决 needs what came of it
    assert stored_escalation(url, estate["e_anon"]).state is EscalationState.PENDING
    with clock.frozen(at(40)):
        resolved = wang.post(
            f"/queue/{estate['e_anon']}/resolve", data={"csrf_token": token, "outcome": "电话联系过，业主周五来物业处"},
            follow_redirects=False,
        )  # fmt: skip
        assert resolved.status_code == 303 and resolved.headers["location"] == "/queue"
        again = wang.post(f"/queue/{estate['e_anon']}/resolve", data={"csrf_token": token, "outcome": "再次"})
        assert again.status_code == 409 and "这个事项已经解决" in again.text
    assert (stored_escalation(url, escalation).assignee, stored_escalation(url, escalation).state) == ("zhao", EscalationState.OPEN)
    anon = stored_escalation(url, estate["e_anon"])
    assert (anon.state, anon.assignee, anon.outcome) == (EscalationState.RESOLVED, "wang", "电话联系过，业主周五来物业处")
    assert [(row["actor"], row["target"], row["detail"]["assignee"]) for row in audit_of(url, "escalation_assigned")] == [
        ("zhao", stored_escalation(url, escalation).number, "zhao"),
        ("zhao", anon.number, "wang"),
    ]
    assert audit_of(url, "escalation_resolved") == [
        {
            "at": at(40),
            "actor": "wang",
            "target": anon.number,
            "detail": {"escalation_id": anon.id, "conversation": ANON, "state": "resolved", "outcome": "电话联系过，业主周五来物业处"},
        }
    ]


def test_a_case_a_colleague_claimed_cannot_be_claimed_and_the_refusal_is_polite(estate: Dict[str, Any], as_user: Any) -> None:
    url, escalation = estate["url"], estate["e_anon"]
    wang, zhao, li = as_user("wang"), as_user("zhao"), as_user("li")
    wang_token, li_token = csrf_of(wang.get("/queue").text), csrf_of(li.get("/queue").text)  # pages opened before
    with clock.frozen(at(20)):
        claimed = zhao.post(f"/queue/{escalation}/claim", data={"csrf_token": csrf_of(zhao.get("/queue").text)}, follow_redirects=False)
        assert claimed.status_code == 303

    # The queue no longer offers 认领 on it to a collector, and says who is responsible and how to get it.
    row = wang.get("/queue").text.split(f'<tr data-id="{escalation}"')[1].split("</tr>")[0]
    assert f'action="/queue/{escalation}/claim"' not in row
    assert "已由 赵主管 负责，如需接手请联系客户主管分派" in row
    # A claim from a page opened before (a collector, a manager) is refused politely; nothing changes.
    with clock.frozen(at(22)):
        for browser, token in ((wang, wang_token), (li, li_token)):
            refused = browser.post(f"/queue/{escalation}/claim", data={"csrf_token": token, "next": "/queue"})
            assert refused.status_code == 409
            assert "这个事项已由 赵主管 认领跟进，您不能再认领。如需改由您处理，请联系客户主管或项目经理分派。" in refused.text
            assert '<a href="/queue">返回</a>' in refused.text
    row_after = stored_escalation(url, escalation)
    assert (row_after.state, row_after.assignee, queue_time(row_after.claimed_at)) == (EscalationState.PENDING, "zhao", at(20))
    assert [(entry["actor"], entry["detail"]["escalation_id"]) for entry in audit_of(url, "escalation_claimed")] == [
        ("zhao", escalation)
    ]
    # A manager reassigns it with 分派 instead.
    assert f'action="/queue/{escalation}/assign"' in li.get("/queue").text
    with clock.frozen(at(25)):
        given = li.post(f"/queue/{escalation}/assign", data={"csrf_token": li_token, "assignee": "wang"}, follow_redirects=False)
        assert given.status_code == 303
    assert (stored_escalation(url, escalation).assignee, stored_escalation(url, escalation).state) == ("wang", EscalationState.PENDING)


def queue_time(value: Any) -> dt.datetime:
    """A stored time in the estate's zone (SQLite keeps the wall time written)."""
    return value.replace(tzinfo=SHANGHAI) if value.tzinfo is None else value.astimezone(SHANGHAI)


# --- owners ---------------------------------------------------------------------------------------------


def test_the_owner_page_shows_everything_with_the_phone_masked_for_a_collector(estate: Dict[str, Any], as_user: Any) -> None:
    owner = estate["wang"]
    with clock.frozen(LATER):
        collector = as_user("wang").get(f"/owners/{owner}")
        supervisor = as_user("zhao").get(f"/owners/{owner}")
    assert collector.status_code == supervisor.status_code == 200
    assert "138****6688" in collector.text and "13812346688" not in collector.text
    assert "13812346688" in supervisor.text
    page = supervisor.text
    assert "王建国" in page and "3-2-501" in page and "3栋2单元501" in page
    assert "¥2,639.50" in page and "自 2026-03 起" in page  # 2460.00 + (300.00 - 120.50)
    assert "2026-10" in page and "120.50" in page and "179.50" in page
    assert estate["promise"] in page and "800.00" in page and "2026-11-30" in page
    assert estate["repair"] in page and "暖气不热" in page and "周六上午" in page
    assert estate["complaint"] in page and "保安态度差" in page
    assert estate["bill_check"] in page and "十月电梯费多收" in page
    assert estate["instalment"] in page and "分三个月缴清" in page and "待审批" in page
    assert "3600.00" not in page and "3,600.00" not in page  # 张伟's promise is not his
    assert f'href="/conversations/{WEB}"' in page and "网页聊天" in page
    assert "要求人工" in page
    assert [(row["actor"], row["target"]) for row in audit_of(estate["url"], "owner_viewed")] == [
        ("wang", f"owner:{owner}"),
        ("zhao", f"owner:{owner}"),
    ]
    assert as_user("li").get("/owners/999999").status_code == 404


def test_the_owners_list_searches_by_unit(estate: Dict[str, Any], as_user: Any) -> None:
    wang = as_user("wang")
    everyone = wang.get("/owners").text
    assert all(name in everyone for name in ("王建国", "李秀英", "张伟", "陈静"))
    found = wang.get("/owners", params={"unit": "3栋2单元501"}).text
    assert "王建国" in found and "李秀英" not in found and "138****6688" in found and "2,639.50" in found
    assert f'href="/owners/{estate["wang"]}"' in found
    both = wang.get("/owners", params={"unit": "3-2"}).text
    assert "王建国" in both and "李秀英" in both and "张伟" not in both
    assert "没有找到业主" in wang.get("/owners", params={"unit": "99-9-999"}).text
    assert [row["detail"] for row in audit_of(estate["url"], "owners_searched")] == [
        {"unit": "", "rows": 6},
        {"unit": "3栋2单元501", "rows": 1},
        {"unit": "3-2", "rows": 2},
        {"unit": "99-9-999", "rows": 0},
    ]


# --- conversations --------------------------------------------------------------------------------------


def test_the_conversation_page_and_api_show_the_transcript_from_the_tracker_store(
    estate: Dict[str, Any], as_user: Any, tracker_store: Any, domain: Any  # noqa: F811
) -> None:
    from rasa.shared.core.events import BotUttered, UserUttered

    save(tracker_store, domain, "web-1", conversation())
    with session_scope(estate["url"]) as session:
        session.execute(
            models.Base.metadata.tables["staff_users"].update().where(
                models.Base.metadata.tables["staff_users"].c.username == "wang"
            ).values(username="zhang", display_name="张客服")
        )
    zhao = as_user("zhao")
    with clock.frozen(LATER):
        page = zhao.get(f"/conversations/{WEB}")
    assert page.status_code == 200
    html = page.text
    assert html.index("3栋2单元501，尾号6688") < html.index("王先生您好，已核实您的身份。") < html.index("暖气不热，物业费不交")
    assert "provide_identity" in html and "97%" in html and "objection_heating" in html and "81%" in html
    assert "<code>room</code>=3-2-501" in html and "<code>repair_item</code>=暖气" in html
    assert "action_verify_identity" in html and "action_objection" in html and "RulePolicy" in html
    assert "张客服（员工）" in html and "您好，我是客服小张" in html
    assert "好的，报修" in html  # a button offered
    assert "机器人暂停（人工接管）" in html and "机器人恢复" in html
    assert "2026-11-24 09:00" in html  # event times in the estate's zone
    # The owner panel and the conversation's escalation with its forms.
    panel = html.split('class="owner-panel')[1]
    assert "王建国" in panel and "13812346688" in panel and "¥2,639.50" in panel and "800.00" in panel
    assert "暖气" in panel and "分三个月缴清" in panel
    assert f'action="/queue/{estate["e_web"]}/claim"' in html
    assert '<script src="/static/conversation.js" defer></script>' in html
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    script = zhao.get("/static/conversation.js")
    assert script.status_code == 200 and "innerHTML" not in script.text and "/api/" not in script.text

    # The API: the same entries; then only newer ones.
    api = zhao.get(f"/api/conversations/{WEB}").json()
    assert api["handle"] == WEB and api["owner_id"] == estate["wang"] and api["holder"] is None
    assert "web-1" not in html and "web-1" not in json.dumps(api)
    assert api["delivery"] == {
        "channel": "socketio", "can_deliver": True, "window_open": None, "last_inbound_at": None,
        "window_closes_at": None, "blocked": None, "alternatives": [],
    }  # fmt: skip
    owner_messages = [entry for entry in api["entries"] if entry["speaker"] == "owner"]
    assert [(m["text"], m["intent"], m["confidence"], m["channel"]) for m in owner_messages] == [
        ("3栋2单元501，尾号6688", "provide_identity", 0.97, "socketio"),
        ("暖气不热，物业费不交", "objection_heating", 0.81, "socketio"),
        ("好的谢谢", "thank", 0.99, "socketio"),
    ]
    assert owner_messages[0]["entities"][0] == {
        "name": "room", "value": "3-2-501", "text": "3栋2单元501", "start": 0, "end": 8,
        "extractor": "RuleEntityExtractorComponent", "confidence": None,
    }  # fmt: skip
    staff_line = next(entry for entry in api["entries"] if entry["speaker"] == "staff")
    assert (staff_line["staff"], staff_line["staff_name"]) == ("zhang", "张客服")
    assert api["entries"][0]["at"] == "2026-11-24T09:00:00+08:00"
    assert [(e["number"], e["state"], e["reason"]) for e in api["escalations"]] == [
        (stored_escalation(estate["url"], estate["e_web"]).number, "pending", "request_human")
    ]
    last = api["last_event_id"]
    assert last == api["entries"][-1]["event_id"]
    empty = zhao.get(f"/api/conversations/{WEB}", params={"after": last}).json()
    assert empty["entries"] == [] and empty["last_event_id"] == last
    save(
        tracker_store,
        domain,
        "web-1",
        [
            UserUttered("我下周五交", intent={"name": "promise_to_pay", "confidence": 0.88}, input_channel="socketio"),
            BotUttered("好的，已记下。"),
        ],
    )
    newer = zhao.get(f"/api/conversations/{WEB}", params={"after": last}).json()
    assert [(e["speaker"], e["text"], e["intent"]) for e in newer["entries"]] == [
        ("owner", "我下周五交", "promise_to_pay"),
        ("bot", "好的，已记下。", None),
    ]
    assert newer["last_event_id"] > last
    viewed = audit_of(estate["url"], "conversation_viewed")
    assert [(row["actor"], row["target"], row["detail"]["entries"]) for row in viewed] == [
        ("zhao", WEB, 13),
        ("zhao", WEB, 13),
        ("zhao", WEB, 2),  # the empty follow-up showed nothing and is not audited
    ]
    assert viewed[0]["at"] == LATER and viewed[0]["detail"]["owner_id"] == estate["wang"]
    # Unknown conversations are 404 on the page and in the API, and so is a sender id where a handle belongs;
    # a conversation known only from its escalation opens with an empty transcript and no owner.
    assert zhao.get(f"/conversations/{NOBODY}").status_code == 404
    assert zhao.get(f"/api/conversations/{NOBODY}").status_code == 404
    assert zhao.get("/conversations/web-1").status_code == 404
    assert zhao.get("/api/conversations/web-1").status_code == 404
    assert zhao.get(f"/conversations/{WEB.lower()}").status_code == 200  # a handle typed in lower case
    known = zhao.get(f"/conversations/{ANON}")
    assert known.status_code == 200 and "这个会话还没有消息记录" in known.text and "还没有核实业主身份" in known.text
    # The conversations list shows handles, and finds one by its handle (not by any part of a sender id).
    recent = zhao.get("/conversations").text
    assert f'href="/conversations/{WEB}"' in recent and f"<code>{WEB}</code>" in recent and "web-1" not in recent
    listed = zhao.get("/conversations", params={"handle": WEB.replace("-", " ").lower()}).text
    assert f'href="/conversations/{WEB}"' in listed and f'href="/owners/{estate["wang"]}"' in listed
    assert "没有找到会话" in zhao.get("/conversations", params={"handle": "web"}).text
    assert "没有找到会话" in zhao.get("/conversations", params={"handle": NOBODY}).text
    assert [row["detail"] for row in audit_of(estate["url"], "conversations_listed")] == [
        {"handle": "", "rows": 1},
        {"handle": WEB, "rows": 1},
        {"handle": "…", "rows": 0},
        {"handle": NOBODY, "rows": 0},
    ]


# --- the JSON API ---------------------------------------------------------------------------------------


API_PATHS = [
    "/api/escalations",
    f"/api/conversations/{WEB}",
    "/api/owners",
    "/api/owners/1",
    "/api/promises",
    "/api/repairs",
    "/api/complaints",
    "/api/bill-checks",
    "/api/instalments",
]


@pytest.mark.parametrize("path", API_PATHS)
def test_the_api_refuses_anonymous_callers_with_401_json(estate: Dict[str, Any], client: TestClient, path: str) -> None:  # noqa: F811
    response = client.get(path)
    assert response.status_code == 401 and response.json() == {"detail": "not authenticated"}


def test_api_escalations_return_stored_values_and_filter(estate: Dict[str, Any], as_user: Any) -> None:
    li = as_user("li")
    with clock.frozen(LATER):
        every = li.get("/api/escalations").json()
        assert [item["id"] for item in every] == [estate["e_web"], estate["e_wx"], estate["e_anon"], estate["e_rest"]]
        first = every[0]
        assert first == {
            "id": estate["e_web"],
            "number": stored_escalation(estate["url"], estate["e_web"]).number,
            "conversation": WEB,
            "channel": "socketio",
            "reason": "request_human",
            "detail": None,
            "state": "pending",
            "assignee": None,
            "owner_id": estate["wang"],
            "unit": "3-2-501",
            "created_at": "2026-11-24T09:01:00+08:00",
            "claimed_at": None,
            "first_response_at": None,
            "resolved_at": None,
            "updated_at": "2026-11-24T09:01:00+08:00",
            "waiting_seconds": 119 * 60,
        }
        token = csrf_of(li.get("/").text)
        li.post(f"/conversations/{WX}/take-over", data={"csrf_token": token})

        def ids(**params: Any) -> List[int]:
            response = li.get("/api/escalations", params=params)
            assert response.status_code == 200, response.text
            return [item["id"] for item in response.json()]

        assert ids(status="open") == [estate["e_wx"]]
        assert ids(conversation=ANON) == [estate["e_anon"]]
        assert ids(conversation=NOBODY) == []
        assert li.get("/api/escalations", params={"conversation": "anon-1"}).status_code == 422  # not a handle
        assert ids(owner_id=estate["zhang"]) == [estate["e_wx"]]
        assert ids(reason="identity_failed") == [estate["e_rest"]]
        assert ids(sort="newest") == [estate["e_rest"], estate["e_anon"], estate["e_wx"], estate["e_web"]]
        assert li.get("/api/escalations", params={"status": "bogus"}).status_code == 422
    assert audit_of(estate["url"], "queue_viewed")[0]["detail"] == {"via": "api", "rows": 4}


def test_api_owner_with_numbers_dates_and_a_masked_phone_for_collectors(estate: Dict[str, Any], as_user: Any) -> None:
    owner = estate["wang"]
    with clock.frozen(LATER):  # waiting times are counted to now
        collector = as_user("wang").get(f"/api/owners/{owner}").json()
        manager = as_user("li").get(f"/api/owners/{owner}").json()
    assert collector["phone"] == "138****6688" and manager["phone"] == "13812346688"
    assert {key: value for key, value in manager.items() if key not in ("phone",)} == {
        key: value for key, value in collector.items() if key not in ("phone",)
    }
    assert (manager["unit"], manager["building"], manager["entrance"], manager["room"]) == ("3-2-501", "3", "2", "501")
    assert manager["outstanding"] == 2639.5 and manager["arrears_since"] == "2026-03"
    assert manager["bills"] == [
        {"period": "2026-03", "amount_due": 2460.0, "amount_paid": 0.0, "outstanding": 2460.0},
        {"period": "2026-10", "amount_due": 300.0, "amount_paid": 120.5, "outstanding": 179.5},
    ]
    promise = manager["promises"][0]
    assert (promise["number"], promise["amount"], promise["due_date"], promise["status"]) == (
        estate["promise"], 800.0, "2026-11-30", "open"
    )
    assert promise["created_at"] == "2026-11-24T09:00:00+08:00" and promise["conversation"] == WEB
    assert [(r["number"], r["item"], r["location"], r["status"]) for r in manager["repairs"]] == [
        (estate["repair"], "暖气", "客厅", "open")
    ]
    assert [c["description"] for c in manager["complaints"]] == ["保安态度差"]
    assert [c["description"] for c in manager["bill_checks"]] == ["十月电梯费多收"]
    assert [(i["proposed_plan"], i["status"]) for i in manager["instalments"]] == [("分三个月缴清", "pending")]
    assert [e["id"] for e in manager["escalations"]] == [estate["e_web"]]
    assert [(c["conversation"], c["channel"]) for c in manager["conversations"]] == [(WEB, "socketio")]
    li = as_user("li")
    assert li.get("/api/owners/999999").status_code == 404 and li.get("/api/owners/999999").json() == {"detail": "no such owner"}
    listed = li.get("/api/owners", params={"unit": "5号楼1203"}).json()
    assert listed == [
        {"id": estate["zhang"], "name": "张伟", "phone": "13700001111", "unit": "5-1203", "outstanding": 3600.0,
         "former": False, "owned_until": None}
    ]  # fmt: skip
    assert [row["actor"] for row in audit_of(estate["url"], "owner_viewed")] == ["wang", "li"]  # a 404 shows nothing


def test_api_records_filter_by_sender_owner_and_status(estate: Dict[str, Any], as_user: Any) -> None:
    zhao = as_user("zhao")
    promises = zhao.get("/api/promises").json()
    assert [(p["owner_id"], p["amount"], p["due_date"], p["unit"]) for p in promises] == [
        (estate["zhang"], 3600.0, "2026-12-05", "5-1203"),
        (estate["wang"], 800.0, "2026-11-30", "3-2-501"),
    ]
    assert [p["owner_id"] for p in zhao.get("/api/promises", params={"owner_id": estate["wang"]}).json()] == [estate["wang"]]
    assert [p["conversation"] for p in zhao.get("/api/promises", params={"conversation": WX}).json()] == [WX]
    assert zhao.get("/api/promises", params={"conversation": NOBODY}).json() == []
    assert zhao.get("/api/promises", params={"status": "kept"}).json() == []
    assert len(zhao.get("/api/promises", params={"status": "open"}).json()) == 2
    bad = zhao.get("/api/promises", params={"status": "approved"})
    # Promises filter as the records screen shows them: the buckets on today's date, and partial.
    assert bad.status_code == 422 and bad.json() == {
        "detail": "status must be one of: due_today, overdue, open, kept, broken, partial"
    }
    repairs = zhao.get("/api/repairs", params={"status": "open", "owner_id": estate["wang"]}).json()
    assert [(r["number"], r["description"], r["preferred_time"]) for r in repairs] == [(estate["repair"], "暖气不热", "周六上午")]
    assert zhao.get("/api/repairs", params={"status": "done"}).json() == []
    assert [c["number"] for c in zhao.get("/api/complaints", params={"conversation": WEB}).json()] == [estate["complaint"]]
    assert [c["number"] for c in zhao.get("/api/bill-checks").json()] == [estate["bill_check"]]
    instalments = zhao.get("/api/instalments", params={"status": "pending"}).json()
    assert [(i["number"], i["proposed_plan"]) for i in instalments] == [(estate["instalment"], "分三个月缴清")]
    assert zhao.get("/api/instalments", params={"status": "approved"}).json() == []
    viewed = audit_of(estate["url"], "records_viewed")
    assert viewed[0] == {"at": viewed[0]["at"], "actor": "zhao", "target": "promises", "detail": {"via": "api", "rows": 2}}
    assert viewed[1]["detail"] == {"via": "api", "owner_id": estate["wang"], "rows": 1}


def test_the_openapi_schema_documents_the_api(estate: Dict[str, Any], as_user: Any) -> None:
    schema = as_user("wang").get("/api/openapi.json").json()
    paths = schema["paths"]
    for path in ("/api/escalations", "/api/conversations/{handle}", "/api/owners/{owner_id}", "/api/promises",
                 "/api/repairs", "/api/complaints", "/api/instalments"):  # fmt: skip
        assert "get" in paths[path], path
    components = schema["components"]["schemas"]
    assert components["PromiseOut"]["properties"]["amount"]["type"] == "number"
    assert components["PromiseOut"]["properties"]["due_date"]["format"] == "date"
    assert components["EscalationOut"]["properties"]["created_at"]["format"] == "date-time"
    assert {"entries", "escalations", "owner_id"} <= set(components["ConversationOut"]["properties"])
    # Only what delivery_status gives now: REST replies ride on the owner's next request, never no_push_channel.
    blocked = components["DeliveryOut"]["properties"]["blocked"]["description"]
    assert "wechat_window_closed" in blocked and "unknown_channel" in blocked and "no_push_channel" not in blocked
    parameters = {parameter["name"] for parameter in paths["/api/promises"]["get"]["parameters"]}
    assert parameters == {"conversation", "owner_id", "status"}
    assert "/queue" not in paths and "/login" not in paths


# --- takeover: 接管, 回复, 交还机器人 ----------------------------------------------------------------------


def outbox_rows(url: str, sender: str) -> List[Any]:
    with session_scope(url) as session:
        return [(row.kind.value, row.text, row.staff, row.state.value) for row in outbox.messages(session, sender_id=sender, include_control=True)]


def test_take_over_reply_and_hand_back_from_the_conversation_page(estate: Dict[str, Any], as_user: Any) -> None:
    url, escalation = estate["url"], estate["e_web"]
    zhao, wang = as_user("zhao"), as_user("wang")
    page = zhao.get(f"/conversations/{WEB}")
    assert f'action="/conversations/{WEB}/take-over"' in page.text and "回复将通过网页聊天发送" in page.text
    assert f'action="/conversations/{WEB}/reply"' not in page.text and "交还机器人" not in page.text
    token = csrf_of(page.text)
    assert zhao.post(f"/conversations/{WEB}/take-over", data={}).status_code == 403  # no CSRF token
    assert zhao.post(f"/conversations/{NOBODY}/take-over", data={"csrf_token": token}).status_code == 404
    assert outbox_rows(url, "web-1") == []

    with clock.frozen(at(30)):
        taken = zhao.post(f"/conversations/{WEB}/take-over", data={"csrf_token": token}, follow_redirects=False)
    assert taken.status_code == 303 and taken.headers["location"] == f"/conversations/{WEB}"
    row = stored_escalation(url, escalation)
    assert (row.state, row.assignee) == (EscalationState.OPEN, "zhao")
    assert [(kind, staff, state) for kind, _, staff, state in outbox_rows(url, "web-1")] == [
        ("control", "zhao", "pending"),
        ("joined", "zhao", "pending"),
    ]
    assert audit_of(url, "conversation_taken_over") == [
        {"at": at(30), "actor": "zhao", "target": WEB, "detail": {"escalation_id": escalation, "channel": "socketio"}}
    ]
    held = zhao.get(f"/conversations/{WEB}").text
    assert f'action="/conversations/{WEB}/reply"' in held and "交还机器人" in held and "take-over" not in held
    assert "赵主管" in held and "等待送达" in held

    # Someone else may not reply or hand back: told who holds it.
    wang_token = csrf_of(wang.get(f"/conversations/{WEB}").text)
    assert "赵主管 正在处理这个会话" in wang.get(f"/conversations/{WEB}").text
    for path, form in (("reply", {"text": "您好"}), ("hand-back", {}), ("take-over", {})):
        refused = wang.post(f"/conversations/{WEB}/{path}", data={"csrf_token": wang_token, **form})
        assert refused.status_code == 409 and "这个会话正由 赵主管 处理" in refused.text, path

    # A reply with a forbidden phrase is refused with its reason and kept in the box; nothing is sent.
    refused = zhao.post(f"/conversations/{WEB}/reply", data={"csrf_token": token, "text": "再不交就停水"})
    assert refused.status_code == 422
    assert "回复没有发出：" in refused.text and 'data-category="utilities"' in refused.text
    assert ">再不交就停水</textarea>" in refused.text
    empty = zhao.post(f"/conversations/{WEB}/reply", data={"csrf_token": token, "text": "   "})
    assert empty.status_code == 422 and "回复内容不能为空" in empty.text
    assert len(outbox_rows(url, "web-1")) == 2 and audit_of(url, "staff_replied") == []

    with clock.frozen(at(33)):
        sent = zhao.post(f"/conversations/{WEB}/reply", data={"csrf_token": token, "text": "您好，暖气的事我来跟进。"}, follow_redirects=False)
    assert sent.status_code == 303
    assert outbox_rows(url, "web-1")[-1] == ("text", "您好，暖气的事我来跟进。", "zhao", "pending")
    replied = audit_of(url, "staff_replied")
    assert [(r["at"], r["actor"], r["target"], r["detail"]["text"], r["detail"]["channel"]) for r in replied] == [
        (at(33), "zhao", WEB, "您好，暖气的事我来跟进。", "socketio")
    ]
    assert stored_escalation(url, escalation).first_response_at is not None
    assert "您好，暖气的事我来跟进。" in zhao.get(f"/conversations/{WEB}").text

    with clock.frozen(at(40)):
        back = zhao.post(f"/conversations/{WEB}/hand-back", data={"csrf_token": token}, follow_redirects=False)
    assert back.status_code == 303
    assert stored_escalation(url, escalation).state is EscalationState.PENDING
    assert [kind for kind, _, _, _ in outbox_rows(url, "web-1")][-2:] == ["left", "control"]
    assert [(r["actor"], r["target"]) for r in audit_of(url, "conversation_handed_back")] == [("zhao", WEB)]
    again = zhao.get(f"/conversations/{WEB}").text
    assert f'action="/conversations/{WEB}/take-over"' in again and "目前由机器人处理" in again
    not_held = zhao.post(f"/conversations/{WEB}/reply", data={"csrf_token": token, "text": "您好"})
    assert not_held.status_code == 409 and "请先接管" in not_held.text
    audit_page = as_user("li").get("/audit").text  # the manager reads who did what, in Chinese
    assert "接管会话" in audit_page and "回复业主" in audit_page and "交还机器人" in audit_page
    assert "内容：您好，暖气的事我来跟进。" in audit_page


def test_a_closed_wechat_window_is_shown_with_the_alternatives_and_no_reply_box(estate: Dict[str, Any], as_user: Any) -> None:
    zhao = as_user("zhao")
    page = zhao.get(f"/conversations/{WX}").text
    assert "微信 48 小时客服消息窗口已关闭" in page
    assert "电话联系业主" in page and "等业主再次发来消息后再回复" in page and "当面处理" in page
    token = csrf_of(page)
    assert zhao.post(f"/conversations/{WX}/take-over", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    held = zhao.get(f"/conversations/{WX}").text
    assert "交还机器人" in held and f'action="/conversations/{WX}/reply"' not in held
    api = zhao.get(f"/api/conversations/{WX}").json()
    assert (api["holder"], api["delivery"]["channel"], api["delivery"]["can_deliver"]) == ("zhao", "wechat", False)
    assert api["delivery"]["blocked"] == "wechat_window_closed"
    assert api["delivery"]["alternatives"] == ["phone_call", "wait_for_owner", "next_visit"]


def test_malformed_ids_are_a_polite_404_page_and_422_json(estate: Dict[str, Any], as_user: Any) -> None:
    li = as_user("li")
    token = csrf_of(li.get("/").text)
    for response in (li.get("/owners/abc"), li.post("/queue/abc/claim", data={"csrf_token": token})):
        assert response.status_code == 404 and "页面不存在" in response.text
    assert li.get("/api/owners/abc").status_code == 422
    assert li.get(f"/api/conversations/{WEB}", params={"after": "x"}).status_code == 422
    assert li.get("/api/escalations", params={"owner_id": "x"}).json()["detail"][0]["loc"] == ["query", "owner_id"]


def selected_options(html: str, select_name: str) -> List[List[str]]:
    """For each ``<select name=…>`` in ``html``: the options marked selected, as ``value`` strings."""
    found = []
    for block in re.findall(rf'<select[^>]*name="{select_name}"[^>]*>(.*?)</select>', html, flags=re.S):
        found.append(re.findall(r'<option value="([^"]*)"[^>]*\bselected\b', block))
    return found


def test_no_select_picks_an_assignee_nobody_chose(estate: Dict[str, Any], as_user: Any) -> None:
    zhao = as_user("zhao")
    token = csrf_of(zhao.get("/queue").text)
    with clock.frozen(at(25)):
        assert zhao.post(f"/queue/{estate['e_anon']}/assign", data={"csrf_token": token, "assignee": "wang"}).status_code == 200
    page = zhao.get("/queue").text
    rows = {int(m.group(1)): m.group(2) for m in re.finditer(r'<tr data-id="(\d+)"(.*?)</tr>', page, flags=re.S)}
    assert selected_options(rows[estate["e_anon"]], "assignee") == [["wang"]]  # the one already responsible
    unassigned = [row for escalation_id, row in rows.items() if escalation_id != estate["e_anon"]]
    assert unassigned and all(selected_options(row, "assignee") == [[""]] for row in unassigned)  # a placeholder
    assert '<option value="" selected disabled>选择分派对象…</option>' in page
    refused = zhao.post(f"/queue/{estate['e_anon']}/assign", data={"csrf_token": token, "assignee": ""})
    assert refused.status_code == 400  # the placeholder itself assigns nobody


def test_hand_back_and_resolve_needs_an_outcome_and_settles_the_conversation(estate: Dict[str, Any], as_user: Any) -> None:
    url, escalation = estate["url"], estate["e_web"]
    zhao = as_user("zhao")
    token = csrf_of(zhao.get(f"/conversations/{WEB}").text)
    with clock.frozen(at(30)):
        assert zhao.post(f"/conversations/{WEB}/take-over", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    held = zhao.get(f"/conversations/{WEB}").text
    assert "交还并解决" in held and 'name="outcome" required' in held
    with clock.frozen(at(40)):
        unsaid = zhao.post(f"/conversations/{WEB}/hand-back", data={"csrf_token": token, "resolve": "1", "outcome": ""})
        assert unsaid.status_code == 400 and "请写下处理结果" in unsaid.text
        assert stored_escalation(url, escalation).state is EscalationState.OPEN  # nothing changed
        done = zhao.post(
            f"/conversations/{WEB}/hand-back", data={"csrf_token": token, "resolve": "1", "outcome": " 已派师傅修好暖气 "},
            follow_redirects=False,
        )  # fmt: skip
    assert done.status_code == 303
    row = stored_escalation(url, escalation)
    assert (row.state, row.assignee, row.outcome) == (EscalationState.RESOLVED, "zhao", "已派师傅修好暖气")
    assert [kind for kind, _, _, _ in outbox_rows(url, "web-1")][-2:] == ["left", "control"]  # the owner is told
    [handed] = audit_of(url, "conversation_handed_back")
    assert (handed["actor"], handed["target"], handed["detail"]["outcome"]) == ("zhao", WEB, "已派师傅修好暖气")


def test_a_conversation_is_titled_by_its_owner_and_unit_never_by_an_id(estate: Dict[str, Any], as_user: Any) -> None:
    zhao = as_user("zhao")
    verified = zhao.get(f"/conversations/{WEB}").text
    assert "<title>王建国 · 3-2-501 · 物业费催缴</title>" in verified
    heading = verified.split("<h1>")[1].split("</h1>")[0]
    assert '<span class="owner-name">王建国</span>' in heading and '<span class="unit">3-2-501</span>' in heading
    assert "web-1" not in verified  # the sender id (a web chat bearer token) never appears
    unverified = zhao.get(f"/conversations/{ANON}").text
    assert "<title>未核实身份的会话 · 物业费催缴</title>" in unverified and "未核实身份的会话" in unverified.split("<h1>")[1]


def test_search_finds_people_by_name_unit_in_any_form_phone_tail_and_what_they_wrote(
    estate: Dict[str, Any], as_user: Any, tracker_store: Any, domain: Any  # noqa: F811
) -> None:
    from rasa.shared.core.events import UserUttered

    save(tracker_store, domain, "web-1", conversation())  # 王建国: "3栋2单元501，尾号6688", "暖气不热，物业费不交"
    save(tracker_store, domain, "anon-1", [UserUttered("楼道灯坏了一个星期", intent={"name": "report_repair", "confidence": 0.9})])
    zhao = as_user("zhao")

    def owners(q: str) -> List[str]:
        page = zhao.get("/owners", params={"q": q}).text
        return re.findall(r'<tr(?: class="former")?>\s*<td><a href="/owners/\d+">([^<]+)</a>', page)

    for said in ("王建国", "王建", "3-2-501", "3栋2单元501", "3号楼2单元501", "501", "6688"):
        assert owners(said) == ["3-2-501"], said
    assert owners("5号楼1203") == ["5-1203"] and owners("1203") == ["5-1203"] and owners("1111") == ["5-1203"]
    assert owners("3-2") == ["3-2-501", "3-2-502"] and owners("无此人") == []

    def conversations(q: str) -> List[str]:
        page = zhao.get("/conversations", params={"q": q}).text
        return re.findall(r'href="/conversations/([\w-]+)"', page)

    for said in ("王建国", "3栋2单元501", "3号楼2单元501", "6688", "暖气不热"):
        assert conversations(said) == [WEB], said
    assert conversations("楼道灯") == [ANON] and conversations("电梯") == []
    assert conversations(WEB.lower()) == [WEB]  # a handle still finds its conversation
    listed = zhao.get("/conversations", params={"q": "王建国"}).text
    row = listed.split("<tbody>")[1].split("</tr>")[0]
    assert "王建国" in row and "3-2-501" in row and f'href="/owners/{estate["wang"]}"' in row
    # What was typed is never logged: a name, a phone tail or an owner's words could be anyone's personal data.
    details = [row["detail"] for row in audit_of(estate["url"], "conversations_listed")]
    assert {detail["handle"] for detail in details} == {"…", WEB}
    assert all(detail["unit"] in ("…", "3-2-501", "5-1203", "3-2") for detail in [row["detail"] for row in audit_of(estate["url"], "owners_searched")])


def test_staff_open_a_repair_from_the_conversation_prefilled_and_never_twice(
    estate: Dict[str, Any], as_user: Any, tracker_store: Any, domain: Any  # noqa: F811
) -> None:
    from rasa.shared.core.events import UserUttered

    save(
        tracker_store, domain, "web-1",
        [UserUttered("卫生间水管漏水了，楼下都渗了", intent={"name": "report_repair", "confidence": 0.9},
                     entities=[{"entity": "repair_item", "value": "水管", "start": 3, "end": 5}])],
    )  # fmt: skip
    url = estate["url"]
    wang = as_user("wang")
    page = wang.get(f"/conversations/{WEB}").text
    form = page.split('class="open-record">', 2)[2].split("</form>")[0]
    assert 'value="水管"' in form and ">卫生间水管漏水了，楼下都渗了</textarea>" in form  # what the owner said
    assert '<option value="" selected disabled>选择类型…</option>' in form
    token = csrf_of(page)
    opening = {"csrf_token": token, "kind": "repairs", "item": "水管", "description": "卫生间水管漏水了，楼下都渗了"}
    with clock.frozen(at(70)):
        made = wang.post(f"/conversations/{WEB}/records", data=opening, follow_redirects=False)
    assert made.status_code == 303 and made.headers["location"].startswith("/records/repairs/")
    record_id = int(made.headers["location"].rsplit("/", 1)[1])
    with session_scope(url) as session:
        row = session.get(models.RepairOrder, record_id)
        stored = (row.item, row.location, row.preferred_time, row.description, row.owner_id, row.sender_id, row.assignee)
        number = row.number
    assert stored == ("水管", "3-2-501", "待与业主约定", "卫生间水管漏水了，楼下都渗了", estate["wang"], "web-1", "wang")
    [opened] = audit_of(url, "record_opened")
    assert (opened["actor"], opened["target"], opened["detail"]) == (
        "wang", number, {"kind": "repairs", "record_id": record_id, "conversation": WEB}
    )
    # The same fault again: refused, pointing at the open order; the earlier heating repair is another item.
    again = wang.post(f"/conversations/{WEB}/records", data=opening)
    assert again.status_code == 409 and number in again.text and f'href="/records/repairs/{record_id}"' in again.text
    assert wang.post(f"/conversations/{WEB}/records", data={**opening, "item": ""}).status_code == 400
    complaint = wang.post(
        f"/conversations/{WEB}/records", data={"csrf_token": token, "kind": "complaints", "description": "保洁没来"},
        follow_redirects=False,
    )  # fmt: skip
    assert complaint.status_code == 303 and "/records/complaints/" in complaint.headers["location"]
    # No verified owner, no record: an anonymous conversation offers no form and refuses one.
    assert 'class="open-record"' not in wang.get(f"/conversations/{ANON}").text
    refused = wang.post(f"/conversations/{ANON}/records", data={"csrf_token": token, "kind": "complaints", "description": "x"})
    assert refused.status_code == 400 and "还没有核实业主身份" in refused.text
    assert wang.post(f"/conversations/{WEB}/records", data={**opening, "kind": "promises"}).status_code in (400, 404)
    with session_scope(url) as session:
        assert session.query(models.RepairOrder).filter(models.RepairOrder.item == "水管").count() == 1


def test_every_page_offers_a_skip_link_and_row_buttons_say_which_row(estate: Dict[str, Any], as_user: Any) -> None:
    zhao = as_user("zhao")
    page = zhao.get("/queue").text
    assert '<a class="skip-link" href="#content">跳到正文</a>' in page and '<main class="content" id="content"' in page
    with session_scope(estate["url"]) as session:
        number = session.get(models.Escalation, estate["e_anon"]).number
    row = page.split(f'<tr data-id="{estate["e_anon"]}"')[1].split("</tr>")[0]
    assert f'aria-label="认领 {number}"' in row and f'aria-label="解决 {number}"' in row and f'aria-label="分派 {number}"' in row
    labels = re.findall(r'<button[^>]*class="(?:claim|resolve|assign)"[^>]*aria-label="([^"]+)"', page)
    assert labels and len(labels) == len(set(labels))  # no two buttons on the page are named alike
