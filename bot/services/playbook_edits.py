"""Staff edits of the playbook's wording: versioned, checked, used at once, exportable back to the YAML.

The YAML files under ``data/playbook/`` stay the source for a fresh install. A supervisor's save is a new
``playbook_edits`` row whose ``data`` holds only the edited fields, nested as in the YAML (e.g.
``{"coach": {"script": [...]}}``): those this save changed and those earlier versions had edited, less any set
back to the YAML's wording. :func:`current_playbook` lays each intent's latest row over the YAML playbook, so a
developer's later change to a field no supervisor edited still reaches the bot (a row holding a whole entry,
as the first rows did, simply edits every field). The bot and the coach answer with the new wording on their
next request — no retrain (the model only knows intents, not wording) and no restart (the merged playbook is
cached per process and rebuilt when the newest row changes). Only wording is editable
(:data:`EDITABLE_FIELDS`); an entry's intent, kind, offer kind, legal basis and next-step kind stay the
YAML's, because code and the model depend on them.

A save is refused, with nothing stored, when the coercion guard refuses the wording
(:func:`bot.services.refused_texts.refusal_of`: the reason names the field, the guard's category and its
sentence of reason, and an ``outgoing_refused`` audit row is written in the caller's session), when a text or the note holds a control character, when the entry no
longer passes the playbook schema, or when someone else saved the entry since the editor opened it
(optimistic: ``based_on`` must be the latest version). The export checks every entry with the guard and the
schema before it writes any file.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Union

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from bot import clock
from bot.db import audit
from bot.db.playbook_models import PlaybookEdit
from bot.playbook import (
    PLAYBOOK_DIR,
    Entry,
    Playbook,
    PlaybookError,
    default_playbook,
    default_sources,
    parse_entry,
)
from bot.services import refused_texts

logger = logging.getLogger(__name__)

PLAYBOOK_EDITED = "playbook_edited"
PLAYBOOK_REVERTED = "playbook_reverted"
PLAYBOOK_EXPORTED = "playbook_exported"

TEXT = "text"
LINES = "lines"


@dataclass(frozen=True)
class EditableField:
    """One editable field of a playbook entry.

    ``path`` is its dotted path in the entry's YAML, ``shape`` one text or a list of lines, ``checked`` whether
    its wording must pass the compliance rules.
    """

    path: str
    shape: str
    checked: bool = True


# In the order the edit page shows them. Every field is checked except the don'ts, which must be able to
# name the forbidden tactics ("不得以停水停电相威胁") to forbid them.
EDITABLE_FIELDS: Tuple[EditableField, ...] = (
    EditableField("answers", LINES),
    EditableField("follow_up", TEXT),
    EditableField("offer.text", TEXT),
    EditableField("coach.script", LINES),
    EditableField("coach.ask", TEXT),
    EditableField("coach.strategy", LINES),
    EditableField("coach.next_step", TEXT),
    EditableField("coach.donts", LINES, checked=False),
)
FIELDS_BY_PATH: Dict[str, EditableField] = {field.path: field for field in EDITABLE_FIELDS}

FieldValue = Union[str, Sequence[str]]


class EditRefused(ValueError):
    """A save or revert that was refused; nothing was stored.

    Attributes:
        code: What kind of refusal (``unknown_intent``, ``not_editable``, ``forbidden``, ``schema``,
            ``stale``, ``unchanged``, ``unknown_version``), for the page to word it.
        field: The field at fault, when there is one.
        phrase: The forbidden phrase, for ``forbidden``.
    """

    code = "refused"

    def __init__(self, message: str, *, field: str = "", phrase: str = "") -> None:
        """Keeps the message and the field and phrase it is about."""
        super().__init__(message)
        self.field = field
        self.phrase = phrase


class UnknownIntent(EditRefused):
    """No playbook entry has this intent."""

    code = "unknown_intent"


class NotEditable(EditRefused):
    """The field is not one of :data:`EDITABLE_FIELDS`, or its value has the wrong shape."""

    code = "not_editable"


class ForbiddenWording(EditRefused):
    """The coercion guard refuses the wording of a field.

    Attributes:
        refusal: The guard's category, reason and the words found (``phrase`` is its words too).
    """

    code = "forbidden"

    def __init__(self, message: str, *, field: str, refusal: refused_texts.Refusal) -> None:
        """Keeps the field and the guard's refusal."""
        super().__init__(message, field=field, phrase=refusal.phrase)
        self.refusal = refusal


