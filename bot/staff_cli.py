"""``bot user``: staff console accounts from the command line.

``add`` creates one; ``list`` shows them all; ``deactivate``, ``reactivate``, ``reset-password``,
``set-role``, ``revoke-sessions``, ``unlock`` and ``set-wecom`` change one
(:mod:`bot.services.staff_lifecycle`, the same operations as the managers' users page). A password is asked
twice at a prompt, or read from the first line of standard input when that is not a terminal. Every change is
audited as ``cli:<os user>``. Exit status: 0 done, 2 refused (nothing was changed).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import TYPE_CHECKING, List, Optional, TextIO

from bot.db.staff_models import StaffRole

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

URL_HELP = "database URL (default: DATABASE_URL or SQLite under var/)"


def read_new_password(stream: Optional[TextIO] = None) -> Optional[str]:
    """A new password: typed twice at a prompt on a terminal, else the first line of ``stream`` (stdin).

    Returns:
        The password (without its line ending), or None when the two typed ones differ.
    """
    stream = stream or sys.stdin
    if stream.isatty():
        import getpass

        first = getpass.getpass("Password: ")
        return first if getpass.getpass("Repeat the password: ") == first else None
    return stream.readline().rstrip("\r\n")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``bot user`` subcommands, on ``parser``."""
    commands = parser.add_subparsers(dest="user_command", required=True)
    roles = [role.value for role in StaffRole]

    def command(name: str, help_text: str, *, username: bool = True) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        if username:
            sub.add_argument("username")
        sub.add_argument("--url", help=URL_HELP)
        return sub

    add = command(
        "add", "add a staff account (password from a prompt, or from stdin when it is not a terminal)"
    )
    add.add_argument("--role", required=True, choices=roles)
    add.add_argument("--name", help="the name shown in the console (default: the username)")
    add.add_argument("--wecom", metavar="USERID", help="the member's WeCom UserID, for the WeCom app")
    command("list", "list the staff accounts", username=False)
    command("deactivate", "deactivate an account: no more logins, its open sessions end")
    command("reactivate", "let a deactivated account log in again")
    command("reset-password", "set a new password (prompt or stdin) and end the account's open sessions")
    set_role = command("set-role", "change an account's role and end its open sessions")
    set_role.add_argument("role", choices=roles)
    command("revoke-sessions", "end every open session of an account")
    command("unlock", "lift an account's login lock-out")
    set_wecom = command("set-wecom", "bind an account to the WeCom UserID the WeCom app answers")
    target = set_wecom.add_mutually_exclusive_group(required=True)
    target.add_argument("wecom_user_id", nargs="?", help="the member's UserID (通讯录 → 成员 → 账号)")
    target.add_argument("--clear", action="store_true", help="unbind: the WeCom app no longer answers them")


def _local(moment: Optional[dt.datetime]) -> str:
    from bot import clock

    return moment.astimezone(clock.zone()).strftime("%Y-%m-%d %H:%M") if moment is not None else "-"


def _list(url: Optional[str]) -> int:
    from bot.db.session import session_scope
    from bot.services import staff_auth, staff_lifecycle

    with session_scope(url) as session:
        accounts = staff_lifecycle.list_accounts(session, policy=staff_auth.LoginPolicy.from_settings())
    if not accounts:
        print("no staff accounts yet (bot user add NAME --role ROLE)")
        return 0
    header = ("username", "role", "name", "state", "wecom", "last login", "sessions")
    rows: List[tuple] = [header]
    for account in accounts:
        state = "active" if account.active else f"deactivated {_local(account.deactivated_at)}"
        if account.locked_until is not None:
            state += f", locked until {_local(account.locked_until)}"
        rows.append(
            (
                account.username,
                account.role.value,
                account.display_name,
                state,
                account.wecom_user_id or "-",
                _local(account.last_login_at),
                str(account.open_sessions),
            )
        )
    widths = [max(len(str(row[column])) for row in rows) for column in range(len(header))]
    for row in rows:
        print("  ".join(str(value).ljust(width) for value, width in zip(row, widths, strict=True)).rstrip())
    return 0


def _ended(count: int) -> str:
    return f"{count} open session{'' if count == 1 else 's'} ended"


def _apply(session: Session, args: argparse.Namespace, *, actor: str, password: Optional[str]) -> str:
    """Make the change ``args`` asks for; what was done, for the operator."""
    from bot.services import staff_auth, staff_lifecycle, staff_users

    command, name = args.user_command, args.username
    if command == "add":
        user = staff_users.create_user(
            session,
            username=name,
            password=password or "",
            role=args.role,
            display_name=args.name,
            wecom_user_id=args.wecom,
            actor=actor,
        )
        return f"Added staff account {user.username} ({user.role.value}, {user.display_name})"
    if command == "deactivate":
        return f"Deactivated {name}; " + _ended(
            staff_lifecycle.deactivate(session, username=name, actor=actor)
        )
    if command == "reactivate":
        staff_lifecycle.reactivate(session, username=name, actor=actor)
        return f"Reactivated {name}"
    if command == "reset-password":
        ended = staff_lifecycle.reset_password(session, username=name, password=password or "", actor=actor)
        return f"New password set for {name}; " + _ended(ended)
    if command == "set-role":
        ended = staff_lifecycle.set_role(session, username=name, role=args.role, actor=actor)
        return f"{name} is now a {args.role}; " + _ended(ended)
    if command == "revoke-sessions":
        return f"{name}: " + _ended(staff_lifecycle.revoke_sessions(session, username=name, actor=actor))
    if command == "unlock":
        policy = staff_auth.LoginPolicy.from_settings()
        was_locked = staff_lifecycle.unlock(session, username=name, actor=actor, policy=policy)
        return f"{name}: " + (
            "lock-out lifted" if was_locked else "was not locked; its failure count starts afresh"
        )
    if command == "set-wecom":
        wecom_user_id = None if args.clear else args.wecom_user_id
        bound = staff_lifecycle.set_wecom_user_id(
            session, username=name, wecom_user_id=wecom_user_id, actor=actor
        )
        return (
            f"{name} is bound to the WeCom UserID {bound}" if bound else f"{name} is no longer bound to WeCom"
        )
    raise ValueError(f"unknown user command {command!r}")


def run(args: argparse.Namespace, *, actor: str) -> int:
    """Run the ``bot user`` subcommand ``args`` asks for (after migrating the database).

    Args:
        args: The parsed command line.
        actor: Who runs it, for the audit log (``cli:<os user>``).

    Returns:
        The exit status: 0 done, 2 refused (nothing was changed).
    """
    from bot.db import migrate
    from bot.db.session import session_scope
    from bot.services.staff_users import AccountError

    migrate.upgrade(args.url)
    if args.user_command == "list":
        return _list(args.url)
    password: Optional[str] = None
    if args.user_command in ("add", "reset-password"):
        password = read_new_password()
        if password is None:
            print("error: the passwords differ; nothing was changed", file=sys.stderr)
            return 2
    try:
        with session_scope(args.url) as session:
            done = _apply(session, args, actor=actor, password=password)
    except AccountError as error:
        print(f"error: {error}; nothing was changed", file=sys.stderr)
        return 2
    print(done)
    return 0
