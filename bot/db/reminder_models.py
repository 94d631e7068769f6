"""Scheduled reminders, owners' opt-outs and collectors' call tasks."""

from __future__ import annotations

from bot.db.models import Base  # noqa: F401
