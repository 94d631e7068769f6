"""Import the company's payment export (CSV or XLSX, Chinese or English headers): ``bot import-payments``.

Columns (any order; the first row is the header): 房号/room, 金额/amount, 缴费时间/paid_at, 流水号/reference,
and optionally 缴费期间/period and 渠道/channel. CSV files may be UTF-8 (with or without BOM) or GBK (the
encoding Excel on a Chinese Windows writes).

* Idempotent on the reference (流水号): a row whose reference is stored with the same data is skipped; with
  different data it is a *conflict*, reported and left as stored (a person decides which is right).
* Bad rows (unknown unit, an amount that is not a positive number to the fen, an unreadable or future time,
  a missing reference, a reference repeated within the file) are reported with their line number and reason,
  while the good rows load.
* Everything is written in the caller's transaction (the CLI's one ``session_scope``), so a crash half-way
  leaves the database as it was. Each run is logged in ``payment_imports`` (file, SHA-256, counts, who, when).
* Afterwards the promises of the units paid for are evaluated (:func:`bot.owners.payments.evaluate_promises`).

A time without a zone is the estate's (``TIMEZONE``); a date alone is the start of that day.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from sqlalchemy.orm import Session

from bot import clock, wording
from bot.db.payment_models import PaymentImport, PaymentSource
from bot.owners import payments, spreadsheet
from bot.owners.units import parse_unit

HEADERS: Dict[str, Tuple[str, ...]] = {
    "room": ("房号", "room", "房屋", "单元房号"),
    "amount": ("金额", "amount", "缴费金额", "实收金额"),
    "paid_at": ("缴费时间", "paid_at", "缴费日期", "支付时间"),
    "period": ("缴费期间", "period", "所属期间"),
    "channel": ("渠道", "channel", "缴费渠道", "支付方式"),
    "reference": ("流水号", "reference", "交易流水号", "单号"),
}
REQUIRED = ("room", "amount", "paid_at", "reference")
_DATE_TIME = re.compile(
    r"^(?P<y>\d{4})-(?P<m>\d{1,2})-(?P<d>\d{1,2})(?:\s+(?P<H>\d{1,2}):(?P<M>\d{2})(?::(?P<S>\d{2}))?)?$"
)

# Why a row was refused, for the person reading the summary: staff-facing wording, in data/wording.yml
# (section payments_import), keyed by the PaymentError code or by the file-level check.
REASON_CODES = ("unknown_unit", "bad_amount", "not_positive", "bad_time", "future", "no_reference", "too_long")
# A reference a spreadsheet turned into a number in scientific notation (4.2E+18) has lost its last digits.
_SCIENTIFIC = re.compile(r"^[+-]?\d+(?:\.\d+)?[eE][+-]?\d+$")
# Floats at or above this cannot hold every digit of an integer (2**53 ~ 9.0e15): a long 流水号 read from an
# XLSX number cell is shown as the spreadsheet shows it, in scientific notation, and refused.
_EXACT_FLOAT_LIMIT = 1e15


def reason(code: str, **fields: object) -> str:
    """The staff-facing wording of a refusal (``payments_import.<code>`` in data/wording.yml)."""
    return wording.text(f"payments_import.{code}", **fields)



@dataclass(frozen=True)
class PaymentRow:
    """A row that passed the file-level checks."""

    line: int
    room: str
    amount: str
    paid_at: dt.datetime
    period: Optional[str]
    channel: Optional[str]
    reference: str
    time_known: bool = True


@dataclass
class PaymentImportReport:
    """What an import did.

    Attributes:
        file_name: The file's name.
        sha256: The file's SHA-256.
        loaded: ``(line, reference)`` of new payments.
        skipped: ``(line, reference)`` of rows already stored with the same data.
        conflicts: ``(line, reason)`` of rows whose reference is stored with different data.
        errors: ``(line, reason)`` of bad rows.
        import_id: The ``payment_imports`` row.
        promises_changed: Promises whose outcome changed afterwards.
    """

    file_name: str
    sha256: str
    loaded: List[Tuple[int, str]] = field(default_factory=list)
    skipped: List[Tuple[int, str]] = field(default_factory=list)
    conflicts: List[Tuple[int, str]] = field(default_factory=list)
    errors: List[Tuple[int, str]] = field(default_factory=list)
    import_id: Optional[int] = None
    promises_changed: List[payments.PromiseChange] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        """No bad row and no conflict."""
        return not self.errors and not self.conflicts


def import_payments(session: Session, path: Path, *, actor: str) -> PaymentImportReport:
    """Load the payment export into ``session``; the caller's transaction makes it all-or-nothing.

    Args:
        session: The caller's unit of work (it commits, or rolls back on an exception).
        path: A ``.csv`` or ``.xlsx`` file.
        actor: Who imports it (``cli:<os user>`` or a staff username).

    Returns:
        The report.

    Raises:
        ImportFileError: The file is not a payment export (suffix, encoding, missing columns, empty).
    """
    data = path.read_bytes()
    rows, errors = read_payments(path, data)
    report = PaymentImportReport(file_name=path.name, sha256=hashlib.sha256(data).hexdigest(), errors=errors)
    log = PaymentImport(
        file_name=path.name[:255],
        sha256=report.sha256,
        rows_loaded=0,
        rows_skipped=0,
        rows_bad=0,
        rows_conflicting=0,
        imported_by=actor[:64],
        imported_at=clock.utc_now(),
    )
    session.add(log)
    session.flush()
    report.import_id = int(log.id)
    units: set[int] = set()
    for row in rows:
        try:
            payment = payments.record_payment(
                session,
                unit=row.room,
                amount=row.amount,
                paid_at=row.paid_at,
                period=row.period,
                channel=row.channel,
                reference=row.reference,
                actor=actor,
                source=PaymentSource.IMPORT,
                import_id=report.import_id,
                evaluate=False,
                time_known=row.time_known,
            )
        except payments.DuplicateReference as duplicate:
            if duplicate.same:
                report.skipped.append((row.line, row.reference))
            else:
                report.conflicts.append((row.line, reason("conflict", reference=row.reference)))
            continue
        except payments.PaymentError as error:
            report.errors.append((row.line, reason(error.code) if error.code in REASON_CODES else error.code))
            continue
        units.add(int(payment.unit_id))
        report.loaded.append((row.line, row.reference))
    report.errors.sort()
    log.rows_loaded = len(report.loaded)
    log.rows_skipped = len(report.skipped)
    log.rows_bad = len(report.errors)
    log.rows_conflicting = len(report.conflicts)
    if units:
        report.promises_changed = payments.evaluate_promises(session, today=clock.today(), unit_ids=sorted(units))
    session.flush()
    return report


def read_payments(path: Path, data: Optional[bytes] = None) -> Tuple[List[PaymentRow], List[Tuple[int, str]]]:
    """Rows that passed the file-level checks and ``(line, reason)`` for those that did not.

    The database checks (the unit exists, the reference is new) happen in :func:`import_payments`.

    Raises:
        ImportFileError: The file is not a payment export.
    """
    return spreadsheet.read_table(
        path,
        headers=HEADERS,
        required=REQUIRED,
        validate=_validate,
        key=lambda row: row.reference,
        repeated=lambda first: reason("repeated_reference", line=first),
        cell_text=_cell_text,
        data=data,
    )


# --- internals ------------------------------------------------------------------------------------------


def _cell_text(value: object) -> str:
    if isinstance(value, dt.datetime):
        # Excel keeps a date cell as midnight: that is a bare date, not a payment at 00:00.
        if value.time() == dt.time(0):
            return value.strftime("%Y-%m-%d")
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.strftime("%Y-%m-%d")
    if isinstance(value, float):
        if abs(value) >= _EXACT_FLOAT_LIMIT:
            return f"{value:.6G}"  # as the spreadsheet shows it; a reference like this is refused
        if value.is_integer():
            return str(int(value))
        if abs(value - round(value, 2)) < payments.FLOAT_SLACK:
            return f"{round(value, 2):.2f}"  # 1234.5600000000002 is 1234.56
    return str(value).strip()


def _validate(line: int, cells: List[str], columns: Dict[str, int]) -> PaymentRow:
    def cell(key: str) -> str:
        return spreadsheet.cell(cells, columns, key)

    if parse_unit(cell("room")) is None:
        raise ValueError(reason("bad_room", value=cell("room")))
    try:
        payments.parse_amount(cell("amount"))
    except payments.PaymentError as error:
        raise ValueError(f"{reason(error.code)}: '{cell('amount')}'") from None
    read = read_paid_at(cell("paid_at"))
    if read is None:
        raise ValueError(reason("bad_paid_at", value=cell("paid_at")))
    paid_at, time_known = read
    reference = cell("reference")
    if not reference:
        raise ValueError(reason("no_reference"))
    if _SCIENTIFIC.match(reference):
        raise ValueError(reason("scientific_reference", value=reference))
    return PaymentRow(
        line=line,
        room=cell("room"),
        amount=cell("amount"),
        paid_at=paid_at,
        period=cell("period") or None,
        channel=cell("channel") or None,
        reference=reference,
        time_known=time_known,
    )


def parse_paid_at(text: str) -> Optional[dt.datetime]:
    """2026-11-20 14:30[:05], 2026/11/20, 2026.11.20, 2026年11月20日 14:30, ISO 8601 (with an offset) → aware.

    A time without a zone is the estate's; a date alone is the start of that day. None when unreadable or
    outside the years 2000..next year (:func:`bot.owners.payments.plausible_year`).
    """
    read = read_paid_at(text)
    return read[0] if read is not None else None


def read_paid_at(text: str) -> Optional[Tuple[dt.datetime, bool]]:
    """:func:`parse_paid_at` and whether the text gave a time of day (False: a bare date)."""
    compact = text.strip()
    if not compact:
        return None
    simple = re.sub(r"\s+", " ", compact.replace("年", "-").replace("月", "-").replace("日", " "))
    simple = simple.replace("/", "-").replace(".", "-").strip()
    match = _DATE_TIME.match(simple)
    try:
        if match:
            parts = {key: int(value) if value else 0 for key, value in match.groupdict().items()}
            moment = dt.datetime(parts["y"], parts["m"], parts["d"], parts["H"], parts["M"], parts["S"])
            time_known = match.group("H") is not None
        else:
            moment = dt.datetime.fromisoformat(compact)
            time_known = "T" in compact.upper() or ":" in compact
    except ValueError:
        return None
    if not payments.plausible_year(moment):
        return None
    return (moment if moment.tzinfo is not None else moment.replace(tzinfo=clock.zone())), time_known
