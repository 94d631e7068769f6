"""Reading the company's spreadsheets (CSV or XLSX) row by row: one reader for every importer.

An importer names its headers (Chinese or English, any order), the columns it needs, how a cell that is not
text reads, how one row is checked, and what makes two rows the same; :func:`read_table` does the rest: rows
are numbered as the file's lines (the header is line 1), blank rows are skipped, a row that fails its check
or repeats an earlier one becomes ``(line, reason)``, and a file that is not a table at all raises
:class:`ImportFileError`. CSV may be UTF-8 (with or without BOM) or GBK (read as GB18030).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import (
    Callable,
    Dict,
    Hashable,
    Iterable,
    Iterator,
    List,
    Mapping,
    Optional,
    Sequence,
    Tuple,
    TypeVar,
)

Row = TypeVar("Row")

ENCODINGS = ("utf-8-sig", "gb18030")  # GB18030 reads every GBK file, and GB2312 ones


class ImportFileError(ValueError):
    """The file cannot be read as the expected table at all (format, encoding or headers)."""


def read_table(
    path: Path,
    *,
    headers: Mapping[str, Sequence[str]],
    required: Iterable[str],
    validate: Callable[[int, List[str], Dict[str, int]], Row],
    key: Callable[[Row], Hashable],
    repeated: Callable[[int], str],
    cell_text: Callable[[object], str],
    data: Optional[bytes] = None,
) -> Tuple[List[Row], List[Tuple[int, str]]]:
    """The rows that passed ``validate`` and ``(line, reason)`` for those that did not.

    Args:
        path: The file (its suffix says the format; its bytes are read unless ``data`` is given).
        headers: Column key → the header names that mean it (compared case-insensitively).
        required: The keys a file must have.
        validate: Checks one row's cells and returns the row, or raises ``ValueError`` with the reason.
        key: What makes two rows the same (the unit, the bank reference); a repeat is refused.
        repeated: The reason for a repeat, given the line of the first.
        cell_text: How a spreadsheet cell that is not text reads (a date, a number).
        data: The file's bytes, when already read.

    Raises:
        ImportFileError: The format is not CSV or XLSX, the file is empty or unreadable, or a column is missing.
    """
    rows: List[Row] = []
    errors: List[Tuple[int, str]] = []
    columns: Optional[Dict[str, int]] = None
    seen: Dict[Hashable, int] = {}
    for line, cells in _lines(path, data if data is not None else path.read_bytes(), cell_text):
        if not any(cells):
            continue
        if columns is None:
            columns = _columns(cells, headers, required)
            continue
        try:
            row = validate(line, cells, columns)
        except ValueError as error:
            errors.append((line, str(error)))
            continue
        identity = key(row)
        if identity in seen:
            errors.append((line, repeated(seen[identity])))
            continue
        seen[identity] = line
        rows.append(row)
    if columns is None:
        raise ImportFileError(f"{path.name} is empty")
    return rows, errors


def cell(cells: Sequence[str], columns: Mapping[str, int], key: str) -> str:
    """The stripped text of column ``key`` in a row, or ``""`` when the row is short or has no such column."""
    index = columns.get(key)
    return cells[index].strip() if index is not None and index < len(cells) else ""


def _lines(path: Path, data: bytes, cell_text: Callable[[object], str]) -> Iterator[Tuple[int, List[str]]]:
    """Yield ``(line number, cells)`` including the header row at line 1."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        for number, cells in enumerate(csv.reader(io.StringIO(_decode(path, data), newline="")), start=1):
            yield number, [text.strip() for text in cells]
    elif suffix in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        try:
            workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
        except Exception as error:  # openpyxl raises several kinds for a file that is not a workbook
            raise ImportFileError(f"{path.name}: not a readable XLSX file ({error})") from None
        try:
            for number, values in enumerate(workbook.active.iter_rows(values_only=True), start=1):
                yield number, ["" if value is None else cell_text(value) for value in values]
        finally:
            workbook.close()
    else:
        raise ImportFileError(f"{path.name}: only .csv and .xlsx files can be imported")


def _decode(path: Path, data: bytes) -> str:
    for encoding in ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise ImportFileError(f"{path.name}: neither UTF-8 nor GBK")


def _columns(header: Sequence[str], headers: Mapping[str, Sequence[str]], required: Iterable[str]) -> Dict[str, int]:
    normalized = [text.strip().lower() for text in header]
    columns: Dict[str, int] = {}
    for key, names in headers.items():
        for name in names:
            if name.lower() in normalized:
                columns[key] = normalized.index(name.lower())
                break
    missing = [f"{headers[key][0]}/{key}" for key in required if key not in columns]
    if missing:
        raise ImportFileError(f"missing columns: {', '.join(missing)}")
    return columns
