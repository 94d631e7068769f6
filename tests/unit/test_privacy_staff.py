"""导出个人信息 / 删除个人信息 on the owner page (apps/staff/privacy.py) on SQLite and PostgreSQL: managers only
(403 for supervisors and collectors), CSRF on the erasure, the unit typed to confirm (400 otherwise, nothing
changed), an owner erased already is 409; downloads and the erasure are audited."""

from __future__ import annotations

import json
from typing import Any, Dict

import pytest
from fastapi.testclient import TestClient

from bot import clock
from tests.unit.test_privacy_subject import (  # noqa: F401  (fixtures)
    LATER,
    NAME,
    PHONE,
    WEB,
    build,
    domain,
    every_row,
    occurrences,
    personal,
    tracker_store,
)
from tests.unit.test_staff_app import (  # noqa: F401  (fixtures)
    app,
    client,
    csrf_of,
    local_settings,
    log_in,
    staff_db,
)
from tests.unit.test_staff_screens import as_user  # noqa: F401  (fixtures)


@pytest.fixture
def estate(staff_db: str, tracker_store: Any, domain: Any) -> Dict[str, Any]:  # noqa: F811
    """王建国 with everything the bot holds on an owner, in the console's database (its staff already there)."""
    return build(staff_db, tracker_store, domain)


def audit_rows(url: str, action: str) -> list:
    return [(row["actor"], row["target"], row["detail"]) for row in every_row(url)["audit_log"] if row["action"] == action]


def open_owner(browser: TestClient, owner_id: int) -> str:
    page = browser.get(f"/owners/{owner_id}")
    assert page.status_code == 200
    return page.text


