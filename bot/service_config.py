"""Operator configuration (payment methods, staff hours) read from ``config/service.yml``."""

from __future__ import annotations

import datetime as dt
import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

import yaml

from bot import clock

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "config" / "service.yml"


@dataclass(frozen=True)
class StaffHours:
    """When people answer escalations."""

    days: Tuple[int, ...]
    opens: dt.time
    closes: dt.time
    phone: str

    def is_open(self, moment: dt.datetime) -> bool:
        """Whether staff are at work at ``moment``."""
        local = moment.astimezone(clock.zone())
        return local.isoweekday() in self.days and self.opens <= local.time() < self.closes

    def next_answer(self, moment: dt.datetime) -> dt.datetime:
        """When staff will next be at work: now if open, else the next opening time."""
        local = moment.astimezone(clock.zone())
        if self.is_open(local):
            return local
        day = local.date()
        for offset in range(0, 8):
            candidate_day = day + dt.timedelta(days=offset)
            opening = dt.datetime.combine(candidate_day, self.opens, tzinfo=clock.zone())
            if candidate_day.isoweekday() in self.days and opening > local:
                return opening
        raise ValueError("staff hours name no working day")


@dataclass(frozen=True)
class ServiceConfig:
    """Everything owners are told about paying and reaching staff."""

    payment_link: str
    payment_methods: Tuple[str, ...]
    invoice: str
    staff: StaffHours


def _time(value: str) -> dt.time:
    hours, minutes = (int(part) for part in str(value).split(":"))
    return dt.time(hours, minutes)


def load(path: Path) -> ServiceConfig:
    """Read and check a service configuration file."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    payment, staff = data["payment"], data["staff"]
    methods = tuple(str(m) for m in payment["methods"])
    if not methods:
        raise ValueError(f"{path}: payment.methods is empty")
    return ServiceConfig(
        payment_link=str(payment["link"]),
        payment_methods=methods,
        invoice=str(payment.get("invoice", "")),
        staff=StaffHours(
            days=tuple(int(d) for d in staff["days"]),
            opens=_time(staff["opens"]),
            closes=_time(staff["closes"]),
            phone=str(staff["phone"]),
        ),
    )


@functools.lru_cache(maxsize=1)
def get_service_config() -> ServiceConfig:
    """The configured service settings (``SERVICE_CONFIG`` or ``config/service.yml``), read once."""
    return load(Path(os.environ.get("SERVICE_CONFIG", DEFAULT_PATH)))
