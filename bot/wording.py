"""Owner-facing sentences built in code, read from their one home, ``data/wording.yml``.

Rasa responses live in ``domain.yml`` and objection answers in ``data/playbook/``; everything else the bot
says comes from here, so wording is edited in data and checked by :mod:`bot.compliance` in one pass.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Dict

import yaml

WORDING_FILE = Path(__file__).resolve().parents[1] / "data" / "wording.yml"


@functools.lru_cache(maxsize=1)
def catalogue(path: Path = WORDING_FILE) -> Dict[str, Dict[str, str]]:
    """Section → key → template, as stored."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {
        str(section): {str(key): str(value).strip() for key, value in (entries or {}).items()}
        for section, entries in data.items()
    }


def text(key: str, **fields: Any) -> str:
    """The sentence stored under ``section.key``, with ``{placeholders}`` filled from ``fields``."""
    section, _, name = key.partition(".")
    try:
        template = catalogue()[section][name]
    except KeyError:
        raise KeyError(f"no wording {key!r} in {WORDING_FILE.name}") from None
    return template.format(**fields) if fields else template


def all_texts() -> Dict[str, str]:
    """Every template, keyed ``section.key`` (for the compliance check)."""
    return {f"{section}.{key}": value for section, entries in catalogue().items() for key, value in entries.items()}
