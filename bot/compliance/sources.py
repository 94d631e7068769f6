"""Every stored owner-facing text, and the start-up check that none of them threatens an owner."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import yaml

from bot.compliance.categories import PROJECT_ROOT
from bot.compliance.engine import findings


class ComplianceError(ValueError):
    """Stored wording contains a forbidden phrase; the message names the file, the text and the category."""


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
    """Raise :class:`ComplianceError` naming every stored text the guard refuses; return how many passed.

    Args:
        root: The project root whose domain.yml, data/playbook and data/wording.yml are read.

    Returns:
        How many texts were checked.
    """
    checked = 0
    problems = []
    for item in sendable_texts(root):
        checked += 1
        for hit in findings(item.text):
            problems.append(f"{item.source}: “{hit.phrase}” ({hit.category}) in “{item.text}”")
    if problems:
        raise ComplianceError("forbidden wording, refusing to start:\n  " + "\n  ".join(problems))
    return checked
