"""The one spreadsheet reader both importers use (bot/owners/spreadsheet.py), through the arrears importer."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from bot.owners.importer import read_arrears
from bot.owners.spreadsheet import ImportFileError

TABLE = (
    "欠费起始月,业主姓名,房号,手机号,欠费金额\n"  # any column order
    "2026-03,王建国,3栋2单元501,138-1234-6688,\"2,460.00\"\n"
    "\n"  # a blank row is skipped, its line still counted
    "2026-09,李秀英,3栋2单元501,13912341234,820\n"  # the same unit again
    "2026-13,张伟,5栋1单元101,13700001111,100\n"  # no such month
    "2026-01,赵敏\n"  # a short row
)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk"])
def test_a_table_in_any_of_the_companys_encodings_reads_the_same(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "arrears.csv"
    path.write_bytes(TABLE.encode(encoding))
    rows, errors = read_arrears(path)
    assert [(row.line, row.unit.code, row.owner_name, row.phone, row.amount_due, row.since) for row in rows] == [
        (2, "3-2-501", "王建国", "13812346688", Decimal("2460.00"), "2026-03"),
    ]
    assert [line for line, _ in errors] == [4, 5, 6]
    assert errors[0][1] == "房号与第2行重复"
    assert "YYYY-MM" in errors[1][1]


def test_files_that_are_not_a_table_are_refused_whole(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="is empty"):
        read_arrears(empty)
    wrong = tmp_path / "arrears.txt"
    wrong.write_text(TABLE, encoding="utf-8")
    with pytest.raises(ImportFileError, match="only .csv and .xlsx"):
        read_arrears(wrong)
    missing = tmp_path / "missing.csv"
    missing.write_text("房号,业主姓名\n3栋2单元501,王建国\n", encoding="utf-8")
    with pytest.raises(ImportFileError, match="手机号/phone"):
        read_arrears(missing)
    broken = tmp_path / "broken.xlsx"
    broken.write_bytes(b"not a workbook")
    with pytest.raises(ImportFileError, match="not a readable XLSX"):
        read_arrears(broken)
