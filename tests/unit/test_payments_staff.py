"""Staff and payments on SQLite and PostgreSQL: recording a payment on the owner page (any signed-in role, CSRF,
the reference required and unique, audited), the payments list and the shrunk arrears on the owner page, partial
promises on the records screen, and the collection rate in the daily review."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any, Dict, List, Tuple

import pytest
from sqlalchemy import select, update

from bot import clock
from bot.db import models
from bot.db.models import PromiseStatus
from bot.db.payment_models import Payment, PaymentSource
from bot.db.session import session_scope
from bot.owners import arrears, payments
from bot.services import review
from tests.unit.test_staff_app import (  # noqa: F401  (fixtures)
    app,
    client,
    csrf_of,
    local_settings,
    log_in,
    staff_db,
)
from tests.unit.test_staff_screens import T0, as_user, at, audit_of, estate  # noqa: F401  (fixtures)

STATED = T0 - dt.timedelta(days=1)  # when the arrears list stated the arrears (bills.as_of)


@pytest.fixture
def owners(estate: Dict[str, Any]) -> Dict[str, Any]:  # noqa: F811
    """The screens' estate with its arrears stated the day before T0 (the fixture imported them at the real now)."""
    with session_scope(estate["url"]) as session:
        session.execute(update(models.Bill).where(models.Bill.as_of.is_not(None)).values(as_of=STATED))
    return estate


def stored_payments(url: str) -> List[Tuple[Any, ...]]:
    with session_scope(url) as session:
        rows = session.execute(select(Payment).order_by(Payment.id)).scalars()
        return [
            (
                row.unit_id,
                row.amount,
                arrears.as_utc(row.paid_at),
                row.period,
                row.channel,
                row.reference,
                PaymentSource(row.source),
                row.recorded_by,
                row.import_id,
            )
            for row in rows
        ]


def promise_row(url: str, number: str) -> models.PaymentPromise:
    with session_scope(url) as session:
        row = session.execute(select(models.PaymentPromise).where(models.PaymentPromise.number == number)).scalar_one()
        session.expunge(row)
        return row


def unit_of(url: str, owner_id: int) -> int:
    with session_scope(url) as session:
        return int(session.get(models.Owner, owner_id).unit_id)


FORM = {
    "amount": "1000",
    "paid_at": "2026-11-24T10:30",
    "reference": "SJ-001",
    "channel": "现金",
    "period": "2026-03至2026-10",
}


def test_a_collector_records_a_payment_with_its_reference_and_it_is_audited(owners, as_user) -> None:  # noqa: F811
    url, wang = owners["url"], owners["wang"]
    browser = as_user("wang")  # a collector
    with clock.frozen(at(120)):
        page = browser.get(f"/owners/{wang}")
        assert page.status_code == 200
        assert f'action="/owners/{wang}/payments"' in page.text and "没有缴费记录" in page.text
        assert "¥2,639.50" in page.text  # 2460.00 + the second bill's 179.50
        response = browser.post(
            f"/owners/{wang}/payments", data={**FORM, "csrf_token": csrf_of(page.text)}, follow_redirects=False
        )

    assert response.status_code == 303 and response.headers["location"] == f"/owners/{wang}#payments"
    assert stored_payments(url) == [
        (
            unit_of(url, wang),
            Decimal("1000.00"),
            dt.datetime(2026, 11, 24, 2, 30, tzinfo=dt.timezone.utc),
            "2026-03至2026-10",
            "现金",
            "SJ-001",
            PaymentSource.STAFF,
            "wang",
            None,
        )
    ]
    [entry] = audit_of(url, "payment_recorded")
    assert (entry["actor"], entry["target"], entry["at"]) == ("wang", f"owner:{wang}", at(120))
    detail = dict(entry["detail"])
    assert detail.pop("payment_id") > 0
    assert detail == {
        "unit": "3-2-501",
        "amount": "1000.00",
        "paid_at": "2026-11-24T10:30:00+08:00",
        "reference": "SJ-001",
        "channel": "现金",
        "period": "2026-03至2026-10",
    }
    # The promise of 800.00 made at T0 (due 11-30) is kept by it at once.
    promise = promise_row(url, owners["promise"])
    # Its share of the 1000.00: the amount promised (one payment is not counted twice across promises).
    assert (PromiseStatus(promise.status), promise.paid_amount) == (PromiseStatus.KEPT, Decimal("800.00"))
    with clock.frozen(at(121)):
        page = browser.get(f"/owners/{wang}")
    assert 'data-reference="SJ-001"' in page.text and "人工登记" in page.text and "2026-11-24 10:30" in page.text
    assert "¥1,639.50" in page.text  # the arrears shrink by the payment
    assert "已兑现" in page.text


