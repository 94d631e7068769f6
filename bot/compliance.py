"""What the bot must never say to an owner.

民法典 第944条 forbids cutting water, power, heating or gas to force payment; shaming an owner (naming
them on a notice board, telling their employer or neighbours) breaks privacy law and the company's own
conduct rules. Every text the bot can send is checked against these phrases: the stored wording when the
assistant starts (:func:`check_wording_sources` refuses to start and names the file and text), and any
text composed at run time (later: staff replies) when it reaches a channel (:func:`check_outgoing`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List

import yaml

logger = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parents[1]

FORBIDDEN_PHRASES: tuple[str, ...] = (
    # cutting utilities (民法典 第九百四十四条)
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
    # locking out, shaming, contacting third parties
    "锁门",
    "封门",
    "曝光",
    "公示姓名",
    "张贴姓名",
    "公布姓名",
    "黑名单",
    "通知单位",
    "找单位",
    "到单位",
    "联系单位",
    "告诉邻居",
    "通知邻居",
    "上门堵",
    # promises the company cannot keep
    "减免",
    "打折",
    "免单",
)

_SPACES = re.compile(r"\s+")


def violations(text: str) -> List[str]:
    """The forbidden phrases that occur in ``text`` (whitespace ignored)."""
    compact = _SPACES.sub("", text)
    return [phrase for phrase in FORBIDDEN_PHRASES if phrase in compact]


class ComplianceError(ValueError):
    """Stored wording contains a forbidden phrase; the message names the file and the text."""


@dataclass(frozen=True)
class SendableText:
    """A text the bot can send, and where it is stored."""

    source: str
    text: str


def sendable_texts(root: Path = PROJECT_ROOT) -> Iterator[SendableText]:
    """Every stored owner-facing text: domain.yml responses, the playbook, data/wording.yml.

    The sources are the homes of owner-facing wording; a new file under ``data/playbook/`` is found
    without being listed anywhere.
    """
    from bot.playbook import Playbook

    domain = yaml.safe_load((root / "domain.yml").read_text(encoding="utf-8")) or {}
    for name, variants in (domain.get("responses") or {}).items():
        for variant in variants or []:
            for key in ("text", "title"):
                if variant.get(key):
                    yield SendableText(f"domain.yml:{name}", str(variant[key]))
            for button in variant.get("buttons") or []:
                yield SendableText(f"domain.yml:{name}", str(button.get("title", "")))
    for entry in Playbook.load(root / "data" / "playbook"):
        for text in entry.owner_facing_texts():
            yield SendableText(f"data/playbook/{entry.intent}.yml", text)
    wording = yaml.safe_load((root / "data" / "wording.yml").read_text(encoding="utf-8")) or {}
    for section, entries in wording.items():
        for key, value in (entries or {}).items():
            yield SendableText(f"data/wording.yml:{section}.{key}", str(value))


def check_wording_sources(root: Path = PROJECT_ROOT) -> int:
    """Raise :class:`ComplianceError` naming every stored text with a forbidden phrase; return how many passed."""
    checked = 0
    problems = []
    for item in sendable_texts(root):
        checked += 1
        for phrase in violations(item.text):
            problems.append(f"{item.source}: “{phrase}” in “{item.text}”")
    if problems:
        raise ComplianceError("forbidden wording, refusing to start:\n  " + "\n  ".join(problems))
    return checked


def check_outgoing(text: str, *, source: str) -> bool:
    """Whether a composed text may be sent; a forbidden phrase is logged with its source and blocks it."""
    found = violations(text)
    if found:
        logger.error("blocked an outgoing message from %s with forbidden phrases %s", source, found)
        return False
    return True
