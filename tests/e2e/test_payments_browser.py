"""登记缴费 in headless Chromium: a collector records a payment on the owner page of a real ``python -m apps.staff``
process (the browser's own datetime-local value and CSRF token), sees it listed with the arrears shrunk and the
promise kept, and a second entry with the same reference is refused. Keeps ``results/staff-payment.png``."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Iterator, Tuple
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from bot import clock
from bot.cli import ServerPlan, start_staff_app, stop
from tests.conftest import ROOT, free_port, wait_for
from tests.e2e.browser import add_staff_user, chromium, staff_login, watched_page

pytestmark = [pytest.mark.e2e]

SCREENSHOT = ROOT / "results" / "staff-payment.png"


@pytest.fixture
def console(tmp_path: Path) -> Iterator[Tuple[str, str, int]]:
    """The staff console on the demo estate (arrears stated a day ago), a promise of 王建国's, a collector."""
    from bot.db import migrate
    from bot.db.models import Owner, PaymentPromise
    from bot.db.session import session_scope
    from bot.owners import importer

    database_url = f"sqlite:///{tmp_path / 'bot.db'}"
    migrate.upgrade(database_url)
    with session_scope(database_url) as session:
        importer.import_arrears(session, ROOT / "data" / "demo" / "arrears.csv", as_of=clock.now() - dt.timedelta(days=1))
        owner = session.execute(select(Owner).where(Owner.name == "王建国")).scalar_one()
        session.add(
            PaymentPromise(
                number="CN-E2E-1", sender_id="web-1", owner_id=owner.id, amount=Decimal("800.00"),
                due_date=clock.today() + dt.timedelta(days=3), created_at=clock.now() - dt.timedelta(hours=2),
            )
        )  # fmt: skip
        session.flush()
        owner_id = int(owner.id)
    add_staff_user(database_url, "wang", role="collector", name="王小明")
    plan = ServerPlan(
        model=tmp_path / "no-model", database_url=database_url, workdir=tmp_path, token="unused",
        staff_port=free_port(), log_dir=tmp_path,
    )  # fmt: skip
    process = start_staff_app(plan)
    try:
        wait_for(f"{plan.staff_url}/health", process, timeout=60)
        yield plan.staff_url, database_url, owner_id
    finally:
        stop([process])


def test_a_collector_records_a_payment_in_the_browser(console: Tuple[str, str, int]) -> None:
    from bot.db.payment_models import Payment
    from bot.db.session import session_scope
    from bot.owners.arrears import as_utc

    staff_url, database_url, owner_id = console
    paid_at = (clock.now() - dt.timedelta(hours=1)).replace(second=0, microsecond=0)
    with chromium() as browser:
        watched = watched_page(browser)
        page = watched.page
        staff_login(page, staff_url, f"/owners/{owner_id}", "wang")
        expect(page.locator(".outstanding")).to_contain_text("¥2,460.00")
        expect(page.locator("#payments + p.empty")).to_have_text("没有缴费记录。")

        form = page.locator("form.record-payment")
        form.locator("input[name=amount]").fill("1,000.50")
        form.locator("input[name=paid_at]").fill(paid_at.strftime("%Y-%m-%dT%H:%M"))
        form.locator("input[name=reference]").fill("SJ-E2E-001")
        form.locator("input[name=channel]").fill("现金")
        form.locator("input[name=period]").fill("2026-03至2026-06")
        form.locator("button[type=submit]").click()

        expect(page).to_have_url(f"{staff_url}/owners/{owner_id}#payments")
        row = page.locator('table.payments tr[data-reference="SJ-E2E-001"]')
        expect(row).to_contain_text("1,000.50")
        expect(row).to_contain_text(paid_at.strftime("%Y-%m-%d %H:%M"))
        expect(row).to_contain_text("人工登记")
        expect(page.locator(".outstanding")).to_contain_text("¥1,459.50")
        expect(page.locator("table.promises")).to_contain_text("已兑现")
        SCREENSHOT.parent.mkdir(exist_ok=True)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        form = page.locator("form.record-payment")
        form.locator("input[name=amount]").fill("5")
        form.locator("input[name=paid_at]").fill(paid_at.strftime("%Y-%m-%dT%H:%M"))
        form.locator("input[name=reference]").fill("SJ-E2E-001")
        form.locator("button[type=submit]").click()
        expect(page.locator("h1")).to_have_text("缴费未登记")
        expect(page.locator(".alert")).to_contain_text("这个流水号已经登记过了")
    with session_scope(database_url) as session:
        stored = [
            (p.amount, as_utc(p.paid_at), p.reference, p.channel, p.period, p.recorded_by)
            for p in session.execute(select(Payment)).scalars()
        ]
    assert stored == [
        (Decimal("1000.50"), paid_at.astimezone(dt.timezone.utc), "SJ-E2E-001", "现金", "2026-03至2026-06", "wang")
    ]
    origin = urlparse(staff_url).netloc
    assert all(urlparse(url).netloc == origin for url in watched.requested)
    # The one error Chromium reports is the refused entry's status (409), which it logs for any 4xx page.
    assert watched.errors == ["Failed to load resource: the server responded with a status of 409 (Conflict)"]