@pytest.mark.parametrize(
    ("change", "status", "code"),
    [
        ({"amount": "abc"}, 400, "bad_amount"),
        ({"amount": "-1"}, 400, "not_positive"),
        ({"paid_at": ""}, 400, "bad_time"),
        ({"paid_at": "2026-11-25T10:00"}, 400, "future"),
        ({"reference": "  "}, 400, "no_reference"),
        ({"reference": "DUP-1"}, 409, "duplicate_reference"),
    ],
)
def test_refused_payments_change_nothing_and_say_why(owners, as_user, change, status, code) -> None:  # noqa: F811
    url, wang = owners["url"], owners["wang"]
    with clock.frozen(at(100)), session_scope(url) as session:
        payments.record_payment(
            session, unit="3-2-502", amount="5", paid_at=at(90), reference="DUP-1", actor="zhao"
        )
    before = stored_payments(url)
    browser = as_user("zhao")
    with clock.frozen(at(120)):
        token = csrf_of(browser.get(f"/owners/{wang}").text)
        response = browser.post(f"/owners/{wang}/payments", data={**FORM, **change, "csrf_token": token})
    assert response.status_code == status
    assert f'data-code="{code}"' in response.text and "没有登记任何内容" in response.text
    assert stored_payments(url) == before
    assert audit_of(url, "payment_recorded") == []
    assert PromiseStatus(promise_row(url, owners["promise"]).status) is PromiseStatus.OPEN


def test_without_csrf_or_signed_out_nothing_is_recorded(owners, as_user, app) -> None:  # noqa: F811
    from fastapi.testclient import TestClient

    url, wang = owners["url"], owners["wang"]
    browser = as_user("li")
    with clock.frozen(at(120)):
        assert browser.post(f"/owners/{wang}/payments", data=FORM).status_code == 403
        assert browser.post(f"/owners/{wang}/payments", data={**FORM, "csrf_token": "forged"}).status_code == 403
        token = csrf_of(browser.get(f"/owners/{wang}").text)
        assert browser.post("/owners/999999/payments", data={**FORM, "csrf_token": token}).status_code == 404
        with TestClient(app) as anonymous:
            response = anonymous.post(f"/owners/{wang}/payments", data=FORM, follow_redirects=False)
            assert response.status_code in (303, 401, 403)
    assert stored_payments(url) == []
    assert audit_of(url, "payment_recorded") == []


def test_partial_promises_are_listed_with_the_paid_amount(owners, as_user) -> None:  # noqa: F811
    url, wang = owners["url"], owners["wang"]
    unit = unit_of(url, wang)
    with clock.frozen(at(100)), session_scope(url) as session:
        payments.record_payment(session, unit=unit, amount="300", paid_at=at(90), reference="P-300", actor="zhao")
    promise = promise_row(url, owners["promise"])
    assert (PromiseStatus(promise.status), promise.paid_amount) == (PromiseStatus.OPEN, Decimal("300.00"))
    browser = as_user("zhao")
    with clock.frozen(at(120)):
        partial = browser.get("/records", params={"tab": "promises", "status": "partial"})
        kept = browser.get("/records", params={"tab": "promises", "status": "kept"})
        api = browser.get("/api/promises", params={"owner_id": wang})
    assert partial.status_code == 200 and owners["promise"] in partial.text
    assert "300.00" in partial.text and "部分已付" in partial.text and "部分兑现" in partial.text
    assert owners["promise"] not in kept.text
    assert [(p["number"], p["paid_amount"], p["status"]) for p in api.json()] == [(owners["promise"], 300.0, "open")]


