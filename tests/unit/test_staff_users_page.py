"""The managers' users page (账号管理) over HTTP, on SQLite and PostgreSQL: managers only, CSRF on every POST, each
change's stored fields and audit rows (never a password), open browsers losing their sessions and old powers, a
manager's unlock, WeCom UserIDs, and refusals that change nothing and are never a 5xx."""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Dict, List, Tuple

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select

from apps.staff import security
from bot import clock
from bot.db.session import session_scope
from bot.db.staff_models import AuditEntry, StaffRole, StaffUser
from tests.unit.test_staff_app import (  # noqa: F401  (fixtures)
    PASSWORD,
    app,
    client,
    csrf_of,
    log_in,
    staff_db,
)

NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
NEW_PASSWORD = "Xin-mima-2027#"
ALERT = re.compile(r'<p class="alert" role="alert">([^<]+)</p>')
NOTICE = re.compile(r'<p class="notice" role="status">([^<]+)</p>')


def aware(moment: Any) -> Any:
    return moment if moment is None or moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)


def stored(url: str, username: str) -> Dict[str, Any]:
    with session_scope(url) as session:
        user = session.execute(select(StaffUser).where(StaffUser.username == username)).scalar_one()
        return {
            "role": user.role,
            "active": user.active,
            "deactivated_at": aware(user.deactivated_at),
            "wecom_user_id": user.wecom_user_id,
            "password_hash": user.password_hash,
            "password_changed_at": aware(user.password_changed_at),
        }


def audit_rows(url: str) -> List[Tuple[Any, ...]]:
    with session_scope(url) as session:
        rows = session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
        return [(row.actor, row.action, row.target, row.detail) for row in rows]


def changes(url: str) -> List[Tuple[Any, ...]]:
    """The audit rows of changes to accounts (not of views, logins or other screens)."""
    return [row for row in audit_rows(url) if row[1].startswith("user_") and row[1] != "user_viewed"]


@pytest.fixture
def url(staff_db: str) -> str:  # noqa: F811
    """The test database with a collector (wang), a supervisor (zhao) and a manager (li)."""
    return staff_db


@pytest.fixture
def manager(app: FastAPI) -> TestClient:  # noqa: F811
    browser = TestClient(app)
    assert log_in(browser, "li").status_code == 303
    return browser


def token(browser: TestClient, path: str = "/users") -> str:
    return csrf_of(browser.get(path).text)


def post(browser: TestClient, path: str, **form: str) -> Any:
    return browser.post(path, data={"csrf_token": token(browser), **form}, follow_redirects=False)


# --- who may ----------------------------------------------------------------------------------------------------


def test_only_managers_open_the_users_page(app: FastAPI, manager: TestClient, url: str) -> None:  # noqa: F811
    for username in ("wang", "zhao"):
        browser = TestClient(app)
        assert log_in(browser, username).status_code == 303
        assert 'href="/users"' not in browser.get("/").text
        for path in ("/users", "/users/wang"):
            refused = browser.get(path)
            assert refused.status_code == 403 and "没有权限" in refused.text
        csrf = csrf_of(browser.get("/").text)
        for path, form in (
            ("/users/wang/deactivate", {}),
            ("/users/wang/role", {"role": "manager"}),
            ("/users/wang/password", {"password": NEW_PASSWORD, "password_repeat": NEW_PASSWORD}),
            (
                "/users",
                {
                    "username": "evil",
                    "role": "manager",
                    "password": NEW_PASSWORD,
                    "password_repeat": NEW_PASSWORD,
                },
            ),
        ):
            assert browser.post(path, data={"csrf_token": csrf, **form}).status_code == 403
    assert (
        TestClient(app).get("/users", follow_redirects=False).status_code == 303
    )  # anonymous: to the login page
    assert stored(url, "wang")["active"] and stored(url, "wang")["role"] is StaffRole.COLLECTOR
    assert changes(url) == []

    page = manager.get("/users")
    assert page.status_code == 200 and 'href="/users"' in manager.get("/").text
    assert re.findall(r'<tr data-username="([^"]+)"', page.text) == ["li", "wang", "zhao"]
    assert "王小明" in page.text and "赵主管" in page.text and "项目经理" in page.text
    assert ("li", "users_viewed", "users", {"rows": 3}) in audit_rows(url)


