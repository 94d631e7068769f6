"""Resolve Chinese date expressions (下周五, 月底, 15号, 过两天, 3月10日 …) to calendar dates.

No library parses Chinese relative dates well under a clean licence, so this is a small rule table.
It works on normalised text (Simplified, Arabic digits; see :mod:`bot.text.normalize`) and never reads
the clock itself: the caller passes the message's own date (from :mod:`bot.clock`), which keeps every rule
testable with a fixed day.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

_WEEKDAYS = {"一": 0, "二": 1, "三": 2, "四": 3, "五": 4, "六": 5, "日": 6, "天": 6, "末": 5}
_WEEKDAYS.update({str(i + 1): i for i in range(7)})
_WEEKDAY_NAMES = ("周一", "周二", "周三", "周四", "周五", "周六", "周日")
_WEEK_WORD = r"(?:周|星期|礼拜|禮拜)"


@dataclass(frozen=True)
class ResolvedTime:
    """A time expression found in a message and what it means.

    Attributes:
        start: offset of the expression in the text that was searched.
        end: offset just past the expression.
        text: the expression as written.
        date: the calendar date it denotes, or ``None`` when it is too vague to pin down.
        earliest: for a vague expression, the first day it can mean (明年11月 → 1 November next year), when
            that is known; it tells a far-off month from one that is merely vague.

    """

    start: int
    end: int
    text: str
    date: Optional[dt.date]
    earliest: Optional[dt.date] = None

    @property
    def ambiguous(self) -> bool:
        """True when the owner named no concrete day (年后, 下个月, 过几天) and should be asked back."""
        return self.date is None


def weekday_name(day: dt.date) -> str:
    """The Chinese weekday name of a date (周一 … 周日)."""
    return _WEEKDAY_NAMES[day.weekday()]


def _month_end(year: int, month: int) -> dt.date:
    return dt.date(year, month, calendar.monthrange(year, month)[1])


def _add_months(year: int, month: int, months: int) -> tuple[int, int]:
    index = year * 12 + (month - 1) + months
    return index // 12, index % 12 + 1


def _safe_date(year: int, month: int, day: int) -> Optional[dt.date]:
    try:
        return dt.date(year, month, day)
    except ValueError:
        return None


def _next_day_of_month(today: dt.date, day: int) -> Optional[dt.date]:
    """The next date (today included) whose day of month is ``day``: 15号 on the 20th is next month's 15th."""
    if not 1 <= day <= 31:
        return None
    year, month = today.year, today.month
    for _ in range(13):
        candidate = _safe_date(year, month, day)
        if candidate and candidate >= today:
            return candidate
        year, month = _add_months(year, month, 1)
    return None


def _month_day(today: dt.date, month: int, day: int, year: Optional[int] = None) -> Optional[dt.date]:
    """M月D日: this year unless already past, then next year (an explicit year wins)."""
    if year is not None:
        return _safe_date(year, month, day)
    candidate = _safe_date(today.year, month, day)
    if candidate is None:
        return None
    if candidate < today:
        return _safe_date(today.year + 1, month, day)
    return candidate


def _week_day(today: dt.date, weeks_ahead: int, weekday: int) -> dt.date:
    monday = today - dt.timedelta(days=today.weekday())
    return monday + dt.timedelta(weeks=weeks_ahead, days=weekday)


def _coming_weekday(today: dt.date, weekday: int) -> dt.date:
    return today + dt.timedelta(days=(weekday - today.weekday()) % 7)


Resolver = Callable[[re.Match, dt.date], Optional[dt.date]]
_YEARS_AHEAD: Dict[str, int] = {"明": 1, "后": 2}


def _weeks_ahead(prefix: str) -> int:
    return {"这": 0, "本": 0, "今个": 0, "这个": 0, "下": 1, "下个": 1, "下下": 2, "下下个": 2}[prefix]


