"""Payment promises: the date window, the default amount, and how a date is said back to the owner."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Optional

from sqlalchemy.orm import Session

from bot import wording
from bot.owners import arrears, payments
from bot.text.dates import weekday_name

# The seeds' rule: a promise is a concrete day within three months, or it is not a promise.
MAX_PROMISE_DAYS = 90


class DateVerdict(enum.Enum):
    """What a proposed payment date is worth."""

    OK = "ok"
    VAGUE = "vague"
    PAST = "past"
    TOO_FAR = "too_far"


def judge_date(day: Optional[dt.date], *, today: dt.date) -> DateVerdict:
    """Whether ``day`` can be a promise made on ``today`` (``None``: the owner named no concrete day)."""
    if day is None:
        return DateVerdict.VAGUE
    if day < today:
        return DateVerdict.PAST
    if day > latest_date(today):
        return DateVerdict.TOO_FAR
    return DateVerdict.OK


def latest_date(today: dt.date) -> dt.date:
    """The last day a promise made on ``today`` may name."""
    return today + dt.timedelta(days=MAX_PROMISE_DAYS)


def rejection(verdict: DateVerdict, *, today: dt.date, expression: str = "") -> str:
    """What to tell an owner whose date was not accepted, asking for a better one."""
    if verdict is DateVerdict.VAGUE:
        return wording.text("promises.ask_back_vague", expression=expression)
    if verdict is DateVerdict.PAST:
        return wording.text("promises.past_date")
    if verdict is DateVerdict.TOO_FAR:
        return wording.text(
            "promises.too_far", max_days=MAX_PROMISE_DAYS, latest=format_date(latest_date(today), today=today)
        )
    raise ValueError("an accepted date needs no rejection")


def default_amount(session: Session, *, owner_id: int, today: dt.date) -> Decimal:
    """The amount a promise covers when the owner names none: everything owed."""
    return arrears.summary(session, owner_id=owner_id, today=today).amount


def parse_amount(value: object) -> Optional[Decimal]:
    """A positive amount in yuan to the fen, or ``None``.

    :func:`bot.owners.payments.parse_amount` is the one money parser: more than two decimals is not an
    amount (it used to be rounded silently here), ``1,200元`` is one.
    """
    try:
        return payments.parse_amount(value)
    except payments.PaymentError:
        return None


def format_date(day: dt.date, *, today: Optional[dt.date] = None) -> str:
    """E.g. 12月4日（周五）; with the year when it is not ``today``'s year."""
    said = f"{day.month}月{day.day}日（{weekday_name(day)}）"
    return said if today is None or day.year == today.year else f"{day.year}年{said}"


def format_money(amount: Optional[Decimal]) -> str:
    """1,234.50元, or 物业费 when no amount was named."""
    return f"{Decimal(amount):,.2f}元" if amount else "物业费"


def confirmation_question(day: dt.date, amount: Optional[Decimal], *, today: Optional[dt.date] = None) -> str:
    """Repeat date (with weekday) and amount and ask the owner to confirm before recording."""
    return wording.text("promises.confirm", date=format_date(day, today=today), money=format_money(amount))


def follow_up() -> str:
    """The question that brings a conversation back to a concrete payment date."""
    return wording.text("promises.follow_up")
