"""The guard's categories and, for each, the reason and the law staff read when a text is refused.

The reasons are data (``data/compliance/categories.yml``), the one home of the guard's staff-facing wording;
this module only loads them and fixes the order (:data:`CATEGORIES`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Tuple

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CATEGORIES_FILE = PROJECT_ROOT / "data" / "compliance" / "categories.yml"

UTILITIES = "utilities"
ACCESS = "access"
SERVICES = "services"
CREDIT = "credit"
THIRD_PARTY = "third_party"
SHAMING = "shaming"
HARASSMENT = "harassment"
DISCOUNT = "discount"
CATEGORIES: Tuple[str, ...] = (UTILITIES, ACCESS, SERVICES, CREDIT, THIRD_PARTY, SHAMING, HARASSMENT, DISCOUNT)


@dataclass(frozen=True)
class Category:
    """One category of forbidden pressure.

    Attributes:
        name: One of :data:`CATEGORIES`.
        label: A short Chinese name for screens.
        reason: One Chinese sentence for staff: why the text may not be sent.
        law: The law it rests on (empty when none applies, e.g. a discount is the company's decision).
    """

    name: str
    label: str
    reason: str
    law: str


@functools.lru_cache(maxsize=1)
def categories(path: Path = CATEGORIES_FILE) -> Mapping[str, Category]:
    """Every category, keyed by name, in :data:`CATEGORIES` order.

    Raises:
        ValueError: The file's keys are not exactly :data:`CATEGORIES`.
    """
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    if tuple(data) != CATEGORIES:
        raise ValueError(f"{path} must list exactly {CATEGORIES} in order, found {tuple(data)}")
    return {
        name: Category(name, str(item["label"]), str(item["reason"]), str(item.get("law") or ""))
        for name, item in data.items()
    }
