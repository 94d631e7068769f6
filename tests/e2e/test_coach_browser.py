"""The coach page in headless Chromium: a real ``python -m apps.staff`` process (started by ``bot run``'s
launcher, reading notes with the trained model), a collector made with ``bot user add``, the demo estate
loaded with ``bot import-arrears``; the collector logs in, opens 话术助手, types what an owner said and sees
the cards, then looks the owner up by unit.

Keeps a screenshot of the answer in ``results/coach.png``.
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
from bot.playbook import default_playbook
from tests.conftest import ROOT, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.model]

SCREENSHOT = ROOT / "results" / "coach.png"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
PASSWORD = "Cuishou-2026!"
DEMO = ROOT / "data" / "demo" / "arrears.csv"


def cli(*args: str, stdin: str = "") -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bot.cli", *args], cwd=ROOT, input=stdin, capture_output=True, text=True, timeout=180
    )
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.fixture
def staff_url(tmp_path: Path, trained_model: Path) -> Iterator[str]:
    """The staff console on a free port, its coach on the trained model, with a collector 王小明 (wang)."""
    database_url = f"sqlite:///{tmp_path / 'bot.db'}"
    cli("user", "add", "wang", "--role", "collector", "--name", "王小明", "--url", database_url, stdin=PASSWORD + "\n")
    cli("import-arrears", str(DEMO), "--url", database_url)
    plan = ServerPlan(
        model=trained_model, database_url=database_url, workdir=tmp_path, token="unused",
        staff_port=free_port(), log_dir=tmp_path, env={"COACH_MODEL_PATH": str(trained_model)},
    )  # fmt: skip
    process = start_staff_app(plan)
    try:
        wait_for(f"{plan.staff_url}/health", process, timeout=60)
        yield plan.staff_url
    finally:
        stop([process])


def test_a_collector_types_what_the_owner_said_and_sees_the_cards(staff_url: str) -> None:
    origin = urlparse(staff_url).netloc
    requested: List[str] = []
    errors: List[str] = []
    fee, empty_flat = default_playbook().get("objection_fee_too_high"), default_playbook().get("objection_not_living_here")
    assert fee is not None and empty_flat is not None
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(locale="zh-CN", viewport={"width": 1200, "height": 900})
        page = context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        try:
            page.goto(f"{staff_url}/login")
            page.fill("#username", "wang")
            page.fill("#password", PASSWORD)
            page.click("button.primary")
            expect(page).to_have_url(f"{staff_url}/")
            page.click(".nav a:has-text('话术助手')")
            expect(page).to_have_url(f"{staff_url}/coach")
            expect(page.locator("h1")).to_have_text("话术助手")
            expect(page.locator(".nav a.current")).to_have_text("话术助手")

            page.fill("#coach-text", "他说物业费太贵了。又说房子一直空着没人住。")
            page.fill("#coach-unit", "3-2-501")
            # The model may still be loading in the background (python -m apps.staff starts it) on a busy
            # machine: the answer may take a while the first time.
            with page.expect_navigation(timeout=180_000):
                page.click("form.coach-form button", no_wait_after=True)
            cards = page.locator("article.coach-card")
            expect(cards).to_have_count(2)
            titles = page.locator(".coach-card .coach-title")
            assert sorted(titles.all_inner_texts()) == sorted([fee.title, empty_flat.title])
            first = cards.first
            intent = first.get_attribute("data-intent")
            entry = fee if intent == fee.intent else empty_flat
            expect(first.locator(".coach-script li")).to_have_text(list(entry.coach.script))
            expect(first.locator(".coach-basis li").first).to_contain_text("《")
            expect(first.locator(".coach-donts li")).to_have_count(len(entry.coach.donts))
            expect(first.locator(".coach-next .tag")).not_to_be_empty()
            expect(page.locator("#coach-text")).to_have_value("他说物业费太贵了。又说房子一直空着没人住。")

            owner = page.locator("article.coach-owner")
            expect(owner).to_have_count(1)
            expect(owner.locator("h3")).to_contain_text("3-2-501 王建国")
            expect(owner.locator(".phone")).to_have_text("138****6688")  # a collector sees the phone masked
            expect(owner.locator(".coach-arrears")).to_have_text("2460.00 元")

            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            # On a phone the answer comes first, above the form, on the first screen.
            page.set_viewport_size({"width": 390, "height": 844})
            answer_top = page.locator(".coach-answer").evaluate("node => node.getBoundingClientRect().top")
            form_top = page.locator("form.coach-form").evaluate("node => node.getBoundingClientRect().top")
            assert answer_top < form_top and answer_top < 844, (answer_top, form_top)
        finally:
            context.close()
            browser.close()
    assert requested and all(urlparse(url).netloc == origin for url in requested), requested
    assert errors == []
