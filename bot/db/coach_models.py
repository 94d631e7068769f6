"""The collector coach's practice sessions (话术演练) and their scored turns."""

from __future__ import annotations

from bot.db.models import Base  # noqa: F401
