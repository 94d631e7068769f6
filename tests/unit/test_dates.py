import datetime as dt

import pytest

from bot import clock
from bot.text.dates import find_times, resolve_time, weekday_name

MONDAY = dt.date(2026, 11, 23)
SATURDAY = dt.date(2026, 11, 28)
NEW_YEARS_EVE = dt.date(2026, 12, 31)
LEAP_FEB = dt.date(2028, 2, 10)


@pytest.mark.parametrize(
    ("today", "text", "expected"),
    [
        # weekdays
        (MONDAY, "下周五", dt.date(2026, 12, 4)),
        (MONDAY, "下星期一", dt.date(2026, 11, 30)),
        (MONDAY, "下个礼拜天", dt.date(2026, 12, 6)),
        (MONDAY, "下下周一", dt.date(2026, 12, 7)),
        (MONDAY, "这周五", dt.date(2026, 11, 27)),
        (MONDAY, "本周日", dt.date(2026, 11, 29)),
        (MONDAY, "周五", dt.date(2026, 11, 27)),
        (MONDAY, "星期一", MONDAY),
        (SATURDAY, "周五", dt.date(2026, 12, 4)),
        (SATURDAY, "下周五", dt.date(2026, 12, 4)),
        (MONDAY, "周末", dt.date(2026, 11, 28)),
        (MONDAY, "下周5", dt.date(2026, 12, 4)),
        # month ends
        (MONDAY, "月底", dt.date(2026, 11, 30)),
        (MONDAY, "这个月底", dt.date(2026, 11, 30)),
        (MONDAY, "月尾", dt.date(2026, 11, 30)),
        (MONDAY, "下个月底", dt.date(2026, 12, 31)),
        (NEW_YEARS_EVE, "下个月底", dt.date(2027, 1, 31)),
        (LEAP_FEB, "月底", dt.date(2028, 2, 29)),
        (dt.date(2027, 1, 15), "下个月底", dt.date(2027, 2, 28)),
        (MONDAY, "年底", dt.date(2026, 12, 31)),
        # day of month: the next such day
        (MONDAY, "15号", dt.date(2026, 12, 15)),
        (MONDAY, "25号", dt.date(2026, 11, 25)),
        (MONDAY, "23号", MONDAY),
        (MONDAY, "31号", dt.date(2026, 12, 31)),
        (NEW_YEARS_EVE, "5号", dt.date(2027, 1, 5)),
        (dt.date(2027, 1, 31), "30号", dt.date(2027, 3, 30)),
        (MONDAY, "下个月5号", dt.date(2026, 12, 5)),
        (NEW_YEARS_EVE, "下个月10号", dt.date(2027, 1, 10)),
        (MONDAY, "这个月28号", dt.date(2026, 11, 28)),
        # month and day: this year unless past
        (MONDAY, "3月10日", dt.date(2027, 3, 10)),
        (MONDAY, "12月5号", dt.date(2026, 12, 5)),
        (MONDAY, "12/5", dt.date(2026, 12, 5)),
        (MONDAY, "2027年1月8日", dt.date(2027, 1, 8)),
        (MONDAY, "2026-12-01", dt.date(2026, 12, 1)),
        # relative days
        (MONDAY, "今天", MONDAY),
        (MONDAY, "明天", dt.date(2026, 11, 24)),
        (MONDAY, "听日", dt.date(2026, 11, 24)),
        (MONDAY, "后天", dt.date(2026, 11, 25)),
        (MONDAY, "大后天", dt.date(2026, 11, 26)),
        (MONDAY, "过2天", dt.date(2026, 11, 25)),
        (NEW_YEARS_EVE, "明天", dt.date(2027, 1, 1)),
        (MONDAY, "10天后", dt.date(2026, 12, 3)),
    ],
)
def test_resolves(today: dt.date, text: str, expected: dt.date) -> None:
    found = resolve_time(text, today)
    assert found is not None
    assert found.date == expected
    assert not found.ambiguous


@pytest.mark.parametrize("text", ["年后", "过完年", "下个月", "下周", "月初", "过几天", "下个月中", "正月15", "上个月", "去年", "3月"])
def test_vague_expressions_are_ambiguous(text: str) -> None:
    found = resolve_time(text, MONDAY)
    assert found is not None
    assert found.ambiguous
    assert found.date is None


def test_impossible_dates_are_ambiguous_not_wrong() -> None:
    found = resolve_time("2月30日", MONDAY)
    assert found is not None and found.ambiguous


def test_finds_spans_in_a_sentence() -> None:
    text = "我月底前交,实在不行下周五"
    found = find_times(text, MONDAY)
    assert [(f.text, f.date) for f in found] == [
        ("月底", dt.date(2026, 11, 30)),
        ("下周五", dt.date(2026, 12, 4)),
    ]
    assert text[found[1].start : found[1].end] == "下周五"


def test_longest_expression_wins() -> None:
    (found,) = find_times("下个月5号交", MONDAY)
    assert found.text == "下个月5号"


def test_no_time_in_room_numbers_or_durations() -> None:
    assert find_times("5号楼1203", MONDAY) == []
    assert find_times("2个月没交", MONDAY) == []


def test_today_is_the_estates_date_from_the_one_clock() -> None:
    late_utc = dt.datetime(2026, 11, 23, 17, 30, tzinfo=dt.timezone.utc)
    with clock.frozen(late_utc):
        assert clock.today() == dt.date(2026, 11, 24)
        assert clock.now().utcoffset() == dt.timedelta(hours=8)
    assert clock.local_date(dt.datetime(2026, 11, 23, 1, 0)) == dt.date(2026, 11, 23)


def test_weekday_names() -> None:
    assert weekday_name(MONDAY) == "周一"
    assert weekday_name(dt.date(2026, 11, 29)) == "周日"
