"""The practice screens over HTTP (TestClient) on SQLite and PostgreSQL: every role practises, CSRF on every
form, only the session's collector answers, supervisors and managers see everyone's results (page and JSON),
the stored rows behind each step and the audit rows it writes."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, List

from sqlalchemy import select

from bot import clock
from bot.coach.practice.simulator import default_lines, objection_intents
from bot.db.coach_models import PracticeSession, PracticeTurn
from bot.db.session import session_scope
from bot.playbook import default_playbook
from bot.services import staff_users
from tests.unit.test_practice_scoring import good_answer
from tests.unit.test_staff_app import PASSWORD, app, client, csrf_of, log_in, staff_db  # noqa: F401  (fixtures)
from tests.unit.test_staff_screens import as_user, audit_of  # noqa: F401  (fixtures)

HEATING = "objection_heating"
NOW = dt.datetime(2026, 11, 24, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=8)))


def sessions(url: str) -> List[PracticeSession]:
    with session_scope(url) as db:
        rows = list(db.execute(select(PracticeSession).order_by(PracticeSession.id)).scalars())
        for row in rows:
            db.expunge(row)
        return rows


def turns(url: str) -> List[PracticeTurn]:
    with session_scope(url) as db:
        rows = list(db.execute(select(PracticeTurn).order_by(PracticeTurn.id)).scalars())
        for row in rows:
            db.expunge(row)
        return rows


def start(browser: Any, objection: str = HEATING, temperament: str = "hardship") -> int:
    page = browser.get("/practice")
    response = browser.post(
        "/practice",
        data={"objection": objection, "temperament": temperament, "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text[:300]
    match = re.fullmatch(r"/practice/(\d+)", response.headers["location"])
    assert match
    return int(match.group(1))


def answer(browser: Any, session_id: int, text: str) -> Any:
    page = browser.get(f"/practice/{session_id}")
    return browser.post(
        f"/practice/{session_id}/answer", data={"text": text, "csrf_token": csrf_of(page.text)}, follow_redirects=False
    )


def test_anonymous_visitors_are_sent_to_log_in(client: Any) -> None:  # noqa: F811
    response = client.get("/practice", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login?next=%2Fpractice"
    assert client.get("/api/practice/history").status_code == 401


def test_every_role_opens_practice_and_only_supervisors_see_the_results_link(as_user: Any) -> None:  # noqa: F811
    for username, supervising in (("wang", False), ("zhao", True), ("li", True)):
        page = as_user(username).get("/practice")
        assert page.status_code == 200
        assert "<h1>话术演练</h1>" in page.text and "即将上线" not in page.text
        assert 'href="/practice" class="current"' in page.text
        for intent in objection_intents():
            assert f'<option value="{intent}">' in page.text
        for name, temperament in default_lines().temperaments.items():
            assert f'<option value="{name}">{temperament.label}</option>' in page.text
        assert ('href="/practice/results"' in page.text) is supervising, username
    wang = as_user("wang")
    assert wang.get("/practice/results").status_code == 403
    assert wang.get("/api/practice/history").status_code == 403


def test_a_collector_starts_answers_and_finishes_a_session(as_user: Any, staff_db: str) -> None:  # noqa: F811
    wang = as_user("wang")
    with clock.frozen(NOW):
        session_id = start(wang)
    (stored,) = sessions(staff_db)
    assert (stored.id, stored.collector, stored.objection, stored.temperament) == (session_id, "wang", HEATING, "hardship")
    page = wang.get(f"/practice/{session_id}")
    assert page.status_code == 200
    assert "话术演练：暖气不热 · 困难的业主" in page.text and stored.opening in page.text
    assert 'name="text"' in page.text and f'action="/practice/{session_id}/finish"' in page.text
    heating = default_playbook().get(HEATING)
    assert heating is not None
    hints = page.text.split('id="hints"')[1].split("</details>")[0]
    assert heating.coach.strategy[0] in hints and heating.offer.text in hints and heating.coach.donts[0] in hints
    assert "《民法典》第九百四十四条" in hints
    assert f'<meter id="resistance" min="0" max="100" low="35" high="70" optimum="0" value="{stored.resistance}">' in page.text

    first = "理解您的心情，屋里冷谁都难受。我今天就给您报修，安排师傅上门测室温。"
    response = answer(wang, session_id, first)
    assert response.status_code == 303 and response.headers["location"] == f"/practice/{session_id}#turn-1"
    (turn,) = turns(staff_db)
    assert (turn.session_id, turn.number, turn.collector_text, turn.score) == (session_id, 1, first, 75)
    assert turn.criteria["criteria"] == {"acknowledge": True, "basis": True, "offer": True, "date": False}
    page = wang.get(f"/practice/{session_id}")
    assert f'value="{sessions(staff_db)[0].resistance}">' in page.text and sessions(staff_db)[0].resistance < 50
    assert first in page.text and turn.owner_reply in page.text and "75 分" in page.text
    assert "您没有提出具体的交费日期：可以问一句“您看哪天方便交？”" in page.text
    assert "✗ 约定日期" in page.text and "✓ 体谅情绪" in page.text

    with clock.frozen(NOW):
        response = wang.post(
            f"/practice/{session_id}/finish", data={"csrf_token": csrf_of(page.text)}, follow_redirects=False
        )
    assert response.status_code == 303 and response.headers["location"] == f"/practice/{session_id}#summary"
    (stored,) = sessions(staff_db)
    assert (stored.outcome, stored.score) == ("stopped", 75)
    page = wang.get(f"/practice/{session_id}")
    assert 'id="summary"' in page.text and 'id="practice-score">75 分' in page.text and "提前结束" in page.text
    assert "您提前结束了练习，还没有和业主约定交费日期。" in page.text
    assert 'name="text"' not in page.text and 'id="hints"' not in page.text  # no answering a finished session
    late = wang.post(f"/practice/{session_id}/answer", data={"text": "还在吗", "csrf_token": csrf_of(page.text)})
    assert late.status_code == 409 and "这次练习已经结束" in late.text
    assert len(turns(staff_db)) == 1
    listing = wang.get("/practice")
    assert f'href="/practice/{session_id}">查看</a>' in listing.text

    assert [(a["actor"], a["target"], a["detail"]) for a in audit_of(staff_db, "practice_started")] == [
        ("wang", str(session_id), {"objection": HEATING, "temperament": "hardship", "random": False})
    ]
    assert [(a["actor"], a["target"], a["detail"]) for a in audit_of(staff_db, "practice_answered")] == [
        ("wang", str(session_id), {"turn": 1, "score": 75, "ended": False})
    ]
    finished = audit_of(staff_db, "practice_finished")
    assert [(a["actor"], a["target"], a["detail"], a["at"]) for a in finished] == [
        ("wang", str(session_id), {"outcome": "stopped", "score": 75}, NOW)
    ]


def test_the_owner_agreeing_ends_the_session_on_the_page(as_user: Any, staff_db: str) -> None:  # noqa: F811
    wang = as_user("wang")
    with clock.frozen(NOW):
        session_id = start(wang)
        response = answer(wang, session_id, good_answer(HEATING))
    assert response.status_code == 303
    (stored,) = sessions(staff_db)
    assert (stored.outcome, stored.score, stored.agreed_on) == ("agreed", 100, dt.date(2026, 12, 4))
    page = wang.get(f"/practice/{session_id}")
    assert "约定了交费日期（2026-12-04）" in page.text and "业主同意下周五交费" in page.text


def test_every_form_needs_the_csrf_token(as_user: Any, staff_db: str) -> None:  # noqa: F811
    wang = as_user("wang")
    assert wang.post("/practice", data={"objection": HEATING, "temperament": "angry"}).status_code == 403
    assert sessions(staff_db) == []
    session_id = start(wang)
    for path, data in ((f"/practice/{session_id}/answer", {"text": "理解您"}), (f"/practice/{session_id}/finish", {})):
        assert wang.post(path, data=data).status_code == 403
        assert wang.post(path, data={**data, "csrf_token": "forged"}).status_code == 403
    assert turns(staff_db) == [] and sessions(staff_db)[0].ended_at is None


def test_a_random_start_and_bad_input(as_user: Any, staff_db: str) -> None:  # noqa: F811
    wang = as_user("wang")
    session_id = start(wang, objection="", temperament="")
    (stored,) = sessions(staff_db)
    assert stored.objection in objection_intents() and stored.temperament in default_lines().temperaments
    assert audit_of(staff_db, "practice_started")[0]["detail"]["random"] is True
    page = wang.get("/practice")
    bad = wang.post("/practice", data={"objection": "greet", "temperament": "", "csrf_token": csrf_of(page.text)})
    assert bad.status_code == 400 and len(sessions(staff_db)) == 1
    for text in ("   ", "好" * 501):
        refused = answer(wang, session_id, text)
        assert refused.status_code == 400 and "请写下您要对业主说的话" in refused.text
    assert turns(staff_db) == []
    assert wang.get("/practice/999999").status_code == 404


def test_only_the_sessions_collector_answers_and_supervisors_see_everyones_results(
    as_user: Any, staff_db: str  # noqa: F811
) -> None:
    with session_scope(staff_db) as db:
        staff_users.create_user(
            db, username="liu", password=PASSWORD, role="collector", display_name="刘催收", actor="cli:test"
        )
    wang, liu, zhao, li = as_user("wang"), as_user("liu"), as_user("zhao"), as_user("li")
    with clock.frozen(NOW):
        wang_session = start(wang)
        answer(wang, wang_session, "理解您的心情。")
        page = wang.get(f"/practice/{wang_session}")
        wang.post(f"/practice/{wang_session}/finish", data={"csrf_token": csrf_of(page.text)})
    with clock.frozen(NOW + dt.timedelta(hours=1)):  # within the staff session's 12 hours
        second = start(wang)
        answer(wang, second, good_answer(HEATING))
        liu_session = start(liu, "objection_pay_later", "stubborn")

    # Another collector's session is not there for liu, neither to read nor to answer or finish.
    assert liu.get(f"/practice/{wang_session}").status_code == 404
    page = liu.get(f"/practice/{liu_session}")
    for path in (f"/practice/{second}/answer", f"/practice/{second}/finish"):
        assert liu.post(path, data={"text": "理解您", "csrf_token": csrf_of(page.text)}).status_code == 404
    # A supervisor reads it (not answers it).
    seen = zhao.get(f"/practice/{wang_session}")
    assert seen.status_code == 200 and "王小明" in seen.text and 'name="text"' not in seen.text
    assert zhao.post(f"/practice/{second}/answer", data={"text": "理解您", "csrf_token": csrf_of(seen.text)}).status_code == 404

    results = zhao.get("/practice/results")
    assert results.status_code == 200
    rows = re.findall(r'<tr data-collector="(\w+)">(.*?)</tr>', results.text, flags=re.S)
    assert [name for name, _ in rows] == ["liu", "wang"]
    wang_row = dict(rows)["wang"]
    assert "王小明" in wang_row and f'href="/practice/{wang_session}"' in wang_row and f'href="/practice/{second}"' in wang_row
    cells = re.findall(r'<td class="num">([^<]*)</td>', wang_row)
    assert cells == ["2", "0", "62.5", "100"]  # finished, running, average of 25 and 100, latest
    assert "↑ +75.0" in wang_row
    rates = dict(re.findall(r'<td class="num rate" data-criterion="(\w+)">([^<]*)</td>', wang_row))
    assert rates == {"acknowledge": "100%", "basis": "50%", "offer": "50%", "date": "50%"}
    assert '<td class="num" data-forbidden>0</td>' in wang_row
    assert re.findall(r'data-criterion="\w+">([^<]*)</td>', dict(rows)["liu"]) == ["—"] * 4
    liu_cells = re.findall(r'<td class="num">([^<]*)</td>', dict(rows)["liu"])
    assert liu_cells == ["0", "1", "—", "—"]
    assert 'src="/static/vendor/echarts.min.js"' in results.text and 'data-api="/api/practice/history"' in results.text

    history = li.get("/api/practice/history")
    assert history.status_code == 200
    by_name = {item["collector"]: item for item in history.json()}
    assert by_name["wang"]["display_name"] == "王小明"
    assert [p["score"] for p in by_name["wang"]["points"]] == [25, 100]
    assert [p["session_id"] for p in by_name["wang"]["points"]] == [wang_session, second]
    assert by_name["wang"]["points"][0]["ended_at"] == "2026-11-24T09:30:00+08:00"
    assert (by_name["wang"]["average"], by_name["wang"]["trend"], by_name["liu"]["running"]) == (62.5, 75.0, 1)
    assert by_name["wang"]["hit_rates"] == {"acknowledge": 100, "basis": 50, "offer": 50, "date": 50}
    assert by_name["wang"]["forbidden"] == 0
    assert by_name["wang"]["points"][0]["criteria"]["acknowledge"] == {"hits": 1, "turns": 1}
    viewed = audit_of(staff_db, "practice_results_viewed")
    assert [(a["actor"], a["detail"]) for a in viewed] == [("zhao", {"rows": 2}), ("li", {"via": "api", "rows": 2})]
    assert [a["target"] for a in audit_of(staff_db, "practice_viewed") if a["actor"] == "zhao"] == [str(wang_session)]


def test_the_json_api_runs_a_session_with_the_csrf_header(as_user: Any, staff_db: str) -> None:  # noqa: F811
    wang, zhao = as_user("wang"), as_user("zhao")
    token = csrf_of(wang.get("/practice").text)
    assert wang.post("/api/practice/sessions", json={"objection": HEATING}).status_code == 403  # no CSRF header
    headers = {"X-CSRF-Token": token}
    with clock.frozen(NOW):
        created = wang.post("/api/practice/sessions", json={"objection": HEATING, "temperament": "hardship"}, headers=headers)
    assert created.status_code == 201
    body = created.json()
    (stored,) = sessions(staff_db)
    assert body == {
        "id": stored.id, "collector": "wang", "objection": HEATING, "objection_title": "暖气不热",
        "temperament": "hardship", "temperament_label": "困难", "opening": stored.opening,
        "started_at": "2026-11-24T09:30:00+08:00", "ended_at": None, "outcome": None, "agreed_on": None,
        "score": None, "summary": None, "turns": [],
    }  # fmt: skip
    bad = wang.post("/api/practice/sessions", json={"temperament": "sleepy"}, headers=headers)
    assert bad.status_code == 422
    path = f"/api/practice/sessions/{stored.id}"
    assert wang.post(f"{path}/answers", json={"text": ""}, headers=headers).status_code == 422
    blank = wang.post(f"{path}/answers", json={"text": "   "}, headers=headers)
    assert blank.status_code == 400 and blank.json()["detail"] == "an empty answer"
    assert zhao.post(f"{path}/answers", json={"text": "理解您"}, headers={"X-CSRF-Token": csrf_of(zhao.get("/practice").text)}).status_code == 404

    with clock.frozen(NOW):
        answered = wang.post(f"{path}/answers", json={"text": good_answer(HEATING)}, headers=headers)
    assert answered.status_code == 200
    result = answered.json()
    (turn,) = result["turns"]
    assert turn["number"] == 1 and turn["text"] == good_answer(HEATING) and turn["score"] == 100
    assert turn["criteria"] == {"acknowledge": True, "basis": True, "offer": True, "date": True}
    assert turn["forbidden"] == [] and turn["reaction"] == "agreed" and turn["at"] == "2026-11-24T09:30:00+08:00"
    assert (result["outcome"], result["score"], result["agreed_on"]) == ("agreed", 100, "2026-12-04")
    assert result["summary"]["feedback"] == ["业主同意下周五交费，这次演练达成了目标。"]
    assert wang.post(f"{path}/answers", json={"text": "还在吗"}, headers=headers).status_code == 409
    assert wang.post(f"{path}/finish", headers=headers).json()["outcome"] == "agreed"  # already over: unchanged

    listed = wang.get("/api/practice/sessions").json()
    assert [(item["id"], item["score"], item["turns"]) for item in listed] == [(stored.id, 100, [])]
    assert zhao.get(path).json()["turns"][0]["owner_reply"] == turns(staff_db)[0].owner_reply
    assert zhao.get("/api/practice/sessions").json() == []  # a supervisor's own sessions
    assert [a["detail"]["via"] for a in audit_of(staff_db, "practice_answered")] == ["api"]


def test_control_characters_in_an_answer_are_a_polite_400_on_the_page_and_the_api(
    as_user: Any, staff_db: str  # noqa: F811
) -> None:
    """NUL cannot be stored in PostgreSQL text: the answer is refused before it reaches the database."""
    wang = as_user("wang")
    session_id = start(wang)
    for text in ("理解您的心情\x00，您看哪天交？", "理解您\x1b[31m的心情"):
        refused = answer(wang, session_id, text)
        assert refused.status_code == 400, refused.text[:300]
        assert "控制字符" in refused.text
        # The draft comes back to correct, without the refused characters.
        draft = re.search(r'<textarea[^>]*name="text"[^>]*>([^<]*)</textarea>', refused.text)
        assert draft and "\x00" not in draft.group(1) and "\x1b" not in draft.group(1) and "理解您" in draft.group(1)
    headers = {"X-CSRF-Token": csrf_of(wang.get("/practice").text)}
    api = wang.post(f"/api/practice/sessions/{session_id}/answers", json={"text": "理解您\u0000的心情"}, headers=headers)
    assert api.status_code == 400 and "control characters" in api.json()["detail"]
    assert turns(staff_db) == [] and audit_of(staff_db, "practice_answered") == []
    # Line breaks and tabs are writing, not noise.
    kept = answer(wang, session_id, "理解您的心情。\n\t您看哪天方便交？")
    assert kept.status_code == 303
    (turn,) = turns(staff_db)
    assert turn.collector_text == "理解您的心情。\n\t您看哪天方便交？" and turn.score == 50


def test_an_id_beyond_the_column_is_not_found_not_a_server_error(as_user: Any, staff_db: str) -> None:  # noqa: F811
    wang = as_user("wang")
    session_id = start(wang)
    token = csrf_of(wang.get("/practice").text)
    headers = {"X-CSRF-Token": token}
    for huge in ("100000000000000000000", str(2**31), "0", "-1"):
        assert wang.get(f"/practice/{huge}").status_code in (404, 422), huge
        for path in (f"/practice/{huge}/answer", f"/practice/{huge}/finish"):
            assert wang.post(path, data={"text": "理解您的心情", "csrf_token": token}).status_code in (404, 422), path
        assert wang.get(f"/api/practice/sessions/{huge}").status_code in (404, 422), huge
        assert wang.post(f"/api/practice/sessions/{huge}/answers", json={"text": "理解您的心情"}, headers=headers).status_code in (404, 422)
        assert wang.post(f"/api/practice/sessions/{huge}/finish", headers=headers).status_code in (404, 422)
    assert wang.get(f"/practice/{2**31 - 1}").status_code == 404  # the largest id the column holds: none such
    assert wang.get(f"/api/practice/sessions/{2**31 - 1}").status_code == 404
    (row,) = sessions(staff_db)
    assert row.id == session_id and row.ended_at is None and turns(staff_db) == []
