"""What the bot and staff must never say to an owner: the coercion guard, one home for every path.

民法典 第九百四十四条 forbids cutting water, power, heating or gas to force payment, and pressing an owner
by withholding access or services is the same leverage; credit records and court lists are a court's act,
never ours; telling an employer, family or neighbours, or naming an owner in public, breaks 个人信息保护法
and the owner's 名誉权 and 隐私 (民法典 第一千零二十四条, 第一千零三十二条); calls several times a day, at
night, or people sent to wait at the door are harassment; a discount or waiver is the company's to grant.

Every text the bot can send is checked: the stored wording when the assistant starts
(:func:`check_wording_sources` refuses to start and names the file and text), a supervisor's playbook edit
when it is saved, and any text composed at run time (staff replies, reminders) when it reaches a channel
(:func:`check_outgoing`). Each :class:`Finding` names its category (:data:`CATEGORIES`), the words, one
sentence of reason for staff and the law (data/compliance/categories.yml).

The judgment reads meaning, not phrases: rules by category on a Mandarin reading of any spelling
(:mod:`bot.compliance.lexicon`, :mod:`bot.compliance.reading`) — stated and conditional threats tied to the
debt, negations and reassurances, lawful steps — and a small classifier for the sentences no rule flags
(:mod:`bot.compliance.model`). ``bench/guard.py`` measures both on the labelled guard set (tests/data/guard).
"""

from __future__ import annotations

import logging
from typing import List, Tuple

from bot.compliance.categories import (
    ACCESS,
    CATEGORIES,
    CREDIT,
    DISCOUNT,
    HARASSMENT,
    PROJECT_ROOT,
    SERVICES,
    SHAMING,
    THIRD_PARTY,
    UTILITIES,
    Category,
    categories,
)
from bot.compliance.engine import FORBIDDEN_PHRASES, Finding, findings
from bot.compliance.reading import normalize, reading
from bot.compliance.sources import ComplianceError, SendableText, check_wording_sources, sendable_texts

logger = logging.getLogger(__name__)

TACTICS: Tuple[str, ...] = CATEGORIES
DISCLOSURE = THIRD_PARTY  # the earlier name of third_party

__all__ = [
    "ACCESS",
    "CATEGORIES",
    "CREDIT",
    "Category",
    "ComplianceError",
    "DISCLOSURE",
    "DISCOUNT",
    "FORBIDDEN_PHRASES",
    "Finding",
    "HARASSMENT",
    "PROJECT_ROOT",
    "SERVICES",
    "SHAMING",
    "SendableText",
    "TACTICS",
    "THIRD_PARTY",
    "UTILITIES",
    "categories",
    "check_outgoing",
    "check_wording_sources",
    "findings",
    "normalize",
    "reading",
    "sendable_texts",
    "tactics",
    "violations",
]


def tactics(text: str) -> List[Tuple[str, str]]:
    """The forbidden tactics in ``text`` as ``(category, phrase)`` pairs, in reading order.

    The category is one of :data:`CATEGORIES`; the phrase is normalised (see :func:`normalize`). The practice
    rubric sorts a collector's answer with this, so the rubric and the bot's own check never disagree.
    """
    return [(hit.category, hit.phrase) for hit in findings(text)]


def violations(text: str) -> List[str]:
    """The forbidden wordings in ``text``, normalised, each once, in reading order (empty: it may be sent)."""
    found: List[str] = []
    for hit in findings(text):
        if hit.phrase not in found:
            found.append(hit.phrase)
    return found


def check_outgoing(text: str, *, source: str) -> bool:
    """Whether a composed text may be sent; a refused one is logged with its categories and source only.

    The log names the categories, never the words or the owner's data.
    """
    found = findings(text)
    if found:
        kinds = sorted({hit.category for hit in found}, key=CATEGORIES.index)
        logger.error("blocked an outgoing message from %s: %s", source, ", ".join(kinds))
        return False
    return True
