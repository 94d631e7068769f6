"""The daily review in headless Chromium: a real staff console process, a supervisor signs in, opens /review and
the vendored ECharts draws every chart from /api/review (canvases with a size, no console errors, nothing
loaded from another origin). Keeps a screenshot in ``results/staff-review.png``."""

from __future__ import annotations

from typing import Any, List, Tuple
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect, sync_playwright

from tests.conftest import ROOT
from tests.e2e.test_staff_browser import CHROMIUM, PASSWORD, staff_url_and_db  # noqa: F401  (fixture)

pytestmark = [pytest.mark.e2e]

SCREENSHOT = ROOT / "results" / "staff-review.png"
CHARTS = ("chart-objections", "chart-escalations", "chart-promises", "chart-repairs", "chart-times")


def _seed(database_url: str) -> None:
    """The review estate of tests/unit/test_review.py: owners' messages (Rasa's SQLTrackerStore) and records."""
    from rasa.core.tracker_store import TrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.utils.endpoints import EndpointConfig

    from bot.rasa.endpoints import tracker_store_config
    from tests.unit.test_review import make_records, write_messages

    make_records(database_url)
    domain = Domain.load(str(ROOT / "domain.yml"))
    store: Any = TrackerStore.create(EndpointConfig.from_dict(tracker_store_config(database_url)), domain)
    try:
        write_messages(store, domain)
    finally:
        store.engine.dispose()


def test_the_review_charts_render_in_the_browser(staff_url_and_db: Tuple[str, str]) -> None:  # noqa: F811
    staff_url, database_url = staff_url_and_db
    _seed(database_url)
    origin = urlparse(staff_url).netloc
    requested: List[str] = []
    failed: List[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        page.on("requestfailed", lambda request: failed.append(request.url))
        page.on("console", lambda message: failed.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: failed.append(str(error)))
        try:
            page.goto(f"{staff_url}/review?day=2026-11-24")
            page.fill("#username", "zhao")
            page.fill("#password", PASSWORD)
            page.click("button.primary")
            expect(page).to_have_url(f"{staff_url}/review?day=2026-11-24")
            expect(page.locator("h1")).to_have_text("每日复盘")
            expect(page.locator("body")).to_have_attribute("data-charts", "ready", timeout=15_000)
            for chart in CHARTS:
                canvas = page.locator(f"#{chart} canvas")
                expect(canvas).to_have_count(1)
                size = canvas.evaluate("c => [c.width, c.height, c.getBoundingClientRect().width, c.getBoundingClientRect().height]")
                assert all(value > 0 for value in size), (chart, size)
                # Each chart's numbers as a table too, for people who cannot see the picture.
                expect(page.locator(f"figure:has(#{chart}) details.chart-table table tbody tr").first).to_be_attached()
            expect(page.locator("details.chart-table")).to_have_count(len(CHARTS))
            expect(page.locator("figure:has(#chart-times) details.chart-table tbody tr")).to_have_count(2)
            # The day's list for the morning meeting, and its exports.
            rows = page.locator("table.review-day tbody tr")
            expect(rows).to_have_count(3)
            expect(rows.first).to_contain_text("王建国")
            expect(page.locator("a[href='/review/export.csv?day=2026-11-24']")).to_have_text("导出 CSV")
            expect(page.locator("a[href='/review/export.xlsx?day=2026-11-24']")).to_have_text("导出 Excel")
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            with page.expect_download() as download:
                page.click("a[href='/review/export.csv?day=2026-11-24']")
            assert download.value.suggested_filename.endswith(".csv")
        finally:
            context.close()
            browser.close()
    assert requested and all(urlparse(url).netloc == origin for url in requested), requested
    assert failed == [], failed
