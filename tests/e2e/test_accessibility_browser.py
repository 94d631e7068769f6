"""axe-core (the engine the browsers' own accessibility tools use) on every console page, in headless Chromium.

The axe-core build ships inside the ``axe-playwright-python`` wheel (in the lock file, nothing fetched at run
time); it is injected into each page as it stands after loading, and no serious or critical violation may be
left. Pages are opened as a manager (who sees every section) and as a collector (the phone-first pages).
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, List, Tuple

import pytest
from playwright.sync_api import Page, expect, sync_playwright

from bot.conversations.handles import handle_of
from tests.e2e.browser import CHROMIUM, add_staff_user, staff_login
from tests.e2e.test_staff_browser import _seed, staff_url_and_db  # noqa: F401  (fixture)

pytestmark = [pytest.mark.e2e]

AXE = Path(__import__("axe_playwright_python").__file__).with_name("axe.min.js")
SERIOUS = ("serious", "critical")
# The outermost elements reaching past the screen's right edge, to say what made a page too wide.
WIDEST = """() => Array.from(document.querySelectorAll("body *"))
  .filter(node => node.getBoundingClientRect().right > window.innerWidth + 0.5)
  .filter(node => !node.parentElement || node.parentElement.getBoundingClientRect().right <= window.innerWidth + 0.5)
  .slice(0, 3).map(node => node.tagName.toLowerCase() + (node.className ? "." + String(node.className).split(" ").join(".") : ""))
  .join(", ")"""


def violations(page: Page) -> List[Dict[str, Any]]:
    """axe-core's serious and critical violations on the page as it stands."""
    page.add_script_tag(path=str(AXE))
    found = page.evaluate("async () => (await axe.run(document, {resultTypes: ['violations']})).violations")
    return [
        {"id": item["id"], "impact": item["impact"], "nodes": [node["target"] for node in item["nodes"]][:5]}
        for item in found
        if item["impact"] in SERIOUS
    ]


def records(database_url: str) -> Tuple[int, int]:
    """A repair and an owner to open pages of."""
    from bot.db import models
    from bot.db.session import session_scope
    from bot.reminders import calls
    from bot.services import owner_requests

    with session_scope(database_url) as session:
        owner = session.query(models.Owner).filter(models.Owner.name == "王建国").one()
        repair = owner_requests.create(
            session, models.RepairOrder, message_id="r-a11y", sender_id="web-1", owner_id=owner.id, item="暖气",
            location="客厅", description="暖气不热", preferred_time="周六上午",
        )  # fmt: skip
        owner_requests.create(
            session, models.PaymentPromise, message_id="p-a11y", sender_id="web-1", owner_id=owner.id,
            amount=Decimal("800.00"), due_date=dt.date(2026, 11, 30),
        )  # fmt: skip
        task = calls.create(session, unit_id=int(owner.unit_id), owner_id=int(owner.id), reason="no_push_channel")
        task.assignee = "wang"
        return int(repair.id), int(owner.id)


def test_no_console_page_has_a_serious_or_critical_accessibility_violation(
    staff_url_and_db: Tuple[str, str],  # noqa: F811
) -> None:
    staff_url, database_url = staff_url_and_db
    _seed(database_url)
    repair_id, owner_id = records(database_url)
    add_staff_user(database_url, "li", role="manager", name="李经理")
    add_staff_user(database_url, "wang", role="collector", name="王小明")
    conversation = f"/conversations/{handle_of('web-1')}"
    manager_pages = [
        "/", "/queue", "/conversations", conversation, "/owners", f"/owners/{owner_id}", "/records",
        f"/records/repairs/{repair_id}", "/records?tab=promises", "/calls", "/reminders", "/review", "/quality",
        "/coach", "/practice", "/practice/results", "/playbook", "/nlu", "/users", "/users/wang", "/audit",
    ]  # fmt: skip
    collector_pages = ["/", "/queue", "/calls", "/coach", "/practice", conversation]
    found: Dict[str, Any] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            for username, paths, viewport in (
                ("li", manager_pages, {"width": 1366, "height": 900}),
                ("wang", collector_pages, {"width": 390, "height": 844}),
            ):
                # bypass_csp: the console allows no inline script, and axe is injected as one (test only).
                page = browser.new_context(locale="zh-CN", viewport=viewport, bypass_csp=True).new_page()
                staff_login(page, staff_url, "/", username)
                for path in paths:
                    response = page.goto(f"{staff_url}{path}")
                    assert response is not None and response.status == 200, (username, path)
                    page.wait_for_load_state("networkidle")
                    problems = violations(page)
                    if problems:
                        found[f"{username} {path}"] = problems
                page.context.close()
        finally:
            browser.close()
    assert found == {}, found


def test_every_page_fits_a_phone_without_sideways_scrolling(staff_url_and_db: Tuple[str, str]) -> None:  # noqa: F811
    staff_url, database_url = staff_url_and_db
    _seed(database_url)
    repair_id, owner_id = records(database_url)
    add_staff_user(database_url, "li", role="manager", name="李经理")
    add_staff_user(database_url, "wang", role="collector", name="王小明")
    conversation = f"/conversations/{handle_of('web-1')}"
    pages = {
        "wang": ["/", "/queue", "/calls", "/coach", "/practice", conversation, "/owners", f"/owners/{owner_id}"],
        "li": [
            "/queue", "/conversations", conversation, "/owners", f"/owners/{owner_id}", "/records",
            f"/records/repairs/{repair_id}", "/calls", "/reminders", "/review", "/quality", "/users", "/audit",
        ],
    }  # fmt: skip
    too_wide: Dict[str, str] = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            for username, paths in pages.items():
                page = browser.new_context(locale="zh-CN", viewport={"width": 390, "height": 844}).new_page()
                staff_login(page, staff_url, "/", username)
                # The menu folds away behind 菜单 on a phone, and opens with it.
                expect(page.locator("#main-nav")).to_be_hidden()
                page.click("button.menu-toggle")
                expect(page.locator("#main-nav")).to_be_visible()
                expect(page.locator("button.menu-toggle")).to_have_attribute("aria-expanded", "true")
                for path in paths:
                    page.goto(f"{staff_url}{path}")
                    page.wait_for_load_state("networkidle")
                    if path == "/calls" and username == "wang":  # the call list as cards, 完成 within reach
                        card = page.locator("table.calls-list tbody tr").first
                        expect(card).to_contain_text("王建国")
                        assert card.evaluate("node => getComputedStyle(node).display") == "block"
                        done = page.locator("table.calls-list button", has_text="完成").first
                        assert done.evaluate("node => node.getBoundingClientRect().right") <= 390
                    width = page.evaluate("() => document.documentElement.scrollWidth")
                    if width > 390:
                        too_wide[f"{username} {path}"] = f"{width}px ({page.evaluate(WIDEST)})"
                page.context.close()
        finally:
            browser.close()
    assert not too_wide, "; ".join(f"{page} {width}" for page, width in sorted(too_wide.items()))
