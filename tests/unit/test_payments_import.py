"""`bot import-payments` (bot.owners.payments_import) on SQLite and PostgreSQL: CSV with Chinese and English
headers, UTF-8 (with BOM) and GBK, XLSX; bad rows with line and reason while good rows load; idempotent on the
reference; conflicts reported, not overwritten; a crash half-way leaves nothing; the CLI's exit codes."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Iterator, List, Tuple
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot import cli, clock
from bot.db import models
from bot.db.models import PaymentPromise, PromiseStatus
from bot.db.payment_models import Payment, PaymentImport, PaymentSource
from bot.db.session import get_engine
from bot.owners import arrears, importer, payments, payments_import
from bot.owners.spreadsheet import ImportFileError

ROOT = Path(__file__).resolve().parents[2]
DEMO_ARREARS = ROOT / "data" / "demo" / "arrears.csv"
DEMO_PAYMENTS = ROOT / "data" / "demo" / "payments.csv"
SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = dt.datetime(2026, 11, 24, 12, 0, tzinfo=SHANGHAI)

CHINESE = (
    "房号,金额,缴费时间,缴费期间,渠道,流水号\n"
    "3栋2单元501,1200.00,2026-11-20 10:15:00,2026-03至2026-08,微信,WX001\n"
    "5号楼1203,\"1,500.50\",2026/11/21 16:40,2025-12,支付宝,ZFB002\n"
    "3栋2单元502,820元,2026年11月22日,,银行代扣,YH003\n"
)
ENGLISH = (
    "reference,room,amount,paid_at,channel,period\n"
    "WX001,3-2-501,1200.00,2026-11-20T10:15:00+08:00,微信,2026-03至2026-08\n"
    "ZFB002,5号楼1203,1500.50,2026-11-21 16:40,支付宝,2025-12\n"
    "YH003,3-2-502,820,2026-11-22,银行代扣,\n"
)
# (unit code, amount, paid_at, period, channel, reference) of the three rows above
EXPECTED = [
    ("3-2-501", Decimal("1200.00"), dt.datetime(2026, 11, 20, 10, 15, tzinfo=SHANGHAI), "2026-03至2026-08", "微信", "WX001"),
    ("5-1203", Decimal("1500.50"), dt.datetime(2026, 11, 21, 16, 40, tzinfo=SHANGHAI), "2025-12", "支付宝", "ZFB002"),
    ("3-2-502", Decimal("820.00"), dt.datetime(2026, 11, 22, 0, 0, tzinfo=SHANGHAI), None, "银行代扣", "YH003"),
]


@pytest.fixture
def estate(session: Session) -> Iterator[Session]:
    importer.import_arrears(session, DEMO_ARREARS, as_of=dt.datetime(2026, 11, 1, 9, tzinfo=SHANGHAI))
    session.commit()
    with clock.frozen(NOW):
        yield session


def stored_payments(session: Session) -> List[Tuple]:
    session.expire_all()
    rows = session.execute(
        select(Payment, models.Unit.code).join(models.Unit, models.Unit.id == Payment.unit_id).order_by(Payment.reference)
    )
    return [
        (code, payment.amount, arrears.as_utc(payment.paid_at), payment.period, payment.channel, payment.reference)
        for payment, code in rows
    ]


def expected(*references: str) -> List[Tuple]:
    return sorted(
        [
            (code, amount, paid_at.astimezone(dt.timezone.utc), period, channel, reference)
            for code, amount, paid_at, period, channel, reference in EXPECTED
            if reference in references
        ],
        key=lambda row: row[-1],
    )


def load(session: Session, path: Path) -> payments_import.PaymentImportReport:
    report = payments_import.import_payments(session, path, actor="cli:tester")
    session.commit()
    return report


@pytest.mark.parametrize(
    ("text", "encoding"),
    [(CHINESE, "utf-8"), (CHINESE, "utf-8-sig"), (CHINESE, "gbk"), (ENGLISH, "utf-8")],
    ids=["chinese-utf8", "chinese-bom", "chinese-gbk", "english"],
)
def test_csv_loads_every_field(estate: Session, tmp_path: Path, text: str, encoding: str) -> None:
    path = tmp_path / "payments.csv"
    path.write_bytes(text.encode(encoding))

    report = load(estate, path)

    assert report.loaded == [(2, "WX001"), (3, "ZFB002"), (4, "YH003")]
    assert (report.skipped, report.conflicts, report.errors, report.clean) == ([], [], [], True)
    assert stored_payments(estate) == expected("WX001", "ZFB002", "YH003")
    for payment in estate.execute(select(Payment)).scalars():
        assert PaymentSource(payment.source) is PaymentSource.IMPORT
        assert (payment.recorded_by, payment.import_id) == ("cli:tester", report.import_id)
        assert arrears.as_utc(payment.created_at) == NOW.astimezone(dt.timezone.utc)
    log = estate.get(PaymentImport, report.import_id)
    assert (log.file_name, log.sha256, log.imported_by) == ("payments.csv", report.sha256, "cli:tester")
    assert (log.rows_loaded, log.rows_skipped, log.rows_bad, log.rows_conflicting) == (3, 0, 0, 0)
    assert arrears.as_utc(log.imported_at) == NOW.astimezone(dt.timezone.utc)
    import hashlib

    assert report.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_xlsx_with_chinese_headers_and_typed_cells(estate: Session, tmp_path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["房号", "金额", "缴费时间", "缴费期间", "渠道", "流水号"])
    sheet.append(["3栋2单元501", 1200, dt.datetime(2026, 11, 20, 10, 15), "2026-03至2026-08", "微信", "WX001"])
    sheet.append(["5号楼1203", 1500.5, "2026-11-21 16:40", "2025-12", "支付宝", "ZFB002"])
    sheet.append(["3-2-502", "820", dt.date(2026, 11, 22), None, "银行代扣", "YH003"])
    path = tmp_path / "payments.xlsx"
    workbook.save(path)

    report = load(estate, path)

    assert [line for line, _ in report.loaded] == [2, 3, 4] and report.clean
    assert stored_payments(estate) == expected("WX001", "ZFB002", "YH003")
    # A date cell (Excel keeps it as midnight) is a bare date; a date-and-time cell gives the time.
    known = dict(estate.execute(select(Payment.reference, Payment.time_known)).all())
    assert known == {"WX001": True, "ZFB002": True, "YH003": False}


def test_xlsx_float_artifacts_are_fen_and_scientific_references_are_refused(estate: Session, tmp_path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["房号", "金额", "缴费时间", "流水号"])
    sheet.append(["3栋2单元501", 1234.5600000000002, "2026-11-20 10:15", "WX-FLOAT"])  # 2
    sheet.append(["3栋2单元501", 100, "2026-11-20 10:16", 4.2e18])  # 3 a number cell: digits lost
    sheet.append(["3栋2单元501", 100, "2026-11-20 10:17", "4.2E+18"])  # 4 text copied from such a cell
    sheet.append(["3栋2单元501", 100, "2026-11-20 10:18", 20261120001])  # 5 a short number: exact
    sheet.append(["3栋2单元501", 12.345, "2026-11-20 10:19", "WX-3DEC"])  # 6 really three decimals
    path = tmp_path / "floats.xlsx"
    workbook.save(path)

    report = load(estate, path)

    assert report.loaded == [(2, "WX-FLOAT"), (5, "20261120001")]
    reasons = dict(report.errors)
    assert sorted(reasons) == [3, 4, 6]
    assert "科学计数法（4.2E+18）" in reasons[3] and "科学计数法（4.2E+18）" in reasons[4]
    assert "金额不是有效数字" in reasons[6]
    amounts = dict(estate.execute(select(Payment.reference, Payment.amount)).all())
    assert amounts == {"WX-FLOAT": Decimal("1234.56"), "20261120001": Decimal("100.00")}


def test_refusal_wording_lives_in_the_wording_file() -> None:
    from bot import wording

    texts = wording.all_texts()
    for code in payments_import.REASON_CODES:
        assert payments_import.reason(code) == texts[f"payments_import.{code}"]
    assert payments_import.reason("repeated_reference", line=2) == "流水号与第2行重复"


def test_bad_rows_are_reported_with_line_and_reason_while_good_rows_load(estate: Session, tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        "房号,金额,缴费时间,缴费期间,渠道,流水号\n"
        "3栋2单元501,1200.00,2026-11-20 10:15:00,2026-03至2026-08,微信,WX001\n"  # 2 good
        "9栋9单元999,100,2026-11-20,,微信,BAD3\n"  # 3 unknown unit
        "不是房号,100,2026-11-20,,微信,BAD4\n"  # 4 not a unit at all
        "5号楼1203,abc,2026-11-20,,微信,BAD5\n"  # 5 not a number
        "5号楼1203,-5,2026-11-20,,微信,BAD6\n"  # 6 negative
        "5号楼1203,0,2026-11-20,,微信,BAD7\n"  # 7 zero
        "5号楼1203,100,2026-13-40,,微信,BAD8\n"  # 8 no such date
        "5号楼1203,100,2026-11-20,,微信,\n"  # 9 no reference
        "5号楼1203,1500.50,2026-11-21 16:40,2025-12,支付宝,ZFB002\n"  # 10 good
        "3栋2单元502,820,2026-11-22,,银行代扣,WX001\n"  # 11 reference repeated in the file
        "3栋2单元502,820,2026-12-01,,银行代扣,BAD12\n"  # 12 in the future
        "3栋2单元502,820,2026-11-22,,银行代扣,YH003\n",  # 13 good
        encoding="utf-8",
    )

    report = load(estate, path)

    assert [line for line, _ in report.loaded] == [2, 10, 13]
    reasons = dict(report.errors)
    assert sorted(reasons) == [3, 4, 5, 6, 7, 8, 9, 11, 12]
    assert reasons[3] == "房号不存在"
    assert "房号无法识别" in reasons[4]
    assert "金额不是有效数字" in reasons[5]
    assert "金额必须大于0" in reasons[6] and "金额必须大于0" in reasons[7]
    assert "缴费时间无法识别" in reasons[8]
    assert reasons[9] == "流水号为空"
    assert reasons[11] == "流水号与第2行重复"
    assert reasons[12] == "缴费时间晚于现在"
    stored = stored_payments(estate)
    assert stored == sorted(
        [expected("WX001")[0], expected("ZFB002")[0], (*expected("YH003")[0][:3], None, "银行代扣", "YH003")],
        key=lambda row: row[-1],
    )
    log = estate.get(PaymentImport, report.import_id)
    assert (log.rows_loaded, log.rows_skipped, log.rows_bad, log.rows_conflicting) == (3, 0, 9, 0)


def test_reimport_adds_nothing_and_a_changed_row_is_a_conflict_not_an_overwrite(
    estate: Session, tmp_path: Path
) -> None:
    path = tmp_path / "payments.csv"
    path.write_text(CHINESE, encoding="utf-8")
    load(estate, path)
    before = stored_payments(estate)

    again = load(estate, path)

    assert again.loaded == [] and again.skipped == [(2, "WX001"), (3, "ZFB002"), (4, "YH003")] and again.clean
    assert stored_payments(estate) == before
    changed = tmp_path / "changed.csv"
    changed.write_text(CHINESE.replace("1200.00", "1300.00") + "3栋2单元501,50,2026-11-23,,现金,XJ004\n", encoding="utf-8")

    third = load(estate, changed)

    assert third.conflicts == [(2, "流水号WX001已存在且内容不同 (未覆盖)")]
    assert third.skipped == [(3, "ZFB002"), (4, "YH003")] and third.loaded == [(5, "XJ004")]
    assert not third.clean
    after = stored_payments(estate)
    assert [row for row in after if row[-1] != "XJ004"] == before  # WX001 still 1200.00
    log = estate.get(PaymentImport, third.import_id)
    assert (log.rows_loaded, log.rows_skipped, log.rows_bad, log.rows_conflicting) == (1, 2, 0, 1)
    assert len(estate.execute(select(PaymentImport)).scalars().all()) == 3


def test_the_import_evaluates_the_promises_of_the_units_paid_for(estate: Session, tmp_path: Path) -> None:
    owner = estate.execute(
        select(models.Owner.id).join(models.Unit).where(models.Unit.code == "3-2-501")
    ).scalar_one()
    promise = PaymentPromise(
        number="CN1",
        sender_id="s1",
        created_at=dt.datetime(2026, 11, 18, 9, tzinfo=SHANGHAI),
        owner_id=owner,
        amount=Decimal("1000"),
        due_date=dt.date(2026, 11, 20),
    )
    estate.add(promise)
    estate.commit()
    path = tmp_path / "payments.csv"
    path.write_text(CHINESE, encoding="utf-8")

    report = load(estate, path)

    assert [(c.promise_id, c.after, c.paid_amount) for c in report.promises_changed] == [
        (promise.id, PromiseStatus.KEPT, Decimal("1000.00"))  # its share: the 200.00 left is for others
    ]
    estate.expire_all()
    assert PromiseStatus(estate.get(PaymentPromise, promise.id).status) is PromiseStatus.KEPT
    # and the arrears shrink: 2460.00 stated on 11-01, 1200.00 paid after
    assert arrears.summary(estate, owner_id=owner, today=NOW.date()).amount == Decimal("1260.00")


def test_unreadable_files_are_refused_whole(estate: Session, tmp_path: Path) -> None:
    missing = tmp_path / "missing.csv"
    missing.write_text("房号,金额,流水号\n3栋2单元501,1,A\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="缴费时间/paid_at"):
        payments_import.import_payments(estate, missing, actor="t")
    other = tmp_path / "payments.txt"
    other.write_text(CHINESE, encoding="utf-8")
    with pytest.raises(ImportFileError, match="only .csv and .xlsx"):
        payments_import.import_payments(estate, other, actor="t")
    estate.rollback()
    assert estate.execute(select(Payment)).scalars().all() == []


@pytest.mark.parametrize(
    ("text", "expected_at"),
    [
        ("2026-11-20 10:15:05", dt.datetime(2026, 11, 20, 10, 15, 5, tzinfo=SHANGHAI)),
        ("2026/11/20 9:05", dt.datetime(2026, 11, 20, 9, 5, tzinfo=SHANGHAI)),
        ("2026.11.20", dt.datetime(2026, 11, 20, tzinfo=SHANGHAI)),
        ("2026年11月20日 14:30", dt.datetime(2026, 11, 20, 14, 30, tzinfo=SHANGHAI)),
        ("2026-11-20T02:00:00+00:00", dt.datetime(2026, 11, 20, 10, 0, tzinfo=SHANGHAI)),
        ("2026-02-30", None),
        ("0001-01-01", None),  # used to overflow converting to UTC
        ("9999-12-31T23:59:59-23:59", None),
        ("1999-12-31 23:59", None),
        ("2028-01-01", None),  # after next year (the test runs in 2026 by the clock below)
        ("yesterday", None),
        ("", None),
    ],
)
def test_paid_at_formats(text: str, expected_at) -> None:
    with clock.frozen(NOW):
        assert payments_import.parse_paid_at(text) == expected_at


@pytest.mark.parametrize(
    ("text", "time_known"),
    [
        ("2026-11-20", False),
        ("2026年11月20日", False),
        ("2026/11/20 00:00", True),
        ("2026-11-20 9:05", True),
        ("2026-11-20T02:00:00+00:00", True),
    ],
)
def test_whether_the_export_gave_a_time(text: str, time_known: bool) -> None:
    with clock.frozen(NOW):
        read = payments_import.read_paid_at(text)
    assert read is not None and read[1] is time_known


def test_implausible_years_are_bad_rows_not_a_traceback(estate: Session, tmp_path: Path) -> None:
    path = tmp_path / "old.csv"
    path.write_text(
        "房号,金额,缴费时间,缴费期间,渠道,流水号\n"
        "3栋2单元501,100,0001-01-01,,微信,OLD1\n"
        "3栋2单元501,100,9999-12-31T23:59:59-23:59,,微信,OLD2\n"
        "3栋2单元501,100,2026-11-20 10:15,,微信,GOOD\n",
        encoding="utf-8",
    )
    report = load(estate, path)
    assert report.loaded == [(4, "GOOD")]
    assert [line for line, _ in report.errors] == [2, 3]
    assert all("缴费时间无法识别" in reason for _, reason in report.errors)


# --- the CLI: exit codes, and a crash half-way leaves nothing -----------------------------------------------


def cli_estate(database_url: str) -> None:
    from bot.db.session import session_scope

    with session_scope(database_url) as session:
        importer.import_arrears(session, DEMO_ARREARS, as_of=dt.datetime(2026, 11, 1, 9, tzinfo=SHANGHAI))


def test_cli_exit_codes(database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    cli_estate(database_url)
    good = tmp_path / "good.csv"
    good.write_text(CHINESE, encoding="utf-8")
    bad = tmp_path / "bad.csv"
    bad.write_text(CHINESE + "9栋9单元999,1,2026-11-20,,微信,X9\n", encoding="utf-8")
    unreadable = tmp_path / "bad.txt"
    unreadable.write_text("x", encoding="utf-8")
    with clock.frozen(NOW):
        assert cli.main(["import-payments", str(good), "--url", database_url]) == 0
        out = capsys.readouterr().out
        assert "good.csv: 3 loaded, 0 already known, 0 conflicting, 0 rejected" in out
        assert cli.main(["import-payments", str(good), "--url", database_url]) == 0
        assert "0 loaded, 3 already known" in capsys.readouterr().out
        assert cli.main(["import-payments", str(bad), "--url", database_url]) == 1
        out = capsys.readouterr().out
        assert "0 loaded, 3 already known, 0 conflicting, 1 rejected" in out and "line 5: 房号不存在" in out
        assert cli.main(["import-payments", str(unreadable), "--url", database_url]) == 2
        assert "only .csv and .xlsx" in capsys.readouterr().err
    with Session(get_engine(database_url)) as session:
        assert stored_payments(session) == expected("WX001", "ZFB002", "YH003")


def test_the_demo_payment_file_loads(database_url: str, capsys: pytest.CaptureFixture) -> None:
    cli_estate(database_url)
    with clock.frozen(NOW):
        assert cli.main(["import-payments", str(DEMO_PAYMENTS), "--url", database_url]) == 0
    assert "payments.csv: 3 loaded" in capsys.readouterr().out


def test_a_crash_half_way_leaves_nothing(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cli_estate(database_url)
    real = payments.record_payment
    calls: List[str] = []

    def failing_on_the_third(session, **kwargs):
        calls.append(kwargs["reference"])
        if len(calls) == 3:
            raise RuntimeError("disk full")
        return real(session, **kwargs)

    monkeypatch.setattr(payments, "record_payment", failing_on_the_third)
    path = tmp_path / "payments.csv"
    path.write_text(CHINESE, encoding="utf-8")
    with clock.frozen(NOW), pytest.raises(RuntimeError, match="disk full"):
        cli.main(["import-payments", str(path), "--url", database_url])
    assert calls == ["WX001", "ZFB002", "YH003"]  # two rows were written before the crash ...
    with Session(get_engine(database_url)) as session:  # ... and rolled back with the import's log row
        assert session.execute(select(Payment)).scalars().all() == []
        assert session.execute(select(PaymentImport)).scalars().all() == []
    monkeypatch.setattr(payments, "record_payment", real)
    with clock.frozen(NOW):
        assert cli.main(["import-payments", str(path), "--url", database_url]) == 0
    with Session(get_engine(database_url)) as session:
        assert stored_payments(session) == expected("WX001", "ZFB002", "YH003")


def test_import_arrears_as_of_sets_when_payments_start_to_count(
    database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert cli.main(["import-arrears", str(DEMO_ARREARS), "--url", database_url, "--as-of", "2026-11-20 18:00"]) == 0
    with Session(get_engine(database_url)) as session:
        stamps = {arrears.as_utc(bill.as_of) for bill in session.execute(select(models.Bill)).scalars()}
    assert stamps == {dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.timezone.utc)}
    assert "as of 2026-11-20T18:00:00+08:00" in capsys.readouterr().out  # the moment used is said
    assert cli.main(["import-arrears", str(DEMO_ARREARS), "--url", database_url, "--as-of", "yesterday"]) == 2
    assert "--as-of 'yesterday'" in capsys.readouterr().err
    for refused in ("0001-01-01", "9999-12-31T23:59:59-23:59"):
        assert cli.main(["import-arrears", str(DEMO_ARREARS), "--url", database_url, "--as-of", refused]) == 2
        assert "--as-of" in capsys.readouterr().err
    with clock.frozen(NOW):
        assert cli.main(["import-arrears", str(DEMO_ARREARS), "--url", database_url, "--as-of", "2026-11-25"]) == 2
        assert "in the future" in capsys.readouterr().err
        assert cli.main(["import-arrears", str(DEMO_ARREARS), "--url", database_url]) == 0
        assert "as of 2026-11-24T12:00:00+08:00" in capsys.readouterr().out
    with Session(get_engine(database_url)) as session:
        stamps = {arrears.as_utc(bill.as_of) for bill in session.execute(select(models.Bill)).scalars()}
    assert stamps == {NOW.astimezone(dt.timezone.utc)}