_RULES: List[tuple[re.Pattern, Resolver]] = [
    # Absolute dates first: 2026年3月10日, 2026-03-10, 2026/3/10.
    (
        re.compile(r"(20\d\d)\s*[年\-/.]\s*(\d{1,2})\s*[月\-/.]\s*(\d{1,2})\s*[日号]?"),
        lambda m, t: _month_day(t, int(m[2]), int(m[3]), int(m[1])),
    ),
    # 下个月5号, 下月5日.
    (
        re.compile(r"下个?月\s*(\d{1,2})\s*[号日]"),
        lambda m, t: _safe_date(*_add_months(t.year, t.month, 1), int(m[1])),
    ),
    # 这个月20号 / 本月20日.
    (
        re.compile(r"(?:这个?|本|今个)月\s*(\d{1,2})\s*[号日]"),
        lambda m, t: _safe_date(t.year, t.month, int(m[1])),
    ),
    # 3月10日, 3月10号, 3/10.
    (
        re.compile(r"(?<!\d)(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]?(?!\d)"),
        lambda m, t: _month_day(t, int(m[1]), int(m[2])),
    ),
    (
        re.compile(r"(?<![\d/])(\d{1,2})/(\d{1,2})(?![\d/])"),
        lambda m, t: _month_day(t, int(m[1]), int(m[2])),
    ),
    # Month ends: 月底, 月尾, 这个月底, 下个月底, 年底.
    (
        re.compile(r"下个?月[底尾末]"),
        lambda m, t: _month_end(*_add_months(t.year, t.month, 1)),
    ),
    (
        re.compile(r"(?:(?:这个?|本|今个)月|月)[底尾末]"),
        lambda m, t: _month_end(t.year, t.month),
    ),
    (re.compile(r"(?:今年)?年底|年尾"), lambda m, t: dt.date(t.year, 12, 31)),
    # Weeks: 下周五, 下下周一, 这周三, 本礼拜六, 下个星期天, 周末.
    (
        re.compile(rf"(下下个?|下个?|这个?|本|今个)\s*{_WEEK_WORD}\s*([一二三四五六日天末1-7])"),
        lambda m, t: _week_day(t, _weeks_ahead(m[1]), _WEEKDAYS[m[2]]),
    ),
    (
        re.compile(rf"{_WEEK_WORD}\s*([一二三四五六日天末1-7])"),
        lambda m, t: _coming_weekday(t, _WEEKDAYS[m[1]]),
    ),
    # Relative days.
    (re.compile(r"大后天|大后日"), lambda m, t: t + dt.timedelta(days=3)),
    (re.compile(r"后天|后日"), lambda m, t: t + dt.timedelta(days=2)),
    (re.compile(r"明天|明日|听日|明早|明晚|聽日"), lambda m, t: t + dt.timedelta(days=1)),
    (re.compile(r"今天|今日|今晚|今早|今晚|当天"), lambda m, t: t),
    (
        re.compile(r"过\s*(\d{1,2})\s*天|(\d{1,2})\s*天(?:之?后|以后)"),
        lambda m, t: t + dt.timedelta(days=int(m[1] or m[2])),
    ),
    # 15号, 20日: the next such day of a month.
    (
        re.compile(r"(?<![\d月])(\d{1,2})\s*[号日](?![楼\d])"),
        lambda m, t: _next_day_of_month(t, int(m[1])),
    ),
    # A month of next year (or the year after) with a day, or its end: 明年3月5号, 明年3月底, 明年年底.
    (
        re.compile(r"(明|后)年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*[日号]"),
        lambda m, t: _safe_date(t.year + _YEARS_AHEAD[m[1]], int(m[2]), int(m[3])),
    ),
    (
        re.compile(r"(明|后)年\s*(\d{1,2})\s*月\s*份?\s*[底尾末]"),
        lambda m, t: _month_end(t.year + _YEARS_AHEAD[m[1]], int(m[2])) if 1 <= int(m[2]) <= 12 else None,
    ),
    (
        re.compile(r"(明|后)年\s*年?[底尾末]"),
        lambda m, t: dt.date(t.year + _YEARS_AHEAD[m[1]], 12, 31),
    ),
    # Vague expressions the bot must ask back about (their earliest day, where known, is in _VAGUE_RULES).
    (
        re.compile(
            r"正月(?:初\d{1,2}|\d{1,2})?|上上?个?月|去年|前年|上上?(?:个)?(?:周|星期|礼拜)|年后|过完年|过年后|过年|春节后|节后|月初|月中"
            r"|下(?:个)?(?:周|星期|礼拜)(?![一二三四五六日天末1-7])|这两天|过几天|过段时间|年前"
        ),
        lambda m, t: None,
    ),
]


def _month_start(year: int, month: int, today: dt.date) -> Optional[dt.date]:
    """The first day of a month, or today when the month has already begun."""
    if not 1 <= month <= 12:
        return None
    first = dt.date(year, month, 1)
    return first if first > today else today


def _coming_month(today: dt.date, month: int) -> Optional[dt.date]:
    """A month named without a year: this year's unless it is over, then next year's."""
    return _month_start(today.year + (1 if month < today.month else 0), month, today)


# Expressions that name no single day but do say when they start: a month (11月, 明年11月, 2027年10月份),
# next month, next year. The earliest day lets a promise "明年11月" be answered with the 90-day rule.
_VAGUE_RULES: List[tuple[re.Pattern, Resolver]] = [
    (
        re.compile(r"(20\d\d)\s*年\s*(\d{1,2})\s*月\s*份?(?:[初中]|上旬|中旬|下旬)?(?!\s*\d)"),
        lambda m, t: _month_start(int(m[1]), int(m[2]), t),
    ),
    (
        re.compile(r"(明|后)年\s*(\d{1,2})\s*月\s*份?(?:[初中]|上旬|中旬|下旬)?(?!\s*\d)"),
        lambda m, t: _month_start(t.year + _YEARS_AHEAD[m[1]], int(m[2]), t),
    ),
    (
        re.compile(r"(明|后)年(?:初|上半年|下半年)?"),
        lambda m, t: dt.date(t.year + _YEARS_AHEAD[m[1]], 1, 1),
    ),
    (
        re.compile(r"(?<!\d)(\d{1,2})\s*月\s*份?(?![\d底尾末])(?:[初中]|上旬|中旬|下旬)?"),
        lambda m, t: _coming_month(t, int(m[1])),
    ),
    (
        re.compile(r"下个?月(?:[初中]|上旬|中旬|下旬)?"),
        lambda m, t: dt.date(*_add_months(t.year, t.month, 1), 1),
    ),
]


def find_times(text: str, today: dt.date) -> List[ResolvedTime]:
    """Find and resolve every time expression in normalised ``text``, leftmost-longest, no overlaps."""
    candidates: List[ResolvedTime] = []
    for pattern, resolve in _RULES:
        for match in pattern.finditer(text):
            candidates.append(ResolvedTime(match.start(), match.end(), match.group(), resolve(match, today)))
    for pattern, earliest in _VAGUE_RULES:
        for match in pattern.finditer(text):
            candidates.append(ResolvedTime(match.start(), match.end(), match.group(), None, earliest(match, today)))
    candidates.sort(key=lambda r: (r.start, -(r.end - r.start)))
    chosen: List[ResolvedTime] = []
    for candidate in candidates:
        if chosen and candidate.start < chosen[-1].end:
            continue
        chosen.append(candidate)
    return chosen


def resolve_time(expression: str, today: dt.date) -> Optional[ResolvedTime]:
    """Resolve a single expression; ``None`` when it holds no time expression at all."""
    found = find_times(expression, today)
    return found[0] if found else None
