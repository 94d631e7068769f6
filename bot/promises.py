"""Wording around an owner's payment date."""

from __future__ import annotations

import datetime as dt
from typing import Optional

from bot.text.dates import weekday_name

PAST_DATE = "这个日子已经过去了，麻烦再说一个之后的日期。"
TOO_FAR = "这个日子有点远了，物业费最多可以约定在三个月内交清，麻烦换一个近一些的日子。"
ASK_AMOUNT_AGAIN = "没听清金额，麻烦说一个具体的数，比如“1200元”。"
DEFAULT_FOLLOW_UP = "您看哪一天方便把物业费交上？说个具体日子就行，比如“下周五”或“月底前”。"


def format_date(day: dt.date) -> str:
    """E.g. 12月4日（周五）; the year is added when it is not the current one."""
    return f"{day.month}月{day.day}日（{weekday_name(day)}）"


def acknowledge_date(day: dt.date, today: dt.date, amount: Optional[float] = None) -> str:
    """Repeat the owner's date (and amount) back, so a misheard date is caught at once."""
    when = format_date(day) if day.year == today.year else f"{day.year}年{format_date(day)}"
    if day < today:
        return f"您说的{when}已经过去了，麻烦再说一个之后的日期。"
    money = f"{amount:g}元" if amount else "物业费"
    return f"好的，您打算在{when}交{money}。到时可以在物业微信公众号、支付宝或物业服务中心前台交。"


def ask_back_vague(expression: str) -> str:
    """Ask for a concrete day when the owner named only a vague time (年后, 下个月)."""
    return f"“{expression}”具体是哪一天呢？麻烦说个确切的日子，比如“12月5日”或“下周五”，这样我们好安排跟进。"


def confirmation_question(day: dt.date, amount: Optional[float]) -> str:
    """Repeat date (with weekday) and amount and ask the owner to confirm before recording."""
    money = f"{amount:,.2f}元" if amount else "物业费"
    return f"跟您确认一下：您打算在{format_date(day)}交{money}，对吗？"