def test_every_post_needs_the_sessions_csrf_token(manager: TestClient, url: str) -> None:
    for path in ("/users/wang/deactivate", "/users/wang/sessions/revoke", "/users/wang/unlock"):
        for form in ({}, {"csrf_token": "forged"}):
            refused = manager.post(path, data=form)
            assert refused.status_code == 403 and "请求已失效" in refused.text
    assert stored(url, "wang")["active"] and changes(url) == []


def test_unknown_accounts_are_404_and_bad_names_never_reach_the_database(
    manager: TestClient, url: str
) -> None:
    assert manager.get("/users/ghost").status_code == 404
    assert post(manager, "/users/ghost/deactivate").status_code == 404
    assert (
        post(manager, "/users/ghost/password", password=NEW_PASSWORD, password_repeat="x").status_code == 404
    )
    assert manager.get("/users/" + "x" * 65).status_code == 404
    assert changes(url) == []


# --- the changes ------------------------------------------------------------------------------------------------


def test_deactivating_logs_the_person_out_everywhere_and_reactivating_lets_them_back(
    app: FastAPI,  # noqa: F811
    manager: TestClient,
    url: str,
) -> None:
    wang = TestClient(app)
    assert log_in(wang, "wang").status_code == 303 and wang.get("/api/me").status_code == 200
    with clock.frozen(NOW):
        done = post(manager, "/users/wang/deactivate")
    assert done.status_code == 303 and done.headers["location"] == "/users/wang?done=deactivated"
    page = manager.get(done.headers["location"])
    assert NOTICE.search(page.text).group(1).startswith("账号已停用")  # type: ignore[union-attr]
    assert "已停用" in page.text
    assert wang.get("/api/me").status_code == 401
    assert log_in(TestClient(app), "wang").status_code == 401
    assert (stored(url, "wang")["active"], stored(url, "wang")["deactivated_at"]) == (False, NOW)
    assert changes(url) == [("li", "user_deactivated", "wang", {"sessions_ended": 1})]

    again = post(manager, "/users/wang/deactivate")
    assert again.status_code == 409 and ALERT.search(again.text).group(1) == "这个账号已停用。"  # type: ignore[union-attr]
    assert post(manager, "/users/wang/reactivate").headers["location"] == "/users/wang?done=reactivated"
    assert (stored(url, "wang")["active"], stored(url, "wang")["deactivated_at"]) == (True, None)
    assert log_in(TestClient(app), "wang").status_code == 303
    assert changes(url)[-1] == ("li", "user_reactivated", "wang", {"role": "collector"})


def test_a_password_reset_ends_the_sessions_and_no_password_is_stored_anywhere(
    app: FastAPI,  # noqa: F811
    manager: TestClient,
    url: str,
) -> None:
    wang = TestClient(app)
    assert log_in(wang, "wang").status_code == 303
    before = stored(url, "wang")["password_hash"]
    for password, repeat, message in (
        ("short-1", "short-1", "密码至少需要 10 个字符。"),
        ("abcdefghijkl", "abcdefghijkl", "少于 16 个字符的密码要同时包含字母和数字或符号。"),
        ("wang-2027-new!", "wang-2027-new!", "密码不能包含用户名。"),
        ("Password123", "Password123", "这是最常见的密码之一，请换一个。"),
        (NEW_PASSWORD, NEW_PASSWORD + "x", "两次输入的密码不一致。"),
        (PASSWORD, PASSWORD, "新密码与当前密码相同。"),
    ):
        refused = post(manager, "/users/wang/password", password=password, password_repeat=repeat)
        assert refused.status_code in (400, 409), message
        assert ALERT.search(refused.text).group(1) == message  # type: ignore[union-attr]
        assert password not in refused.text
    assert stored(url, "wang")["password_hash"] == before and wang.get("/api/me").status_code == 200
    assert changes(url) == []

    with clock.frozen(NOW):
        done = post(manager, "/users/wang/password", password=NEW_PASSWORD, password_repeat=NEW_PASSWORD)
    assert done.status_code == 303 and done.headers["location"] == "/users/wang?done=password"
    assert stored(url, "wang")["password_changed_at"] == NOW
    assert stored(url, "wang")["password_hash"] != before
    assert wang.get("/api/me").status_code == 401
    assert log_in(TestClient(app), "wang").status_code == 401
    assert log_in(TestClient(app), "wang", NEW_PASSWORD).status_code == 303
    assert changes(url) == [("li", "user_password_reset", "wang", {"sessions_ended": 1})]
    everything = json.dumps(audit_rows(url), ensure_ascii=False)
    assert NEW_PASSWORD not in everything and "short-1" not in everything


