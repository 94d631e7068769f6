"""Payments received (imported from the company's payment export or recorded by staff) and the imports.

A payment belongs to a unit (the export names rooms, not people) and is known by its ``reference`` (the
company's 流水号), unique: importing the same export twice adds nothing, and a reference that comes back
with different data is a conflict for a person, never an overwrite. Times are stored in UTC
(:func:`bot.clock.utc_now`; SQLite keeps them naive, read back as UTC).

Migration 0011 also adds, on existing tables, what payments change there: ``payment_promises.paid_amount``,
``evaluated_at`` and ``reschedule_count`` (declared on :class:`bot.db.models.PaymentPromise`) and
``bills.as_of`` (when the arrears import stated the figure; :mod:`bot.owners.arrears` explains the rule). Bills
already stored get the migration's time as ``as_of``: their figure predates every payment recorded here.
"""

from __future__ import annotations

import enum

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Enum,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import relationship

from bot.db.models import Base

REFERENCE_LENGTH = 64
VOID_REASON_LENGTH = 255


class PaymentSource(str, enum.Enum):
    """Where a payment row came from."""

    IMPORT = "import"  # a line of the company's payment export (``bot import-payments``)
    STAFF = "staff"  # typed in by a staff member on the owner page


class PaymentImport(Base):
    """One run of ``bot import-payments``: which file, who ran it, and what came of its rows.

    Attributes:
        rows_loaded: New payments written.
        rows_skipped: Rows whose reference was already stored with the same data (a re-import).
        rows_bad: Rows refused (unknown unit, bad amount or date, missing or repeated reference).
        rows_conflicting: Rows whose reference is stored with different data (left as stored).
    """

    __tablename__ = "payment_imports"

    id = Column(Integer, primary_key=True)
    file_name = Column(String(255), nullable=False)
    sha256 = Column(String(64), nullable=False)
    rows_loaded = Column(Integer, nullable=False, default=0)
    rows_skipped = Column(Integer, nullable=False, default=0)
    rows_bad = Column(Integer, nullable=False, default=0)
    rows_conflicting = Column(Integer, nullable=False, default=0)
    imported_by = Column(String(64), nullable=False)
    imported_at = Column(DateTime(timezone=True), nullable=False)


class Payment(Base):
    """Money received for a unit.

    Attributes:
        unit_id: The unit it was paid for.
        amount: Yuan, positive, to the fen.
        paid_at: When it was paid (the export's 缴费时间; a date alone is midnight in the estate's zone).
        period: The export's 缴费期间 as written (e.g. ``2026-01至2026-12``), if any.
        channel: The export's 渠道 (微信, 支付宝, 银行代扣, 现金 ...), if any.
        reference: The company's 流水号 (or a receipt number a staff member typed), unique.
        source: ``import`` or ``staff``.
        recorded_by: The staff username or ``cli:<os user>`` who imported or typed it.
        import_id: The :class:`PaymentImport` that loaded it (imports only).
        created_at: When it was written here.
        voided_at: When a supervisor voided it (then also ``voided_by`` and ``void_reason``); None: it counts.
        time_known: False when the source gave a bare date (``paid_at`` is then the start of that day): such a
            payment counts for a promise made any time that day (:func:`bot.owners.payments.counts_for`).
    """

    __tablename__ = "payments"
    __table_args__ = (
        UniqueConstraint("reference", name="uq_payments_reference"),
        Index("ix_payments_unit_paid", "unit_id", "paid_at"),
    )

    id = Column(Integer, primary_key=True)
    unit_id = Column(Integer, ForeignKey("units.id"), nullable=False)
    amount = Column(Numeric(12, 2), nullable=False)
    paid_at = Column(DateTime(timezone=True), nullable=False)
    period = Column(String(64), nullable=True)
    channel = Column(String(32), nullable=True)
    reference = Column(String(REFERENCE_LENGTH), nullable=False)
    source = Column(
        Enum(PaymentSource, name="payment_source", native_enum=False, length=16, validate_strings=True),
        nullable=False,
    )
    recorded_by = Column(String(64), nullable=False)
    import_id = Column(Integer, ForeignKey("payment_imports.id"), nullable=True)
    created_at = Column(DateTime(timezone=True), nullable=False)
    time_known = Column(Boolean, nullable=False, default=True, server_default=true())
    # A supervisor's void (bot.owners.payments.void_payment): the row stays, with who, when and why, and
    # counts nowhere any more (arrears, promise shares, paid_since).
    voided_at = Column(DateTime(timezone=True), nullable=True)
    voided_by = Column(String(64), nullable=True)
    void_reason = Column(String(VOID_REASON_LENGTH), nullable=True)

    unit = relationship("Unit")


__all__ = ["Payment", "PaymentImport", "PaymentSource", "REFERENCE_LENGTH", "VOID_REASON_LENGTH"]
