"""The staff console over HTTP (Starlette's TestClient), on SQLite and PostgreSQL: login, lock-out, logout,
CSRF, cookies, roles, the audit rows each step writes, and what the pages load.
"""

from __future__ import annotations

import datetime as dt
import re
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from apps.staff import deps, security
from apps.staff.app import create_app
from apps.staff.deps import require_role
from apps.staff.templating import templates
from bot import clock
from bot.db.session import session_scope
from bot.db.staff_models import AuditEntry, StaffLoginAttempt, StaffRole, StaffSession, StaffUser
from bot.services import staff_users
from bot.settings import Settings

NOW = dt.datetime(2026, 11, 24, 9, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
PASSWORD = "Shoufei-2026!"
USERS = {
    "wang": ("collector", "王小明"),
    "zhao": ("supervisor", "赵主管"),
    "li": ("manager", "李经理"),
}
CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')
PRODUCTION = {
    "environment": "production",
    "secret_key": "s3cret",
    "rest_channel_token": "t0ken",
    "action_server_token": "a-t0ken",
    "staff_secret_key": "a-real-staff-secret-for-tests",
}


def local_settings() -> Settings:
    return Settings(_env_file=None)


@pytest.fixture
def staff_db(database_url: str) -> str:
    """The test database with a collector, a supervisor and a manager (and their user_added audit rows)."""
    with session_scope(database_url) as session:
        for username, (role, name) in USERS.items():
            staff_users.create_user(
                session, username=username, password=PASSWORD, role=role, display_name=name, actor="cli:test"
            )
        session.execute(AuditEntry.__table__.delete())
    return database_url


@pytest.fixture
def app(staff_db: str) -> FastAPI:
    return create_app(local_settings(), database_url=staff_db)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as test_client:
        yield test_client


def csrf_of(html: str) -> str:
    match = CSRF_INPUT.search(html)
    assert match, html[:500]
    return match.group(1)


def log_in(client: TestClient, username: str, password: str = PASSWORD, next_path: str = "/") -> Any:
    page = client.get("/login", params={"next": next_path})
    assert page.status_code == 200
    form = {"username": username, "password": password, "csrf_token": csrf_of(page.text), "next": next_path}
    return client.post("/login", data=form, follow_redirects=False)


def set_cookies(response: Any) -> Dict[str, Dict[str, Any]]:
    """Each Set-Cookie of the response, by name: its value and attributes (lower-case names)."""
    cookies: Dict[str, Dict[str, Any]] = {}
    for header in response.headers.get_list("set-cookie"):
        parsed = SimpleCookie()
        parsed.load(header)
        for name, morsel in parsed.items():
            flags = {part.strip().lower() for part in header.split(";")[1:]}
            cookies[name] = {
                "value": morsel.value,
                "path": morsel["path"],
                "samesite": morsel["samesite"].lower(),
                "httponly": "httponly" in flags,
                "secure": "secure" in flags,
                "max-age": morsel["max-age"],
            }
    return cookies


def audit_rows(url: str) -> List[Tuple[Any, ...]]:
    with session_scope(url) as session:
        rows = session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars().all()
        return [
            (row.at if row.at.tzinfo else row.at.replace(tzinfo=dt.timezone.utc), row.actor, row.action, row.target, row.detail)
            for row in rows
        ]


def count(url: str, model: Any) -> int:
    with session_scope(url) as session:
        return int(session.execute(select(func.count()).select_from(model)).scalar_one())


def use_session_cookie(client: TestClient, value: str) -> None:
    """Make the client send ``value`` as its session cookie (and no other)."""
    client.cookies.delete(security.SESSION_COOKIE)
    client.cookies.set(security.SESSION_COOKIE, value)


def without_tokens(html: str) -> str:
    return CSRF_INPUT.sub('name="csrf_token" value=""', html)


# --- anonymous --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/queue", "/review", "/audit", "/records?status=open"])
def test_anonymous_pages_redirect_to_the_login_page(client: TestClient, path: str) -> None:
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=" + path.replace("/", "%2F").replace("?", "%3F").replace(
        "=", "%3D"
    )