def test_the_review_shows_the_collection_rate(owners, as_user) -> None:  # noqa: F811
    url, wang, zhang = owners["url"], unit_of(owners["url"], owners["wang"]), unit_of(owners["url"], owners["zhang"])
    with clock.frozen(at(100)), session_scope(url) as session:
        payments.record_payment(session, unit=wang, amount="800", paid_at=at(90), reference="K-1", actor="zhao")
        payments.record_payment(session, unit=zhang, amount="600", paid_at=at(95), reference="Z-1", actor="zhao")
    # 张伟's promise of 3600.00 is due 12-05: broken (with 600.00 paid) once 12-07 has passed.
    with clock.frozen(dt.datetime(2026, 12, 8, 6, tzinfo=T0.tzinfo)), session_scope(url) as session:
        payments.evaluate_promises(session, today=dt.date(2026, 12, 8))
        figures = review.collection(session, days=14, end=dt.date(2026, 12, 7))  # 11-24 .. 12-07
    assert figures == review.Collection(
        decided=2,
        promised=Decimal("4400.00"),
        kept=Decimal("800.00"),
        paid=Decimal("1400.00"),
        partial=1,
        rate=pytest.approx(800 / 4400),
    )
    with clock.frozen(dt.datetime(2026, 12, 7, 9, tzinfo=T0.tzinfo)):  # the page's 14 days: 11-24 .. 12-07
        supervisor = as_user("zhao")
        page = supervisor.get("/review")
        api = supervisor.get("/api/review", params={"days": 14}).json()
        later = supervisor.get("/api/review", params={"days": 14, "end": "2026-12-08"}).json()
    # 11-25 .. 12-08: 张伟's broken promise is decided in it (its window ended 12-07), 王建国's kept one (11-24)
    # is not. Counting promises *made* in the range said None here and left broken promises out altogether.
    assert api["collection_rate"] == pytest.approx(800 / 4400) and later["collection_rate"] == pytest.approx(0.0)
    assert page.status_code == 200
    assert 'id="collection-rate"' in page.text and "18.2%" in page.text
    assert "已兑现 ¥800.00 / 承诺 ¥4,400.00" in page.text and "部分兑现 1 笔" in page.text
    with clock.frozen(dt.datetime(2026, 12, 8, 9, tzinfo=T0.tzinfo)), session_scope(url) as session:
        late = review.collection(session, days=14)  # 11-25 .. 12-08: 张伟's window ended 12-07, not kept
        assert (late.decided, late.promised, late.kept, late.paid, late.partial) == (
            1, Decimal("3600.00"), Decimal("0.00"), Decimal("600.00"), 1
        )  # fmt: skip
        assert late.rate == pytest.approx(0.0)
        assert review.collection(session, days=7, end=dt.date(2026, 11, 30)).rate == pytest.approx(1.0)  # kept 11-24


def test_the_collection_rate_waits_for_the_window_and_counts_kept_shares(owners) -> None:  # noqa: F811
    url, wang = owners["url"], unit_of(owners["url"], owners["wang"])
    # One payment of 800.00 and a second promise of 800.00 on the same unit, due later: the payment keeps one.
    with clock.frozen(at(5)), session_scope(url) as session:
        owner = session.get(models.Owner, owners["wang"])
        session.add(
            models.PaymentPromise(
                number="CN-X", sender_id="web-1", source_message_id="m-x", created_at=at(5), owner_id=owner.id,
                amount=Decimal("800.00"), due_date=dt.date(2026, 12, 1),
            )
        )  # fmt: skip
    with clock.frozen(at(100)), session_scope(url) as session:
        payments.record_payment(session, unit=wang, amount="800", paid_at=at(90), reference="K-1", actor="zhao")
    # 12-03 (window of CN-X ends 12-03 with the default two days' grace): still open, not yet decided.
    with clock.frozen(dt.datetime(2026, 12, 3, 9, tzinfo=T0.tzinfo)), session_scope(url) as session:
        figures = review.collection(session, days=14)  # 11-20 .. 12-03
        assert (figures.decided, figures.promised, figures.kept) == (1, Decimal("800.00"), Decimal("800.00"))
    with clock.frozen(dt.datetime(2026, 12, 4, 9, tzinfo=T0.tzinfo)), session_scope(url) as session:
        figures = review.collection(session, days=14)  # 11-21 .. 12-04: CN-X's window has passed
        assert (figures.decided, figures.promised, figures.kept, figures.paid) == (
            2, Decimal("1600.00"), Decimal("800.00"), Decimal("800.00")
        )  # fmt: skip
        assert figures.rate == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("now", "status", "expected"),
    [
        (dt.datetime(2026, 11, 30, 9), "due_today", ["p-1"]),
        (dt.datetime(2026, 11, 30, 9), "open", ["p-2"]),
        (dt.datetime(2026, 11, 30, 9), "overdue", []),
        (dt.datetime(2026, 12, 1, 9), "overdue", ["p-1"]),
        (dt.datetime(2026, 12, 1, 9), "partial", ["p-1"]),
        (dt.datetime(2026, 12, 1, 9), "kept", []),
        (dt.datetime(2026, 12, 1, 9), "broken", []),
    ],
)
def test_the_promises_api_filters_as_the_records_screen(owners, as_user, now, status, expected) -> None:  # noqa: F811
    url, wang = owners["url"], unit_of(owners["url"], owners["wang"])
    with clock.frozen(at(100)), session_scope(url) as session:
        payments.record_payment(session, unit=wang, amount="300", paid_at=at(90), reference="P-300", actor="zhao")
    numbers = {"p-1": owners["promise"], "p-2": promise_number(url, "wx-zhang")}
    with clock.frozen(now.replace(tzinfo=T0.tzinfo)):
        browser = as_user("zhao")
        api = browser.get("/api/promises", params={"status": status})
        screen = browser.get("/records", params={"tab": "promises", "status": status})
    assert api.status_code == 200, api.text
    assert sorted(p["number"] for p in api.json()) == sorted(numbers[key] for key in expected)
    assert screen.status_code == 200
    for key, number in numbers.items():
        assert (number in screen.text) is (key in expected)