class SchemaInvalid(EditRefused):
    """The edited entry does not pass the playbook schema (``bot.playbook.parse_entry``)."""

    code = "schema"


class StaleEdit(EditRefused):
    """Someone saved the entry after the editor opened it."""

    code = "stale"

    def __init__(self, message: str, *, latest: int) -> None:
        """Keeps the version that is now the latest."""
        super().__init__(message)
        self.latest = latest


class Unchanged(EditRefused):
    """The save changes nothing."""

    code = "unchanged"


class UnknownVersion(EditRefused):
    """A revert to a version that does not exist."""

    code = "unknown_version"


class ControlCharacter(EditRefused):
    """A text or the note holds a control character (NUL and the like), which no wording needs."""

    code = "control_character"


# Versions are stored as 32-bit integers (PostgreSQL ``integer``); a larger number can name no version.
MAX_VERSION = 2**31 - 1

# C0 and C1 control characters and DEL, except tab and line breaks: PostgreSQL refuses NUL in text, and the
# others are invisible in the editor and unsafe in the exported YAML (U+0085 reads back as a line break).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


# --- the YAML source ------------------------------------------------------------------------------------------


def yaml_data(intent: str) -> Dict[str, Any]:
    """A copy of the entry's mapping as the YAML file holds it (version 0).

    Read from :func:`bot.playbook.default_sources`, the same parsed files :func:`default_playbook` is built
    from, so the process keeps one copy of the playbook's YAML.

    Raises:
        UnknownIntent: If there is no file for ``intent``.
    """
    data = default_sources().get(intent)
    if data is None:
        raise UnknownIntent(f"no playbook entry for intent '{intent}'")
    return copy.deepcopy(dict(data))


def get_field(data: Mapping[str, Any], path: str) -> Any:
    """The value at a dotted ``path`` of an entry's mapping (``None`` when absent)."""
    value: Any = data
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def _set_field(data: Dict[str, Any], path: str, value: Any) -> None:
    *parents, last = path.split(".")
    target = data
    for key in parents:
        target = target.setdefault(key, {})
    target[last] = value


def edited_fields(stored: Mapping[str, Any]) -> Dict[str, Any]:
    """The editable fields a stored version's ``data`` holds: path → value, in :data:`EDITABLE_FIELDS` order."""
    found: Dict[str, Any] = {}
    for field in EDITABLE_FIELDS:
        value = get_field(stored, field.path)
        if value is not None:
            found[field.path] = copy.deepcopy(value)
    return found


def _nest(fields: Mapping[str, Any]) -> Dict[str, Any]:
    """Path → value as the nested mapping a version's ``data`` stores."""
    nested: Dict[str, Any] = {}
    for path, value in fields.items():
        _set_field(nested, path, copy.deepcopy(value))
    return nested


def _apply_wording(base: Mapping[str, Any], stored: Mapping[str, Any]) -> Dict[str, Any]:
    """``base`` (the YAML mapping) with the editable fields taken from ``stored`` where it has them.

    Only wording comes from the stored version: a field it does not hold, a field the YAML gained later, or
    a changed offer kind, is the YAML's.
    """
    merged = copy.deepcopy(dict(base))
    for path, value in edited_fields(stored).items():
        _set_field(merged, path, value)
    return merged


# --- reading ----------------------------------------------------------------------------------------------------


def latest_edits(session: Session) -> Dict[str, PlaybookEdit]:
    """Each edited intent's latest version row."""
    newest = (
        select(PlaybookEdit.intent, func.max(PlaybookEdit.version).label("version"))
        .group_by(PlaybookEdit.intent)
        .subquery()
    )
    rows = session.execute(
        select(PlaybookEdit).join(
            newest, (PlaybookEdit.intent == newest.c.intent) & (PlaybookEdit.version == newest.c.version)
        )
    ).scalars()
    return {str(row.intent): row for row in rows}


