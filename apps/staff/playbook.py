"""The playbook screens (话术库), for supervisors and managers.

The entries with their current version, an entry's wording as a form, its version history with what each
version changed, and revert.

A thin adapter over :mod:`bot.services.playbook_edits`, which checks every save (compliance rules, schema,
stale edits, control characters) and writes the version with its audit row. A refused save shows the page
again with the reason and the text as typed (less any control character), and stores nothing. Version numbers
in a form or the address are bounded to what the database stores: a larger one is a 400 page, not a 500.
"""

from __future__ import annotations

import difflib
from typing import Any, Dict, List, Mapping, Optional, Tuple

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from apps.staff.deps import current_session, get_db, require_role
from apps.staff.pages import render
from bot.casework import owner_view
from bot.db.staff_models import StaffRole, StaffUser
from bot.services import playbook_edits, staff_auth
from bot.services.playbook_edits import EDITABLE_FIELDS, LINES, MAX_VERSION, EditRefused, StaleEdit

router = APIRouter(include_in_schema=False)
SUPERVISOR_OR_MANAGER = require_role(StaffRole.SUPERVISOR, StaffRole.MANAGER)
MAX_FIELD_CHARS = 4000  # a field's text as typed; the longest stored one is a few hundred characters
MAX_ROWS = 14

# The form's field names are the editable fields' paths; FastAPI needs Python names, so each has an alias.
_FORM_NAMES = {field.path: field.path.replace(".", "_") for field in EDITABLE_FIELDS}


def _as_text(value: Any) -> str:
    """A field's value for its textarea: a list one item per line."""
    if isinstance(value, (list, tuple)):
        return "\n".join(str(item) for item in value)
    return "" if value is None else str(value)


def _from_text(path: str, text: str) -> Any:
    """A textarea back into the field's value: lines (blank ones dropped) for a list field."""
    if playbook_edits.FIELDS_BY_PATH[path].shape == LINES:
        return [line.strip() for line in text.splitlines() if line.strip()]
    return text


def _diff(before: Any, after: Any) -> List[Tuple[str, str]]:
    """Line by line: ``("-", old)``, ``("+", new)`` and ``(" ", unchanged)``."""

    def lines(value: Any) -> List[str]:
        return [str(item) for item in value] if isinstance(value, (list, tuple)) else [_as_text(value)]

    return [
        (line[0], line[2:]) for line in difflib.ndiff(lines(before), lines(after)) if line[:1] in ("-", "+", " ")
    ]


def _entry_or_404(db: Session, intent: str) -> Any:
    entry = playbook_edits.current_playbook(db).get(intent)
    if entry is None:
        raise HTTPException(status_code=404)
    return entry


def _entry_page(
    request: Request,
    db: Session,
    *,
    intent: str,
    user: StaffUser,
    active: Optional[staff_auth.ActiveSession],
    typed: Optional[Mapping[str, str]] = None,
    note: str = "",
    based_on: Optional[int] = None,
    refused: Optional[EditRefused] = None,
    saved: Optional[int] = None,
    status_code: int = 200,
) -> HTMLResponse:
    entry = _entry_or_404(db, intent)
    current = playbook_edits.current_data(db, intent=intent)
    latest = playbook_edits.latest_version(db, intent=intent)
    versions = playbook_edits.history_with_changes(db, intent=intent)
    fields = []
    for field in EDITABLE_FIELDS:
        shown = playbook_edits.get_field(current, field.path)
        value = typed[field.path] if typed is not None and field.path in typed else _as_text(shown)
        # Room for every line, each of which wraps about twice at the page's width.
        rows = min(MAX_ROWS, max(2, 2 * len(value.splitlines()) + 1))
        fields.append({"path": field.path, "name": _FORM_NAMES[field.path], "value": value, "rows": rows})
    history = [
        {
            "row": view.row,
            "changes": [{"field": change.field, "diff": _diff(change.before, change.after)} for change in view.changes],
        }
        for view in versions
    ]
    names = owner_view.staff_names(db, usernames=[str(view.row.edited_by) for view in versions])
    return render(
        request, "playbook_entry.html", user=user, active=active, section="playbook", entry=entry, fields=fields,
        latest=latest, based_on=latest if based_on is None else based_on, history=history, names=names, note=note,
        refused=refused, saved=saved, status_code=status_code,
    )  # fmt: skip