def test_a_role_change_takes_the_old_powers_from_an_open_browser(
    app: FastAPI,  # noqa: F811
    manager: TestClient,
    url: str,
) -> None:
    zhao = TestClient(app)
    assert log_in(zhao, "zhao").status_code == 303 and zhao.get("/review").status_code == 200
    done = post(manager, "/users/zhao/role", role="collector")
    assert done.status_code == 303 and done.headers["location"] == "/users/zhao?done=role"
    assert stored(url, "zhao")["role"] is StaffRole.COLLECTOR
    assert (
        zhao.get("/review", follow_redirects=False).status_code == 303
    )  # signed out, not a supervisor still
    assert log_in(zhao, "zhao").status_code == 303
    assert zhao.get("/review").status_code == 403 and zhao.get("/api/me").json()["role"] == "collector"
    assert changes(url) == [
        (
            "li",
            "user_role_changed",
            "zhao",
            {"role": "collector", "previous_role": "supervisor", "sessions_ended": 1},
        )
    ]
    assert post(manager, "/users/zhao/role", role="boss").status_code == 400
    assert post(manager, "/users/zhao/role", role="collector").status_code == 409


def test_a_manager_cannot_deactivate_or_demote_themselves(manager: TestClient, url: str) -> None:
    page = manager.get("/users/li")
    assert "不能停用自己的账号" in page.text and 'action="/users/li/deactivate"' not in page.text
    for path, form in (("/users/li/deactivate", {}), ("/users/li/role", {"role": "collector"})):
        refused = post(manager, path, **form)
        assert refused.status_code == 409
        assert ALERT.search(refused.text).group(1).startswith("不能停用自己的账号")  # type: ignore[union-attr]
    assert stored(url, "li")["active"] and stored(url, "li")["role"] is StaffRole.MANAGER
    assert manager.get("/api/me").status_code == 200 and changes(url) == []


def test_revoke_sessions_signs_the_account_out_of_every_browser(
    app: FastAPI,  # noqa: F811
    manager: TestClient,
    url: str,
) -> None:
    phone, laptop = TestClient(app), TestClient(app)
    assert log_in(phone, "wang").status_code == 303 and log_in(laptop, "wang").status_code == 303
    copied = laptop.cookies[security.SESSION_COOKIE]
    listed = re.search(r'data-username="wang".*?<td class="num">(\d+)</td>', manager.get("/users").text, re.S)
    assert listed is not None and listed.group(1) == "2"
    done = post(manager, "/users/wang/sessions/revoke")
    assert done.headers["location"] == "/users/wang?done=sessions"
    assert phone.get("/api/me").status_code == 401 and laptop.get("/api/me").status_code == 401
    other = TestClient(app)
    other.cookies.set(security.SESSION_COOKIE, copied)
    assert other.get("/api/me").status_code == 401
    assert changes(url) == [("li", "user_sessions_revoked", "wang", {"sessions_ended": 2})]
    assert stored(url, "wang")["active"]  # nothing else changed
    assert log_in(phone, "wang").status_code == 303


def test_a_manager_lifts_a_lock_out_from_the_page(app: FastAPI, manager: TestClient, url: str) -> None:  # noqa: F811
    wang = TestClient(app)
    with clock.frozen(NOW):
        assert [log_in(wang, "wang", f"Wrong-pass-{n}").status_code for n in range(5)][-1] == 429
        assert log_in(wang, "wang").status_code == 429
        page = manager.get("/users/wang")
        assert "锁定至 2026-11-24 09:15" in page.text
        done = post(manager, "/users/wang/unlock")
        assert done.headers["location"] == "/users/wang?done=unlocked"
        assert "未锁定" in manager.get("/users/wang").text
        assert log_in(wang, "wang").status_code == 303
    assert changes(url) == [("li", "user_unlocked", "wang", {"was_locked": True})]