def latest_version(session: Session, *, intent: str) -> int:
    """The number of the intent's latest version (0: never edited, the YAML's)."""
    value = session.execute(
        select(func.max(PlaybookEdit.version)).where(PlaybookEdit.intent == intent)
    ).scalar()
    return int(value or 0)


def current_data(session: Session, *, intent: str) -> Dict[str, Any]:
    """The entry's mapping as it stands: the YAML with the latest version's wording.

    Raises:
        UnknownIntent: If there is no playbook entry for ``intent``.
    """
    base = yaml_data(intent)
    row = session.execute(
        select(PlaybookEdit)
        .where(PlaybookEdit.intent == intent)
        .order_by(PlaybookEdit.version.desc())
        .limit(1)
    ).scalar_one_or_none()
    return _apply_wording(base, row.data) if row is not None else base


def history(session: Session, *, intent: str) -> List[PlaybookEdit]:
    """Every saved version of the entry, newest first (version 0, the YAML, is not a row)."""
    return list(
        session.execute(
            select(PlaybookEdit).where(PlaybookEdit.intent == intent).order_by(PlaybookEdit.version.desc())
        ).scalars()
    )


def version_data(session: Session, *, intent: str, version: int) -> Dict[str, Any]:
    """The entry's mapping as it was at ``version`` (0: the YAML).

    Raises:
        UnknownIntent: If there is no playbook entry for ``intent``.
        UnknownVersion: If the version was never saved.
    """
    base = yaml_data(intent)
    if version == 0:
        return base
    return _apply_wording(base, _version_row(session, intent=intent, version=version).data)


def _version_row(session: Session, *, intent: str, version: int) -> PlaybookEdit:
    # Checked before the query: PostgreSQL refuses to compare an integer column with a larger number.
    row = (
        session.execute(
            select(PlaybookEdit).where(PlaybookEdit.intent == intent, PlaybookEdit.version == version)
        ).scalar_one_or_none()
        if 0 < version <= MAX_VERSION
        else None
    )
    if row is None:
        raise UnknownVersion(f"{intent} has no version {version}")
    return row


@dataclass(frozen=True)
class Change:
    """One field a version changed: its wording before and after (a text, or a list of lines)."""

    field: str
    before: Any
    after: Any


@dataclass(frozen=True)
class VersionView:
    """A saved version with the fields it changed against the version before it."""

    row: PlaybookEdit
    changes: Tuple[Change, ...]


def history_with_changes(session: Session, *, intent: str) -> List[VersionView]:
    """:func:`history` with what each version changed (version 1 against the YAML), newest first.

    Raises:
        UnknownIntent: If there is no playbook entry for ``intent``.
    """
    base = yaml_data(intent)
    rows = list(reversed(history(session, intent=intent)))
    views: List[VersionView] = []
    previous = base
    for row in rows:
        data = _apply_wording(base, row.data)
        changes = tuple(
            Change(field.path, get_field(previous, field.path), get_field(data, field.path))
            for field in EDITABLE_FIELDS
            if get_field(previous, field.path) != get_field(data, field.path)
        )
        views.append(VersionView(row=row, changes=changes))
        previous = data
    return list(reversed(views))


_cache_lock = threading.Lock()
_cache: Dict[str, Tuple[Tuple[int, int], Playbook]] = {}


def clear_cache() -> None:
    """Forget the merged playbooks (tests; the cache also refreshes itself when a version is saved)."""
    with _cache_lock:
        _cache.clear()


