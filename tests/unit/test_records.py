"""Services over the owner database, on SQLite and PostgreSQL."""

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.db import models
from bot.owners import arrears, identity, importer
from bot.owners.spreadsheet import ImportFileError
from bot.owners.units import parse_unit

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "demo" / "arrears.csv"


def load_demo(session) -> None:
    importer.import_arrears(session, DEMO)
    session.commit()


def count(session, model) -> int:
    return session.execute(select(func.count()).select_from(model)).scalar_one()


def test_import_loads_the_demo_estate(session) -> None:
    report = importer.import_arrears(session, DEMO)
    session.commit()
    assert (report.created, report.updated, report.errors) == (6, 0, [])
    assert count(session, models.Unit) == 6 and count(session, models.Owner) == 6
    assert count(session, models.Bill) == 5  # A座808 owes nothing


def test_reimport_updates_without_duplicating(session, tmp_path: Path) -> None:
    load_demo(session)
    changed = tmp_path / "arrears.csv"
    changed.write_text(
        DEMO.read_text(encoding="utf-8").replace("王建国,13812346688,2460.00", "王建国,13812346688,1000.00"),
        encoding="utf-8",
    )
    report = importer.import_arrears(session, changed)
    session.commit()
    assert (report.created, report.updated) == (0, 6)
    assert count(session, models.Owner) == 6 and count(session, models.Bill) == 5
    owner = identity.verify(session, room="3栋2单元501", phone_tail="6688")
    assert arrears.summary(session, owner_id=owner.owner_id, today=dt.date(2026, 11, 23)).amount == Decimal(
        "1000.00"
    )


def test_bad_rows_are_reported_and_good_rows_load(session, tmp_path: Path) -> None:
    path = tmp_path / "mixed.csv"
    path.write_text(
        "room,owner_name,phone,amount_due,since\n"
        "3栋2单元501,王建国,13812346688,100,2026-01\n"
        "not a room,某人,13812340000,100,2026-01\n"
        "5号楼1203,张伟,12345,100,2026-01\n"
        "A座808,陈静,18612348080,abc,2026-01\n"
        "12-3-402,刘洋,15098764321,10,2026-13\n"
        "3栋2单元501,王建国,13812346688,100,2026-01\n",
        encoding="utf-8",
    )
    report = importer.import_arrears(session, path)
    session.commit()
    assert report.created == 1
    assert [line for line, _ in report.errors] == [3, 4, 5, 6, 7]
    assert "房号" in report.errors[0][1] and "手机号" in report.errors[1][1] and "重复" in report.errors[4][1]


def test_xlsx_with_chinese_headers(session, tmp_path: Path) -> None:
    from openpyxl import Workbook

    workbook = Workbook()
    sheet = workbook.active
    sheet.append(["房号", "业主姓名", "手机号", "欠费金额", "欠费起始月"])
    sheet.append(["3栋2单元501", "王建国", 13812346688, 2460, "2026-03"])
    sheet.append(["5号楼1203", "张伟", "13700001111", 3600.5, dt.datetime(2025, 12, 1)])
    path = tmp_path / "arrears.xlsx"
    workbook.save(path)
    report = importer.import_arrears(session, path)
    session.commit()
    assert (report.created, report.errors) == (2, [])
    owner = identity.verify(session, room="5号楼1203", phone_tail="1111")
    summary = arrears.summary(session, owner_id=owner.owner_id, today=dt.date(2026, 11, 23))
    assert (summary.amount, summary.since, summary.months) == (Decimal("3600.50"), "2025-12", 12)


def test_missing_columns_reject_the_file(session, tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("room,name\n3栋2单元501,王\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="missing columns"):
        importer.import_arrears(session, path)


def test_a_crash_half_way_leaves_nothing_written(database_url: str, monkeypatch) -> None:
    from bot.db.session import session_scope

    calls = {"n": 0}
    original = models.Bill.__init__

    def failing_bill(self, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise RuntimeError("disk full")
        original(self, **kwargs)

    monkeypatch.setattr(models.Bill, "__init__", failing_bill)
    with pytest.raises(RuntimeError):
        with session_scope(database_url) as session:
            importer.import_arrears(session, DEMO)
    with session_scope(database_url) as session:
        assert count(session, models.Owner) == 0 and count(session, models.Unit) == 0


def test_verify_needs_room_and_matching_phone_tail(session) -> None:
    load_demo(session)
    owner = identity.verify(session, room="三栋二单元五零一", phone_tail="6688")
    assert owner is not None and owner.name == "王建国" and owner.masked_phone == "138****6688"
    assert identity.verify(session, room="3栋2单元501", phone_tail="1234") is None
    assert identity.verify(session, room="3栋2单元502", phone_tail="6688") is None
    assert identity.verify(session, room="9栋9单元999", phone_tail="6688") is None
    assert identity.verify(session, room="3栋2单元501", phone_tail="") is None


def test_conversation_link_remembers_the_owner(session) -> None:
    load_demo(session)
    owner = identity.verify(session, room="A座808", phone_tail="8080")
    identity.link_conversation(session, channel="wechat", sender_id="openid-1", owner_id=owner.owner_id)
    session.commit()
    assert identity.linked_owner(session, channel="wechat", sender_id="openid-1") == owner
    assert identity.linked_owner(session, channel="wechat", sender_id="openid-2") is None


def test_arrears_summary(session) -> None:
    load_demo(session)
    owner = identity.verify(session, room="3栋2单元501", phone_tail="6688")
    summary = arrears.summary(session, owner_id=owner.owner_id, today=dt.date(2026, 11, 23))
    assert (summary.amount, summary.since, summary.months) == (Decimal("2460.00"), "2026-03", 9)
    nothing = identity.verify(session, room="A座808", phone_tail="8080")
    assert arrears.summary(session, owner_id=nothing.owner_id, today=dt.date(2026, 11, 23)).amount == 0


@pytest.mark.parametrize(
    ("raw", "code"),
    [("3栋2单元501", "3-2-501"), ("5号楼1203", "5-1203"), ("A座808", "A-808"), ("12-3-402", "12-3-402")],
)
def test_unit_codes(raw: str, code: str) -> None:
    assert parse_unit(raw).code == code


def test_phone_masking() -> None:
    assert models.mask_phone("13812346688") == "138****6688"
    assert models.mask_phone("6688") == "6688"
