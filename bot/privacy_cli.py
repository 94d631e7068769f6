"""``bot privacy``: an owner's personal information on request (个人信息保护法 art. 45 and 47).

``export`` writes everything held on one owner as JSON and as readable Chinese text (:mod:`bot.privacy.subject`)
to ``--out`` (default ``var/privacy/``); ``erase --yes`` deletes or anonymises it for good, keeping only the
amounts, dates and statuses the accounts need. The owner is named by ``--owner ID`` (current or former, as the
owner page shows it) or by ``--unit CODE``, which means the unit's one current owner: a unit with none or with
several (co-owners) is refused and its owners are listed, so the operator picks one ``--owner`` — a former
owner is always named by id, never erased by accident through the unit. Both are audited as ``cli:<os user>``
(``privacy_exported`` / ``privacy_erased``, counts only). Exit status: 0 done, 2 refused (nothing written).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

URL_HELP = "database URL (default: DATABASE_URL or SQLite under var/)"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "var" / "privacy"
REFUSALS = {
    "no_owner": "no owner has this id",
    "no_unit": "no unit has this code (write it as stored, e.g. 3-2-501)",
    "already_erased": "this owner's personal information was erased already",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``bot privacy`` subcommands, on ``parser``."""
    commands = parser.add_subparsers(dest="privacy_command", required=True)
    export = commands.add_parser("export", help="write everything held on one owner (JSON and readable text)")
    erase = commands.add_parser("erase", help="delete or anonymise everything held on one owner, for good")
    for command in (export, erase):
        who = command.add_mutually_exclusive_group(required=True)
        who.add_argument("--owner", type=int, help="the owner's id (current or former; see the owner page)")
        who.add_argument("--unit", help="the unit's code (e.g. 3-2-501): its one current owner")
        command.add_argument("--url", help=URL_HELP)
    export.add_argument("--out", type=Path, help=f"directory to write to (default: {DEFAULT_OUT})")
    erase.add_argument("--yes", action="store_true", help="erase: this cannot be undone")


def run(args: argparse.Namespace, *, actor: str) -> int:
    """Carry out a parsed ``bot privacy`` command; the exit status."""
    from bot.db import migrate
    from bot.db.session import session_scope
    from bot.privacy import subject

    if args.privacy_command == "erase" and not args.yes:
        print("error: erasing cannot be undone; run it again with --yes (export first if the owner asked for a copy)", file=sys.stderr)
        return 2
    migrate.upgrade(args.url)
    try:
        with session_scope(args.url) as session:
            owner_id = args.owner if args.unit is None else _owner_of_unit(session, args.unit)
            if owner_id is None:
                return 2
            if args.privacy_command == "export":
                json_path, text_path = subject.export(
                    session, owner_id=owner_id, directory=args.out or DEFAULT_OUT, actor=actor, via="cli"
                )
            else:
                done = subject.erase(session, owner_id=owner_id, actor=actor)
    except subject.SubjectError as error:
        print(f"error: {REFUSALS.get(error.code, str(error))}", file=sys.stderr)
        return 2
    except OSError as error:
        print(f"error: cannot write the export: {error}", file=sys.stderr)
        return 2
    if args.privacy_command == "export":
        print(json_path)
        print(text_path)
        print(f"owner {owner_id} exported: these files hold personal information; hand them over, then delete them")
        return 0
    print(f"owner {owner_id} erased:")
    for table, count in done.items():
        print(f"  {table}: {count}")
    return 0


def _owner_of_unit(session: Session, unit: str) -> Optional[int]:
    """The unit's one current owner, or None after printing why not (none, or several: pick one by id)."""
    from sqlalchemy import select

    from bot.db.models import Owner, Unit
    from bot.privacy import subject

    current = subject.current_owners_of_unit(session, unit_code=unit)
    if len(current) == 1:
        return int(current[0].id)
    everyone = session.execute(
        select(Owner).join(Unit, Unit.id == Owner.unit_id).where(Unit.code == unit.strip()).order_by(Owner.id)
    ).scalars()
    reason = "has no current owner" if not current else f"has {len(current)} current owners"
    print(f"error: unit {unit.strip()} {reason}; name one with --owner:", file=sys.stderr)
    for owner in everyone:
        state = "current" if owner.retired_at is None else f"former (until {owner.owned_until})"
        print(f"  --owner {owner.id}  {owner.masked_phone or '-'}  {state}", file=sys.stderr)
    return None
