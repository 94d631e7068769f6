"""Practice mode (话术演练) in the staff console: rehearsing with a simulated owner, and the results over time.

Every role practises; supervisors and managers also see every collector's results. A thin adapter over :mod:`bot.coach.practice.service`. ``/practice`` starts a session (a chosen or random
objection and temperament); ``/practice/{id}`` is the chat-like page: the owner's lines, the collector's
answers, the owner's reactions and each answer's score and feedback, the summary once it has ended.
``/practice/results`` (supervisors and managers) lists every collector's sessions, scores and trend, drawn
as a line by the vendored ECharts from ``/api/practice/history``. The same steps are a JSON API under
``/api/practice/sessions`` (start, read, answer, finish). Every form carries the CSRF token (JSON calls the
``X-CSRF-Token`` header; the app's guard checks both); every start, answer, finish and view is an audit row.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from apps.staff.deps import current_session, current_user, get_db, require_role
from apps.staff.pages import render
from bot import clock
from bot.casework import owner_view
from bot.coach.practice import service
from bot.coach.practice.rubric import CRITERIA, default_rubric
from bot.coach.practice.simulator import default_lines, objection_intents, temperament_labels
from bot.db import audit
from bot.db.coach_models import PracticeSession, PracticeTurn
from bot.db.staff_models import StaffRole, StaffUser
from bot.playbook import default_playbook
from bot.services import staff_auth, staff_users
from bot.services.playbook_edits import current_playbook

router = APIRouter()
SUPERVISOR_OR_MANAGER = require_role(StaffRole.SUPERVISOR, StaffRole.MANAGER)
SUPERVISING = frozenset({StaffRole.SUPERVISOR, StaffRole.MANAGER})
RECENT_SESSIONS = 20

# Audit actions (``audit_log.action``) of this screen.

# A session id in a path: the id column's 32-bit range, so a longer number is a 422, not a database error.
SESSION_ID = Path(..., ge=1, le=service.MAX_SESSION_ID)
# Why the API refused an answer (the page words the same in its template).
BAD_ANSWER_DETAIL = {
    "empty": "an empty answer",
    "too_long": f"an answer longer than {service.MAX_ANSWER_CHARS} characters",
    "control": "an answer with control characters (such as NUL): remove them and send it again",
}
# The audit detail marking a step done through the JSON API.
VIA_API: Dict[str, Any] = {"via": "api"}


def objection_titles() -> Dict[str, str]:
    """Objection intent → its playbook title, for the objections the owner can raise."""
    playbook = default_playbook()
    titles: Dict[str, str] = {}
    for intent in objection_intents():
        entry = playbook.get(intent)
        titles[intent] = entry.title if entry else intent
    return titles


def _labels() -> Dict[str, Any]:
    rubric = default_rubric()
    return {
        "objections": objection_titles(),
        "temperaments": temperament_labels(),
        "criteria": {name: rubric.label(name) for name in CRITERIA},
        "tactics": {name: tactic.label for name, tactic in rubric.tactics.items()},
        "points": {name: rubric.criteria[name].points for name in CRITERIA},
    }


def _may_supervise(user: StaffUser) -> bool:
    return staff_users.has_role(user.role, SUPERVISING)


def _visible_session(db: Session, user: StaffUser, session_id: int) -> PracticeSession:
    """The session if ``user`` may see it (their own; anyone's for supervisors and managers), else 404."""
    try:
        return service.get(db, session_id=session_id, collector=None if _may_supervise(user) else str(user.username))
    except service.SessionNotFound as error:
        raise HTTPException(status_code=404) from error


def _start(
    db: Session, user: StaffUser, *, objection: Optional[str], temperament: Optional[str], via: Dict[str, Any]
) -> PracticeSession:
    """Open a session and audit it (page and API alike); ``ValueError`` for an unknown choice."""
    row = service.start(db, collector=str(user.username), objection=objection or None, temperament=temperament or None)
    audit.record(
        db, actor=str(user.username), action=audit.PRACTICE_STARTED, target=str(row.id),
        detail={"objection": row.objection, "temperament": row.temperament,
                "random": not (objection and temperament), **via},
    )  # fmt: skip
    return row


def _answer(db: Session, user: StaffUser, session_id: int, text: str, *, via: Dict[str, Any]) -> service.Answered:
    """Score the user's answer and audit it; the service's errors pass through for the caller to word."""
    result = service.answer(db, session_id=session_id, collector=str(user.username), text=text)
    audit.record(
        db, actor=str(user.username), action=audit.PRACTICE_ANSWERED, target=str(session_id),
        detail={"turn": result.turn.number, "score": result.score.score, "ended": result.ended, **via},
    )  # fmt: skip
    return result


def _finish(db: Session, user: StaffUser, session_id: int, *, via: Dict[str, Any]) -> PracticeSession:
    """End the user's own session (404 for none) and audit it."""
    try:
        row = service.finish(db, session_id=session_id, collector=str(user.username))
    except service.SessionNotFound as error:
        raise HTTPException(status_code=404) from error
    audit.record(
        db, actor=str(user.username), action=audit.PRACTICE_FINISHED, target=str(row.id),
        detail={"outcome": row.outcome, "score": row.score, **via},
    )  # fmt: skip
    return row


# --- pages ------------------------------------------------------------------------------------------------


@router.get("/practice", response_class=HTMLResponse, include_in_schema=False)
def practice_home(
    request: Request,
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> HTMLResponse:
    """Start a session (objection and temperament, or random) and the user's recent sessions."""
    sessions = service.sessions_for(db, collector=str(user.username), limit=RECENT_SESSIONS)
    audit.record(db, actor=str(user.username), action=audit.PRACTICE_VIEWED, detail={"rows": len(sessions)})
    return render(
        request, "practice.html", user=user, active=active, section="practice", sessions=sessions,
        descriptions={name: t.description for name, t in default_lines().temperaments.items()},
        supervising=_may_supervise(user), **_labels(),
    )  # fmt: skip


@router.post("/practice", include_in_schema=False)
def practice_start(
    objection: str = Form(""),
    temperament: str = Form(""),
    user: StaffUser = current_user,
    db: Session = get_db,
) -> Response:
    """Open a session and go to it; an empty choice is drawn at random."""
    try:
        row = _start(db, user, objection=objection, temperament=temperament, via={})
    except ValueError as error:
        raise HTTPException(status_code=400) from error
    return RedirectResponse(f"/practice/{row.id}", status_code=303)


@router.get("/practice/results", response_class=HTMLResponse, include_in_schema=False)
def practice_results(
    request: Request,
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> HTMLResponse:
    """Every collector's practice over time: sessions, scores, trend (supervisors and managers)."""
    histories = service.history(db)
    audit.record(db, actor=str(user.username), action=audit.PRACTICE_RESULTS_VIEWED, detail={"rows": len(histories)})
    names = owner_view.staff_names(db, usernames=[h.collector for h in histories])
    return render(
        request, "practice_results.html", user=user, active=active, section="practice", histories=histories,
        names=names, **_labels(),
    )  # fmt: skip


@router.get("/practice/{session_id}", response_class=HTMLResponse, include_in_schema=False)
def practice_page(
    request: Request,
    session_id: int = SESSION_ID,
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> HTMLResponse:
    """The practice chat: the owner's lines, the answers with their feedback, and the summary once ended."""
    row = _visible_session(db, user, session_id)
    audit.record(db, actor=str(user.username), action=audit.PRACTICE_VIEWED, target=str(row.id), detail={"collector": row.collector})
    return _session_page(request, db, user, active, row)


def _session_page(
    request: Request,
    db: Session,
    user: StaffUser,
    active: Optional[staff_auth.ActiveSession],
    row: PracticeSession,
    *,
    error: str = "",
    draft: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    names = owner_view.staff_names(db, usernames=[str(row.collector)])
    # The playbook's coaching for this objection, as edited by supervisors: folded away, to peek at when stuck.
    entry = current_playbook(db).get(str(row.objection))
    return render(
        request, "practice_session.html", user=user, active=active, section="practice", practice=row,
        turns=list(row.turns), mine=row.collector == user.username, names=names, error=error, draft=draft,
        max_chars=service.MAX_ANSWER_CHARS, walk_at=default_lines().temperaments[str(row.temperament)].walk_at,
        coaching=entry.coach if entry else None, offer=entry.offer.text if entry else "",
        status_code=status_code, **_labels(),
    )  # fmt: skip


@router.post("/practice/{session_id}/answer", include_in_schema=False)
def practice_answer(
    request: Request,
    session_id: int = SESSION_ID,
    text: str = Form(""),
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Score the answer and show the owner's reaction (the session's own collector only)."""
    try:
        result = _answer(db, user, session_id, text, via={})
    except service.SessionNotFound as error:
        raise HTTPException(status_code=404) from error
    except service.SessionEnded:
        row = _visible_session(db, user, session_id)
        return _session_page(request, db, user, active, row, error="ended", status_code=409)
    except service.BadAnswer as bad:
        row = _visible_session(db, user, session_id)
        # The draft is shown back for correcting, without the control characters that were refused.
        draft = service.without_control_characters(text)[: service.MAX_ANSWER_CHARS]
        shown = "bad_characters" if bad.reason == "control" else "bad_answer"
        return _session_page(request, db, user, active, row, error=shown, draft=draft, status_code=400)
    return RedirectResponse(f"/practice/{session_id}#turn-{result.turn.number}", status_code=303)


@router.post("/practice/{session_id}/finish", include_in_schema=False)
def practice_finish(session_id: int = SESSION_ID, user: StaffUser = current_user, db: Session = get_db) -> Response:
    """End the session now and show its summary (the session's own collector only)."""
    row = _finish(db, user, session_id, via={})
    return RedirectResponse(f"/practice/{row.id}#summary", status_code=303)


# --- the JSON API -----------------------------------------------------------------------------------------


class ScorePointOut(BaseModel):
    """One finished session on a collector's time line."""

    session_id: int
    ended_at: dt.datetime
    objection: str
    temperament: str
    outcome: str
    score: int
    criteria: Dict[str, Dict[str, int]] = Field(..., description="per criterion, answers that met it (hits) of all (turns)")
    forbidden: int = Field(..., description="answers with a forbidden tactic")


class CollectorHistoryOut(BaseModel):
    """A collector's finished sessions, oldest first, with the mean, the latest and the trend."""

    collector: str
    display_name: str
    sessions: int = Field(..., description="finished sessions")
    running: int = Field(..., description="sessions started and not finished")
    average: Optional[float] = None
    latest: Optional[int] = None
    trend: Optional[float] = Field(None, description="the later half's mean minus the earlier half's")
    hit_rates: Dict[str, Optional[int]] = Field(..., description="per criterion, % of all answers that met it")
    forbidden: int = Field(..., description="answers with a forbidden tactic, all sessions")
    points: List[ScorePointOut]


@router.get("/api/practice/history", response_model=List[CollectorHistoryOut], tags=["api"])
def practice_history_api(user: StaffUser = SUPERVISOR_OR_MANAGER, db: Session = get_db) -> List[CollectorHistoryOut]:
    """Every collector's practice results over time (supervisors and managers)."""
    histories = service.history(db)
    audit.record(
        db, actor=str(user.username), action=audit.PRACTICE_RESULTS_VIEWED, detail={"via": "api", "rows": len(histories)}
    )
    names = owner_view.staff_names(db, usernames=[h.collector for h in histories])
    return [
        CollectorHistoryOut(
            collector=h.collector,
            display_name=names.get(h.collector, h.collector),
            sessions=len(h.points),
            running=h.running,
            average=h.average,
            latest=h.latest,
            trend=h.trend,
            hit_rates=h.hit_rates,
            forbidden=h.forbidden,
            points=[
                ScorePointOut(
                    **{**vars(point), "criteria": {k: dict(v) for k, v in point.criteria.items()},
                       "ended_at": point.ended_at.astimezone(clock.zone())}
                )
                for point in h.points
            ],
        )
        for h in histories
    ]


class PracticeStartIn(BaseModel):
    """A session to start; a missing objection or temperament is drawn at random."""

    objection: Optional[str] = Field(None, description="a playbook objection intent")
    temperament: Optional[str] = Field(None, description="stubborn, hardship, misunderstanding, angry or malicious")


class PracticeAnswerIn(BaseModel):
    """What the collector says to the owner."""

    text: str = Field(..., min_length=1, max_length=service.MAX_ANSWER_CHARS)


class PracticeTurnOut(BaseModel):
    """One answer, the owner's reply and what the rubric made of the answer."""

    number: int
    text: str
    owner_reply: str
    reaction: str
    criteria: Dict[str, bool]
    forbidden: List[str]
    score: int
    feedback: List[str]
    at: dt.datetime


class PracticeSessionOut(BaseModel):
    """A practice session; ``outcome``, ``score`` and ``summary`` are set once it has ended."""

    id: int
    collector: str
    objection: str
    objection_title: str
    temperament: str
    temperament_label: str
    opening: str
    started_at: dt.datetime
    ended_at: Optional[dt.datetime] = None
    outcome: Optional[str] = None
    agreed_on: Optional[dt.date] = None
    score: Optional[int] = None
    summary: Optional[Dict[str, Any]] = None
    turns: List[PracticeTurnOut] = Field(default_factory=list)


def _local(moment: dt.datetime) -> dt.datetime:
    """A stored time (UTC; naive from SQLite) with the estate's offset."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)).astimezone(clock.zone())


def _session_out(row: PracticeSession, *, with_turns: bool = True) -> PracticeSessionOut:
    labels = _labels()
    return PracticeSessionOut(
        id=int(row.id),
        collector=str(row.collector),
        objection=str(row.objection),
        objection_title=labels["objections"].get(row.objection, str(row.objection)),
        temperament=str(row.temperament),
        temperament_label=labels["temperaments"].get(row.temperament, str(row.temperament)),
        opening=str(row.opening),
        started_at=_local(row.started_at),
        ended_at=_local(row.ended_at) if row.ended_at is not None else None,
        outcome=row.outcome,
        agreed_on=row.agreed_on,
        score=row.score,
        summary=row.summary,
        turns=[_turn_out(turn) for turn in row.turns] if with_turns else [],
    )


def _turn_out(turn: PracticeTurn) -> PracticeTurnOut:
    result = turn.criteria or {}
    return PracticeTurnOut(
        number=int(turn.number),
        text=str(turn.collector_text),
        owner_reply=str(turn.owner_reply),
        reaction=str(turn.reaction),
        criteria={name: bool(result.get("criteria", {}).get(name)) for name in CRITERIA},
        forbidden=list(result.get("forbidden") or []),
        score=int(turn.score),
        feedback=list(turn.feedback or []),
        at=_local(turn.created_at),
    )


@router.get("/api/practice/sessions", response_model=List[PracticeSessionOut], tags=["api"])
def practice_sessions_api(user: StaffUser = current_user, db: Session = get_db) -> List[PracticeSessionOut]:
    """The signed-in user's practice sessions, newest first (without their turns)."""
    rows = service.sessions_for(db, collector=str(user.username), limit=RECENT_SESSIONS)
    audit.record(db, actor=str(user.username), action=audit.PRACTICE_VIEWED, detail={"via": "api", "rows": len(rows)})
    return [_session_out(row, with_turns=False) for row in rows]


@router.post("/api/practice/sessions", response_model=PracticeSessionOut, status_code=201, tags=["api"])
def practice_start_api(body: PracticeStartIn, user: StaffUser = current_user, db: Session = get_db) -> PracticeSessionOut:
    """Start a session (422 for an unknown objection or temperament); the owner's opening is in ``opening``."""
    try:
        row = _start(db, user, objection=body.objection, temperament=body.temperament, via=VIA_API)
    except ValueError as error:
        raise HTTPException(status_code=422, detail=str(error)) from error
    return _session_out(row)


@router.get("/api/practice/sessions/{session_id}", response_model=PracticeSessionOut, tags=["api"])
def practice_session_api(
    session_id: int = SESSION_ID, user: StaffUser = current_user, db: Session = get_db
) -> PracticeSessionOut:
    """A session with its turns: the user's own, or anyone's for supervisors and managers."""
    row = _visible_session(db, user, session_id)
    audit.record(
        db, actor=str(user.username), action=audit.PRACTICE_VIEWED, target=str(row.id),
        detail={"collector": row.collector, "via": "api"},
    )  # fmt: skip
    return _session_out(row)


@router.post("/api/practice/sessions/{session_id}/answers", response_model=PracticeSessionOut, tags=["api"])
def practice_answer_api(
    body: PracticeAnswerIn, session_id: int = SESSION_ID, user: StaffUser = current_user, db: Session = get_db
) -> PracticeSessionOut:
    """Answer the owner (own sessions only): the session back with the new turn last; 409 once it has ended."""
    try:
        _answer(db, user, session_id, body.text, via=VIA_API)
    except service.SessionNotFound as error:
        raise HTTPException(status_code=404) from error
    except service.SessionEnded as error:
        raise HTTPException(status_code=409, detail="the session has ended") from error
    except service.BadAnswer as error:
        raise HTTPException(status_code=400, detail=BAD_ANSWER_DETAIL[error.reason]) from error
    return _session_out(service.get(db, session_id=session_id))


@router.post("/api/practice/sessions/{session_id}/finish", response_model=PracticeSessionOut, tags=["api"])
def practice_finish_api(
    session_id: int = SESSION_ID, user: StaffUser = current_user, db: Session = get_db
) -> PracticeSessionOut:
    """End the session now (own sessions only) and return it with its score and summary."""
    return _session_out(_finish(db, user, session_id, via=VIA_API))
