"""``bot coach``: the coach in a terminal or a pipe.

``bot coach "业主说他家暖气不热"`` answers one note; with no note it reads one note per line from standard
input. A terminal gets colours (unless ``NO_COLOR`` is set); a pipe or file gets plain text. ``--json``
writes one JSON object per input line (:func:`bot.coach.render.as_json`), a blank line included (its object
says ``"status": "empty"``), so the n-th output line always answers the n-th input line.

The playbook is the one supervisors edit in the staff console, read from the database (``--url`` or
``DATABASE_URL``); with no database there (or one that cannot be read) it is the YAML playbook, as the bot's
actions do.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Iterable, Iterator, Mapping, Optional, Sequence, TextIO

from bot.coach.model import ModelNotFound, ParserFactory
from bot.playbook import Playbook, default_playbook


def use_color(stream: TextIO, environ: Optional[Mapping[str, str]] = None) -> bool:
    """ANSI colours only for a terminal, and never when ``NO_COLOR`` is set (https://no-color.org)."""
    if (os.environ if environ is None else environ).get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def current_playbook(url: Optional[str], stderr: TextIO) -> Playbook:
    """The playbook with the supervisors' edits from the database at ``url``; the YAML one without it."""
    from sqlalchemy.exc import SQLAlchemyError

    from bot.db.session import session_scope
    from bot.services import playbook_edits
    from bot.settings import get_settings

    url = url or get_settings().database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return default_playbook()  # no database yet: nothing was edited (and none is created here)
    try:
        with session_scope(url) as session:
            return playbook_edits.current_playbook(session)
    except SQLAlchemyError as error:
        print(f"note: the playbook edits cannot be read, coaching from the YAML playbook ({error.__class__.__name__})", file=stderr)
        return default_playbook()


def _notes(notes: Sequence[str], stdin: TextIO, *, keep_blank: bool) -> Iterator[str]:
    """The notes to answer; a blank stdin line is one only when ``keep_blank`` (JSON lines pair with input)."""
    if notes:
        yield from notes
        return
    for line in stdin:
        if keep_blank or line.strip():
            yield line.rstrip("\r\n")


def run(
    notes: Sequence[str],
    *,
    parser_factory: ParserFactory,
    as_json: bool = False,
    model: Optional[Path] = None,
    url: Optional[str] = None,
    stdin: Optional[TextIO] = None,
    stdout: Optional[TextIO] = None,
    stderr: Optional[TextIO] = None,
) -> int:
    """Answer ``notes`` (or stdin's lines, one note each) and write the answers; the exit status.

    Args:
        notes: Notes given on the command line; empty: read standard input.
        parser_factory: Loads the trained model (``bot.rasa.agent.RasaParser``).
        as_json: Write one JSON object per note instead of text.
        model: The trained model (default: ``COACH_MODEL_PATH`` or ``models/current.tar.gz``).
        url: The database with the playbook edits (default: ``DATABASE_URL``).
        stdin: Where notes are read from (default ``sys.stdin``).
        stdout: Where answers go (default ``sys.stdout``).
        stderr: Where errors go (default ``sys.stderr``).

    Returns:
        0, or 2 when there is no trained model.
    """
    from bot.coach.coach import get_coach
    from bot.coach.render import as_json as answer_json
    from bot.coach.render import terminal_text

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    try:
        coach = get_coach(parser_factory=parser_factory, model_path=model, playbook=current_playbook(url, stderr))
    except ModelNotFound as error:
        print(f"error: {error}", file=stderr)
        return 2
    color = not as_json and use_color(stdout)
    first = True
    for note in _notes(notes, stdin, keep_blank=as_json):
        answer = coach.answer(note)
        if as_json:
            stdout.write(json.dumps(answer_json(answer), ensure_ascii=False) + "\n")
        else:
            if not first:
                stdout.write("\n" + ("─" * 40) + "\n")
            stdout.write(terminal_text(answer, color=color) + "\n")
        stdout.flush()
        first = False
    return 0


def add_arguments(parser: object) -> None:
    """Add ``bot coach``'s arguments to its ``argparse`` sub-parser."""
    import argparse

    assert isinstance(parser, argparse.ArgumentParser)
    parser.add_argument("notes", nargs="*", help="what the owner said (none: one note per line from stdin)")
    parser.add_argument("--json", action="store_true", help="one JSON object per note")
    parser.add_argument("--model", type=Path, help="the trained model (default: models/current.tar.gz)")
    parser.add_argument("--url", help="database URL with the playbook edits (default: DATABASE_URL or SQLite under var/)")


def notes_of(values: Iterable[str]) -> list[str]:
    """The command line's notes (several words without quotes are one note)."""
    values = list(values)
    return [" ".join(values)] if values else []
