"""The coercion guard on every path that sends or stores text for owners (issue 17 points 1 and 7), on SQLite
and PostgreSQL: a staff reply of each category refused on the conversation page and in the JSON API (nothing
queued, the category and reason shown, the typed text kept, a ``staff_reply_refused`` audit row), an
instalment decision whose notice is refused, a playbook edit refused, a reminder template refused at start-up
and a reminder whose text is refused held and audited, not sent.

The sentences are this file's own, one per category, in a collector's voice.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path
from typing import Any, Dict, Tuple

import pytest
import yaml
from sqlalchemy import select

from bot import compliance
from bot.db import models
from bot.db.models import EscalationState, InstalmentStatus
from bot.db.playbook_models import PlaybookEdit
from bot.db.reminder_models import CallTask, Reminder, ReminderPurpose, ReminderState
from bot.db.session import session_scope
from bot.reminders import delivery
from bot.reminders.delivery import Template
from bot.services import playbook_edits, refused_texts
from tests.unit.test_staff_app import (  # noqa: F401  (fixtures)
    app,
    client,
    csrf_of,
    local_settings,
    log_in,
    staff_db,
)
from tests.unit.test_staff_screens import WEB, as_user, at, audit_of, estate, outbox_rows, stored_escalation  # noqa: F401

ROOT = Path(__file__).resolve().parents[2]

# One threat of each category, as a collector might type it to an owner.
THREATS: Tuple[Tuple[str, str], ...] = (
    ("utilities", "您这个月再不交物业费，我们就把您家的暖气停了。"),
    ("access", "物业费再拖着不交，下周起您家的门禁卡就刷不开了。"),
    ("services", "欠费不交的话，您家以后报修我们就不派师傅上门了。"),
    ("credit", "再不交钱，我们就把您报到征信系统，让您上失信名单。"),
    ("third_party", "您要是还不交，我们就打电话给您单位领导说说这事。"),
    ("shaming", "不交的话，我们就把您家房号和名字贴到小区公告栏上。"),
    ("harassment", "您不交，我们以后每天晚上十一点都给您打电话催。"),
    ("discount", "您今天交的话，我做主给您免掉三个月的物业费。"),
)
LAWFUL_REPLY = "您好，我是赵主管。您反映的暖气问题我们今天安排师傅上门查看，物业费的事咱们之后再商量。"


def test_every_category_has_a_threat_here() -> None:
    assert tuple(category for category, _ in THREATS) == compliance.CATEGORIES


def guard_reason(text: str) -> str:
    found = compliance.findings(text)
    assert found, text
    return found[0].reason


def label_of(category: str) -> str:
    return compliance.categories()[category].label


def taken_over(as_user: Any) -> Tuple[Any, str]:  # noqa: F811
    """赵主管 signed in, holding conversation web-1; the page's CSRF token."""
    zhao = as_user("zhao")
    token = csrf_of(zhao.get(f"/conversations/{WEB}").text)
    assert zhao.post(f"/conversations/{WEB}/take-over", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    return zhao, token


# --- staff replies ------------------------------------------------------------------------------------------


def test_a_staff_reply_of_each_category_is_refused_on_the_conversation_page(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url = estate["url"]
    zhao, token = taken_over(as_user)
    queued = outbox_rows(url, "web-1")
    assert [kind for kind, _, _, _ in queued] == ["control", "joined"]

    for category, text in THREATS:
        page = zhao.post(f"/conversations/{WEB}/reply", data={"csrf_token": token, "text": text})
        assert page.status_code == 422, category
        shown = page.text
        assert f'data-category="{category}">{html.escape(label_of(category))}</span>' in shown, category
        assert html.escape(guard_reason(text)) in shown, category
        assert f">{html.escape(text)}</textarea>" in shown, category  # the typed text is kept

    assert outbox_rows(url, "web-1") == queued  # nothing queued for the owner
    assert audit_of(url, "staff_replied") == []
    assert [(row["actor"], row["target"], row["detail"]) for row in audit_of(url, "staff_reply_refused")] == [
        ("zhao", WEB, {"category": category, "reason": guard_reason(text), "text": text, "handle": WEB})
        for category, text in THREATS
    ]
    assert stored_escalation(url, estate["e_web"]).first_response_at is None
    assert "回复被合规检查拦截" in as_user("li").get("/audit").text


def test_a_staff_reply_of_each_category_is_refused_by_the_api_with_its_category(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url = estate["url"]
    zhao, token = taken_over(as_user)
    queued = outbox_rows(url, "web-1")
    headers = {"x-csrf-token": token}

    for category, text in THREATS:
        answer = zhao.post(f"/api/conversations/{WEB}/reply", json={"text": text}, headers=headers)
        assert answer.status_code == 422, category
        body = answer.json()
        assert (body["code"], body["category"], body["label"], body["reason"]) == (
            "forbidden", category, label_of(category), guard_reason(text)
        ), category
        assert body["phrase"]

    assert outbox_rows(url, "web-1") == queued
    refused = audit_of(url, "staff_reply_refused")
    assert [(row["actor"], row["detail"]["category"], row["detail"]["text"]) for row in refused] == [
        ("zhao", category, text) for category, text in THREATS
    ]
    assert audit_of(url, "staff_replied") == []

    empty = zhao.post(f"/api/conversations/{WEB}/reply", json={"text": "  "}, headers=headers)
    assert (empty.status_code, empty.json()) == (422, {"code": "empty"})
    assert zhao.post(f"/api/conversations/{WEB}/reply", json={"text": LAWFUL_REPLY}).status_code == 403  # no CSRF
    wang = as_user("wang")
    wang_token = csrf_of(wang.get(f"/conversations/{WEB}").text)
    other = wang.post(f"/api/conversations/{WEB}/reply", json={"text": LAWFUL_REPLY}, headers={"x-csrf-token": wang_token})
    assert (other.status_code, other.json()) == (409, {"code": "not_held", "holder": "zhao"})
    assert outbox_rows(url, "web-1") == queued

    sent = zhao.post(f"/api/conversations/{WEB}/reply", json={"text": LAWFUL_REPLY}, headers=headers)
    assert sent.status_code == 201
    with session_scope(url) as session:
        row = session.execute(
            select(models.OutboxMessage).where(models.OutboxMessage.sender_id == "web-1").order_by(models.OutboxMessage.id.desc())
        ).scalars().first()
        stored = (row.id, row.kind.value, row.channel, row.staff, row.text, row.state.value)
    assert sent.json() == {"outbox_id": stored[0], "channel": "socketio", "state": "pending", "text": LAWFUL_REPLY}
    assert stored[1:] == ("text", "socketio", "zhao", LAWFUL_REPLY, "pending")
    replied = audit_of(url, "staff_replied")
    assert [(r["actor"], r["target"], r["detail"]) for r in replied] == [
        ("zhao", WEB, {"via": "api", "outbox_id": stored[0], "channel": "socketio", "text": LAWFUL_REPLY})
    ]
    escalation = stored_escalation(url, estate["e_web"])
    assert (escalation.state, escalation.first_response_at is not None) == (EscalationState.OPEN, True)
    documented = zhao.get("/api/openapi.json").json()["paths"]["/api/conversations/{handle}/reply"]["post"]
    assert documented["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith("/ReplyRefusedOut")


# --- instalment decisions -----------------------------------------------------------------------------------


def test_an_instalment_decision_whose_notice_is_refused_decides_nothing(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url = estate["url"]
    with session_scope(url) as session:
        request = int(
            session.execute(
                select(models.InstalmentRequest.id).where(models.InstalmentRequest.number == estate["instalment"])
            ).scalar_one()
        )
    zhao = as_user("zhao")
    base = f"/records/instalments/{request}"
    token = csrf_of(zhao.get(base).text)
    reason = "分期不行，您再拖着不交，下周起您家的门禁卡就刷不开了"

    page = zhao.post(f"{base}/reject", data={"csrf_token": token, "reason": reason})

    assert page.status_code == 400
    assert f'data-category="access">{html.escape(label_of("access"))}</span>' in page.text
    assert html.escape(guard_reason(reason)) in page.text
    assert html.escape(reason) in page.text  # the typed reason is kept to copy from
    with session_scope(url) as session:
        row = session.get(models.InstalmentRequest, request)
        decided = (row.status, row.decided_by, row.decided_at, row.decision_note)
        notices = session.execute(select(models.OutboxMessage)).scalars().all()
    assert decided == (InstalmentStatus.PENDING, None, None, None) and notices == []
    assert audit_of(url, "instalment_rejected") == []
    assert [(r["actor"], r["target"], r["detail"]) for r in audit_of(url, "outgoing_refused")] == [
        ("zhao", estate["instalment"], {"category": "access", "reason": guard_reason(reason), "source": "instalment_decision"})
    ]


# --- playbook edits -----------------------------------------------------------------------------------------


HEATING = "objection_heating"


@pytest.fixture
def fresh_playbook_cache() -> Any:
    playbook_edits.clear_cache()
    yield
    playbook_edits.clear_cache()


def test_a_playbook_edit_of_each_category_is_refused_and_nothing_is_stored(
    as_user: Any, staff_db: str, fresh_playbook_cache: None  # noqa: F811
) -> None:
    zhao = as_user("zhao")
    for category, text in THREATS:
        page = zhao.get(f"/playbook/{HEATING}").text
        based_on = int(page.split('name="based_on" value="', 1)[1].split('"', 1)[0])
        response = zhao.post(f"/playbook/{HEATING}", data={"based_on": str(based_on), "follow_up": text, "csrf_token": csrf_of(page)})
        assert response.status_code == 400, category
        assert 'data-code="forbidden"' in response.text and 'data-field="follow_up"' in response.text
        assert f'data-category="{category}">{html.escape(label_of(category))}</span>' in response.text, category
        assert html.escape(guard_reason(text)) in response.text, category
        assert f">{html.escape(text)}</textarea>" in response.text, category

    with session_scope(staff_db) as session:
        assert session.execute(select(PlaybookEdit)).scalars().all() == []
    assert audit_of(staff_db, "playbook_edited") == []
    assert [(r["actor"], r["target"], r["detail"]) for r in audit_of(staff_db, "outgoing_refused")] == [
        ("zhao", f"playbook:{HEATING}", {"category": category, "reason": guard_reason(text), "source": "playbook_edit"})
        for category, text in THREATS
    ]


def test_a_playbook_edit_refused_by_the_service_names_field_category_and_reason(
    database_url: str, fresh_playbook_cache: None
) -> None:
    text = THREATS[2][1]  # services withheld
    with pytest.raises(playbook_edits.ForbiddenWording) as refused, session_scope(database_url) as session:
        playbook_edits.save(
            session, intent=HEATING, fields={"coach.script": ["您好，暖气的事我们来查。", text]}, actor="zhao", based_on=0
        )
    assert (refused.value.code, refused.value.field, refused.value.refusal.category) == ("forbidden", "coach.script", "services")
    assert refused.value.refusal.reason == guard_reason(text)
    with session_scope(database_url) as session:
        assert playbook_edits.latest_version(session, intent=HEATING) == 0


# --- reminders ----------------------------------------------------------------------------------------------


def test_a_reminder_template_with_a_threat_refuses_to_start(tmp_path: Path) -> None:
    shutil.copy(ROOT / "domain.yml", tmp_path / "domain.yml")
    shutil.copytree(ROOT / "data" / "playbook", tmp_path / "data" / "playbook")
    wording = yaml.safe_load((ROOT / "data" / "wording.yml").read_text(encoding="utf-8"))
    wording["reminders"]["day_before"] = "提醒您：明天（{date}）是您约定的交费日，到期不交，您家的门禁卡就停用了。"
    (tmp_path / "data" / "wording.yml").write_text(yaml.safe_dump(wording, allow_unicode=True), encoding="utf-8")

    with pytest.raises(compliance.ComplianceError) as refused:
        compliance.check_wording_sources(tmp_path)

    assert "data/wording.yml:reminders.day_before" in str(refused.value)
    assert "data/wording.yml:reminders.due_morning" not in str(refused.value)
    assert compliance.check_wording_sources(ROOT) > 0  # the project's own templates pass


@pytest.fixture
def due_reminders(estate: Dict[str, Any]) -> Dict[str, Any]:  # noqa: F811
    """Two due reminders for 王建国: one to his web chat, one to a WeChat conversation."""
    url = estate["url"]
    ids: Dict[str, Any] = {"url": url}
    with session_scope(url) as session:
        owner = session.get(models.Owner, estate["wang"])
        for key, channel, sender in (("web", "socketio", "web-1"), ("wechat", "wechat", "wx-wang")):
            row = Reminder(
                owner_id=owner.id, unit_id=owner.unit_id, purpose=ReminderPurpose.MONTHLY_BILL, channel=channel,
                sender_id=sender, due_at=at(0), first_due_at=at(0), state=ReminderState.SCHEDULED, period="2026-11",
                dedupe_key=f"monthly:{owner.id}:2026-11:{key}", created_at=at(0),
            )  # fmt: skip
            session.add(row)
            session.flush()
            ids[key] = int(row.id)
    return ids


@pytest.mark.parametrize("key", ["web", "wechat"])
def test_a_reminder_whose_text_is_refused_is_held_audited_and_not_sent(
    due_reminders: Dict[str, Any], key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, reminder_id = due_reminders["url"], due_reminders[key]
    text = THREATS[0][1]  # utilities
    monkeypatch.setattr(delivery, "compose", lambda session, reminder: text)  # as if the wording said it
    with session_scope(url) as session:
        before = session.execute(select(models.OutboxMessage)).scalars().all()
        reminder = session.get(Reminder, reminder_id)
        outcome = delivery.deliver(session, reminder, wechat=True, template=Template("tmpl-1", {"first": "text"}))
    assert (outcome.state, outcome.reason, outcome.via, outcome.outbox_id) == (
        ReminderState.FAILED, "blocked_by_compliance", "call_task", None
    )
    assert before == []
    with session_scope(url) as session:
        assert session.execute(select(models.OutboxMessage)).scalars().all() == []  # nothing queued to send
        task = session.get(CallTask, outcome.call_task_id)
        assert (task.reminder_id, task.reason, task.owner_id) == (reminder_id, "blocked_by_compliance", due_reminders_owner(session, reminder_id))
    assert [(r["actor"], r["target"], r["detail"]) for r in audit_of(url, "outgoing_refused")] == [
        (refused_texts.SYSTEM_ACTOR, f"reminder:{reminder_id}", {"category": "utilities", "reason": guard_reason(text), "source": "reminder"})
    ]


def due_reminders_owner(session: Any, reminder_id: int) -> int:
    return int(session.get(Reminder, reminder_id).owner_id)


def test_a_template_field_the_guard_refuses_holds_the_reminder(
    due_reminders: Dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    url, reminder_id = due_reminders["url"], due_reminders["wechat"]
    values = {"text": "本月物业费账单已出。", "purpose": "物业费账单通知", "note": THREATS[6][1]}  # harassment in a field
    monkeypatch.setattr(delivery, "compose", lambda session, reminder: values["text"])
    monkeypatch.setattr(delivery, "template_values", lambda session, reminder, text: values)
    with session_scope(url) as session:
        outcome = delivery.deliver(
            session, session.get(Reminder, reminder_id), wechat=True,
            template=Template("tmpl-1", {"first": "purpose", "keyword1": "text", "remark": "note"}),
        )  # fmt: skip
        assert session.execute(select(models.OutboxMessage)).scalars().all() == []
    assert (outcome.state, outcome.reason) == (ReminderState.FAILED, "blocked_by_compliance")
    assert [r["detail"]["category"] for r in audit_of(url, "outgoing_refused")] == ["harassment"]


def test_a_lawful_reminder_still_goes_out(due_reminders: Dict[str, Any]) -> None:
    url, reminder_id = due_reminders["url"], due_reminders["web"]
    with session_scope(url) as session:
        outcome = delivery.deliver(session, session.get(Reminder, reminder_id), wechat=False, template=Template())
    assert (outcome.state, outcome.via) == (ReminderState.SENT, "webchat_outbox")
    assert audit_of(url, "outgoing_refused") == []


# --- the coach's suggestions (WeCom and the console) ---------------------------------------------------------


def test_the_coach_never_suggests_a_line_the_guard_refuses() -> None:
    from bot.coach.coach import AnswerStatus, Card, CoachAnswer

    lawful = "您说的情况我们记下了，今天就安排师傅上门查看暖气。"
    card = Card(
        intent="objection_heating", confidence=0.9, title="暖气不热", summary="", clause="暖气不热不想交",
        script=(lawful, THREATS[1][1]), legal_basis=(), next_step="开报修单", next_step_kind="repair",
        next_step_label="报修", donts=("不得以停暖相威胁",), ask=THREATS[4][1], strategy=(),
    )  # fmt: skip
    answer = CoachAnswer(text="暖气不热不想交", status=AnswerStatus.OBJECTIONS, message="", cards=(card,))

    guarded, refusals = refused_texts.guarded_coach_answer(answer)

    assert guarded.cards[0].script == (lawful,) and guarded.cards[0].ask == ""
    assert guarded.cards[0].donts == ("不得以停暖相威胁",)  # the don'ts name tactics to forbid them
    assert [refusal.category for refusal in refusals] == ["access", "third_party"]
    clean = CoachAnswer(text="暖气不热", status=AnswerStatus.OBJECTIONS, message="", cards=(card.__class__(**{**card.__dict__, "script": (lawful,), "ask": ""}),))
    assert refused_texts.guarded_coach_answer(clean) == (clean, [])
