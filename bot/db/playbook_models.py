"""Versioned staff edits of the playbook's wording (the YAML stays the source for a fresh install)."""

from __future__ import annotations

from bot.db.models import Base  # noqa: F401