def test_the_promises_api_kept_broken_and_a_bad_status(owners, as_user) -> None:  # noqa: F811
    url, wang = owners["url"], unit_of(owners["url"], owners["wang"])
    with clock.frozen(at(100)), session_scope(url) as session:
        payments.record_payment(session, unit=wang, amount="800", paid_at=at(90), reference="K-1", actor="zhao")
    with clock.frozen(dt.datetime(2026, 12, 8, 6, tzinfo=T0.tzinfo)), session_scope(url) as session:
        payments.evaluate_promises(session, today=dt.date(2026, 12, 8))
    with clock.frozen(dt.datetime(2026, 12, 8, 9, tzinfo=T0.tzinfo)):
        browser = as_user("zhao")
        kept = browser.get("/api/promises", params={"status": "kept"}).json()
        broken = browser.get("/api/promises", params={"status": "broken"}).json()
        bad = browser.get("/api/promises", params={"status": "paid"})
    assert [(p["number"], p["status"], p["paid_amount"]) for p in kept] == [(owners["promise"], "kept", 800.0)]
    assert [(p["number"], p["status"], p["paid_amount"]) for p in broken] == [(promise_number(url, "wx-zhang"), "broken", 0.0)]
    assert bad.status_code == 422 and "due_today" in bad.text and "partial" in bad.text


def promise_number(url: str, sender_id: str) -> str:
    with session_scope(url) as session:
        return str(
            session.execute(
                select(models.PaymentPromise.number).where(models.PaymentPromise.sender_id == sender_id)
            ).scalar_one()
        )


def test_only_a_supervisor_voids_a_payment_with_a_reason_and_it_is_audited(owners, as_user) -> None:  # noqa: F811
    url, wang = owners["url"], owners["wang"]
    with clock.frozen(at(100)), session_scope(url) as session:
        payment = payments.record_payment(session, unit=unit_of(url, wang), amount="800", paid_at=at(90), reference="K-1", actor="wang")
        payment_id = int(payment.id)
    assert PromiseStatus(promise_row(url, owners["promise"]).status) is PromiseStatus.KEPT
    with clock.frozen(at(120)):
        collector = as_user("wang")
        page = collector.get(f"/owners/{wang}")
        assert "void-payment" not in page.text
        token = csrf_of(page.text)
        denied = collector.post(f"/owners/{wang}/payments/{payment_id}/void", data={"reason": "错", "csrf_token": token})
        assert denied.status_code == 403
        supervisor = as_user("zhao")
        page = supervisor.get(f"/owners/{wang}")
        assert "void-payment" in page.text
        token = csrf_of(page.text)
        empty = supervisor.post(f"/owners/{wang}/payments/{payment_id}/void", data={"reason": " ", "csrf_token": token})
        assert empty.status_code == 400 and 'data-code="no_reason"' in empty.text
        done = supervisor.post(
            f"/owners/{wang}/payments/{payment_id}/void", data={"reason": "重复登记", "csrf_token": token},
            follow_redirects=False,
        )  # fmt: skip
        assert done.status_code == 303
        shown = supervisor.get(f"/owners/{wang}").text
    assert "已作废" in shown and "重复登记" in shown
    with session_scope(url) as session:
        row = session.get(Payment, payment_id)
        assert (row.voided_by, row.void_reason) == ("zhao", "重复登记")
    promise = promise_row(url, owners["promise"])
    assert (PromiseStatus(promise.status), promise.paid_amount) == (PromiseStatus.OPEN, Decimal("0.00"))
    [entry] = audit_of(url, "payment_voided")
    assert entry["actor"] == "zhao" and entry["detail"]["reason"] == "重复登记" and entry["detail"]["payment_id"] == payment_id
    assert entry["detail"]["promises"][0]["before"] == "kept" and entry["detail"]["promises"][0]["after"] == "open"
