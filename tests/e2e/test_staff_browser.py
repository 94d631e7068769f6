"""The staff console in headless Chromium: a real ``python -m apps.staff`` process started by ``bot run``'s
launcher, an account made with ``bot user add``, then login, the home page and logout as a person would.

Keeps screenshots of the home page, the queue after a claim and a conversation followed live in
``results/staff-home.png``, ``results/staff-queue.png`` and ``results/staff-conversation.png``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterator, List, Tuple
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect, sync_playwright

from bot.cli import ServerPlan, start_staff_app, stop
from bot.conversations.handles import handle_of
from tests.conftest import ROOT, free_port, wait_for
from tests.e2e.browser import CHROMIUM, PASSWORD, add_staff_user, staff_login  # noqa: F401  (CHROMIUM, PASSWORD: re-exported)

pytestmark = [pytest.mark.e2e]

SCREENSHOT = ROOT / "results" / "staff-home.png"


@pytest.fixture
def staff_url(staff_url_and_db: Tuple[str, str]) -> str:
    """The staff console's address."""
    return staff_url_and_db[0]


@pytest.fixture
def staff_url_and_db(tmp_path: Path) -> Iterator[Tuple[str, str]]:
    """The staff console on a free port and its database, with a supervisor 赵主管 (zhao) added through the
    command line."""
    database_url = f"sqlite:///{tmp_path / 'bot.db'}"
    add_staff_user(database_url, "zhao", role="supervisor", name="赵主管")
    # The staff console needs no model and no action server token; bot run's launcher needs a plan.
    plan = ServerPlan(
        model=tmp_path / "no-model", database_url=database_url, workdir=tmp_path, token="unused",
        staff_port=free_port(), log_dir=tmp_path,
    )  # fmt: skip
    process = start_staff_app(plan)
    try:
        wait_for(f"{plan.staff_url}/health", process, timeout=60)
        yield plan.staff_url, database_url
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
            # The nav is pages.SECTIONS as a supervisor may see them (other features add sections to that list).
            from apps.staff.pages import SECTIONS
            from bot.db.staff_models import StaffRole

            visible = [name for name, roles in SECTIONS if StaffRole.SUPERVISOR in roles]
            expect(page.locator(".nav a")).to_have_count(len(visible))
            hrefs = [page.locator(".nav a").nth(index).get_attribute("href") for index in range(len(visible))]
            assert hrefs == ["/" if name == "home" else f"/{name}" for name in visible]
            names = page.locator(".nav a").all_inner_texts()
            assert names[:5] == ["首页", "待办队列", "会话记录", "业主档案", "工单记录"]
            assert {"每日复盘", "识别待审"} <= set(names)
            expect(page.locator(".nav a.current")).to_have_text("首页")
            # The local style sheet applied (the bar's colour comes from staff.css only).
            assert page.eval_on_selector(".topbar", "e => getComputedStyle(e).backgroundColor") == "rgb(31, 95, 139)"
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)

            page.click(".nav a:has-text('待办队列')")
            expect(page.locator("h1")).to_have_text("待办队列")
            expect(page.locator(".empty")).to_have_text("没有符合条件的待办事项。")

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


# --- the queue and a conversation -------------------------------------------------------------------------

QUEUE_SCREENSHOT = ROOT / "results" / "staff-queue.png"
CONVERSATION_SCREENSHOT = ROOT / "results" / "staff-conversation.png"


def _seed(database_url: str) -> Any:
    """The demo estate, 王建国's web chat conversation written by Rasa's SQLTrackerStore, and its escalation.

    Returns the tracker store and domain, to add messages while the page is open.
    """
    from rasa.core.tracker_store import TrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.utils.endpoints import EndpointConfig

    from bot.db.models import Owner
    from bot.db.session import session_scope
    from bot.owners import identity, importer
    from bot.rasa.endpoints import tracker_store_config
    from bot.services import escalations
    from tests.unit.test_transcripts import conversation, save

    with session_scope(database_url) as session:
        importer.import_arrears(session, ROOT / "data" / "demo" / "arrears.csv")
        owner = session.query(Owner).filter(Owner.name == "王建国").one()
        identity.link_conversation(session, channel="socketio", sender_id="web-1", owner_id=owner.id)
        escalations.escalate(
            session, reason=escalations.Reason.REQUEST_HUMAN, detail=None, owner_id=owner.id, channel="socketio",
            sender_id="web-1", message_id="m-escalate",
        )  # fmt: skip
    domain = Domain.load(str(ROOT / "domain.yml"))
    store = TrackerStore.create(EndpointConfig.from_dict(tracker_store_config(database_url)), domain)
    save(store, domain, "web-1", conversation())
    return store, domain


