"""The owner page's transfer (登记过户) on SQLite and PostgreSQL: supervisors and managers only, CSRF, the date
required, audited; the former owner is shown as former with his history, and searched for only when asked."""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from bot import clock
from bot.db import models
from bot.db.models import Owner, OwnerRetirement
from bot.db.session import session_scope
from bot.owners import ownership
from bot.owners.arrears import as_utc
from tests.unit.test_staff_app import (  # noqa: F401  (fixtures)
    app,
    client,
    csrf_of,
    local_settings,
    log_in,
    staff_db,
)
from tests.unit.test_staff_screens import WEB, as_user, audit_of, estate  # noqa: F401  (fixtures)

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 28, 10, 0, tzinfo=SHANGHAI)
FORM = {"transfer_date": "2026-11-27", "new_name": "孙丽", "new_phone": "13955550001"}


def owner_row(url: str, owner_id: int) -> Owner:
    with session_scope(url) as session:
        row = session.get(Owner, owner_id)
        session.expunge(row)
        return row


def owners_of_unit(url: str, unit: str) -> list:
    with session_scope(url) as session:
        return session.execute(
            select(Owner.name, Owner.phone, Owner.owned_from, Owner.owned_until, Owner.retired_by)
            .join(models.Unit, models.Unit.id == Owner.unit_id)
            .where(models.Unit.code == unit)
            .order_by(Owner.id)
        ).all()


def former_count(url: str) -> int:
    with session_scope(url) as session:
        return session.execute(select(func.count()).select_from(Owner).where(~ownership.CURRENT)).scalar_one()


