"""Unit addresses as owners write them (3栋2单元501, 5号楼1203, A座808, 12-3-402) → one canonical code."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

from bot.text.normalize import normalize

_SPELLED = re.compile(
    r"^(?:(?P<phase>\d{1,2})期)?(?P<building>\d{1,3}|[a-z])(?:号楼|栋|幢|座|号)"
    r"(?:(?P<entrance>\d{1,2})(?:单元|门|号门))?(?P<room>\d{3,4})(?:室|房|号)?$"
)
_DASHED = re.compile(r"^(?P<building>\d{1,3})-(?P<entrance>\d{1,2})-(?P<room>\d{3,4})$")


@dataclass(frozen=True)
class UnitAddress:
    """A parsed unit address."""

    building: str
    entrance: Optional[str]
    room: str

    @property
    def code(self) -> str:
        """Canonical key: building-entrance-room, or building-room without an entrance."""
        parts = [self.building, self.entrance, self.room] if self.entrance else [self.building, self.room]
        return "-".join(parts)

    @property
    def label(self) -> str:
        """How the unit is shown to people: 3栋2单元501."""
        entrance = f"{self.entrance}单元" if self.entrance else ""
        return f"{self.building}栋{entrance}{self.room}"


def parse_unit(text: str) -> Optional[UnitAddress]:
    """Parse an address, or ``None`` when it is not one."""
    compact = re.sub(r"\s+", "", normalize(text).text)
    match = _SPELLED.match(compact) or _DASHED.match(compact)
    if not match:
        return None
    groups = match.groupdict()
    building = groups["building"].upper()
    if groups.get("phase"):
        building = f"{groups['phase']}期{building}"
    return UnitAddress(building=building, entrance=groups.get("entrance"), room=groups["room"])