def test_wecom_user_ids_are_set_exactly_kept_unique_and_cleared(manager: TestClient, url: str) -> None:
    done = post(manager, "/users/wang/wecom", wecom_user_id=" WangXiaoMing ")
    assert done.headers["location"] == "/users/wang?done=wecom"
    assert stored(url, "wang")["wecom_user_id"] == "WangXiaoMing"
    assert "WangXiaoMing" in manager.get("/users").text
    taken = post(manager, "/users/zhao/wecom", wecom_user_id="wangxiaoming")
    assert taken.status_code == 409
    assert ALERT.search(taken.text).group(1) == "这个企业微信账号已绑定到另一个员工账号。"  # type: ignore[union-attr]
    bad = post(manager, "/users/zhao/wecom", wecom_user_id="王小明")
    assert bad.status_code == 400 and stored(url, "zhao")["wecom_user_id"] is None
    assert post(manager, "/users/wang/wecom", wecom_user_id="").status_code == 303
    assert stored(url, "wang")["wecom_user_id"] is None
    assert changes(url) == [
        (
            "li",
            "user_wecom_changed",
            "wang",
            {"wecom_user_id": "WangXiaoMing", "previous_wecom_user_id": None},
        ),
        (
            "li",
            "user_wecom_changed",
            "wang",
            {"wecom_user_id": None, "previous_wecom_user_id": "WangXiaoMing"},
        ),
    ]


def test_adding_an_account_from_the_page(app: FastAPI, manager: TestClient, url: str) -> None:  # noqa: F811
    form = {"username": "Chen", "display_name": "陈晨", "role": "supervisor", "wecom_user_id": "ChenChen"}
    weak = post(manager, "/users", **form, password="chen-123456", password_repeat="chen-123456")
    assert weak.status_code == 400 and ALERT.search(weak.text).group(1) == "密码不能包含用户名。"  # type: ignore[union-attr]
    assert 'value="Chen"' in weak.text and 'value="陈晨"' in weak.text and "chen-123456" not in weak.text
    taken = post(
        manager, "/users", **{**form, "username": "wang"}, password=NEW_PASSWORD, password_repeat=NEW_PASSWORD
    )
    assert taken.status_code == 409 and ALERT.search(taken.text).group(1) == "这个用户名已被使用。"  # type: ignore[union-attr]
    assert changes(url) == []
    with clock.frozen(NOW):
        done = post(manager, "/users", **form, password=NEW_PASSWORD, password_repeat=NEW_PASSWORD)
    assert done.status_code == 303 and done.headers["location"] == "/users/chen?done=added"
    chen = stored(url, "chen")
    assert (chen["role"], chen["active"], chen["wecom_user_id"], chen["password_changed_at"]) == (
        StaffRole.SUPERVISOR, True, "ChenChen", NOW,
    )  # fmt: skip
    assert changes(url) == [
        ("li", "user_added", "chen", {"role": "supervisor", "name": "陈晨", "wecom_user_id": "ChenChen"})
    ]
    assert log_in(TestClient(app), "chen", NEW_PASSWORD).status_code == 303


def test_the_audit_screen_names_the_account_changes(manager: TestClient, url: str) -> None:
    post(manager, "/users/wang/role", role="supervisor")
    post(manager, "/users/wang/unlock")
    page = manager.get("/audit").text
    for label in ("更改角色", "原角色：催费员", "角色：客户主管", "解除登录锁定", "查看账号列表", "查看账号"):
        assert label in page, label


def test_the_users_pages_load_only_local_assets(manager: TestClient) -> None:
    for path in ("/users", "/users/wang"):
        response = manager.get(path)
        assert response.status_code == 200 and response.headers["cache-control"] == "no-store"
        sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assert "/static/users.css" in sources and all(source.startswith(("/", "data:", "#")) for source in sources)
        assert re.findall(r"<script[^>]*>", response.text) == ['<script src="/static/console.js">']  # no inline script
        assert "style=" not in response.text
    assert manager.get("/static/users.css").status_code == 200
