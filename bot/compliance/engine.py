"""The guard's judgment: which words of a text press an owner in a forbidden way, and in which category.

First version: the earlier phrase list and patterns, mapped onto the new categories (see
:mod:`bot.compliance.categories`).
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, List, Mapping, Tuple

from bot.compliance.categories import (
    ACCESS,
    CATEGORIES,
    CREDIT,
    DISCOUNT,
    HARASSMENT,
    SHAMING,
    THIRD_PARTY,
    UTILITIES,
    categories,
)
from bot.text.normalize import Edit, full_width_to_half_width, traditional_to_simplified

logger = logging.getLogger(__name__)
DISCLOSURE = THIRD_PARTY

PHRASES_BY_TACTIC: Mapping[str, Tuple[str, ...]] = {
    # cutting utilities (民法典 第九百四十四条)
    UTILITIES: (
        "停水",
        "停电",
        "断水",
        "断电",
        "停暖",
        "断暖",
        "停气",
        "断气",
        "停止供暖",
        "停止供水",
        "停止供电",
        "拉闸",
        "掐电",
    ),
    # locking out, shaming
    ACCESS: ("锁门", "封门"),
    CREDIT: ("黑名单",),
    HARASSMENT: ("上门堵",),
    SHAMING: (
        "曝光",
        "公示姓名",
        "张贴姓名",
        "公布姓名",
        "公布名字",
        "老赖",
    ),
    # contacting third parties: the employer, the neighbours
    DISCLOSURE: (
        "通知单位",
        "找单位",
        "到单位",
        "联系单位",
        "告诉邻居",
        "通知邻居",
    ),
    # promises the company cannot keep
    DISCOUNT: (
        "减免",
        "打折",
        "免单",
    ),
}
FORBIDDEN_PHRASES: Tuple[str, ...] = tuple(
    phrase for phrases in PHRASES_BY_TACTIC.values() for phrase in phrases
)

# Up to a few characters of the same clause (no sentence or clause punctuation).
_GAP = r"[^，。？！；：,.!?;:]"
_UTILITY = r"(?:水|电|暖气|暖|燃气|煤气|天然气|气)(?![梯话动管费脑视表箱压子器])"
_YOUR = r"(?:给|帮|把)?(?:您|你)?(?:们)?(?:家|户)?(?:的)?"
_CUT = r"(?:停|断|掐|关|拉)(?![系心于注照联键档续])"  # not 关系, 关心, 断档

FORBIDDEN_PATTERNS: Tuple[Tuple[str, str], ...] = (
    # 停了您家的水, 断掉你们的电 (not 电梯停了, 关于暖气, 断档).
    (UTILITIES, rf"{_CUT}(?:掉|了)?(?:您|你)(?:们)?(?:家|户)?(?:的)?{_UTILITY}"),
    (UTILITIES, r"(?:停|断|掐)(?:掉|了)?(?:水|电|暖|燃气|煤气)(?![梯话动管费脑视表箱压子器])"),
    # 水就给您停了, 暖气也给你们关 (not 水电费, 电话, 暖气片关不严 — the cut must follow within the clause start).
    (
        UTILITIES,
        rf"(?:水|电|暖气|燃气|煤气|天然气)(?![梯话动管费脑视表箱压子器片])(?:就|也|都|可|会|要|得)?{_YOUR}{_CUT}",
    ),
    # 把您家的水停了, 把总阀给关了: 把 … a utility … cut, in one clause.
    (
        UTILITIES,
        rf"把{_GAP}{{0,6}}(?:水|电|暖|气|总阀|总闸)(?![梯话动管费脑视表箱压子器]){_GAP}{{0,4}}{_CUT}",
    ),
    # 关总阀, 拉总闸 (not 阀门没调好, which the heating answer says).
    (UTILITIES, rf"(?:关|拉|断|掐){_GAP}{{0,3}}(?:总阀|总闸|水阀|电闸|气阀)"),
    (UTILITIES, rf"(?:总阀|总闸|水阀|电闸|气阀){_GAP}{{0,3}}(?:关|拉|断|掐)"),
    # 让您没水用, 没电用, 没暖气烧.
    (UTILITIES, r"没(?:有)?(?:水|电|暖气|燃气|气)(?:用|烧)"),
    # 把名字贴公告栏, 名字公布出来, 贴到公告栏上 (not 在公告栏定期公开收支情况).
    (SHAMING, rf"(?:名字|姓名|房号|门牌号){_GAP}{{0,6}}(?:贴|公布|公示|挂|曝光|写上)"),
    (SHAMING, rf"(?:贴|张贴|公布|公示|挂|写){_GAP}{{0,6}}(?:名字|姓名)"),
    (
        SHAMING,
        rf"(?:贴|张贴|挂|写|公布|点名){_GAP}{{0,3}}(?:公告栏|布告栏|宣传栏|电梯里|电梯口|楼道里|小区群)",
    ),
    (SHAMING, rf"(?:公告栏|布告栏|宣传栏){_GAP}{{0,3}}(?:贴|点名|挂|公布)"),
    # 找你单位, 去您公司找您领导, 告诉你老板 (not 施工单位, 联系您).
    (DISCLOSURE, r"(?:找|去|到|联系|通知|告诉|打给|打到)(?:你|您)(?:们)?(?:的)?(?:公司|领导|单位|老板|同事)"),
    # 您单位那边我们会去联系, 你领导我们就找 (not 您单位开证明后联系我们).
    (
        DISCLOSURE,
        r"(?:你|您)(?:们)?(?:的)?(?:公司|领导|单位|老板)(?:那边|那里|那儿)?(?:我们|我)?(?:就|会|也)?(?:去|来)?"
        r"(?:找|联系|通知|告诉)",
    ),
    # 打八折, 打8折, 打个折, 给您便宜点, 这个月免了, 不收了, 少收, 免交.
    (DISCOUNT, r"打[0-9一二两三四五六七八九十点.]{1,3}折"),
    (DISCOUNT, rf"打{_GAP}{{0,2}}折"),
    (DISCOUNT, r"便宜"),
    (DISCOUNT, r"(?<![避难以])免(?:了|掉|交|收)"),
    (DISCOUNT, r"不收(?:了|钱)"),
    (DISCOUNT, r"不收(?:您|你)(?:家)?(?:的)?(?:钱|物业费|费用|滞纳金|违约金)"),
    (DISCOUNT, r"不用(?:再)?交了"),
    (DISCOUNT, r"少收"),
    (DISCOUNT, r"折扣"),
)

# A discount phrase right after one of these, in the same clause, refuses the discount instead of promising
# it (不能减免, 不会给您打折); the phrase itself must not start the negation (不收了 is a promise).
DISCOUNT_NEGATIONS: Tuple[str, ...] = (
    "不能",
    "不会",
    "不可以",
    "不可能",
    "不给",
    "不予",
    "没法",
    "没有",
    "无法",
    "不得",
    "不要",
    "别想",
    "不",
    "没",
    "别",
)
_NEGATION_GAP = r"(?:再)?(?:给|帮|为|替)?(?:您|你)?(?:们)?(?:家)?(?:的)?$"
_CLAUSE_END = re.compile(r"[，。？！；：,.!?;:]")
_WHITESPACE_OR_FORMAT = re.compile(r"\s+")


@dataclass(frozen=True)
class Finding:
    """One forbidden wording in a text.

    Attributes:
        category: One of :data:`CATEGORIES`.
        phrase: The words as they read after normalising (Simplified, half-width, no spaces).
        start: Where they start in the normalised text.
        end: Where they end in the normalised text.
        reason: One Chinese sentence for staff: why it may not be sent.
        law: The law it breaks (empty when none applies).
    """

    category: str
    phrase: str
    start: int
    end: int
    reason: str
    law: str

    @property
    def tactic(self) -> str:
        """The category, under the name the practice rubric used first."""
        return self.category


def _finding(category: str, phrase: str, start: int, end: int) -> Finding:
    about = categories()[category]
    return Finding(category, phrase, start, end, about.reason, about.law)


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
    compact = _WHITESPACE_OR_FORMAT.sub("", visible)
    simplified = _apply_edits(compact, traditional_to_simplified(compact))
    return _apply_edits(simplified, full_width_to_half_width(simplified))


@functools.lru_cache(maxsize=1)
def _rules() -> Tuple[Tuple[str, re.Pattern[str]], ...]:
    phrases = [
        (tactic, re.compile(re.escape(phrase)))
        for tactic, group in PHRASES_BY_TACTIC.items()
        for phrase in group
    ]
    return tuple(phrases) + tuple((tactic, re.compile(pattern)) for tactic, pattern in FORBIDDEN_PATTERNS)


@functools.lru_cache(maxsize=1)
def _negation() -> re.Pattern[str]:
    words = "|".join(re.escape(word) for word in sorted(DISCOUNT_NEGATIONS, key=len, reverse=True))
    return re.compile(f"(?:{words}){_NEGATION_GAP}")


def _refused(text: str, start: int) -> bool:
    """Whether a negation stands directly before ``start`` in its clause, and is not itself negated."""
    clause = _CLAUSE_END.split(text[:start])[-1]
    found = _negation().search(clause)
    if found is None:
        return False
    before = clause[: found.start()]
    return not any(before.endswith(word) for word in DISCOUNT_NEGATIONS)


def findings(text: str) -> List[Finding]:
    """Every forbidden wording in ``text``, in the order it reads; overlapping hits count once (the longest).

    Args:
        text: Any text, as typed (it is normalised here).

    Returns:
        The findings, positioned in :func:`normalize`'s output.
    """
    normalized = normalize(text)
    hits: List[Finding] = []
    for tactic, pattern in _rules():
        for match in pattern.finditer(normalized):
            if tactic == DISCOUNT and _refused(normalized, match.start()):
                continue
            hits.append(_finding(tactic, match.group(), match.start(), match.end()))
    hits.sort(key=lambda hit: (hit.start, -(hit.end - hit.start), CATEGORIES.index(hit.category)))
    kept: List[Finding] = []
    for hit in hits:
        if any(hit.start < other.end and other.start < hit.end for other in kept):
            continue
        kept.append(hit)
    return kept