def test_a_manager_downloads_the_export_as_json_and_as_text(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url, wang = estate["url"], estate["wang"]
    with clock.frozen(LATER):
        manager = as_user("li")
        page = open_owner(manager, wang)
        as_json = manager.get(f"/owners/{wang}/privacy/export.json")
        as_text = manager.get(f"/owners/{wang}/privacy/export.txt")
    assert f'href="/owners/{wang}/privacy/export.json"' in page and f'href="/owners/{wang}/privacy/export.txt"' in page
    assert f'action="/owners/{wang}/privacy/erase"' in page and 'name="confirm_unit"' in page
    assert as_json.status_code == 200 and as_json.headers["content-type"] == "application/json; charset=utf-8"
    assert as_json.headers["content-disposition"] == f'attachment; filename="owner-{wang}-20261128-100000.json"'
    data = json.loads(as_json.content.decode("utf-8"))
    assert (data["owner"]["name"], data["owner"]["phone"], len(data["conversations"])) == (NAME, PHONE, 3)
    assert WEB not in as_json.text and WEB not in as_text.text
    assert as_text.status_code == 200 and as_text.headers["content-type"] == "text/plain; charset=utf-8"
    assert as_text.headers["content-disposition"] == f'attachment; filename="owner-{wang}-20261128-100000.txt"'
    assert f"姓名：{NAME}" in as_text.text and "会话记录" in as_text.text
    rows = audit_rows(url, "privacy_exported")
    assert [(actor, target, detail["via"], detail["format"]) for actor, target, detail in rows] == [
        ("li", f"owner:{wang}", "console", "json"), ("li", f"owner:{wang}", "console", "txt")
    ]  # fmt: skip
    assert rows[0][2]["conversations"] == 3 and rows[0][2]["messages"] == 7


def test_a_manager_erases_after_typing_the_unit_and_it_is_audited(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url, wang = estate["url"], estate["wang"]
    with clock.frozen(LATER):
        manager = as_user("li")
        page = open_owner(manager, wang)
        response = manager.post(
            f"/owners/{wang}/privacy/erase", data={"confirm_unit": "3栋2单元501", "csrf_token": csrf_of(page)}, follow_redirects=False
        )
        after = open_owner(manager, wang)
    assert (response.status_code, response.headers["location"]) == (303, f"/owners/{wang}#privacy")
    assert occurrences(url, personal()) == []
    [(actor, target, detail)] = audit_rows(url, "privacy_erased")
    assert (actor, target, detail["conversations"], detail["owners"], detail["events"] > 0) == ("li", f"owner:{wang}", 3, 1, True)
    assert "已删除" in after and "个人信息已删除" in after and "/privacy/erase" not in after and "/privacy/export.json" in after
    assert NAME not in after and PHONE not in after

    with clock.frozen(LATER):
        again = manager.post(f"/owners/{wang}/privacy/erase", data={"confirm_unit": "3-2-501", "csrf_token": csrf_of(page)})
    assert again.status_code == 409 and 'data-code="already_erased"' in again.text and "没有删除任何内容" in again.text
    assert len(audit_rows(url, "privacy_erased")) == 1


@pytest.mark.parametrize("typed", ["3-2-502", "", "王建国"])
def test_a_wrong_confirmation_is_refused_politely_and_changes_nothing(estate: Dict[str, Any], as_user: Any, typed: str) -> None:  # noqa: F811
    url, wang = estate["url"], estate["wang"]
    with clock.frozen(LATER):
        manager = as_user("li")
        page = open_owner(manager, wang)
        before = every_row(url)
        refused = manager.post(f"/owners/{wang}/privacy/erase", data={"confirm_unit": typed, "csrf_token": csrf_of(page)})
    assert refused.status_code == 400
    assert 'data-code="wrong_confirmation"' in refused.text and "请输入这位业主的房号 3-2-501" in refused.text
    assert f'<a href="/owners/{wang}">返回业主档案</a>' in refused.text
    assert every_row(url) == before


@pytest.mark.parametrize("username", ["zhao", "wang"])
def test_supervisors_and_collectors_may_neither_export_nor_erase(estate: Dict[str, Any], as_user: Any, username: str) -> None:  # noqa: F811
    url, wang = estate["url"], estate["wang"]
    with clock.frozen(LATER):
        browser = as_user(username)
        page = open_owner(browser, wang)
        before = every_row(url)
        exported = browser.get(f"/owners/{wang}/privacy/export.json")
        erased = browser.post(f"/owners/{wang}/privacy/erase", data={"confirm_unit": "3-2-501", "csrf_token": csrf_of(page)})
    assert "/privacy/" not in page
    assert (exported.status_code, erased.status_code) == (403, 403)
    assert NAME not in exported.text
    assert every_row(url) == before


def test_without_the_csrf_token_nothing_is_erased(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url, wang = estate["url"], estate["wang"]
    with clock.frozen(LATER):
        manager = as_user("li")
        open_owner(manager, wang)
        before = every_row(url)
        forged = manager.post(f"/owners/{wang}/privacy/erase", data={"confirm_unit": "3-2-501", "csrf_token": "forged"})
        missing = manager.post(f"/owners/{wang}/privacy/erase", data={"confirm_unit": "3-2-501"})
    assert (forged.status_code, missing.status_code) == (403, 403)
    assert every_row(url) == before


def test_unknown_owners_and_formats_are_404(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url, wang = estate["url"], estate["wang"]
    with clock.frozen(LATER):
        manager = as_user("li")
        page = open_owner(manager, wang)
        before = every_row(url)
        answers = [
            manager.get("/owners/424242/privacy/export.json").status_code,
            manager.get(f"/owners/{wang}/privacy/export.pdf").status_code,
            manager.post("/owners/424242/privacy/erase", data={"confirm_unit": "3-2-501", "csrf_token": csrf_of(page)}).status_code,
        ]
    assert answers == [404, 404, 404]
    assert every_row(url) == before


def test_anonymous_requests_go_to_the_login_page(estate: Dict[str, Any], client: TestClient) -> None:  # noqa: F811
    response = client.get(f"/owners/{estate['wang']}/privacy/export.json", follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
