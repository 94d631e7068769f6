"""Normalise owner messages so that variant spellings take the same path through the NLU pipeline.

Three steps run in order: Traditional → Simplified (OpenCC), full-width → half-width (plus lower case),
and Chinese numerals → Arabic digits. Every step may change the text's length (两千 → 2000), so the
result carries an alignment back to the original text; entity offsets annotated on the original text are
mapped through it and predictions are mapped back to it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Callable, Iterable, List, Tuple

import cn2an
import opencc

Edit = Tuple[int, int, str]
"""A replacement of ``text[start:end]`` by a new string."""

_CN_DIGITS = "零〇一二两三四五六七八九幺"
_CN_NUMERAL_RUN = re.compile(f"[{_CN_DIGITS}十百千万亿]+")
_DIGIT_ONLY = {c: str(i) for i, c in enumerate("零一二三四五六七八九")}
_DIGIT_ONLY.update({"〇": "0", "两": "2", "幺": "1"})

# A single numeral is only a number when a measure or calendar word follows it; otherwise 一直, 统一
# and 十分 would turn into nonsense such as 1直.
_UNIT_AFTER_SINGLE = re.compile(
    r"(个月|个工作日|个礼拜|个星期|号楼|单元|块|元|号|日|月|年|天|栋|幢|层|座|室|期|周|岁|万|千|百|次|户|套|期|楼)"
)
_NOT_NUMBERS = frozenset({"万一", "一一", "十一一", "三三两两", "千万", "百万", "一万万"})
_NO_CONVERT_PREFIX = ("周", "星期", "礼拜", "禮拜")


@dataclass(frozen=True)
class NormalizedText:
    """Normalised text with, for each of its characters, the span of the original it came from."""

    original: str
    text: str
    origin_starts: Tuple[int, ...]
    origin_ends: Tuple[int, ...]

    def to_original_span(self, start: int, end: int) -> Tuple[int, int]:
        """Map a span of the normalised text to the span of the original text it came from."""
        if start >= end:
            position = self.origin_starts[start] if start < len(self.text) else len(self.original)
            return position, position
        return self.origin_starts[start], self.origin_ends[end - 1]

    def to_normalized_span(self, start: int, end: int) -> Tuple[int, int]:
        """Map a span of the original text to the smallest normalised span covering it."""
        covering = [
            index
            for index in range(len(self.text))
            if self.origin_starts[index] < end and self.origin_ends[index] > start
        ]
        if not covering:
            position = next(
                (i for i in range(len(self.text)) if self.origin_starts[i] >= start), len(self.text)
            )
            return position, position
        return covering[0], covering[-1] + 1


def _apply(
    text: str, starts: List[int], ends: List[int], edits: Iterable[Edit]
) -> Tuple[str, List[int], List[int]]:
    """Apply non-overlapping edits (sorted by start), carrying the origin of every character along."""
    pieces: List[str] = []
    new_starts: List[int] = []
    new_ends: List[int] = []
    cursor = 0
    for start, end, replacement in edits:
        pieces.append(text[cursor:start])
        new_starts.extend(starts[cursor:start])
        new_ends.extend(ends[cursor:start])
        pieces.append(replacement)
        new_starts.extend([starts[start]] * len(replacement))
        new_ends.extend([ends[end - 1]] * len(replacement))
        cursor = end
    pieces.append(text[cursor:])
    new_starts.extend(starts[cursor:])
    new_ends.extend(ends[cursor:])
    return "".join(pieces), new_starts, new_ends


@functools.lru_cache(maxsize=1)
def _converter() -> opencc.OpenCC:
    return opencc.OpenCC("t2s")


def traditional_to_simplified(text: str) -> List[Edit]:
    """Edits that turn Traditional characters into Simplified ones (OpenCC ``t2s``)."""
    converted = _converter().convert(text)
    if len(converted) == len(text):
        return [
            (i, i + 1, new) for i, (old, new) in enumerate(zip(text, converted, strict=True)) if old != new
        ]
    # A phrase-level conversion changed the length: fall back to character by character so that
    # every character keeps its own origin.
    edits = []
    for i, char in enumerate(text):
        new = _converter().convert(char)
        if new != char:
            edits.append((i, i + 1, new))
    return edits


def _half_width_char(char: str) -> str:
    code = ord(char)
    if code == 0x3000:
        return " "
    if 0xFF01 <= code <= 0xFF5E:
        return chr(code - 0xFEE0)
    return char


def full_width_to_half_width(text: str) -> List[Edit]:
    """Edits that turn full-width ASCII (ＡＢＣ１２３！) into half-width and Latin letters to lower case."""
    edits = []
    for i, char in enumerate(text):
        new = _half_width_char(char)
        lowered = new.lower()
        if len(lowered) == 1:
            new = lowered
        if new != char:
            edits.append((i, i + 1, new))
    return edits


def chinese_numerals_to_digits(text: str) -> List[Edit]:
    """Edits that turn Chinese numerals into Arabic digits where they denote numbers (两千 → 2000)."""
    edits = []
    for match in _CN_NUMERAL_RUN.finditer(text):
        run = match.group()
        if run in _NOT_NUMBERS:
            continue
        before = text[: match.start()]
        after = text[match.end() :]
        if len(run) == 1:
            if any(before.endswith(prefix) for prefix in _NO_CONVERT_PREFIX):
                continue
            if not _UNIT_AFTER_SINGLE.match(after):
                continue
        converted = _numeral_to_digits(run)
        if converted is not None and converted != run:
            edits.append((match.start(), match.end(), converted))
    return edits


def _numeral_to_digits(run: str) -> str | None:
    if all(char in _DIGIT_ONLY for char in run) and len(run) > 1:
        # 一二零三 is read digit by digit, as in room and phone numbers.
        return "".join(_DIGIT_ONLY[char] for char in run)
    try:
        value = cn2an.cn2an(run.replace("两", "二").replace("幺", "一"), "smart")
    except (ValueError, KeyError, IndexError):
        return None
    return str(int(value)) if float(value).is_integer() else str(value)


STEPS: Tuple[Callable[[str], List[Edit]], ...] = (
    traditional_to_simplified,
    full_width_to_half_width,
    chinese_numerals_to_digits,
)


def normalize(text: str) -> NormalizedText:
    """Run every normalisation step and keep the alignment back to ``text``."""
    current = text
    starts = list(range(len(text)))
    ends = [i + 1 for i in range(len(text))]
    for step in STEPS:
        edits = step(current)
        if edits:
            current, starts, ends = _apply(current, starts, ends, edits)
    return NormalizedText(original=text, text=current, origin_starts=tuple(starts), origin_ends=tuple(ends))
