"""The playbook editor (话术库) in headless Chromium: a real ``python -m apps.staff`` process, a supervisor
signing in, a save refused for a forbidden phrase (reason shown, text kept), a save that becomes version 1 and
is what another process's ``current_playbook`` reads at once, and a revert to the YAML's wording.

Keeps a screenshot of the entry page after the save in ``results/playbook.png``.
"""

from __future__ import annotations

from typing import Tuple

import pytest
from playwright.sync_api import expect

from bot.db.session import session_scope
from bot.playbook import default_playbook
from bot.services import playbook_edits
from tests.conftest import ROOT
from tests.e2e.browser import chromium, staff_login, watched_page
from tests.e2e.test_staff_browser import staff_url_and_db  # noqa: F401  (fixture)

pytestmark = [pytest.mark.e2e]

SCREENSHOT = ROOT / "results" / "playbook.png"
HEATING = "objection_heating"
FORBIDDEN = "这个月再不交，下个月就给您停暖。"
BETTER = "暖气我们今天就派师傅上门，您看物业费这个月哪天方便交上？"


def follow_up_read_elsewhere(database_url: str) -> str:
    """What the bot would use now: this test process is not the staff app, and it was not restarted."""
    with session_scope(database_url) as session:
        entry = playbook_edits.current_playbook(session).get(HEATING)
    assert entry is not None
    return entry.follow_up


def test_a_supervisor_edits_a_playbook_entry_in_the_browser(
    staff_url_and_db: Tuple[str, str],  # noqa: F811
) -> None:
    staff_url, database_url = staff_url_and_db
    original = default_playbook().get(HEATING)
    assert original is not None
    assert follow_up_read_elsewhere(database_url) == original.follow_up
    with chromium() as browser:
        watched = watched_page(browser)
        page = watched.page
        staff_login(page, staff_url, "/playbook", "zhao")
        expect(page.locator("h1")).to_have_text("话术库")
        row = page.locator(f'tr[data-intent="{HEATING}"]')
        expect(row.locator(".version")).to_have_text("原始版本")
        row.get_by_role("link", name=original.title).click()
        expect(page).to_have_url(f"{staff_url}/playbook/{HEATING}")
        follow_up = page.locator("#field-follow_up")
        expect(follow_up).to_have_value(original.follow_up)

        follow_up.fill(FORBIDDEN)
        page.get_by_role("button", name="保存为新版本").click()
        refused = page.locator(".alert.refused")
        expect(refused).to_contain_text("「追问交费日期」里有停水停电停暖的说法“停暖”")  # the guard's category and phrase
        expect(refused.locator(".refused-reason")).to_contain_text("不得采取停止供电、供水、供热")  # and its reason
        expect(page.locator("#field-follow_up")).to_have_value(FORBIDDEN)
        expect(page.locator("#field-follow_up")).to_have_attribute("aria-invalid", "true")
        assert follow_up_read_elsewhere(database_url) == original.follow_up

        page.locator("#field-follow_up").fill(BETTER)
        page.fill("#field-note", "先说派师傅")
        page.get_by_role("button", name="保存为新版本").click()
        expect(page).to_have_url(f"{staff_url}/playbook/{HEATING}?saved=1")
        expect(page.locator(".notice.saved")).to_contain_text("已保存为第 1 版")
        version = page.locator('.playbook-version[data-version="1"]')
        expect(version).to_contain_text("赵主管")
        expect(version).to_contain_text("说明：先说派师傅")
        expect(version.locator(".diff ins")).to_have_text(BETTER)
        expect(version.locator(".diff del")).to_have_text(original.follow_up)
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)
        assert follow_up_read_elsewhere(database_url) == BETTER

        page.get_by_role("button", name="恢复到原始版本").click()
        expect(page.locator(".notice.saved")).to_contain_text("已保存为第 2 版")
        expect(page.locator("#field-follow_up")).to_have_value(original.follow_up)
        expect(page.locator('.playbook-version[data-version="2"]')).to_contain_text("恢复自原始版本")
        assert follow_up_read_elsewhere(database_url) == original.follow_up

        page.goto(f"{staff_url}/playbook")
        expect(page.locator(f'tr[data-intent="{HEATING}"] .version')).to_have_text("第 2 版")
        expect(page.locator(f'tr[data-intent="{HEATING}"] .editor')).to_have_text("赵主管")
        # The refused save is answered 400 on purpose (Chromium logs that); nothing else went wrong.
        assert watched.errors == ["Failed to load resource: the server responded with a status of 400 (Bad Request)"]
        assert all(url.startswith(staff_url) or url.startswith("data:") for url in watched.requested)