def current_playbook(session: Session) -> Playbook:
    """The playbook the bot and the coach use: the YAML's with every intent's latest edited version applied.

    Cached per process and database; one cheap query (the newest row id and the row count) tells whether
    another process saved since, so a save in the staff app reaches the action server on its next message.
    A stored version that no longer passes the schema or the compliance rules (either grew since the save) is
    logged and the YAML entry used instead.

    Args:
        session: The caller's unit of work (only read).

    Returns:
        The merged playbook; the very same object while nothing was saved.
    """
    newest, count = session.execute(select(func.max(PlaybookEdit.id), func.count(PlaybookEdit.id))).one()
    key = (int(newest or 0), int(count or 0))
    where = str(session.get_bind().url)
    with _cache_lock:
        cached = _cache.get(where)
        if cached is not None and cached[0] == key:
            return cached[1]
    base = default_playbook()
    if key == (0, 0):
        playbook = base
    else:
        entries: Dict[str, Entry] = {entry.intent: entry for entry in base}
        for intent, row in latest_edits(session).items():
            if intent not in entries:
                continue
            data = _apply_wording(yaml_data(intent), row.data)
            try:
                # Checked again: the compliance rules or the schema may have grown since the save.
                _check_compliance(data)
                entries[intent] = parse_entry(data, f"{intent} v{row.version}")
            except (EditRefused, PlaybookError) as error:
                logger.error(
                    "playbook edit %s v%s no longer passes, using the YAML entry: %s",
                    intent,
                    row.version,
                    error,
                )
        playbook = Playbook(entries)
    with _cache_lock:
        _cache[where] = (key, playbook)
    return playbook


# --- writing ----------------------------------------------------------------------------------------------------


def without_control(text: str) -> str:
    """``text`` without the control characters a save refuses (to show a refused form again)."""
    return _CONTROL.sub("", text)


def _check_printable(text: str, *, field: str) -> None:
    found = _CONTROL.search(text)
    if found:
        raise ControlCharacter(
            f"{field}: control character U+{ord(found.group()):04X} at position {found.start()}", field=field
        )


def _normalise(field: EditableField, value: FieldValue) -> Union[str, List[str]]:
    if field.shape == TEXT:
        if not isinstance(value, str):
            raise NotEditable(f"{field.path} takes one text", field=field.path)
        _check_printable(value, field=field.path)
        return value.strip()
    if isinstance(value, str) or not all(isinstance(item, str) for item in value):
        raise NotEditable(f"{field.path} takes a list of lines", field=field.path)
    for item in value:
        _check_printable(item, field=field.path)
    return [item.strip() for item in value if item.strip()]


def _check_compliance(data: Mapping[str, Any]) -> None:
    for field in EDITABLE_FIELDS:
        if not field.checked:
            continue
        value = get_field(data, field.path)
        texts = [value] if isinstance(value, str) else list(value or [])
        for text in texts:
            refusal = refused_texts.refusal_of(str(text))
            if refusal is not None:
                raise ForbiddenWording(
                    f"{field.path}: {refusal.category} “{refusal.phrase}” in “{text}”: {refusal.reason}",
                    field=field.path,
                    refusal=refusal,
                )


# Which editable field a schema error is about, from the words bot.playbook's messages use.
_SCHEMA_FIELDS: Tuple[Tuple[re.Pattern, str], ...] = (
    (re.compile(r"\banswer"), "answers"),
    (re.compile(r"\bfollow_up\b"), "follow_up"),
    (re.compile(r"\boffer\b"), "offer.text"),
    (re.compile(r"\bscript\b"), "coach.script"),
    (re.compile(r"'ask'"), "coach.ask"),
    (re.compile(r"\bstrategy\b"), "coach.strategy"),
    (re.compile(r"'next_step'"), "coach.next_step"),
    (re.compile(r"\bdonts\b"), "coach.donts"),
)


def _check_schema(intent: str, data: Mapping[str, Any]) -> Entry:
    try:
        return parse_entry(data, intent)
    except PlaybookError as error:
        message = str(error)
        about = message.removeprefix(intent)
        field = next((path for pattern, path in _SCHEMA_FIELDS if pattern.search(about)), "")
        raise SchemaInvalid(message, field=field) from error


