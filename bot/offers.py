"""Replies for when an owner takes up, or declines, the help a playbook answer offered."""

from __future__ import annotations

from typing import Dict

from bot import wording
from bot.playbook import OFFER_KINDS

DECLINED = "declined"


def offer_replies() -> Dict[str, str]:
    """Offer kind → reply (``offers`` in data/wording.yml); every playbook offer kind has one."""
    replies = dict(wording.catalogue().get("offers", {}))
    missing = (OFFER_KINDS | {DECLINED}) - replies.keys()
    if missing:
        raise ValueError(f"{wording.WORDING_FILE.name} lacks offer replies for {sorted(missing)}")
    return replies


def accepted_reply(kind: str) -> str:
    """What to say when the owner says yes to an offer of ``kind``."""
    return offer_replies()[kind]


def declined_reply() -> str:
    """What to say when the owner turns an offer down."""
    return offer_replies()[DECLINED]
