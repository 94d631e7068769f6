"""The console's Jinja2 templates (``templates/``, autoescaped) and their filters.

A conversation is shown and linked by its handle (:mod:`bot.conversations.handles`), never its sender id:
``{{ item.sender_id | handle }}``, ``{{ item.sender_id | conversation_path }}``; ``redact_ids`` turns any sender
id an older audit row still holds into its handle.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Optional

from fastapi.templating import Jinja2Templates

from bot import clock
from bot.conversations.handles import handle_of
from bot.conversations.redaction import redact_ids
from bot.services.staff_users import phone_for

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
templates = Jinja2Templates(directory=str(TEMPLATES_DIR))


def local_time(moment: Optional[dt.datetime]) -> str:
    """A stored time (UTC; naive from SQLite) as the estate's local ``YYYY-MM-DD HH:MM``."""
    if moment is None:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.timezone.utc)
    return moment.astimezone(clock.zone()).strftime("%Y-%m-%d %H:%M")


templates.env.filters["local_time"] = local_time
# {{ owner.phone | phone(user.role) }}: whole for supervisors and managers, 138****5678 for collectors.
templates.env.filters["phone"] = lambda phone, role: phone_for(phone, role=role)


def conversation_path(sender_id: Optional[str]) -> str:
    """The console URL of a conversation: ``/conversations/<handle>``."""
    return f"/conversations/{handle_of(str(sender_id))}" if sender_id else ""


def handle(sender_id: Optional[str]) -> str:
    """The handle staff see for a conversation ("" for none)."""
    return handle_of(str(sender_id)) if sender_id else ""


def redacted(value: Any) -> Any:
    """``value`` with any conversation id in it replaced by the conversation's handle (text only)."""
    return redact_ids(value) if isinstance(value, str) else value


templates.env.filters["handle"] = handle
templates.env.filters["conversation_path"] = conversation_path
templates.env.filters["redact_ids"] = redacted
