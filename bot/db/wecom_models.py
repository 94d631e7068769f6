"""WeCom (企业微信) callbacks already handled (replay protection for the coach channel)."""

from __future__ import annotations

from bot.db.models import Base  # noqa: F401
