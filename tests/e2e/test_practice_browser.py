"""话术演练 in headless Chromium against a real staff console process: a collector signs in, starts a session
with a chosen objection and temperament, answers twice (seeing the owner's reaction and the feedback each
time), finishes and sees the score; a supervisor then sees the result in the table and the ECharts line.
Keeps screenshots of the finished session and of the results in ``results/practice.png`` and
``results/practice-results.png``."""

from __future__ import annotations

from typing import List, Tuple
from urllib.parse import urlparse

import pytest
from playwright.sync_api import Page, expect, sync_playwright
from sqlalchemy import select

from bot.db.coach_models import PracticeSession, PracticeTurn
from bot.db.session import session_scope
from bot.services import staff_users
from tests.conftest import ROOT
from tests.e2e.test_staff_browser import CHROMIUM, PASSWORD, staff_url_and_db  # noqa: F401  (fixture)

pytestmark = [pytest.mark.e2e]

SCREENSHOT = ROOT / "results" / "practice.png"
RESULTS_SCREENSHOT = ROOT / "results" / "practice-results.png"
FIRST = "理解您的心情，屋里这么冷谁都难受。我今天就给您报修，安排师傅上门测室温。"
SECOND = "按照物业服务合同和《民法典》第九百四十四条，物业费还是要交的。师傅修好之前我每天跟进。"


def sign_in(page: Page, staff_url: str, username: str, target: str) -> None:
    page.goto(f"{staff_url}{target}")
    page.fill("#username", username)
    page.fill("#password", PASSWORD)
    page.click("button.primary")
    expect(page).to_have_url(f"{staff_url}{target}")


def test_a_collector_practises_and_a_supervisor_sees_the_result(staff_url_and_db: Tuple[str, str]) -> None:  # noqa: F811
    staff_url, database_url = staff_url_and_db
    with session_scope(database_url) as db:
        staff_users.create_user(
            db, username="wang", password=PASSWORD, role="collector", display_name="王小明", actor="cli:test"
        )
    origin = urlparse(staff_url).netloc
    requested: List[str] = []
    failed: List[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.on("requestfailed", lambda request: failed.append(request.url))
            page.on("console", lambda message: failed.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: failed.append(str(error)))

            sign_in(page, staff_url, "wang", "/practice")
            expect(page.locator("h1")).to_have_text("话术演练")
            expect(page.locator("#practice-results-link")).to_have_count(0)
            page.select_option("#objection", "objection_heating")
            page.select_option("#temperament", "stubborn")
            page.click("#start-practice")
            expect(page).to_have_url(f"{staff_url}/practice/1")
            expect(page.locator("h1")).to_have_text("话术演练：暖气不热 · 固执的业主")
            expect(page.locator("#opening .text")).not_to_be_empty()

            page.fill("#answer", FIRST)
            page.click("#send-answer")
            expect(page).to_have_url(f"{staff_url}/practice/1#turn-1")
            turn = page.locator("#turn-1")
            expect(turn).to_contain_text(FIRST)
            expect(turn.locator(".score")).to_have_text("75 分")
            expect(turn.locator(".feedback")).to_contain_text("您没有提出具体的交费日期")
            expect(page.locator(".entry.from-owner .reaction")).to_have_count(1)

            page.fill("#answer", SECOND)
            page.click("#send-answer")
            expect(page.locator("#turn-2 .score")).to_have_text("50 分")  # the basis and the help, no feeling, no day
            expect(page.locator("#turn-2 .feedback")).to_contain_text("先说一句体谅业主的话")
            expect(page.locator("#practice-state")).to_have_text("进行中")
            expect(page.locator(".entry.from-owner .reaction")).to_have_count(2)

            page.click("#finish-practice")
            expect(page.locator("#summary h2")).to_have_text("练习总结")
            expect(page.locator("#practice-score")).to_have_text("63 分")  # (75 + 50) / 2 = 62.5, rounded half up
            expect(page.locator("#summary")).to_contain_text("您提前结束了练习")
            expect(page.locator(".practice-criteria tbody tr")).to_have_count(4)
            expect(page.locator("#answer")).to_have_count(0)
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
            context.close()

            with session_scope(database_url) as db:
                stored = db.execute(select(PracticeSession)).scalars().one()
                assert (stored.collector, stored.objection, stored.temperament, stored.score) == (
                    "wang", "objection_heating", "stubborn", 63,
                )  # fmt: skip
                assert stored.ended_at is not None and stored.outcome == "stopped"
                texts = [t.collector_text for t in db.execute(select(PracticeTurn).order_by(PracticeTurn.number)).scalars()]
                assert texts == [FIRST, SECOND]

            context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
            page = context.new_page()
            page.on("request", lambda request: requested.append(request.url))
            page.on("console", lambda message: failed.append(message.text) if message.type == "error" else None)
            page.on("pageerror", lambda error: failed.append(str(error)))
            sign_in(page, staff_url, "zhao", "/practice/results")
            expect(page.locator("h1")).to_have_text("练习成绩")
            row = page.locator("tr[data-collector='wang']")
            expect(row).to_contain_text("王小明")
            expect(row.locator("td.num").nth(3)).to_have_text("63")
            expect(page.locator("body")).to_have_attribute("data-charts", "ready", timeout=15_000)
            canvas = page.locator("#chart-practice canvas")
            expect(canvas).to_have_count(1)
            expect(page.locator("figure details.chart-table tbody tr").first).to_contain_text("王小明")
            expect(row.locator("td[data-criterion='acknowledge']")).to_have_text("50%")
            page.screenshot(path=str(RESULTS_SCREENSHOT), full_page=True)
            row.locator("a.chip").first.click()
            expect(page).to_have_url(f"{staff_url}/practice/1")
            expect(page.locator("#practice-score")).to_have_text("63 分")
            context.close()
        finally:
            browser.close()
    assert requested and all(urlparse(url).netloc == origin for url in requested), requested
    assert failed == [], failed