@router.get("/playbook", response_class=HTMLResponse)
def playbook_page(
    request: Request,
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Every entry with its current version and who last edited it."""
    playbook = playbook_edits.current_playbook(db)
    edits = playbook_edits.latest_edits(db)
    names = owner_view.staff_names(db, usernames=[str(row.edited_by) for row in edits.values()])
    entries = [{"entry": entry, "edit": edits.get(entry.intent)} for entry in playbook]
    return render(
        request, "playbook.html", user=user, active=active, section="playbook", entries=entries, names=names
    )


@router.get("/playbook/{intent}", response_class=HTMLResponse)
def entry_page(
    request: Request,
    intent: str,
    saved: Optional[int] = Query(None, ge=1, le=MAX_VERSION),
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """One entry: a form per editable field, and its versions."""
    return _entry_page(request, db, intent=intent, user=user, active=active, saved=saved)


def _refused_status(error: EditRefused) -> int:
    return 409 if isinstance(error, StaleEdit) else 400


@router.post("/playbook/{intent}")
def save(
    request: Request,
    intent: str,
    based_on: int = Form(..., ge=0, le=MAX_VERSION),
    note: str = Form("", max_length=500),
    answers: Optional[str] = Form(None, max_length=MAX_FIELD_CHARS),
    follow_up: Optional[str] = Form(None, max_length=MAX_FIELD_CHARS),
    offer_text: Optional[str] = Form(None, alias="offer.text", max_length=MAX_FIELD_CHARS),
    coach_script: Optional[str] = Form(None, alias="coach.script", max_length=MAX_FIELD_CHARS),
    coach_ask: Optional[str] = Form(None, alias="coach.ask", max_length=MAX_FIELD_CHARS),
    coach_strategy: Optional[str] = Form(None, alias="coach.strategy", max_length=MAX_FIELD_CHARS),
    coach_next_step: Optional[str] = Form(None, alias="coach.next_step", max_length=MAX_FIELD_CHARS),
    coach_donts: Optional[str] = Form(None, alias="coach.donts", max_length=MAX_FIELD_CHARS),
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Save the form as the entry's next version, or show it again with the reason it was refused."""
    _entry_or_404(db, intent)
    posted: Dict[str, Optional[str]] = {
        "answers": answers,
        "follow_up": follow_up,
        "offer.text": offer_text,
        "coach.script": coach_script,
        "coach.ask": coach_ask,
        "coach.strategy": coach_strategy,
        "coach.next_step": coach_next_step,
        "coach.donts": coach_donts,
    }
    typed = {path: text for path, text in posted.items() if text is not None}
    try:
        row = playbook_edits.save(
            db,
            intent=intent,
            fields={path: _from_text(path, text) for path, text in typed.items()},
            actor=str(user.username),
            based_on=based_on,
            note=note,
        )
    except EditRefused as error:
        # Nothing was written (the service checks before it writes); the page comes back with the text as
        # typed. After a stale refusal the form is based on the newest version, so a second save is a
        # deliberate overwrite after seeing that version in the history below. A control character is not
        # shown again (NUL cannot even be in an HTML page); the reason says it was there.
        typed = {path: playbook_edits.without_control(text) for path, text in typed.items()}
        return _entry_page(
            request, db, intent=intent, user=user, active=active, typed=typed,
            note=playbook_edits.without_control(note),
            based_on=getattr(error, "latest", based_on), refused=error, status_code=_refused_status(error),
        )  # fmt: skip
    return RedirectResponse(f"/playbook/{intent}?saved={row.version}", status_code=303)


@router.post("/playbook/{intent}/revert")
def revert(
    request: Request,
    intent: str,
    version: int = Form(..., ge=0, le=MAX_VERSION),
    based_on: int = Form(..., ge=0, le=MAX_VERSION),
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Make an older version's wording (0: the YAML's) the entry's next version."""
    _entry_or_404(db, intent)
    try:
        row = playbook_edits.revert(db, intent=intent, version=version, actor=str(user.username), based_on=based_on)
    except EditRefused as error:
        return _entry_page(
            request, db, intent=intent, user=user, active=active, refused=error,
            status_code=_refused_status(error),
        )  # fmt: skip
    return RedirectResponse(f"/playbook/{intent}?saved={row.version}", status_code=303)