def _store(
    session: Session,
    *,
    intent: str,
    edited: Mapping[str, Any],
    based_on: Optional[int],
    actor: str,
    note: Optional[str],
    reverted_from: Optional[int] = None,
) -> PlaybookEdit:
    """Check the entry with ``edited`` (path → value) laid over the YAML, and store those fields as the next version.

    Checked first: compliance, schema, staleness. A field back at the YAML's wording is not stored, so the
    YAML's later changes to it reach the bot again.
    """
    if not actor:
        raise ValueError("a playbook edit needs an actor")
    _check_printable(note or "", field="note")
    base = yaml_data(intent)
    kept = {path: value for path, value in edited.items() if value != get_field(base, path)}
    data = _apply_wording(base, _nest(kept))
    try:
        _check_compliance(data)
    except ForbiddenWording as refused:
        refused_texts.record_outgoing_refused(
            session,
            actor=actor,
            refusal=refused.refusal,
            source=refused_texts.PLAYBOOK_EDIT,
            target=f"playbook:{intent}",
        )
        raise
    _check_schema(intent, data)
    if based_on is not None and not 0 <= based_on <= MAX_VERSION:
        raise UnknownVersion(f"{intent} has no version {based_on}")
    latest = latest_version(session, intent=intent)
    if based_on is not None and based_on != latest:
        raise StaleEdit(
            f"{intent} was saved as version {latest} after version {based_on} was opened", latest=latest
        )
    previous = version_data(session, intent=intent, version=latest)
    changed = [
        field.path
        for field in EDITABLE_FIELDS
        if get_field(data, field.path) != get_field(previous, field.path)
    ]
    if not changed:
        raise Unchanged(f"{intent}: nothing changed")
    row = PlaybookEdit(
        intent=intent,
        version=latest + 1,
        data=_nest(kept),
        edited_by=actor,
        edited_at=clock.utc_now(),
        note=(note or "").strip() or None,
        reverted_from=reverted_from,
    )
    try:
        # A savepoint: when another save took the same number first, only this insert is undone.
        with session.begin_nested():
            session.add(row)
    except IntegrityError as error:
        raise StaleEdit(
            f"{intent} was saved by someone else at the same moment", latest=latest + 1
        ) from error
    audit.record(
        session,
        actor=actor,
        action=PLAYBOOK_REVERTED if reverted_from is not None else PLAYBOOK_EDITED,
        target=f"playbook:{intent}",
        detail={"version": row.version, "fields": changed, "note": row.note, "reverted_from": reverted_from},
    )
    return row


def save(
    session: Session,
    *,
    intent: str,
    fields: Mapping[str, FieldValue],
    actor: str,
    based_on: Optional[int],
    note: Optional[str] = None,
) -> PlaybookEdit:
    """Save new wording for some of an entry's fields as its next version.

    Args:
        session: The caller's unit of work (the version and its audit row commit with it).
        intent: The entry.
        fields: Editable field path (:data:`EDITABLE_FIELDS`) → its new text, or its lines for a list field.
            Fields not given keep their current wording.
        actor: The staff username saving.
        based_on: The version the editor started from (0: the YAML); ``None`` skips the staleness check.
        note: Why, in the editor's words (optional).

    Returns:
        The new version's row, flushed.

    Raises:
        UnknownIntent: No such entry.
        NotEditable: A field that is not editable, or a value of the wrong shape.
        ForbiddenWording: The guard refuses a field's wording (named with the field, the category and the
            reason; an ``outgoing_refused`` audit row is written in ``session``).
        ControlCharacter: A control character (NUL and the like) in a text or the note.
        SchemaInvalid: The entry would not pass the playbook schema (e.g. fewer than two answers).
        StaleEdit: ``based_on`` is not the latest version.
        Unchanged: The wording is what it already is.
    """
    yaml_data(intent)  # UnknownIntent before anything else
    latest = latest_version(session, intent=intent)
    edited = edited_fields(_version_row(session, intent=intent, version=latest).data) if latest else {}
    for path, value in fields.items():
        field = FIELDS_BY_PATH.get(path)
        if field is None:
            raise NotEditable(f"'{path}' is not an editable playbook field", field=path)
        edited[path] = _normalise(field, value)
    return _store(session, intent=intent, edited=edited, based_on=based_on, actor=actor, note=note)


