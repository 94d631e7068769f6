"""What the browser tests share: Debian's Chromium, staff accounts made with ``bot user add``, signing in to the
staff console, and a page that records what it loaded and what went wrong (for the no-CDN and no-error checks).
"""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, List

from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import ROOT

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PASSWORD = "Zhuguan-2026!"


def add_staff_user(database_url: str, username: str, *, role: str, name: str, password: str = PASSWORD) -> None:
    """Add a staff account the way an administrator does: ``bot user add`` on the command line."""
    added = subprocess.run(
        [sys.executable, "-m", "bot.cli", "user", "add", username, "--role", role, "--name", name, "--url", database_url],
        cwd=ROOT,
        input=password + "\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert added.returncode == 0, added.stderr


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Debian Chromium, closed afterwards."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@dataclass
class WatchedPage:
    """A page in its own browser context (its own cookies and storage: one person), with what it loaded and the
    errors it met."""

    page: Page
    requested: List[str] = field(default_factory=list)
    errors: List[str] = field(default_factory=list)


def watched_page(browser: Browser, *, width: int = 1280, height: int = 900) -> WatchedPage:
    """A fresh context and page recording requests, failed requests, console errors and page errors."""
    context = browser.new_context(locale="zh-CN", viewport={"width": width, "height": height})
    page = context.new_page()
    watched = WatchedPage(page)
    page.on("request", lambda request: watched.requested.append(request.url))
    page.on("requestfailed", lambda request: watched.errors.append(f"failed: {request.url}"))
    page.on("console", lambda message: watched.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: watched.errors.append(str(error)))
    return watched


def staff_login(page: Page, staff_url: str, path: str, username: str, password: str = PASSWORD) -> None:
    """Open ``path`` of the staff console, sign in on the login page it redirects to, and land on ``path``."""
    page.goto(f"{staff_url}{path}")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button.primary")
    expect(page).to_have_url(f"{staff_url}{path}")


def csrf_token(page: Page) -> str:
    """The CSRF token of the signed-in page (every form carries it)."""
    token: Any = page.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token, "no CSRF token on the page"
    return str(token)
