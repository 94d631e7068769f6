"""Import the company's arrears list (CSV or XLSX, Chinese or English headers).

Every row is validated first; bad rows are reported with their line number and reason while good rows
load. All writes happen in one transaction, so a crash half-way leaves the database as it was.
Re-importing a file updates owners and arrears instead of duplicating them.

The list is the roster of owners (:func:`bot.owners.ownership.apply_roster`): a unit listed with another
owner's name retires its former owner (audited as ``owner_retired``); the same name with a new phone is a
phone change of the same person. Units the file does not list keep their owners.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from bot import clock
from bot.db.models import Bill, Unit
from bot.owners import ownership, spreadsheet
from bot.owners.units import UnitAddress, parse_unit

HEADERS: Dict[str, Tuple[str, ...]] = {
    "room": ("房号", "room", "房屋", "单元房号"),
    "owner_name": ("业主姓名", "owner_name", "姓名", "业主"),
    "phone": ("手机号", "phone", "手机", "联系电话", "电话"),
    "amount_due": ("欠费金额", "amount_due", "金额", "欠费"),
    "since": ("欠费起始月", "since", "起始月", "欠费起始月份"),
}
_PHONE = ownership.PHONE
_MONTH = re.compile(r"^(20\d\d)[-/.年](\d{1,2})月?$")
OWNER_RETIRED = "owner_retired"  # the audit action of a former owner retired by the roster


@dataclass(frozen=True)
class ArrearsRow:
    """A validated row of the arrears list."""

    line: int
    unit: UnitAddress
    owner_name: str
    phone: str
    amount_due: Decimal
    since: str


class AsOfError(ValueError):
    """``as_of`` refused: in the future, or its year outside 2000..next year."""


@dataclass
class ImportReport:
    """What an import did."""

    created: int = 0
    updated: int = 0
    errors: List[Tuple[int, str]] = field(default_factory=list)
    phone_changed: int = 0  # of the updated: the same person (unit and name) with a new phone
    retired: int = 0  # former owners: their unit was listed with another owner
    as_of: Optional[dt.datetime] = None  # the moment stamped on the bills (UTC)

    @property
    def loaded(self) -> int:
        """Rows written (created or updated)."""
        return self.created + self.updated


def _cell_text(value: object) -> str:
    if hasattr(value, "strftime"):
        return value.strftime("%Y-%m")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _validate(line: int, cells: List[str], columns: Dict[str, int]) -> ArrearsRow:
    def cell(key: str) -> str:
        return spreadsheet.cell(cells, columns, key)

    unit = parse_unit(cell("room"))
    if unit is None:
        raise ValueError(f"房号无法识别: '{cell('room')}'")
    name = cell("owner_name")
    if not name:
        raise ValueError("业主姓名为空")
    phone = re.sub(r"[\s-]", "", cell("phone"))
    if not _PHONE.match(phone):
        raise ValueError(f"手机号格式不对: '{cell('phone')}'")
    try:
        amount = Decimal(cell("amount_due").replace(",", "").replace("元", ""))
    except InvalidOperation:
        raise ValueError(f"欠费金额不是数字: '{cell('amount_due')}'") from None
    if amount < 0:
        raise ValueError("欠费金额不能为负数")
    month = _MONTH.match(cell("since"))
    if not month or not 1 <= int(month[2]) <= 12:
        raise ValueError(f"欠费起始月应为 YYYY-MM: '{cell('since')}'")
    return ArrearsRow(
        line, unit, name, phone, amount.quantize(Decimal("0.01")), f"{month[1]}-{int(month[2]):02d}"
    )


def read_arrears(path: Path) -> Tuple[List[ArrearsRow], List[Tuple[int, str]]]:
    """Valid rows and ``(line, reason)`` for invalid ones; raises :class:`bot.owners.spreadsheet.ImportFileError` for the file."""
    return spreadsheet.read_table(
        path,
        headers=HEADERS,
        required=HEADERS,
        validate=_validate,
        key=lambda row: row.unit.code,
        repeated=lambda first: f"房号与第{first}行重复",
        cell_text=_cell_text,
    )


def import_arrears(session: Session, path: Path, *, as_of: Optional[dt.datetime] = None) -> ImportReport:
    """Load the arrears list into ``session``; the caller's transaction makes it all-or-nothing.

    ``as_of`` (default: the clock's now) is when the list stated the arrears: payments from then on reduce
    them (:mod:`bot.owners.arrears`). With the default, payments made between the company's export and this
    import are taken as not in the list and are NOT subtracted (they are in the company's figure already, or
    not: we cannot tell); pass the export's time to have them subtracted.

    Raises:
        AsOfError: ``as_of`` is in the future (payments not yet made would be counted as already in the
            list), or its year is outside 2000..next year.
    """
    from bot.db import audit
    from bot.owners.payments import FUTURE_TOLERANCE, plausible_year

    if as_of is not None and not plausible_year(as_of):
        raise AsOfError(f"as_of {as_of!r} is not a plausible time")
    stated_at = (as_of or clock.now()).astimezone(dt.timezone.utc)
    if stated_at > clock.now() + FUTURE_TOLERANCE:
        raise AsOfError(f"as_of {stated_at.isoformat()} is in the future")
    rows, errors = read_arrears(path)
    report = ImportReport(errors=errors, as_of=stated_at)
    for row in rows:
        unit = session.execute(select(Unit).where(Unit.code == row.unit.code)).scalar_one_or_none()
        if unit is None:
            unit = Unit(
                code=row.unit.code, building=row.unit.building, entrance=row.unit.entrance, room=row.unit.room
            )
            session.add(unit)
            session.flush()
        outcome = ownership.apply_roster(
            session, unit_id=int(unit.id), name=row.owner_name, phone=row.phone, on=clock.local_date(stated_at)
        )
        report.created += outcome.created
        report.updated += not outcome.created
        report.phone_changed += outcome.phone_changed
        report.retired += len(outcome.retired)
        for retired in outcome.retired:
            audit.record(
                session,
                actor=ownership.IMPORT_ACTOR,
                action=OWNER_RETIRED,
                target=f"owner:{retired.owner_id}",
                detail={
                    "reason": "roster",
                    "unit": str(unit.code),
                    "line": row.line,
                    "new_owner_id": outcome.owner_id,
                    "until": clock.local_date(stated_at).isoformat(),
                    "links_closed": retired.links_closed,
                    "reminders_cancelled": retired.reminders_cancelled,
                    "calls_closed": retired.calls_closed,
                },
            )
        # The list states the current arrears; it replaces what an earlier import said.
        session.execute(delete(Bill).where(Bill.unit_id == unit.id, Bill.amount_paid == 0))
        if row.amount_due > 0:
            session.add(
                Bill(
                    unit_id=unit.id,
                    period=row.since,
                    amount_due=row.amount_due,
                    amount_paid=Decimal("0"),
                    as_of=stated_at,
                )
            )
    session.flush()
    return report
