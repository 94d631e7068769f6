"""The QA page (质检) in headless Chromium: a real staff console process, a supervisor signs in, opens /quality,
and the vendored ECharts draws the counts per day (a canvas with a size, no console errors, nothing loaded from
another origin); the list links each finding to its transcript by handle. Keeps ``results/staff-quality.png``."""

from __future__ import annotations

import datetime as dt
from typing import Tuple
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from tests.conftest import ROOT
from tests.e2e.browser import chromium, staff_login, watched_page
from tests.e2e.test_staff_browser import staff_url_and_db  # noqa: F401  (fixture)

pytestmark = [pytest.mark.e2e]

SCREENSHOT = ROOT / "results" / "staff-quality.png"
SENDER = "web-quality-browser-9e2"
PATH = "/quality?day_from=2026-11-23&day_to=2026-11-24"


def _seed(database_url: str) -> None:
    """A refused staff reply (its audit row) and a flagged one that went out, on 2026-11-24."""
    from bot import clock
    from bot.conversations import outbox
    from bot.conversations.handles import handle_of
    from bot.db import audit
    from bot.db.models import OutboxKind
    from bot.db.session import session_scope

    moment = dt.datetime(2026, 11, 24, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=8)))
    with clock.frozen(moment), session_scope(database_url) as session:
        audit.record(
            session, actor="zhao", action="staff_reply_refused", target=handle_of(SENDER),
            detail={"category": "utilities", "reason": "不得以停水相逼。", "text": "再不交就停水", "handle": handle_of(SENDER)},
        )  # fmt: skip
        outbox.enqueue(
            session, sender_id=SENDER, channel="socketio", kind=OutboxKind.TEXT, text="再不交物业费，下周就停您家的水",
            staff="zhao",
        )  # fmt: skip


def test_the_quality_chart_and_list_render_in_the_browser(staff_url_and_db: Tuple[str, str]) -> None:  # noqa: F811
    from bot.conversations.handles import handle_of

    staff_url, database_url = staff_url_and_db
    _seed(database_url)
    origin = urlparse(staff_url).netloc
    with chromium() as browser:
        watched = watched_page(browser)
        page = watched.page
        staff_login(page, staff_url, PATH, "zhao")
        expect(page.locator("h1")).to_have_text("质检")
        expect(page.locator(".nav a.current")).to_have_text("质检")
        expect(page.locator("body")).to_have_attribute("data-charts", "ready", timeout=15_000)
        canvas = page.locator("#chart-quality canvas")
        expect(canvas).to_have_count(1)
        size = canvas.evaluate(
            "c => [c.width, c.height, c.getBoundingClientRect().width, c.getBoundingClientRect().height]"
        )
        assert all(value > 0 for value in size), size
        # The chart's numbers as a table too (for a screen reader): a row a day, a column a kind.
        table = page.locator("figure details.chart-table table")
        expect(table).to_have_count(1)
        expect(table.locator("tbody tr")).to_have_count(2)
        expect(table.locator("tbody tr").last).to_contain_text("11-24")
        rows = page.locator("table.quality-list tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.first.locator("a")).to_have_attribute("href", f"/conversations/{handle_of(SENDER)}")
        expect(page.locator("body")).not_to_contain_text(SENDER)
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
    requested = watched.requested
    assert requested and all(urlparse(url).netloc == origin for url in requested), requested
    assert watched.errors == [], watched.errors
