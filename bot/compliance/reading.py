"""How the guard reads a text: one normal form for every spelling, and a Mandarin reading of Cantonese.

:func:`normalize` removes what hides a word from a reader-blind check (whitespace, zero-width and other
format characters), folds Traditional into Simplified and full-width into half-width. :func:`reading` then
rewrites Cantonese function words into their Mandarin twins (唔 → 不, 冇 → 没, 佢 → 他, 畀 → 给, 屋企 →
家里 …) character for character, so every position in the reading is the same position in the normal form
and a finding can quote the normal form's words.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Iterable, List, Mapping

from bot.text.normalize import Edit, full_width_to_half_width, traditional_to_simplified

_WHITESPACE = re.compile(r"\s+")

# Cantonese words and their Mandarin readings, of equal length (positions must not move).
CANTONESE_WORDS: Mapping[str, str] = {
    "屋企": "家里",
    "老细": "老板",
    "边个": "哪个",
    "边间": "哪间",
    "点样": "怎样",
    "朝早": "早上",
    "听日": "明天",
    "琴日": "昨天",
    "而家": "现在",
    "下昼": "下午",
    "个仔": "儿子",
    "个女": "女儿",
    "话事": "做主",
    "即刻": "马上",
    "交埋": "交完",
    "得闲": "有空",
    "唔使": "不用",
    "唔好": "不要",
    "冇得": "没得",
    "唔": "不",
    "冇": "没",
    "佢": "他",
    "畀": "给",
    "俾": "给",
    "嘅": "的",
    "咗": "了",
    "喺": "在",
    "啲": "些",
    "嚟": "来",
    "睇": "看",
    "攞": "拿",
    "哋": "们",
    "揾": "找",
    "搵": "找",
    "闩": "关",
    "嗰": "那",
    "𠮶": "那",
    "咁": "这",
    "噉": "这",
    "嘢": "事",
    "晒": "完",
    "冚": "全",
}


def _apply_edits(text: str, edits: Iterable[Edit]) -> str:
    pieces: List[str] = []
    cursor = 0
    for start, end, replacement in edits:
        pieces.append(text[cursor:start])
        pieces.append(replacement)
        cursor = end
    pieces.append(text[cursor:])
    return "".join(pieces)


def normalize(text: str) -> str:
    """``text`` as every rule reads it: no whitespace or format characters, Simplified, half-width, lower case.

    Format characters (Unicode category Cf: zero-width spaces and joiners, the byte-order mark, direction
    marks, soft hyphens) are invisible to the reader, so they must not split a phrase for the checker either.
    """
    visible = "".join(char for char in text if unicodedata.category(char) != "Cf")
    compact = _WHITESPACE.sub("", visible)
    simplified = _apply_edits(compact, traditional_to_simplified(compact))
    return _apply_edits(simplified, full_width_to_half_width(simplified)).lower()


@functools.lru_cache(maxsize=1)
def _cantonese() -> re.Pattern[str]:
    words = sorted(CANTONESE_WORDS, key=len, reverse=True)
    return re.compile("|".join(re.escape(word) for word in words))


def reading(normalized: str) -> str:
    """The Mandarin reading of a normalised text, character for character (same length, same positions)."""
    return _cantonese().sub(lambda match: CANTONESE_WORDS[match.group()], normalized)
