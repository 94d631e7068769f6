"""``bot holidays``: the public holiday schedules the reminder policy reads (:mod:`bot.reminders.holidays`).

``load FILE --source NOTICE`` stores (or replaces) one year's schedule from a CSV of ``date,kind,name`` rows;
``list`` shows every year the policy knows, and the reminders waiting for a year nobody loaded. Loading is
audited as ``cli:<os user>``. Exit status: 0 done, 2 refused (nothing was stored).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

URL_HELP = "database URL (default: DATABASE_URL or SQLite under var/)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``bot holidays`` subcommands, on ``parser``."""
    commands = parser.add_subparsers(dest="holidays_command", required=True)
    load = commands.add_parser("load", help="load one year's schedule (CSV: date,kind,name) from the State Council's notice")
    load.add_argument("file", type=Path)
    load.add_argument("--source", required=True, help="the notice it comes from, e.g. 国务院办公厅关于2027年部分节假日安排的通知")
    load.add_argument("--url", help=URL_HELP)
    listing = commands.add_parser("list", help="the years with a schedule and the reminders waiting for one")
    listing.add_argument("--url", help=URL_HELP)


def run(args: argparse.Namespace, *, actor: str) -> int:
    """Carry out a parsed ``bot holidays`` command; the exit status."""
    from bot.db import migrate
    from bot.db.session import session_scope
    from bot.reminders import holidays

    migrate.upgrade(args.url)
    if args.holidays_command == "load":
        try:
            text = args.file.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as error:
            print(f"error: cannot read {args.file}: {error}", file=sys.stderr)
            return 2
        try:
            with session_scope(args.url) as session:
                schedule = holidays.load_schedule(session, text=text, source=args.source, actor=actor)
                year, listed = int(schedule.year), len(holidays.days_of(session, int(schedule.year)))
        except holidays.ScheduleError as error:
            for problem in error.problems:
                print(f"error: {problem}", file=sys.stderr)
            return 2
        print(f"{year}: {listed} days loaded from {args.file.name}")
        return 0
    with session_scope(args.url) as session:
        for schedule in holidays.loaded(session):
            days = holidays.days_of(session, int(schedule.year))
            print(f"{schedule.year}  loaded  {len(days)} days  {schedule.source}  ({schedule.loaded_by})")
        for year, count in holidays.waiting_for_schedule(session).items():
            print(f"{year}  MISSING  {count} reminders held until its schedule is loaded")
    return 0