def revert(
    session: Session,
    *,
    intent: str,
    version: int,
    actor: str,
    based_on: Optional[int] = None,
    note: Optional[str] = None,
) -> PlaybookEdit:
    """Make an older version's wording (0: the YAML's) the entry's next version; history is never rewritten.

    Raises:
        UnknownVersion: The version was never saved.
        EditRefused: As for :func:`save` (the older wording must still pass today's rules and schema).
    """
    yaml_data(intent)  # UnknownIntent before UnknownVersion
    edited = edited_fields(_version_row(session, intent=intent, version=version).data) if version else {}
    return _store(
        session,
        intent=intent,
        edited=edited,
        based_on=based_on,
        actor=actor,
        note=note,
        reverted_from=version,
    )


# --- export -----------------------------------------------------------------------------------------------------

_PLAIN = re.compile(r"^[a-z][a-z0-9_]*$")
_YAML_WORDS = frozenset({"null", "true", "false", "yes", "no", "on", "off", "y", "n"})


# Code points JSON leaves as they are but YAML must not see raw: DEL and the C1 controls (not printable in
# YAML), NEL, LINE and PARAGRAPH SEPARATOR (YAML line breaks: a quoted scalar would read them back as a
# space), the byte-order mark, surrogates and the non-characters. JSON's \uXXXX escape is YAML's too.
_YAML_UNSAFE = re.compile("[\x7f-\x9f\u2028\u2029\ufeff\ud800-\udfff\ufffe\uffff]")


def _scalar(value: Any) -> str:
    if isinstance(value, str) and _PLAIN.match(value) and value not in _YAML_WORDS:
        return value
    if isinstance(value, str):
        # A JSON string is a valid YAML double-quoted scalar; Chinese stays as it is.
        quoted = json.dumps(value, ensure_ascii=False)
        return _YAML_UNSAFE.sub(lambda found: f"\\u{ord(found.group()):04x}", quoted)
    return json.dumps(value)


def _emit(value: Any, indent: int) -> Iterable[str]:
    pad = " " * indent
    if isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(item, (Mapping, list)) and item:
                yield f"{pad}{key}:"
                yield from _emit(item, indent + 2)
            else:
                yield f"{pad}{key}: {_scalar(item) if not isinstance(item, (Mapping, list)) else json.dumps(item)}"
    else:
        for item in value:
            if isinstance(item, Mapping) and item:
                lines = list(_emit(item, indent + 2))
                yield f"{pad}- {lines[0].lstrip()}"
                yield from lines[1:]
            else:
                yield f"{pad}- {_scalar(item)}"


def dump_entry(data: Mapping[str, Any]) -> str:
    """An entry's mapping as the playbook's YAML files are written.

    Keys in order, strings double-quoted (identifiers plain), lists indented, Chinese unescaped — so an
    unchanged entry dumps to its file byte for byte and an export's diff shows only the edited wording.
    """
    return "\n".join(_emit(data, 0)) + "\n"


def export(session: Session, *, out_dir: Path = PLAYBOOK_DIR, actor: str = "") -> List[Path]:
    """Write each edited entry's current wording to ``out_dir/<intent>.yml`` (unedited entries untouched).

    Args:
        session: The caller's unit of work.
        out_dir: Where to write (default: ``data/playbook/``, so the edits become the fresh-install source).
        actor: Who exported, for the audit row (none written when empty).

    Returns:
        The files written, in intent order.

    Raises:
        ForbiddenWording: The guard refuses an edited entry's wording (nothing is written).
        SchemaInvalid: An edited entry no longer passes the schema (nothing is written).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    written: List[Path] = []
    texts: Dict[Path, str] = {}
    for intent in sorted(latest_edits(session)):
        try:
            data = current_data(session, intent=intent)
        except UnknownIntent:
            logger.warning("playbook edit for %s has no YAML file any more; not exported", intent)
            continue
        # Every entry checked before any file is written: all or nothing. The rules may have grown since the
        # save, and a forbidden phrase must not become the fresh-install wording.
        _check_compliance(data)
        _check_schema(intent, data)
        texts[out_dir / f"{intent}.yml"] = dump_entry(data)
    for path, text in texts.items():
        path.write_text(text, encoding="utf-8")
        written.append(path)
    if actor:
        audit.record(
            session,
            actor=actor,
            action=PLAYBOOK_EXPORTED,
            target=str(out_dir),
            detail={"files": [p.name for p in written]},
        )
    return written
