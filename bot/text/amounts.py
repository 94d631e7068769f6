"""Money amounts written by owners (1200块, 2000元, 1.5万, 3千块钱) as exact decimals."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Iterator, Tuple

AMOUNT_PATTERN = re.compile(
    r"(?<![\d.])(\d+(?:\.\d+)?)\s*(万|w|千|k)?\s*(块钱|块|元|圆|蚊|rmb|人民币)|(?<![\d.])(\d+(?:\.\d+)?)\s*(万|w)(?![\d年])"
)
_MULTIPLIERS = {"万": 10000, "w": 10000, "千": 1000, "k": 1000}


def find_amounts(text: str) -> Iterator[Tuple[int, int, Decimal]]:
    """Yield ``(start, end, value)`` for every money amount in normalised ``text``."""
    for match in AMOUNT_PATTERN.finditer(text):
        number = match.group(1) or match.group(4)
        multiplier = match.group(2) or match.group(5)
        value = Decimal(number) * _MULTIPLIERS.get(multiplier or "", 1)
        yield match.start(), match.end(), value


def amount_as_text(value: Decimal) -> str:
    """The amount as a decimal string to the fen ("1200.50"): JSON-safe, and never a float."""
    return f"{value.quantize(Decimal('0.01')):f}"
