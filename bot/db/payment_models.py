"""Payments received (imported or recorded by staff)."""

from __future__ import annotations

from bot.db.models import Base  # noqa: F401
