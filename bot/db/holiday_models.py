"""Public holiday schedules loaded as data, one per year (the State Council's notice for that year).

``chinesecalendar`` carries the years announced before its release; a year loaded here wins over it. The
reminder policy reads both through :mod:`bot.reminders.holidays`.
"""

from __future__ import annotations

import enum

from sqlalchemy import Column, Date, DateTime, Enum, ForeignKey, Integer, String

from bot import clock
from bot.db.models import Base


class HolidayKind(str, enum.Enum):
    """What a listed day is: a public holiday, or a weekend day worked in exchange (调休上班)."""

    HOLIDAY = "holiday"
    WORKDAY = "workday"


class HolidaySchedule(Base):
    """One year's schedule as loaded: where it came from, who loaded it and when."""

    __tablename__ = "holiday_schedules"

    year = Column(Integer, primary_key=True, autoincrement=False)
    source = Column(String(200), nullable=False)  # the notice, e.g. 国办发明电〔2026〕号 of its date
    loaded_by = Column(String(64), nullable=False)
    loaded_at = Column(DateTime(timezone=True), nullable=False, default=clock.utc_now)


class HolidayDay(Base):
    """A listed day of a loaded year."""

    __tablename__ = "holiday_days"

    day = Column(Date, primary_key=True)
    year = Column(Integer, ForeignKey("holiday_schedules.year", ondelete="CASCADE"), nullable=False, index=True)
    kind = Column(Enum(HolidayKind, name="holiday_kind", native_enum=False, length=16, validate_strings=True), nullable=False)
    name = Column(String(32), nullable=False)  # 元旦, 春节, 清明节, 劳动节, 端午节, 中秋节, 国庆节