def test_claim_from_the_queue_and_follow_the_conversation_live(staff_url_and_db: Tuple[str, str]) -> None:
    from rasa.shared.core.events import UserUttered

    from tests.unit.test_transcripts import save

    staff_url, database_url = staff_url_and_db
    store, domain = _seed(database_url)
    origin = urlparse(staff_url).netloc
    requested: List[str] = []
    failed: List[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        context = browser.new_context(locale="zh-CN", viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.on("request", lambda request: requested.append(request.url))
        # A live poll in flight when the reply's form navigates is aborted by the browser (net::ERR_ABORTED),
        # not failed by the server; every other failed request counts.
        page.on(
            "requestfailed",
            lambda request: None if request.failure == "net::ERR_ABORTED" else failed.append(request.url),
        )
        page.on("console", lambda message: failed.append(message.text) if message.type == "error" else None)
        try:
            page.goto(f"{staff_url}/queue")
            page.fill("#username", "zhao")
            page.fill("#password", PASSWORD)
            page.click("button.primary")
            expect(page).to_have_url(f"{staff_url}/queue")
            row = page.locator("table.queue tbody tr")
            expect(row).to_have_count(1)
            expect(row.locator(".reason")).to_contain_text("要求人工")
            expect(row.locator(".unit")).to_have_text("3-2-501")
            expect(row.locator(".channel")).to_have_text("网页聊天")
            expect(row.locator(".state")).to_have_text("待机器人处理")

            row.locator("button.claim").click()  # 认领: 赵主管 is responsible; the bot keeps the chat
            expect(page).to_have_url(f"{staff_url}/queue")
            expect(row.locator(".state")).to_have_text("待机器人处理")
            expect(row.locator(".assignee")).to_have_text("赵主管")
            expect(row.locator("button.claim")).to_have_count(0)
            QUEUE_SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(QUEUE_SCREENSHOT), full_page=True)

            row.locator("td a").first.click()
            expect(page).to_have_url(f"{staff_url}/conversations/{handle_of('web-1')}")
            expect(page.locator("h1")).to_contain_text(handle_of("web-1"))  # the handle, never the sender id
            expect(page.locator("h1 .owner-name")).to_have_text("王建国")  # the title names the owner and unit
            expect(page).to_have_title("王建国 · 3-2-501 · 物业费催缴")
            assert "web-1" not in page.content()
            page.click("button.take-over")  # 接管: the separate step that silences the bot
            expect(page).to_have_url(f"{staff_url}/conversations/{handle_of('web-1')}")
            expect(page.locator(".holder")).to_have_text("赵主管")
            transcript = page.locator("#transcript")
            expect(transcript.locator(".from-owner .text").first).to_have_text("3栋2单元501，尾号6688")
            expect(transcript.locator(".from-owner .intent").first).to_have_text("provide_identity")
            expect(transcript.locator(".from-staff .speaker")).to_have_text("zhang（员工）")
            expect(page.locator(".owner-panel .unit")).to_have_text("3-2-501")
            expect(page.locator(".owner-panel .phone")).to_have_text("13812346688")  # a supervisor sees it whole

            # The owner writes again: the page shows it within a few seconds, without a reload.
            # (in another thread: Playwright's sync API keeps an event loop running in this one)
            writer = threading.Thread(target=save, args=(store, domain, "web-1", [
                UserUttered("我下周五交", intent={"name": "promise_to_pay", "confidence": 0.88}, input_channel="socketio"),
            ]))  # fmt: skip
            writer.start()
            writer.join(timeout=30)
            expect(transcript.locator(".from-owner .text").last).to_have_text("我下周五交", timeout=10_000)
            expect(transcript.locator(".from-owner .intent").last).to_have_text("promise_to_pay")
            expect(page.locator("#live-status")).to_have_text("实时更新中")
            # Holding it (claimed), the supervisor answers: the reply is queued for the owner's channel.
            expect(page.locator(".delivery.ok")).to_contain_text("回复将通过网页聊天发送")
            page.fill("#reply-text", "王先生您好，暖气的事我来跟进。")
            page.click("button.send")
            expect(page).to_have_url(f"{staff_url}/conversations/{handle_of('web-1')}")
            expect(page.locator(".sent li").last).to_contain_text("王先生您好，暖气的事我来跟进。")
            expect(page.locator(".sent li").last).to_contain_text("等待送达")
            expect(page.locator("button.hand-back")).to_have_text("交还机器人")
            page.screenshot(path=str(CONVERSATION_SCREENSHOT), full_page=True)
        finally:
            context.close()
            browser.close()
            store.engine.dispose()
    assert requested and all(urlparse(url).netloc == origin for url in requested), requested
    assert failed == []


def test_nothing_destructive_is_preselected_and_a_cancellation_asks_first(staff_url_and_db: Tuple[str, str]) -> None:
    """A repair's status select chooses nothing; 已取消 asks, and declining keeps the repair; 解决 needs an outcome."""
    from bot.db import models
    from bot.db.session import session_scope
    from bot.services import owner_requests

    staff_url, database_url = staff_url_and_db
    _seed(database_url)
    with session_scope(database_url) as session:
        owner = session.query(models.Owner).filter(models.Owner.name == "王建国").one()
        repair = owner_requests.create(
            session, models.RepairOrder, message_id="r-1", sender_id="web-1", owner_id=owner.id, item="暖气",
            location="客厅", description="暖气不热", preferred_time="周六上午",
        )  # fmt: skip
        repair_id = int(repair.id)

    def status() -> str:
        with session_scope(database_url) as session:
            return str(models.RecordStatus(session.get(models.RepairOrder, repair_id).status).value)

    asked: List[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_context(locale="zh-CN").new_page()
        try:
            staff_login(page, staff_url, f"/records/repairs/{repair_id}", "zhao")
            select = page.locator("form.status-change select[name=status]")
            expect(select).to_have_value("")  # nothing chosen: one click on 更改状态 changes nothing
            page.click("form.status-change button")
            assert status() == "open" and page.url.endswith(f"/records/repairs/{repair_id}")

            select.select_option("cancelled")
            page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.dismiss()))
            page.click("form.status-change button")
            page.wait_for_timeout(500)
            assert asked == ["确定取消这条记录吗？取消后不能再更改状态或负责人。"] and status() == "open"

            page.once("dialog", lambda dialog: (asked.append(dialog.message), dialog.accept()))
            page.click("form.status-change button")
            expect(page.locator(".status-change")).to_have_count(0)  # cancelled: no more changes offered
            assert len(asked) == 2 and status() == "cancelled"

            page.goto(f"{staff_url}/queue")
            row = page.locator("table.queue tbody tr").first
            expect(row.locator("select[name=assignee]")).to_have_value("")  # 分派 names nobody by itself
            row.locator("button.resolve").click()  # without 处理结果 the browser does not send it
            expect(page).to_have_url(f"{staff_url}/queue")
            expect(row.locator(".state")).to_have_text("待机器人处理")
            row.locator("input[name=outcome]").fill("电话联系过，业主周六在家等师傅")
            row.locator("button.resolve").click()
            expect(page.locator("table.queue tbody tr")).to_have_count(0)  # resolved: off the active queue
        finally:
            browser.close()
    with session_scope(database_url) as session:
        [escalation] = session.query(models.Escalation).all()
        assert (escalation.state, escalation.outcome) == (models.EscalationState.RESOLVED, "电话联系过，业主周六在家等师傅")


def test_staff_find_an_owner_and_a_conversation_by_name_unit_form_and_phone_tail(staff_url_and_db: Tuple[str, str]) -> None:
    staff_url, database_url = staff_url_and_db
    _seed(database_url)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_context(locale="zh-CN").new_page()
        try:
            staff_login(page, staff_url, "/owners", "zhao")
            for said in ("王建国", "3号楼2单元501", "6688"):
                page.fill("input[name=q]", said)
                page.press("input[name=q]", "Enter")
                rows = page.locator("table.owners tbody tr")
                expect(rows).to_have_count(1)
                expect(rows.first).to_contain_text("王建国")
            page.goto(f"{staff_url}/conversations")
            for said in ("王建国", "3栋2单元501", "暖气不热"):
                page.fill("input[name=q]", said)
                page.press("input[name=q]", "Enter")
                rows = page.locator("table.grid tbody tr")
                expect(rows).to_have_count(1)
                expect(rows.first.locator(".owner")).to_have_text("王建国")
            rows.first.locator("code").click()
            expect(page.locator("h1 .owner-name")).to_have_text("王建国")
        finally:
            browser.close()
