"""What the bot must never say to an owner.

民法典 第944条 forbids cutting water, power, heating or gas to force payment; shaming an owner (naming
them on a notice board, telling their employer or neighbours) breaks privacy law and the company's own
conduct rules. Every text the bot can send is checked against these phrases by the test suite.
"""

from __future__ import annotations

import re
from typing import List

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
