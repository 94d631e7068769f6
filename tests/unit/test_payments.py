"""Payments (bot.owners.payments) on SQLite and PostgreSQL: recording, arrears less payments, promise outcomes
with the grace on an injected clock, and migration 0011."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, select, text

from bot import clock
from bot.db import migrate, models
from bot.db.models import PaymentPromise, PromiseStatus
from bot.db.payment_models import Payment, PaymentSource
from bot.db.session import get_engine
from bot.owners import arrears, identity, importer, payments
from bot.services import promises

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo" / "arrears.csv"
SHANGHAI = ZoneInfo("Asia/Shanghai")
IMPORTED_AT = dt.datetime(2026, 11, 10, 9, 0, tzinfo=SHANGHAI)
UNIT = "3-2-501"  # 王建国 owes 2460.00 since 2026-03 in the demo estate


def at(day: int, hour: int = 12, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, 0, tzinfo=SHANGHAI)


@pytest.fixture
def estate(session):
    importer.import_arrears(session, DEMO, as_of=IMPORTED_AT)
    session.commit()
    return session


def owner_id(session, room: str = "3栋2单元501", tail: str = "6688") -> int:
    found = identity.verify(session, room=room, phone_tail=tail)
    assert found is not None
    return int(found.owner_id)


def unit_id(session, code: str = UNIT) -> int:
    return int(session.execute(select(models.Unit.id).where(models.Unit.code == code)).scalar_one())


def pay(session, amount: str, when: dt.datetime, reference: str, **fields) -> Payment:
    with clock.frozen(fields.pop("now", when + dt.timedelta(hours=1))):
        payment = payments.record_payment(
            session, unit=fields.pop("unit", UNIT), amount=amount, paid_at=when, reference=reference, actor="zhao", **fields
        )
    session.commit()
    return payment


def promise(session, *, amount: str, due: dt.date, made: dt.datetime, number: str = "CN1") -> PaymentPromise:
    row = PaymentPromise(
        number=number,
        sender_id="s1",
        source_message_id=f"m-{number}",
        created_at=made,
        owner_id=owner_id(session),
        amount=Decimal(amount),
        due_date=due,
    )
    session.add(row)
    session.commit()
    return row


# --- recording ---------------------------------------------------------------------------------------------


def test_record_payment_stores_every_field(estate) -> None:
    payment = pay(estate, "1,200.50元", at(20, 14), " WX001 ", period="2026-03至2026-08", channel="微信")

    stored = estate.execute(select(Payment)).scalar_one()
    assert stored.id == payment.id
    assert stored.unit_id == unit_id(estate)
    assert stored.amount == Decimal("1200.50")
    assert arrears.as_utc(stored.paid_at) == at(20, 14).astimezone(dt.timezone.utc)
    assert (stored.period, stored.channel, stored.reference) == ("2026-03至2026-08", "微信", "WX001")
    assert PaymentSource(stored.source) is PaymentSource.STAFF
    assert (stored.recorded_by, stored.import_id) == ("zhao", None)
    assert arrears.as_utc(stored.created_at) == at(20, 15).astimezone(dt.timezone.utc)
    lines = payments.payments_of_unit(estate, unit_id=unit_id(estate))
    assert [(line.reference, line.amount, line.paid_at) for line in lines] == [
        ("WX001", Decimal("1200.50"), at(20, 14))
    ]


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"unit": "9栋9单元999"}, "unknown_unit"),
        ({"amount": "abc"}, "bad_amount"),
        ({"amount": "0"}, "not_positive"),
        ({"amount": "-5"}, "not_positive"),
        ({"amount": "1.234"}, "bad_amount"),
        ({"reference": "  "}, "no_reference"),
        ({"now": at(1)}, "future"),
    ],
)
def test_refused_payments_write_nothing(estate, fields, code) -> None:
    arguments = {"amount": "100", "reference": "R1", **fields}
    with pytest.raises(payments.PaymentError) as refused:
        pay(estate, arguments.pop("amount"), at(20), arguments.pop("reference"), **arguments)
    assert refused.value.code == code
    estate.rollback()
    assert estate.execute(select(Payment)).scalars().all() == []


def test_a_stored_reference_is_a_duplicate_same_or_not(estate) -> None:
    pay(estate, "100", at(20), "R1", channel="微信")
    with pytest.raises(payments.DuplicateReference) as same:
        pay(estate, "100.00", at(20), "R1", channel="微信")
    assert same.value.same is True
    with pytest.raises(payments.DuplicateReference) as different:
        pay(estate, "200", at(20), "R1", channel="微信")
    assert different.value.same is False and different.value.existing.amount == Decimal("100.00")
    estate.rollback()
    assert [p.amount for p in estate.execute(select(Payment)).scalars()] == [Decimal("100.00")]


def test_paid_since_counts_from_a_moment_or_a_day(estate) -> None:
    pay(estate, "100", at(18, 23), "R1")
    pay(estate, "50", at(20, 8), "R2")
    assert payments.paid_since(estate, unit=UNIT, since=at(19, 0)) == Decimal("50.00")
    assert payments.paid_since(estate, unit="3栋2单元501", since=dt.date(2026, 11, 18)) == Decimal("150.00")
    assert payments.paid_since(estate, unit=unit_id(estate), since=at(21)) == Decimal("0.00")


# --- arrears shrink ----------------------------------------------------------------------------------------


def test_arrears_shrink_by_payments_after_the_import_never_below_zero(estate) -> None:
    owner = owner_id(estate)
    today = dt.date(2026, 11, 24)
    pay(estate, "500", at(9), "BEFORE")  # before the import: already in its figure
    assert arrears.summary(estate, owner_id=owner, today=today).amount == Decimal("2460.00")
    pay(estate, "460", at(12), "AFTER1")
    summary = arrears.summary(estate, owner_id=owner, today=today)
    assert (summary.amount, summary.since, summary.months) == (Decimal("2000.00"), "2026-03", 9)
    assert arrears.outstanding_by_unit(estate, unit_ids=[unit_id(estate)]) == {unit_id(estate): Decimal("2000.00")}
    assert promises.default_amount(estate, owner_id=owner, today=today) == Decimal("2000.00")
    pay(estate, "3000", at(13), "AFTER2")
    assert arrears.summary(estate, owner_id=owner, today=today) == arrears.ArrearsSummary(Decimal("0.00"), None, 0)
    assert arrears.outstanding_by_unit(estate, unit_ids=[unit_id(estate)]) == {unit_id(estate): Decimal("0.00")}


def test_a_later_arrears_import_supersedes_earlier_payments(estate, tmp_path: Path) -> None:
    owner = owner_id(estate)
    pay(estate, "460", at(12), "P1")
    assert arrears.summary(estate, owner_id=owner, today=dt.date(2026, 11, 24)).amount == Decimal("2000.00")
    # The new list already reflects P1: it says 2000.00, and only payments after it reduce that.
    newer = tmp_path / "arrears.csv"
    newer.write_text(DEMO.read_text(encoding="utf-8").replace("2460.00", "2000.00"), encoding="utf-8")
    importer.import_arrears(estate, newer, as_of=at(15, 9))
    estate.commit()
    bill = estate.execute(select(models.Bill).where(models.Bill.unit_id == unit_id(estate))).scalar_one()
    assert arrears.as_utc(bill.as_of) == at(15, 9).astimezone(dt.timezone.utc)
    assert arrears.summary(estate, owner_id=owner, today=dt.date(2026, 11, 24)).amount == Decimal("2000.00")
    pay(estate, "250", at(16), "P2")
    assert arrears.summary(estate, owner_id=owner, today=dt.date(2026, 11, 24)).amount == Decimal("1750.00")


def test_the_import_stamps_the_clock_when_no_moment_is_given(session) -> None:
    with clock.frozen(at(3, 8)):
        importer.import_arrears(session, DEMO)
    session.commit()
    stamps = {arrears.as_utc(bill.as_of) for bill in session.execute(select(models.Bill)).scalars()}
    assert stamps == {at(3, 8).astimezone(dt.timezone.utc)}


# --- promise outcomes --------------------------------------------------------------------------------------


def evaluate(session, day: dt.date, **kwargs):
    with clock.frozen(dt.datetime.combine(day, dt.time(6), tzinfo=SHANGHAI)):
        changes = payments.evaluate_promises(session, today=day, **kwargs)
    session.commit()
    return changes


def stored(session, promise_id: int) -> PaymentPromise:
    session.expire_all()
    row = session.get(PaymentPromise, promise_id)
    assert row is not None
    return row


def test_kept_when_payments_reach_the_amount_within_the_grace(estate, monkeypatch) -> None:
    monkeypatch.setattr("bot.owners.payments._grace", lambda days: 2 if days is None else days)
    made = promise(estate, amount="1000", due=dt.date(2026, 11, 20), made=at(15, 10))
    pay(estate, "300", at(14), "EARLY")  # before the promise was made: does not count
    # Earlier the same day, with a time: made before the promise, so it does not count for it either.
    pay(estate, "200", at(15, 8), "SAMEDAY-MORNING", evaluate=False)
    # A bare date (the export gave no time, stored as midnight): its hour is unknown, so the day counts.
    pay(estate, "400", at(15, 0), "SAMEDAY-DATE", evaluate=False, time_known=False)
    stored_flags = dict(estate.execute(select(Payment.reference, Payment.time_known)).all())
    assert stored_flags == {"EARLY": True, "SAMEDAY-MORNING": True, "SAMEDAY-DATE": False}
    assert evaluate(estate, dt.date(2026, 11, 21)) == [
        payments.PromiseChange(made.id, made.owner_id, PromiseStatus.OPEN, PromiseStatus.OPEN, Decimal("400.00"))
    ]
    row = stored(estate, made.id)
    assert (PromiseStatus(row.status), row.paid_amount) == (PromiseStatus.OPEN, Decimal("400.00"))
    assert arrears.as_utc(row.evaluated_at) == dt.datetime(2026, 11, 21, 6, tzinfo=SHANGHAI)
    assert [p.reference for p in payments.payments_for_promise(estate, promise=row)] == ["SAMEDAY-DATE"]
    assert evaluate(estate, dt.date(2026, 11, 21)) == []
    assert payments.promise_outcome(estate, row, today=dt.date(2026, 11, 21)).partial is True
    # Paid on the last day of the grace (due 20th + 2 days): the staff payment itself evaluates the promise.
    pay(estate, "600", at(22, 20), "LASTDAY", now=at(22, 21))
    row = stored(estate, made.id)
    assert (PromiseStatus(row.status), row.paid_amount) == (PromiseStatus.KEPT, Decimal("1000.00"))
    assert arrears.as_utc(row.evaluated_at) == at(22, 21).astimezone(dt.timezone.utc)
    assert evaluate(estate, dt.date(2026, 11, 30)) == []  # idempotent: nothing changes any more


def test_broken_after_the_grace_partial_shown_and_a_late_import_turns_it_kept(estate) -> None:
    made = promise(estate, amount="1000", due=dt.date(2026, 11, 20), made=at(15))
    pay(estate, "250", at(19), "P1", evaluate=False)
    assert [c.after for c in evaluate(estate, dt.date(2026, 11, 22), grace_days=2)] == [PromiseStatus.OPEN]
    assert evaluate(estate, dt.date(2026, 11, 22), grace_days=2) == []
    changes = evaluate(estate, dt.date(2026, 11, 23), grace_days=2)
    assert [(c.before, c.after, c.paid_amount) for c in changes] == [
        (PromiseStatus.OPEN, PromiseStatus.BROKEN, Decimal("250.00"))
    ]
    row = stored(estate, made.id)
    assert PromiseStatus(row.status) is PromiseStatus.BROKEN and row.paid_amount == Decimal("250.00")
    outcome = payments.promise_outcome(estate, row, today=dt.date(2026, 11, 23), grace_days=2)
    assert outcome.partial is True and outcome.window_end == dt.date(2026, 11, 22)
    assert evaluate(estate, dt.date(2026, 11, 24), grace_days=2) == []
    # A payment after the window does not keep it ...
    pay(estate, "750", at(23), "LATE", evaluate=False)
    assert evaluate(estate, dt.date(2026, 11, 24), grace_days=2) == []
    # ... one dated inside the window but imported late does.
    pay(estate, "750", at(21), "INWINDOW", evaluate=False, now=at(24))
    changes = evaluate(estate, dt.date(2026, 11, 24), grace_days=2)
    assert [(c.before, c.after, c.paid_amount) for c in changes] == [
        (PromiseStatus.BROKEN, PromiseStatus.KEPT, Decimal("1000.00"))
    ]


def test_the_grace_setting_moves_the_window(estate, monkeypatch) -> None:
    from bot.settings import get_settings

    monkeypatch.setenv("PROMISE_GRACE_DAYS", "0")
    get_settings.cache_clear()
    try:
        made = promise(estate, amount="100", due=dt.date(2026, 11, 20), made=at(15))
        assert evaluate(estate, dt.date(2026, 11, 20)) == []
        assert [c.after for c in evaluate(estate, dt.date(2026, 11, 21))] == [PromiseStatus.BROKEN]
        assert payments.promise_outcome(estate, stored(estate, made.id)).window_end == dt.date(2026, 11, 20)
    finally:
        get_settings.cache_clear()


def test_a_promise_of_nothing_named_is_kept_by_any_payment(estate) -> None:
    made = promise(estate, amount="0", due=dt.date(2026, 11, 20), made=at(15))
    assert evaluate(estate, dt.date(2026, 11, 18)) == []
    pay(estate, "10", at(18), "ANY", evaluate=False)
    assert [c.after for c in evaluate(estate, dt.date(2026, 11, 18))] == [PromiseStatus.KEPT]
    assert PromiseStatus(stored(estate, made.id).status) is PromiseStatus.KEPT


def test_only_the_units_paid_for_are_evaluated_after_a_payment(estate) -> None:
    made = promise(estate, amount="100", due=dt.date(2026, 11, 20), made=at(15))
    pay(estate, "100", at(16), "OTHER", unit="5号楼1203")
    row = stored(estate, made.id)
    assert PromiseStatus(row.status) is PromiseStatus.OPEN and row.paid_amount == Decimal("0.00")
    assert row.evaluated_at is None


def test_collection_rate_is_kept_shares_over_promised_amount(estate) -> None:
    def row(amount: str, status: PromiseStatus, paid: str = "0") -> PaymentPromise:
        return PaymentPromise(amount=Decimal(amount), status=status, paid_amount=Decimal(paid))

    assert payments.collection_rate([]) is None
    rate = payments.collection_rate(
        [row("300", PromiseStatus.KEPT, "300"), row("100", PromiseStatus.BROKEN, "40"), row("100", PromiseStatus.OPEN)]
    )
    assert rate == pytest.approx(300 / 500)
    # A kept promise counts its share, not its amount (and never more than its amount).
    assert payments.kept_share([row("300", PromiseStatus.KEPT, "500"), row("100", PromiseStatus.BROKEN, "40")]) == (
        Decimal("300.00")
    )


def test_a_payment_that_morning_does_not_keep_a_promise_made_that_afternoon(estate) -> None:
    made = promise(estate, amount="500", due=dt.date(2026, 11, 20), made=at(15, 15))
    pay(estate, "500", at(15, 9), "MORNING")
    row = stored(estate, made.id)
    assert (PromiseStatus(row.status), row.paid_amount) == (PromiseStatus.OPEN, Decimal("0.00"))
    pay(estate, "500", at(15, 16), "AFTERNOON")
    row = stored(estate, made.id)
    assert (PromiseStatus(row.status), row.paid_amount) == (PromiseStatus.KEPT, Decimal("500.00"))
    assert [p.reference for p in payments.payments_for_promise(estate, promise=row)] == ["AFTERNOON"]


def second_owner(session) -> int:
    """A co-owner of the demo unit (another phone), for promises of one unit by two people."""
    owner = models.Owner(unit_id=unit_id(session), name="王丽", phone="13900001234")
    session.add(owner)
    session.commit()
    return int(owner.id)


def test_one_payment_keeps_one_of_two_overlapping_promises(estate) -> None:
    first = promise(estate, amount="1000", due=dt.date(2026, 11, 20), made=at(15), number="CN1")
    later = promise(estate, amount="1000", due=dt.date(2026, 11, 22), made=at(16), number="CN2")
    pay(estate, "1000", at(17), "ONE", evaluate=False)
    evaluate(estate, dt.date(2026, 11, 18))
    kept, other = stored(estate, first.id), stored(estate, later.id)
    assert (PromiseStatus(kept.status), kept.paid_amount) == (PromiseStatus.KEPT, Decimal("1000.00"))
    assert (PromiseStatus(other.status), other.paid_amount) == (PromiseStatus.OPEN, Decimal("0.00"))
    # Its window closes without another payment: broken, paid nothing (the payment is the first's).
    evaluate(estate, dt.date(2026, 11, 25), grace_days=2)
    other = stored(estate, later.id)
    assert (PromiseStatus(other.status), other.paid_amount) == (PromiseStatus.BROKEN, Decimal("0.00"))
    assert payments.collection_rate([stored(estate, first.id), other]) == pytest.approx(0.5)


def test_co_owners_and_two_senders_share_the_units_payments_earliest_due_first(estate) -> None:
    wife = second_owner(estate)
    late = promise(estate, amount="600", due=dt.date(2026, 11, 25), made=at(15), number="CN1")
    early = PaymentPromise(
        number="CN2", sender_id="s2", source_message_id="m-CN2", created_at=at(16), owner_id=wife,
        amount=Decimal("600"), due_date=dt.date(2026, 11, 20),
    )  # fmt: skip
    estate.add(early)
    estate.commit()
    pay(estate, "800", at(17), "PART")
    first, second = stored(estate, early.id), stored(estate, late.id)
    assert (PromiseStatus(first.status), first.paid_amount) == (PromiseStatus.KEPT, Decimal("600.00"))
    assert (PromiseStatus(second.status), second.paid_amount) == (PromiseStatus.OPEN, Decimal("200.00"))
    assert payments.is_partial(second.status, second.amount, second.paid_amount) is True
    assert payments.allocate(estate, unit_id=unit_id(estate)) == {early.id: Decimal("600.00"), late.id: Decimal("200.00")}
    pay(estate, "400", at(18), "REST")
    second = stored(estate, late.id)
    assert (PromiseStatus(second.status), second.paid_amount) == (PromiseStatus.KEPT, Decimal("600.00"))
    assert stored(estate, early.id).paid_amount == Decimal("600.00")


@pytest.mark.parametrize(
    "when",
    [
        dt.datetime(1, 1, 1),
        dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone(-dt.timedelta(hours=23, minutes=59))),
        dt.datetime(1999, 12, 31, 12, tzinfo=SHANGHAI),
        dt.datetime(2028, 1, 1, tzinfo=SHANGHAI),
    ],
)
def test_payment_times_outside_2000_to_next_year_are_refused_politely(estate, when) -> None:
    with pytest.raises(payments.PaymentError) as refused, clock.frozen(at(20)):
        payments.record_payment(estate, unit=UNIT, amount="100", paid_at=when, reference="OLD", actor="zhao")
    assert refused.value.code == "bad_time"
    estate.rollback()
    assert estate.execute(select(Payment)).scalars().all() == []


def test_bills_without_as_of_count_no_payment(estate) -> None:
    estate.execute(models.Bill.__table__.update().values(as_of=None))
    estate.commit()
    pay(estate, "460", at(20), "ANY")
    assert arrears.summary(estate, owner_id=owner_id(estate), today=dt.date(2026, 11, 24)).amount == Decimal("2460.00")
    assert arrears.outstanding_by_unit(estate, unit_ids=[unit_id(estate)]) == {unit_id(estate): Decimal("2460.00")}


def test_import_arrears_refuses_an_as_of_in_the_future(session) -> None:
    with clock.frozen(at(20, 9)), pytest.raises(ValueError, match="future"):
        importer.import_arrears(session, DEMO, as_of=at(21, 9))
    with clock.frozen(at(20, 9)), pytest.raises(ValueError, match="plausible"):
        importer.import_arrears(session, DEMO, as_of=dt.datetime(1, 1, 1, tzinfo=dt.timezone.utc))
    session.rollback()
    assert session.execute(select(models.Bill)).scalars().all() == []
    with clock.frozen(at(20, 9)):
        report = importer.import_arrears(session, DEMO)
    assert report.as_of == at(20, 9).astimezone(dt.timezone.utc)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1,200.50元", Decimal("1200.50")),
        (1000.0, Decimal("1000.00")),
        (1234.5600000000002, Decimal("1234.56")),  # a spreadsheet's binary float
        ("1000.456", None),  # more than two decimals: refused by both, never rounded
        (1234.567, None),
        (float("nan"), None),
        ("0", None),
        ("abc", None),
    ],
)
def test_one_money_parser_for_payments_and_promises(value, expected) -> None:
    assert promises.parse_amount(value) == expected
    if expected is None:
        with pytest.raises(payments.PaymentError):
            payments.parse_amount(value)
    else:
        assert payments.parse_amount(value) == expected


def test_the_partial_rule_is_one_function(estate) -> None:
    from bot.casework import follow_up, owner_view

    assert payments.is_partial(PromiseStatus.OPEN, Decimal("100"), Decimal("40")) is True
    assert payments.is_partial("broken", Decimal("100"), Decimal("40")) is True
    assert payments.is_partial(PromiseStatus.KEPT, Decimal("100"), Decimal("40")) is False
    assert payments.is_partial(PromiseStatus.OPEN, Decimal("100"), Decimal("0")) is False
    assert payments.is_partial(PromiseStatus.OPEN, Decimal("100"), Decimal("100")) is False
    made = promise(estate, amount="1000", due=dt.date(2026, 11, 20), made=at(15))
    pay(estate, "250", at(16), "P1")
    with clock.frozen(at(17)):
        [line] = owner_view.list_records(estate, kind=owner_view.RecordKind.PROMISES)
        assert line.partial is True and follow_up.is_partial(line) is True
        assert [p.id for p in follow_up.promises(estate, bucket=follow_up.PARTIAL)] == [made.id]
    assert payments.promise_outcome(estate, stored(estate, made.id), today=dt.date(2026, 11, 17)).partial is True


def test_a_voided_payment_counts_nowhere_and_its_promises_are_judged_again(estate) -> None:
    owner = owner_id(estate)
    made = promise(estate, amount="1000", due=dt.date(2026, 11, 20), made=at(15))
    wrong = pay(estate, "1000", at(16), "WRONG")
    assert PromiseStatus(stored(estate, made.id).status) is PromiseStatus.KEPT
    assert arrears.summary(estate, owner_id=owner, today=dt.date(2026, 11, 24)).amount == Decimal("1460.00")
    with pytest.raises(payments.PaymentError) as refused:
        payments.void_payment(estate, payment_id=wrong.id, actor="zhao", reason="  ")
    assert refused.value.code == "no_reason"
    with clock.frozen(at(23, 9)):
        changes = payments.void_payment(estate, payment_id=wrong.id, actor="zhao", reason="录错了户号")
    estate.commit()
    assert [(c.promise_id, c.before, c.after, c.paid_amount) for c in changes] == [
        (made.id, PromiseStatus.KEPT, PromiseStatus.BROKEN, Decimal("0.00"))  # kept included; its window has passed
    ]
    row = estate.get(Payment, wrong.id)
    assert (row.voided_by, row.void_reason) == ("zhao", "录错了户号")
    assert arrears.as_utc(row.voided_at) == at(23, 9).astimezone(dt.timezone.utc)
    assert arrears.summary(estate, owner_id=owner, today=dt.date(2026, 11, 24)).amount == Decimal("2460.00")
    assert payments.paid_since(estate, unit=UNIT, since=at(1)) == Decimal("0.00")
    assert payments.payments_of_unit(estate, unit_id=unit_id(estate))[0].void_reason == "录错了户号"
    with pytest.raises(payments.PaymentError) as again:
        payments.void_payment(estate, payment_id=wrong.id, actor="zhao", reason="再来")
    assert again.value.code == "already_voided"


# --- migration 0011 ----------------------------------------------------------------------------------------

OUR_TABLES = {"payments", "payment_imports", "payment_promises", "bills"}


def _table_of(entry) -> str:
    """The table an autogenerate difference is about (``add_table``, ``add_column``, ``modify_type`` ...)."""
    first = entry[0] if isinstance(entry, list) else entry
    if first[0] in ("add_table", "remove_table"):
        return str(first[1].name)
    if first[0] in ("add_index", "remove_index", "add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        return str(first[1].table.name)
    return str(first[2])  # add_column / remove_column / modify_*: (kind, schema, table, ...)


def test_0011_adds_payments_keeps_old_rows_matches_the_models_and_downgrades(database_url: str) -> None:
    migrate.downgrade(database_url, "0010")
    engine = get_engine(database_url)
    assert "payments" not in inspect(engine).get_table_names()
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO units (id, code, building, room) VALUES (1, '1-101', '1', '101')"))
        connection.execute(
            text("INSERT INTO owners (id, unit_id, name, phone) VALUES (1, 1, 'A', '13800001111')")
        )
        connection.execute(
            text(
                "INSERT INTO payment_promises (number, owner_id, amount, due_date, status, created_at) "
                "VALUES ('CN1', 1, 100, '2026-11-20', 'OPEN', '2026-11-15 10:00:00+08:00')"
            )
        )
        connection.execute(
            text("INSERT INTO bills (unit_id, period, amount_due, amount_paid) VALUES (1, '2026-01', 100, 0)")
        )

    migrate.upgrade(database_url)

    with engine.connect() as connection:
        old = connection.execute(
            text("SELECT paid_amount, evaluated_at, reschedule_count FROM payment_promises")
        ).one()
        assert (Decimal(old[0]), old[1], old[2]) == (Decimal("0"), None, 0)
        # Bills from before the upgrade are stamped with the upgrade's time: no earlier payment reduces them.
        stamped = connection.execute(text("SELECT as_of FROM bills")).scalar_one()
        assert stamped is not None
        stamped_at = stamped if isinstance(stamped, dt.datetime) else dt.datetime.fromisoformat(str(stamped))
        assert abs(arrears.as_utc(stamped_at) - clock.utc_now()) < dt.timedelta(minutes=5)
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        # Only our tables: other model modules of the chain may be half-way through their own work.
        diff = compare_metadata(context, models.Base.metadata)
        ours = [entry for entry in diff if _table_of(entry) in OUR_TABLES]
        assert ours == []
    migrate.downgrade(database_url, "0010")
    inspector = inspect(get_engine(database_url))
    assert not {"payments", "payment_imports"} & set(inspector.get_table_names())
    assert "paid_amount" not in {column["name"] for column in inspector.get_columns("payment_promises")}
    assert "as_of" not in {column["name"] for column in inspector.get_columns("bills")}
    migrate.upgrade(database_url)


# --- the same reference from two transactions at once ------------------------------------------------------


# PostgreSQL only: SQLite sessions begin IMMEDIATE, so the second writer cannot look before the first commits
# and sees the stored payment (the sequential case is test_a_stored_reference_is_a_duplicate_same_or_not).
@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_reference_stored_meanwhile_by_another_transaction_is_a_duplicate(database_url: str) -> None:
    import threading

    from sqlalchemy.orm import Session

    engine = get_engine(database_url)
    with Session(engine) as setup:
        importer.import_arrears(setup, DEMO, as_of=IMPORTED_AT)
        setup.commit()
    first = Session(engine)
    with clock.frozen(at(20, 13)):
        payments.record_payment(first, unit=UNIT, amount="100", paid_at=at(20), reference="RACE", actor="import")
    outcome: dict = {}

    def second_writer() -> None:
        with clock.frozen(at(20, 13)), Session(engine) as second:
            try:
                payments.record_payment(second, unit=UNIT, amount="100", paid_at=at(20), reference="RACE", actor="zhao")
                second.commit()
                outcome["stored"] = True
            except payments.DuplicateReference as duplicate:
                outcome["same"] = duplicate.same
                second.rollback()

    writer = threading.Thread(target=second_writer)
    writer.start()
    writer.join(timeout=1.0)
    assert writer.is_alive()  # waiting on the unique index for the first transaction
    first.commit()
    first.close()
    writer.join(timeout=10)
    assert outcome == {"same": True}
    with Session(engine) as check:
        assert [(p.reference, p.recorded_by) for p in check.execute(select(Payment)).scalars()] == [("RACE", "import")]


# --- what the bot tells the verified owner -----------------------------------------------------------------


def test_the_bot_tells_the_owner_the_arrears_less_payments(estate_env: str) -> None:
    from actions import owner_data as record_actions
    from bot.db.session import session_scope
    from tests.builders import run, tracker

    with session_scope(estate_env) as db:
        owner = owner_id(db)
        payments.record_payment(db, unit=UNIT, amount="460", paid_at=clock.now(), reference="BOT-1", actor="zhao")
    messages, _ = run(record_actions.ActionTellArrears(), tracker(slots={"verified_owner_id": float(owner)}))
    assert (messages[0]["response"], messages[0]["amount"]) == ("utter_arrears", "2,000.00")
    with session_scope(estate_env) as db:
        payments.record_payment(db, unit=UNIT, amount="2000", paid_at=clock.now(), reference="BOT-2", actor="zhao")
    messages, _ = run(record_actions.ActionTellArrears(), tracker(slots={"verified_owner_id": float(owner)}))
    assert messages[0]["response"] == "utter_no_arrears"
