"""Replies for when an owner takes up, or declines, the help a playbook answer offered."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Dict

import yaml

from bot.playbook import OFFER_KINDS

OFFERS_FILE = Path(__file__).resolve().parents[1] / "data" / "offers.yml"
DECLINED = "declined"


@functools.lru_cache(maxsize=1)
def offer_replies(path: Path = OFFERS_FILE) -> Dict[str, str]:
    """Offer kind → reply; every offer kind of the playbook has one, plus ``declined``."""
    replies = {str(k): str(v).strip() for k, v in yaml.safe_load(path.read_text(encoding="utf-8")).items()}
    missing = (OFFER_KINDS | {DECLINED}) - replies.keys()
    if missing:
        raise ValueError(f"{path.name} lacks replies for {sorted(missing)}")
    return replies


def accepted_reply(kind: str) -> str:
    """What to say when the owner says yes to an offer of ``kind``."""
    return offer_replies()[kind]


def declined_reply() -> str:
    """What to say when the owner turns an offer down."""
    return offer_replies()[DECLINED]