@pytest.mark.parametrize("path", ["/api/me", "/api/openapi.json", "/api/escalations"])
def test_anonymous_api_calls_get_401_json(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert response.json() == {"detail": "not authenticated"}


def test_health_answers_without_login_and_reveals_nothing(client: TestClient) -> None:
    response = client.get("/health")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_a_forged_or_altered_session_cookie_is_anonymous(client: TestClient, staff_db: str) -> None:
    assert log_in(client, "wang").status_code == 303
    signed = client.cookies[security.SESSION_COOKIE]
    token, signature = signed.split(".")
    altered = token[:-1] + ("B" if token.endswith("A") else "A")
    for forged in (token, f"{token}.{'0' * 64}", f"{altered}.{signature}", "x.y"):
        use_session_cookie(client, forged)
        assert client.get("/api/me").status_code == 401
    use_session_cookie(client, signed)
    assert client.get("/api/me").status_code == 200


# --- login, logout ----------------------------------------------------------------------------------------


def test_login_succeeds_goes_on_and_shows_the_home_page(client: TestClient, staff_db: str) -> None:
    response = log_in(client, "Wang", next_path="/queue")
    assert response.status_code == 303 and response.headers["location"] == "/queue"
    assert client.get("/api/me").json() == {"username": "wang", "display_name": "王小明", "role": "collector"}
    home = client.get("/")
    assert home.status_code == 200
    assert "您好，王小明" in home.text and "催费员" in home.text and "这是您第一次登录" in home.text
    for label, path in [("待办队列", "/queue"), ("会话记录", "/conversations"), ("业主档案", "/owners"), ("工单记录", "/records")]:
        assert f'href="{path}"' in home.text and label in home.text
        page = client.get(path)
        assert page.status_code == 200 and label in page.text
        assert "即将上线" not in page.text  # every one is built (test_staff_screens.py, test_staff_records.py)
    assert 'href="/review"' not in home.text and 'href="/audit"' not in home.text  # not a collector's
    # A signed-in user visiting the login page goes straight on.
    again = client.get("/login", params={"next": "/owners"}, follow_redirects=False)
    assert again.status_code == 303 and again.headers["location"] == "/owners"


def test_login_failure_says_nothing_about_which_part_was_wrong(client: TestClient, staff_db: str) -> None:
    wrong_password = log_in(client, "wang", "Not-the-password-1")
    unknown_user = log_in(client, "nobody", "Not-the-password-1")
    assert wrong_password.status_code == unknown_user.status_code == 401
    assert "用户名或密码不正确" in wrong_password.text
    assert without_tokens(wrong_password.text) == without_tokens(unknown_user.text).replace("nobody", "wang")
    assert security.SESSION_COOKIE not in client.cookies
    assert client.get("/api/me").status_code == 401
    empty = client.post(
        "/login", data={"username": "wang", "password": "", "csrf_token": csrf_of(wrong_password.text)}
    )
    assert empty.status_code == 400 and "请输入用户名和密码" in empty.text


def test_login_never_redirects_to_another_site(client: TestClient) -> None:
    for target in ("//evil.example/", "https://evil.example/", "/\\evil.example", "evil"):
        response = log_in(client, "wang", next_path=target)
        assert response.status_code == 303 and response.headers["location"] == "/", target
        client.post("/logout", data={"csrf_token": csrf_of(client.get("/").text)})


def test_logout_invalidates_the_session_even_for_a_copy_of_the_cookie(client: TestClient, staff_db: str) -> None:
    assert log_in(client, "zhao").status_code == 303
    copied = client.cookies[security.SESSION_COOKIE]
    response = client.post("/logout", data={"csrf_token": csrf_of(client.get("/").text)}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"] == "/login"
    cleared = set_cookies(response)[security.SESSION_COOKIE]
    assert cleared["value"] == "" and cleared["max-age"] == "0"
    assert client.get("/", follow_redirects=False).status_code == 303
    use_session_cookie(client, copied)  # someone kept the cookie
    assert client.get("/api/me").status_code == 401
    assert client.get("/", follow_redirects=False).headers["location"] == "/login?next=%2F"
    with session_scope(staff_db) as session:
        assert session.execute(select(StaffSession.revoked_at)).scalar_one() is not None


def test_lock_out_after_five_failures_and_its_expiry(client: TestClient, staff_db: str) -> None:
    with clock.frozen(NOW):
        statuses = [log_in(client, "wang", f"Wrong-password-{n}").status_code for n in range(5)]
        assert statuses == [401, 401, 401, 401, 429]
        locked = log_in(client, "wang")  # the right password, during the lock-out
        assert locked.status_code == 429 and "请 15 分钟后再试" in locked.text
        assert security.SESSION_COOKIE not in client.cookies
    with clock.frozen(NOW + dt.timedelta(minutes=14, seconds=59)):
        assert log_in(client, "wang").status_code == 429
        # An unknown username locks the same way, with the same page.
        ghost = [log_in(client, "ghost", "Wrong-password-1") for _ in range(6)]
        assert [response.status_code for response in ghost] == [401, 401, 401, 401, 429, 429]
        assert without_tokens(ghost[-1].text).replace("ghost", "wang") == without_tokens(locked.text)
    with clock.frozen(NOW + dt.timedelta(minutes=15)):
        response = log_in(client, "wang")
        assert response.status_code == 303
        assert client.get("/api/me").json()["username"] == "wang"
    with session_scope(staff_db) as session:
        per_user = dict(
            session.execute(
                select(StaffLoginAttempt.username, func.count()).group_by(StaffLoginAttempt.username)
            ).all()
        )
    assert per_user == {"wang": 8, "ghost": 6}


# --- CSRF -------------------------------------------------------------------------------------------------


def test_a_post_without_or_with_a_wrong_csrf_token_is_refused(client: TestClient, app: FastAPI, staff_db: str) -> None:
    assert log_in(client, "wang").status_code == 303
    token = csrf_of(client.get("/").text)
    other = TestClient(app)
    assert log_in(other, "zhao").status_code == 303
    others_token = csrf_of(other.get("/").text)
    assert others_token != token

    for form in ({}, {"csrf_token": ""}, {"csrf_token": token[:-1] + "x"}, {"csrf_token": others_token}):
        refused = client.post("/logout", data=form, follow_redirects=False)
        assert refused.status_code == 403 and "请求已失效" in refused.text, form
    assert client.post("/logout", json={"csrf_token": token}).status_code == 403  # not a form, no header
    assert client.post("/logout", headers={"X-CSRF-Token": others_token}).status_code == 403
    assert client.get("/api/me").status_code == 200  # still signed in: nothing was done
    assert [row[2] for row in audit_rows(staff_db)] == ["login", "login"]

    done = client.post("/logout", headers={"X-CSRF-Token": token}, follow_redirects=False)
    assert done.status_code == 303 and client.get("/api/me").status_code == 401


def test_the_login_form_needs_its_csrf_token_and_cookie(app: FastAPI, staff_db: str) -> None:
    browser = TestClient(app)
    token = csrf_of(browser.get("/login").text)
    form = {"username": "wang", "password": PASSWORD}
    assert browser.post("/login", data=form).status_code == 403
    assert browser.post("/login", data={**form, "csrf_token": token + "x"}).status_code == 403
    # A forged cross-site form: the attacker may know a token, but the victim's browser has no matching cookie.
    assert TestClient(app).post("/login", data={**form, "csrf_token": token}).status_code == 403
    assert count(staff_db, StaffLoginAttempt) == 0 and audit_rows(staff_db) == []
    assert browser.post("/login", data={**form, "csrf_token": token}, follow_redirects=False).status_code == 303


def test_every_unsafe_route_is_behind_the_csrf_guard(app: FastAPI) -> None:
    assert any(dependency.dependency is deps.csrf_guard for dependency in app.router.dependencies)
    unsafe = [route for route in app.routes if getattr(route, "methods", set()) - {"GET", "HEAD"}]
    assert {route.path for route in unsafe} >= {"/login", "/logout"}
    for route in unsafe:
        assert any(dependency.call is deps.csrf_guard for dependency in route.dependant.dependencies), route.path


# --- cookies and headers ----------------------------------------------------------------------------------


def test_cookie_flags_in_local_mode(client: TestClient) -> None:
    login_page = client.get("/login")
    csrf_cookie = set_cookies(login_page)[security.LOGIN_CSRF_COOKIE]
    assert csrf_cookie["httponly"] and csrf_cookie["samesite"] == "lax" and csrf_cookie["path"] == "/login"
    assert not csrf_cookie["secure"]  # local: plain http on loopback
    session_cookie = set_cookies(log_in(client, "wang"))[security.SESSION_COOKIE]
    assert session_cookie["httponly"] and session_cookie["samesite"] == "lax" and session_cookie["path"] == "/"
    assert not session_cookie["secure"]
    assert session_cookie["max-age"] == ""  # a browser-session cookie; the server ends the session at 12 h


def test_cookies_are_secure_outside_local(staff_db: str) -> None:
    app = create_app(Settings(_env_file=None, **PRODUCTION, clock_start=None), database_url=staff_db)
    client = TestClient(app, base_url="https://testserver")
    login_page = client.get("/login")
    assert set_cookies(login_page)[security.LOGIN_CSRF_COOKIE]["secure"]
    response = log_in(client, "wang")
    session_cookie = set_cookies(response)[security.SESSION_COOKIE]
    assert session_cookie["secure"] and session_cookie["httponly"] and session_cookie["samesite"] == "lax"
    assert client.get("/api/me").status_code == 200


def test_a_cookie_signed_with_another_secret_opens_nothing(staff_db: str) -> None:
    one = TestClient(create_app(Settings(_env_file=None, staff_secret_key="one-secret"), database_url=staff_db))
    assert log_in(one, "wang").status_code == 303
    two = TestClient(create_app(Settings(_env_file=None, staff_secret_key="two-secret"), database_url=staff_db))
    use_session_cookie(two, one.cookies[security.SESSION_COOKIE])
    assert two.get("/api/me").status_code == 401


def test_pages_load_only_local_assets_under_a_strict_policy(client: TestClient) -> None:
    assert log_in(client, "li").status_code == 303
    for path in ("/login", "/", "/queue", "/review", "/audit"):
        response = client.get(path)
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"].startswith("default-src 'none'")
        assert response.headers["x-frame-options"] == "DENY" and response.headers["cache-control"] == "no-store"
        sources = re.findall(r'(?:src|href)="([^"]+)"', response.text)
        assert sources and all(source.startswith(("/", "data:", "#")) for source in sources), sources
        # No inline script or style: a page's scripts are the console's own files (/review's charts).
        scripts = re.findall(r"<script[^>]*>.*?</script>", response.text, re.S)
        assert response.text.count("<script") == len(scripts), path
        assert all(re.fullmatch(r'<script src="/static/[\w./-]+"></script>', tag) for tag in scripts), scripts
        assert "style=" not in response.text
    css = client.get("/static/staff.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "@import" not in css.text and "url(" not in css.text
    for hidden in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(hidden).status_code == 404


# --- roles ------------------------------------------------------------------------------------------------


def test_the_role_helper_refuses_a_collector_on_a_supervisor_route(client: TestClient, app: FastAPI) -> None:
    assert log_in(client, "wang").status_code == 303
    refused = client.get("/review")
    assert refused.status_code == 403 and "没有权限" in refused.text
    assert client.get("/audit").status_code == 403

    supervisor = TestClient(app)
    assert log_in(supervisor, "zhao").status_code == 303
    review = supervisor.get("/review")
    assert review.status_code == 200 and "每日复盘" in review.text and "即将上线" not in review.text
    assert 'href="/review"' in supervisor.get("/").text
    assert supervisor.get("/audit").status_code == 403  # managers only

    manager = TestClient(app)
    assert log_in(manager, "li").status_code == 303
    assert manager.get("/review").status_code == 200 and manager.get("/audit").status_code == 200


def test_the_role_helper_answers_json_on_api_routes(staff_db: str) -> None:
    app = create_app(local_settings(), database_url=staff_db)

    supervisors = require_role(StaffRole.SUPERVISOR, StaffRole.MANAGER)

    @app.get("/api/approvals")
    def approvals(user: StaffUser = supervisors) -> Dict[str, str]:
        return {"approver": str(user.username)}

    collector, supervisor, anonymous = TestClient(app), TestClient(app), TestClient(app)
    assert log_in(collector, "wang").status_code == 303 and log_in(supervisor, "zhao").status_code == 303
    assert collector.get("/api/approvals").status_code == 403
    assert collector.get("/api/approvals").json() == {"detail": "forbidden"}
    assert supervisor.get("/api/approvals").json() == {"approver": "zhao"}
    assert anonymous.get("/api/approvals").status_code == 401
    with pytest.raises(ValueError):
        require_role()


def test_the_phone_filter_masks_for_collectors_only() -> None:
    template = templates.env.from_string("{{ phone | phone(role) }}")
    assert template.render(phone="13812345678", role=StaffRole.COLLECTOR) == "138****5678"
    assert template.render(phone="13812345678", role=StaffRole.SUPERVISOR) == "13812345678"
    assert template.render(phone="13812345678", role="manager") == "13812345678"


# --- audit ------------------------------------------------------------------------------------------------


def test_login_failed_login_logout_and_the_audit_screen_are_audited(client: TestClient, staff_db: str) -> None:
    with clock.frozen(NOW):
        assert log_in(client, "li", "Wrong-password-1").status_code == 401
        assert log_in(client, "ghost", "Wrong-password-1").status_code == 401
    with clock.frozen(NOW + dt.timedelta(minutes=1)):
        assert log_in(client, "LI").status_code == 303
    with clock.frozen(NOW + dt.timedelta(minutes=2)):
        page = client.get("/audit")
        assert page.status_code == 200
        assert "登录失败" in page.text and "用户名不存在" in page.text and "ghost" in page.text
    with clock.frozen(NOW + dt.timedelta(minutes=3)):
        client.post("/logout", data={"csrf_token": csrf_of(page.text)})
    client_address = "testclient"  # Starlette's TestClient peer
    assert audit_rows(staff_db) == [
        (NOW, "li", "login_failed", None, {"reason": "wrong_password", "client": client_address}),
        (NOW, "ghost", "login_failed", None, {"reason": "unknown_user", "client": client_address}),
        (NOW + dt.timedelta(minutes=1), "li", "login", None, {"role": "manager", "client": client_address}),
        (NOW + dt.timedelta(minutes=2), "li", "audit_viewed", None, {"rows": 3}),
        (NOW + dt.timedelta(minutes=3), "li", "logout", None, {"client": client_address}),
    ]


def test_one_database_session_per_request(client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    assert log_in(client, "li").status_code == 303
    opened: List[Optional[str]] = []
    real_scope = deps.session_scope

    def counting_scope(url: Optional[str] = None) -> Any:
        opened.append(url)
        return real_scope(url)

    monkeypatch.setattr(deps, "session_scope", counting_scope)
    for path in ("/", "/audit", "/api/me", "/review"):
        opened.clear()
        assert client.get(path).status_code == 200
        assert len(opened) == 1, path
    opened.clear()
    token = csrf_of(client.get("/").text)
    opened.clear()
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert len(opened) == 1


def test_the_console_names_the_collector_role_one_way() -> None:
    """催费员 everywhere (as the estate's own documents say), never 催收员 or 催缴员 on one page and not another."""
    templates = Path(__file__).resolve().parents[2] / "apps" / "staff" / "templates"
    pages = {path.name: path.read_text(encoding="utf-8") for path in templates.glob("*.html")}
    assert [name for name, text in pages.items() if "催收员" in text or "催缴员" in text] == []
    assert '"collector": "催费员"' in pages["_labels.html"]
