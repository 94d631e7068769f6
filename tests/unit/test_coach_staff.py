"""The coach in the staff console, on SQLite and PostgreSQL, through the real trained model: the page, ``POST
/api/coach`` and ``GET /api/coach/owner`` — authentication, CSRF, roles (collectors see the phone masked),
the owner's arrears, reasons given before (from the tracker store, escalations and records) and promises,
and the audit rows."""

# ruff: noqa: F811  (pytest fixtures imported from other modules are parameters here)

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterator

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from bot import clock
from bot.playbook import default_playbook
from bot.settings import get_settings
from tests.unit.test_staff_app import app, csrf_of, local_settings, log_in, staff_db  # noqa: F401  (fixtures)
from tests.unit.test_staff_screens import LATER, as_user, audit_of, estate  # noqa: F401  (fixtures)
from tests.unit.test_transcripts import conversation, domain, save, tracker_store  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.model]

NOTE = "业主说他家暖气不热所以不交"


@pytest.fixture
def coach_model(trained_model: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The staff app's coach reads notes with the trained model (``COACH_MODEL_PATH``)."""
    monkeypatch.setenv("COACH_MODEL_PATH", str(trained_model))
    get_settings.cache_clear()
    yield trained_model
    get_settings.cache_clear()


def csrf(browser: TestClient) -> str:
    return csrf_of(browser.get("/").text)


def test_api_coach_answers_a_collector_with_cards_and_audits_without_the_text(
    estate: Dict[str, Any], as_user: Any, coach_model: Path
) -> None:
    wang = as_user("wang")
    response = wang.post("/api/coach", json={"text": NOTE}, headers={"X-CSRF-Token": csrf(wang)})
    assert response.status_code == 200, response.text
    data = response.json()
    heating = default_playbook().get("objection_heating")
    assert heating is not None
    assert data["text"] == NOTE and data["status"] == "objections"
    assert [(t["intent"], t["title"]) for t in data["types"]] == [("objection_heating", "暖气不热")]
    assert 0.5 <= data["types"][0]["confidence"] <= 1.0
    assert data["script"] == list(heating.coach.script)
    assert [b["citation"] for b in data["legal_basis"]] == [b.citation for b in heating.coach.legal_basis]
    assert data["next_step"] == heating.coach.next_step and data["next_step_kind"] == "repair_order"
    assert data["donts"] == list(heating.coach.donts)
    assert data["cards"][0]["next_step_label"] == "当天开维修单" and data["cards"][0]["ask"] == heating.coach.ask
    rows = audit_of(estate["url"], "coach_answered")
    assert [(row["actor"], row["detail"]) for row in rows] == [
        ("wang", {"via": "api", "status": "objections", "intents": ["objection_heating"]})
    ]
    assert NOTE not in str(rows)


def test_api_coach_needs_a_session_and_the_csrf_token(estate: Dict[str, Any], as_user: Any, app: FastAPI) -> None:  # noqa: F811
    with TestClient(app) as anonymous:
        assert anonymous.post("/api/coach", json={"text": NOTE}).status_code == 403  # no session, no token
        assert anonymous.get("/api/coach/owner", params={"unit": "3-2-501"}).status_code == 401
        assert anonymous.get("/coach", follow_redirects=False).status_code == 303
    zhao = as_user("zhao")
    refused = zhao.post("/api/coach", json={"text": NOTE})
    assert refused.status_code == 403 and refused.json() == {"detail": "missing or wrong CSRF token"}
    assert zhao.post("/api/coach", json={"text": NOTE}, headers={"X-CSRF-Token": "forged"}).status_code == 403
    assert zhao.post("/api/coach", json={"text": ""}, headers={"X-CSRF-Token": csrf(zhao)}).status_code == 422
    assert zhao.post("/coach", data={"text": NOTE}).status_code == 403
    assert audit_of(estate["url"], "coach_answered") == []


def test_the_openapi_schema_documents_the_coach(estate: Dict[str, Any], as_user: Any) -> None:
    schema = as_user("wang").get("/api/openapi.json").json()
    assert "post" in schema["paths"]["/api/coach"] and "get" in schema["paths"]["/api/coach/owner"]
    coach_out = schema["components"]["schemas"]["CoachOut"]["properties"]
    assert {"text", "types", "script", "legal_basis", "next_step", "donts", "cards"} <= set(coach_out)


def test_without_a_model_the_coach_says_so(
    estate: Dict[str, Any], as_user: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COACH_MODEL_PATH", str(tmp_path / "missing.tar.gz"))
    get_settings.cache_clear()
    try:
        li = as_user("li")
        response = li.post("/api/coach", json={"text": NOTE}, headers={"X-CSRF-Token": csrf(li)})
        assert response.status_code == 503 and response.json() == {"detail": "the coach's model is not available"}
        page = li.post("/coach", data={"text": NOTE, "csrf_token": csrf(li)})
        assert page.status_code == 503 and "模型还没有准备好" in page.text
    finally:
        get_settings.cache_clear()


def test_owner_lookup_gives_arrears_reasons_and_promises_with_the_phone_masked_for_collectors(
    estate: Dict[str, Any], as_user: Any, tracker_store: Any, domain: Any  # noqa: F811
) -> None:
    save(tracker_store, domain, "web-1", conversation())
    with clock.frozen(LATER):
        collector = as_user("wang").get("/api/coach/owner", params={"unit": "3栋2单元501"})
        supervisor = as_user("zhao").get("/api/coach/owner", params={"unit": "3-2-501"})
        profile = as_user("zhao").get(f"/api/owners/{estate['wang']}").json()
    assert collector.status_code == supervisor.status_code == 200
    seen, whole = collector.json(), supervisor.json()
    assert seen["unit"] == "3栋2单元501" and len(seen["owners"]) == 1
    owner = seen["owners"][0]
    assert (owner["owner_id"], owner["name"], owner["unit"]) == (estate["wang"], "王建国", "3-2-501")
    assert owner["phone"] == "138****6688" and whole["owners"][0]["phone"] == "13812346688"
    assert owner["outstanding"] == profile["outstanding"] == 2639.5
    assert owner["arrears_since"] == "2026-03" and owner["arrears_months"] == 9 and owner["old_arrears"] is False
    assert [(p["number"], p["amount"], p["due_date"], p["status"]) for p in owner["promises"]] == [
        (estate["promise"], 800.0, "2026-11-30", "open")
    ]
    reasons = {(r["source"], r["code"]): r for r in owner["reasons"]}
    said = reasons[("conversation", "objection_heating")]
    assert said["title"] == "暖气不热" and said["text"] == "暖气不热，物业费不交" and said["at"]
    assert reasons[("escalation", "request_human")]["number"]
    assert reasons[("repairs", "open")]["text"] == "暖气 暖气不热" and reasons[("repairs", "open")]["number"] == estate["repair"]
    assert reasons[("complaints", "open")]["text"] == "保安态度差"
    assert reasons[("bill_checks", "open")]["text"] == "十月电梯费多收"
    assert reasons[("instalments", "pending")]["text"] == "分三个月缴清"
    assert ("conversation", "provide_identity") not in reasons  # only playbook intents are reasons
    assert {key: value for key, value in whole["owners"][0].items() if key != "phone"} == {
        key: value for key, value in owner.items() if key != "phone"
    }
    assert [(row["actor"], row["detail"]) for row in audit_of(estate["url"], "owners_searched")] == [
        ("wang", {"via": "coach_api", "unit": "3栋2单元501", "rows": 1}),
        ("zhao", {"via": "coach_api", "unit": "3-2-501", "rows": 1}),
    ]
    viewed = [(row["actor"], row["target"], row["detail"]) for row in audit_of(estate["url"], "owner_viewed")]
    assert viewed[:2] == [
        ("wang", f"owner:{estate['wang']}", {"via": "coach_api"}),
        ("zhao", f"owner:{estate['wang']}", {"via": "coach_api"}),
    ]


def test_old_arrears_are_flagged_and_an_unknown_unit_finds_nobody(estate: Dict[str, Any], as_user: Any) -> None:
    li = as_user("li")
    with clock.frozen(LATER):
        zhang = li.get("/api/coach/owner", params={"unit": "5号楼1203"}).json()["owners"]
        nobody = li.get("/api/coach/owner", params={"unit": "99-9-999"}).json()
    assert [(o["name"], o["arrears_since"], o["arrears_months"], o["old_arrears"]) for o in zhang] == [
        ("张伟", "2025-12", 12, True)
    ]
    assert nobody == {"unit": "99-9-999", "owners": []}
    assert li.get("/api/coach/owner").status_code == 422  # a unit is required: no listing the estate


def test_the_coach_page_for_a_collector_shows_cards_and_the_owner(
    estate: Dict[str, Any], as_user: Any, coach_model: Path
) -> None:
    wang = as_user("wang")
    empty = wang.get("/coach")
    assert empty.status_code == 200 and 'name="text"' in empty.text and "即将上线" not in empty.text
    assert 'href="/coach" class="current"' in empty.text
    with clock.frozen(LATER):
        page = wang.post(
            "/coach",
            data={"text": "他说物业费太贵了。又说房子一直空着没人住。", "unit": "3-2-501", "csrf_token": csrf_of(empty.text)},
        )
    assert page.status_code == 200, page.text[:500]
    html = page.text
    assert html.count('class="coach-card"') == 2
    assert 'data-intent="objection_fee_too_high"' in html and 'data-intent="objection_not_living_here"' in html
    for intent in ("objection_fee_too_high", "objection_not_living_here"):
        entry = default_playbook().get(intent)
        assert entry is not None and entry.coach.script[0] in html and entry.coach.donts[0] in html
    assert "《民法典》第九百四十四条" in html
    assert "王建国" in html and "138****6688" in html and "13812346688" not in html and "2639.50 元" in html
    assert [row["detail"]["via"] for row in audit_of(estate["url"], "coach_answered")] == ["page"]
    assert [row["detail"]["via"] for row in audit_of(estate["url"], "owners_searched")] == ["coach"]


def test_the_coach_page_shows_the_question_when_unsure(estate: Dict[str, Any], as_user: Any, coach_model: Path) -> None:
    from bot import wording

    zhao = as_user("zhao")
    page = zhao.post("/coach", data={"text": "佢話冇錢交住", "csrf_token": csrf(zhao)})
    assert page.status_code == 200
    assert 'data-status="unclear"' in page.text and wording.text("coach.ask_unclear") in page.text
    assert 'class="coach-guesses"' in page.text and 'class="coach-card"' not in page.text


def test_a_supervisors_edit_of_the_script_reaches_the_coach_without_a_retrain(
    estate: Dict[str, Any], as_user: Any, coach_model: Path
) -> None:
    from bot.db.session import session_scope
    from bot.services import playbook_edits

    edited = ["天这么冷暖气还不热，真是难为您了。", "我今天就安排师傅上门测温，您看物业费哪天方便交？"]
    with session_scope(estate["url"]) as session:
        playbook_edits.save(
            session, intent="objection_heating", fields={"coach.script": edited}, actor="zhao", based_on=0
        )
    wang = as_user("wang")
    data = wang.post("/api/coach", json={"text": NOTE}, headers={"X-CSRF-Token": csrf(wang)}).json()
    assert data["script"] == edited and data["cards"][0]["script"] == edited
    page = wang.post("/coach", data={"text": NOTE, "csrf_token": csrf(wang)}).text
    assert edited[0] in page


def test_a_note_asked_with_a_unit_in_old_arrears_gets_the_manager_as_next_step(
    estate: Dict[str, Any], as_user: Any, coach_model: Path
) -> None:
    from bot.coach.data import coach_data

    li = as_user("li")
    step = coach_data().next_steps["old_arrears"]
    with clock.frozen(LATER):
        old = li.post("/api/coach", json={"text": NOTE, "unit": "5号楼1203"}, headers={"X-CSRF-Token": csrf(li)})
        recent = li.post("/api/coach", json={"text": NOTE, "unit": "3-2-501"}, headers={"X-CSRF-Token": csrf(li)})
        page = li.post("/coach", data={"text": NOTE, "unit": "5号楼1203", "csrf_token": csrf(li)})
    assert old.status_code == 200, old.text
    [card] = old.json()["cards"]
    assert (card["intent"], card["next_step_kind"], card["next_step"]) == ("objection_heating", "old_arrears_manager", step.text)
    assert old.json()["next_step_kind"] == "old_arrears_manager" and old.json()["next_step"] == step.text
    assert [c["next_step_kind"] for c in recent.json()["cards"]] == ["repair_order"]  # 王建国: arrears this year
    assert page.status_code == 200 and step.text in page.text and "张伟" in page.text
    assert "next-old_arrears_manager" in page.text
    searched = [row["detail"] for row in audit_of(estate["url"], "owners_searched")]
    assert searched == [
        {"via": "coach_api", "unit": "5号楼1203", "rows": 1},
        {"via": "coach_api", "unit": "3-2-501", "rows": 1},
        {"via": "coach", "unit": "5号楼1203", "rows": 1},
    ]


def test_the_coach_lookup_checks_the_owners_sections_roles(
    estate: Dict[str, Any], as_user: Any, coach_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apps.staff import pages
    from bot.coach.data import coach_data
    from bot.db.staff_models import StaffRole

    sections = tuple(
        (name, frozenset({StaffRole.SUPERVISOR}) if name == "owners" else roles) for name, roles in pages.SECTIONS
    )
    monkeypatch.setattr(pages, "SECTIONS", sections)
    wang, zhao = as_user("wang"), as_user("zhao")
    assert wang.get("/api/coach/owner", params={"unit": "3-2-501"}).status_code == 403
    refused = wang.post("/api/coach", json={"text": NOTE, "unit": "3-2-501"}, headers={"X-CSRF-Token": csrf(wang)})
    assert refused.status_code == 403
    page = wang.post("/coach", data={"text": NOTE, "unit": "3-2-501", "csrf_token": csrf(wang)})
    assert page.status_code == 200 and coach_data().label("lookup_not_allowed") in page.text
    assert "王建国" not in page.text and 'class="coach-card"' in page.text  # the note is still answered
    assert zhao.get("/api/coach/owner", params={"unit": "3-2-501"}).status_code == 200
    assert [row["actor"] for row in audit_of(estate["url"], "owners_searched")] == ["zhao"]


def test_the_model_is_loaded_once_for_the_page_wecom_and_the_cli(
    estate: Dict[str, Any], as_user: Any, coach_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One process, three ways in, one ``Agent.load``: no surface loads a copy of its own."""
    import io
    from typing import List

    from rasa.core.agent import Agent

    from apps.staff.wecom.callback import Responder
    from bot.coach import coach as coach_module
    from bot.coach import model as model_module
    from bot.coach.cli import run
    from bot.rasa.agent import RasaParser

    loads: List[str] = []
    real_load = Agent.load

    def counted_load(*args: Any, **kwargs: Any) -> Agent:
        loads.append(str(args[0]))
        return real_load(*args, **kwargs)

    monkeypatch.setattr(Agent, "load", staticmethod(counted_load))
    monkeypatch.setattr(model_module, "_parsers", {})  # forget what earlier tests loaded
    monkeypatch.setattr(coach_module, "_default", {})

    wang = as_user("wang")
    page = wang.post("/coach", data={"text": NOTE, "csrf_token": csrf(wang)})
    assert page.status_code == 200 and 'data-intent="objection_heating"' in page.text
    assert loads == [str(coach_model.resolve())]
    from bot.db.session import session_scope
    from bot.services import staff_lifecycle

    with session_scope(estate["url"]) as session:  # WeCom answers only a member bound by an explicit UserID
        staff_lifecycle.set_wecom_user_id(session, username="wang", wecom_user_id="WangXiaoMing", actor="cli:test")
    texts = Responder(estate["url"]).reply("WangXiaoMing", NOTE).texts
    assert "暖气不热" in texts[0]
    out = io.StringIO()
    assert (
        run([NOTE], parser_factory=RasaParser, as_json=True, model=coach_model, url=estate["url"], stdout=out, stderr=io.StringIO())
        == 0
    )
    assert '"objection_heating"' in out.getvalue()
    assert loads == [str(coach_model.resolve())]


def test_a_repair_request_is_a_next_step_card_with_the_repairs_link_on_the_page_and_in_the_api(
    estate: Dict[str, Any], as_user: Any, coach_model: Path
) -> None:
    from bot.coach.data import coach_data

    note = "业主说单元门禁坏了好几天，让我们赶紧派人修一下"
    wang = as_user("wang")
    response = wang.post("/api/coach", json={"text": note}, headers={"X-CSRF-Token": csrf(wang)})
    assert response.status_code == 200, response.text
    data = response.json()
    rules = coach_data().service_requests.cards["report_repair"]
    assert data["status"] == "service_request" and data["legal_basis"] == []
    assert [(c["kind"], c["intent"], c["link"]) for c in data["cards"]] == [
        ("service_request", "report_repair", "/records?tab=repairs")
    ]
    assert data["cards"][0]["source"] == list(rules.script + rules.strategy + rules.donts)
    assert data["next_step"] == rules.next_step and data["next_step_kind"] == "repair_order"
    page = wang.post("/coach", data={"text": note, "csrf_token": csrf(wang)})
    assert page.status_code == 200
    html = page.text
    assert 'data-status="service_request"' in html and 'data-kind="service_request"' in html
    assert 'href="/records?tab=repairs"' in html and coach_data().label("open_record") in html
    service = default_playbook().get("objection_poor_service")
    assert service is not None and service.coach.script[1] in html
    assert 'class="coach-basis"' not in html  # a request card cites no law
    assert [row["detail"] for row in audit_of(estate["url"], "coach_answered")] == [
        {"via": "api", "status": "service_request", "intents": ["report_repair"]},
        {"via": "page", "status": "service_request", "intents": ["report_repair"]},
    ]


def test_the_console_coach_drops_a_suggested_line_the_guard_refuses_and_audits_it(
    estate: Dict[str, Any], as_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import SimpleNamespace

    from apps.staff import coach as coach_screen
    from bot.coach.coach import AnswerStatus, Card, CoachAnswer

    lawful = "您说的情况我们记下了，今天就安排师傅上门查看暖气。"
    threat = "再不交物业费，下周起您家的门禁卡就停用。"
    card = Card(
        intent="objection_heating", confidence=0.9, title="暖气不热", summary="", clause="暖气不热不想交",
        script=(lawful, threat), legal_basis=(), next_step="开报修单", next_step_kind="repair",
        next_step_label="报修", donts=("不得以停暖相威胁",), ask="", strategy=(),
    )  # fmt: skip
    answer = CoachAnswer(text="暖气不热不想交", status=AnswerStatus.OBJECTIONS, message="", cards=(card,))
    monkeypatch.setattr(coach_screen, "_coach", lambda db: SimpleNamespace(answer=lambda text, old_arrears: answer))

    wang = as_user("wang")
    response = wang.post("/api/coach", json={"text": "暖气不热不想交"}, headers={"X-CSRF-Token": csrf(wang)})

    assert response.status_code == 200, response.text
    assert response.json()["cards"][0]["script"] == [lawful]
    assert response.json()["cards"][0]["donts"] == ["不得以停暖相威胁"]
    [refused] = audit_of(estate["url"], "outgoing_refused")
    assert refused["actor"] == "wang"
    assert (refused["detail"]["source"], refused["detail"]["category"]) == ("console_coach", "access")
