"""The staff console in headless Chromium: a real ``python -m apps.staff`` process started by ``bot run``'s
launcher, an account made with ``bot user add``, then login, the home page and logout as a person would.

Keeps a screenshot of the home page in ``results/staff-home.png``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator, List
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect, sync_playwright

from bot.cli import ServerPlan, start_staff_app, stop
from tests.conftest import ROOT, free_port, wait_for

pytestmark = [pytest.mark.e2e]

SCREENSHOT = ROOT / "results" / "staff-home.png"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PASSWORD = "Zhuguan-2026!"


@pytest.fixture
def staff_url(tmp_path: Path) -> Iterator[str]:
    """The staff console on a free port, with a supervisor 赵主管 (zhao) added through the command line."""
    database_url = f"sqlite:///{tmp_path / 'bot.db'}"
    added = subprocess.run(
        [sys.executable, "-m", "bot.cli", "user", "add", "zhao", "--role", "supervisor", "--name", "赵主管", "--url", database_url],
        cwd=ROOT,
        input=PASSWORD + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr
    # The staff console needs no model and no action server token; bot run's launcher needs a plan.
    plan = ServerPlan(
        model=tmp_path / "no-model", database_url=database_url, workdir=tmp_path, token="unused",
        staff_port=free_port(), log_dir=tmp_path,
    )  # fmt: skip
    process = start_staff_app(plan)
    try:
        wait_for(f"{plan.staff_url}/health", process, timeout=60)
        yield plan.staff_url
    finally:
        stop([process])


def test_login_home_page_and_logout_in_the_browser(staff_url: str) -> None:
    origin = urlparse(staff_url).netloc
    requested: List[str] = []
    failed: List[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 760})
        page = context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.on("console", lambda message: failed.append(message.text) if message.type == "error" else None)
        try:
            page.goto(f"{staff_url}/")
            expect(page).to_have_url(f"{staff_url}/login?next=%2F")
            expect(page).to_have_title("登录 · 物业费催缴")
            expect(page.locator("h1")).to_have_text("员工登录")

            page.fill("#username", "zhao")
            page.fill("#password", "Not-the-password-1")
            page.click("button.primary")
            expect(page.locator(".alert")).to_have_text("用户名或密码不正确。")

            page.fill("#password", PASSWORD)
            page.click("button.primary")
            expect(page).to_have_url(f"{staff_url}/")
            expect(page.locator("h1")).to_have_text("您好，赵主管")
            expect(page.locator(".who-name")).to_have_text("赵主管")
            expect(page.locator(".who .role")).to_have_text("客户主管")
            expect(page.locator(".nav a")).to_have_text(["首页", "待办队列", "会话记录", "业主档案", "工单记录", "每日复盘"])
            expect(page.locator(".nav a.current")).to_have_text("首页")
            # The local style sheet applied (the bar's colour comes from staff.css only).
            assert page.eval_on_selector(".topbar", "e => getComputedStyle(e).backgroundColor") == "rgb(31, 95, 139)"
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            page.click(".nav a:has-text('待办队列')")
            expect(page.locator("h1")).to_contain_text("待办队列")
            expect(page.locator("h1 .badge")).to_have_text("即将上线")

            page.click(".logout button")
            expect(page).to_have_url(f"{staff_url}/login")
            page.goto(f"{staff_url}/")
            expect(page).to_have_url(f"{staff_url}/login?next=%2F")
        finally:
            context.close()
            browser.close()
    assert requested and all(urlparse(url).netloc == origin for url in requested), requested
    # The one error Chromium reports is the failed login's status (401), which it logs for any 4xx page.
    assert failed == ["Failed to load resource: the server responded with a status of 401 (Unauthorized)"]