def test_a_manager_records_a_transfer_and_it_is_audited(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url, wang = estate["url"], estate["wang"]
    with clock.frozen(NOW):  # signed in at NOW: the session is fresh when the pages are opened
        manager = as_user("li")
        page = manager.get(f"/owners/{wang}")
        assert f'action="/owners/{wang}/transfer"' in page.text and 'name="transfer_date"' in page.text
        response = manager.post(
            f"/owners/{wang}/transfer", data={**FORM, "csrf_token": csrf_of(page.text)}, follow_redirects=False
        )
    assert response.status_code == 303
    former = owner_row(url, wang)
    assert (former.owned_until, OwnerRetirement(former.retired_reason), former.retired_by, as_utc(former.retired_at)) == (
        dt.date(2026, 11, 27), OwnerRetirement.TRANSFER, "li", NOW
    )  # fmt: skip
    assert owners_of_unit(url, "3-2-501") == [
        ("王建国", "13812346688", None, dt.date(2026, 11, 27), "li"),
        ("孙丽", "13955550001", dt.date(2026, 11, 27), None, None),
    ]
    with session_scope(url) as session:
        sun = session.execute(select(Owner.id).where(Owner.name == "孙丽")).scalar_one()
        link = session.execute(select(models.ConversationLink).where(models.ConversationLink.sender_id == "web-1")).scalar_one()
        assert (link.owner_id, link.closed_reason) == (wang, "owner_retired:transfer")
    assert response.headers["location"] == f"/owners/{sun}"
    [entry] = audit_of(url, "owner_transferred")
    assert (entry["actor"], entry["target"], entry["at"]) == ("li", f"owner:{wang}", NOW)
    assert entry["detail"] == {
        "unit": "3-2-501", "transfer_date": "2026-11-27", "new_owner_id": sun, "new_owner_phone": "139****0001",
        "links_closed": 1, "reminders_cancelled": 0, "calls_closed": 0,
    }  # fmt: skip

    # The former owner's page: marked former, his history, whom the unit passed to; no arrears, no forms.
    with clock.frozen(NOW):
        page = manager.get(f"/owners/{wang}").text
        panel = manager.get(f"/conversations/{WEB}").text
        listed = manager.get("/owners", params={"unit": "3-2-501"}).text
        both = manager.get("/owners", params={"unit": "3-2-501", "former": "true"}).text
        successor = manager.get(f"/owners/{sun}").text
    assert "前业主" in page and "至 2026-11-27" in page and f'<a href="/owners/{sun}">孙丽</a>' in page
    assert 'data-reason="transfer"' in page and "欠费合计" not in page and "/transfer" not in page
    assert "/payments" not in page and "暖气" in page  # his repair order stays on his page
    assert "前业主" in panel and "¥2,639.50" not in panel
    assert "孙丽" in listed and "王建国" not in listed
    assert "孙丽" in both and "王建国" in both and "前业主（至 2026-11-27）" in both
    assert "¥2,639.50" in successor and f'action="/owners/{sun}/transfer"' in successor


def test_a_collector_may_not_record_a_transfer(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url, wang = estate["url"], estate["wang"]
    with clock.frozen(NOW):
        collector = as_user("wang")
        page = collector.get(f"/owners/{wang}")
        assert "/transfer" not in page.text
        denied = collector.post(f"/owners/{wang}/transfer", data={**FORM, "csrf_token": csrf_of(page.text)})
    assert denied.status_code == 403
    assert former_count(url) == 0 and audit_of(url, "owner_transferred") == []


def test_without_csrf_nothing_is_transferred(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url, wang = estate["url"], estate["wang"]
    with clock.frozen(NOW):
        response = as_user("zhao").post(f"/owners/{wang}/transfer", data={**FORM, "csrf_token": "forged"})
    assert response.status_code == 403
    assert former_count(url) == 0 and audit_of(url, "owner_transferred") == []


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"transfer_date": ""}, 400, "bad_date"),
        ({"transfer_date": "2026-13-01"}, 400, "bad_date"),
        ({"transfer_date": "2026-11-29"}, 400, "future"),
        ({"new_phone": ""}, 400, "incomplete"),
        ({"new_phone": "555"}, 400, "bad_phone"),
        ({"new_name": "王建国", "new_phone": "13812346688"}, 400, "same_owner"),
    ],
)
def test_a_refused_transfer_is_a_polite_page_and_changes_nothing(
    estate: Dict[str, Any], as_user: Any, change: Dict[str, str], status: int, code: str  # noqa: F811
) -> None:
    url, wang = estate["url"], estate["wang"]
    with clock.frozen(NOW):
        supervisor = as_user("zhao")
        token = csrf_of(supervisor.get(f"/owners/{wang}").text)
        response = supervisor.post(f"/owners/{wang}/transfer", data={**FORM, **change, "csrf_token": token})
    assert response.status_code == status and f'data-code="{code}"' in response.text and "没有登记任何内容" in response.text
    assert former_count(url) == 0 and len(owners_of_unit(url, "3-2-501")) == 1
    assert audit_of(url, "owner_transferred") == []


def test_a_former_owner_cannot_be_transferred_again_and_an_unknown_one_is_404(estate: Dict[str, Any], as_user: Any) -> None:  # noqa: F811
    url, wang = estate["url"], estate["wang"]
    with clock.frozen(NOW):
        supervisor = as_user("zhao")
        token = csrf_of(supervisor.get(f"/owners/{wang}").text)
        first = supervisor.post(f"/owners/{wang}/transfer", data={"transfer_date": "2026-11-27", "csrf_token": token}, follow_redirects=False)
        again = supervisor.post(f"/owners/{wang}/transfer", data={"transfer_date": "2026-11-28", "csrf_token": token})
        unknown = supervisor.post("/owners/999999/transfer", data={"transfer_date": "2026-11-28", "csrf_token": token})
    assert first.status_code == 303 and first.headers["location"] == f"/owners/{wang}"  # no successor named
    assert again.status_code == 409 and 'data-code="not_current"' in again.text
    assert unknown.status_code == 404
    assert owner_row(url, wang).owned_until == dt.date(2026, 11, 27) and len(audit_of(url, "owner_transferred")) == 1
