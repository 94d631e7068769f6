"""The console's Jinja2 templates (``templates/``, autoescaped) and their filters."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Optional

from fastapi.templating import Jinja2Templates

from bot import clock
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
