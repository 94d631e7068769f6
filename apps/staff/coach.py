"""The coach (话术助手) for every staff role: a page, ``POST /api/coach`` and ``GET /api/coach/owner``.

A thin adapter over :mod:`bot.coach`: the model is the bot's own, loaded once per process (``python -m
apps.staff`` starts loading it in the background at start-up, :func:`preload`; otherwise the first coach
request loads it). The playbook is the one supervisors edit (:func:`bot.services.playbook_edits.current_playbook`),
so a saved edit reaches the coach without a retrain.

Looking an owner up by unit is open to the roles that may see owners (the ``owners`` section's,
:func:`apps.staff.pages.owner_lookup_roles`, as WeCom's lookup): collectors see the arrears, the reasons given
before and the promises, with the phone masked (``138****5678``); every lookup is audited like the other
owner views. A note asked with a unit whose owner has old arrears gets the project manager as every card's
next step. Coach answers are audited without the note's text (it may hold an owner's
words) — only which objections were found.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, List, Optional

from fastapi import APIRouter, Form, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from apps.staff.deps import Forbidden, current_session, current_user, get_db
from apps.staff.pages import owner_lookup_roles, render
from bot.coach import Coach, get_coach
from bot.coach.data import coach_data
from bot.coach.model import ModelNotFound
from bot.coach.owner import OwnerBrief, lookup
from bot.coach.render import as_json
from bot.db import audit
from bot.db.staff_models import StaffUser
from bot.playbook import Playbook
from bot.rasa.agent import RasaParser
from bot.services import playbook_edits, refused_texts, staff_auth, staff_users
from bot.services.staff_users import phone_for

logger = logging.getLogger("apps.staff.coach")
router = APIRouter(tags=["coach"])

MAX_NOTE_CHARS = 2000  # a collector's note may quote an owner at length, within reason


def _playbook(db: Session) -> Playbook:
    """The playbook with the supervisors' latest edits (the YAML one where nothing was edited)."""
    return playbook_edits.current_playbook(db)


def _coach(db: Session) -> Optional[Coach]:
    """The process's coach with the current playbook, or None when no trained model is there."""
    try:
        return get_coach(parser_factory=RasaParser, playbook=_playbook(db))
    except ModelNotFound as error:
        logger.error("coach unavailable: %s", error)
        return None


def preload() -> threading.Thread:
    """Start loading the model on a background thread, so the first coach request does not wait for it."""

    def load() -> None:
        try:
            get_coach(parser_factory=RasaParser)
        except ModelNotFound as error:
            logger.warning("coach: %s", error)

    thread = threading.Thread(target=load, name="coach-preload", daemon=True)
    thread.start()
    return thread


def _guarded(db: Session, user: StaffUser, answer: Any) -> Any:
    """The coach's answer without the lines for owners that the guard refuses; each refusal audited."""
    answer, refusals = refused_texts.guarded_coach_answer(answer)
    for refusal in refusals:
        refused_texts.record_outgoing_refused(
            db, actor=str(user.username), refusal=refusal, source=refused_texts.CONSOLE_COACH
        )
    return answer


def _audit_answer(db: Session, user: StaffUser, answer: Dict[str, Any], via: str) -> None:
    audit.record(
        db,
        actor=str(user.username),
        action=audit.COACH_ANSWERED,
        detail={"via": via, "status": answer["status"], "intents": [t["intent"] for t in answer["types"]]},
    )


def may_look_up(user: StaffUser) -> bool:
    """Whether ``user``'s role may look owners up (the roles the console lets see owners)."""
    return staff_users.has_role(user.role, owner_lookup_roles())


def _lookup(db: Session, user: StaffUser, unit: str, via: str) -> List[OwnerBrief]:
    """The owners of ``unit``, audited; ``Forbidden`` for a role that may not see owners."""
    if not may_look_up(user):
        raise Forbidden()
    briefs = lookup(db, unit=unit, playbook=_playbook(db), old_arrears_months=coach_data().old_arrears_months)
    audit.record(
        db,
        actor=str(user.username),
        action=audit.OWNERS_SEARCHED,
        detail={"via": via, "unit": unit, "rows": len(briefs)},
    )
    for brief in briefs:
        audit.record(
            db, actor=str(user.username), action=audit.OWNER_VIEWED, target=f"owner:{brief.owner_id}",
            detail={"via": via},
        )  # fmt: skip
    return briefs


# --- the page ---------------------------------------------------------------------------------------------


@router.get("/coach", response_class=HTMLResponse, include_in_schema=False)
def coach_page(
    request: Request,
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
) -> Response:
    """The empty form: what the owner said, and optionally their unit."""
    return render(
        request, "coach.html", user=user, active=active, section="coach", text="", unit="",
        answer=None, owners=None, unavailable=False, data=coach_data(), lookup_refused=False,
    )  # fmt: skip


@router.post("/coach", response_class=HTMLResponse, include_in_schema=False)
def coach_ask(
    request: Request,
    text: str = Form("", max_length=MAX_NOTE_CHARS),
    unit: str = Form("", max_length=64),
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """The coach's answer to the note, and the unit's owner when a unit is given (and the role may see owners)."""
    answer: Optional[Dict[str, Any]] = None
    unavailable = False
    allowed = may_look_up(user)
    briefs = _lookup(db, user, unit.strip(), "coach") if unit.strip() and allowed else None
    if text.strip():
        coach = _coach(db)
        if coach is None:
            unavailable = True
        else:
            old_arrears = any(brief.old_arrears for brief in briefs or ())
            answer = as_json(_guarded(db, user, coach.answer(text, old_arrears=old_arrears)))
            _audit_answer(db, user, answer, "page")
    owners = [_brief_out(brief, user) for brief in briefs] if briefs is not None else None
    return render(
        request, "coach.html", user=user, active=active, section="coach", text=text, unit=unit,
        answer=answer, owners=owners, unavailable=unavailable, data=coach_data(),
        lookup_refused=bool(unit.strip()) and not allowed,
        status_code=503 if unavailable else 200,
    )  # fmt: skip


# --- the JSON API -----------------------------------------------------------------------------------------


class CoachIn(BaseModel):
    """A collector's note: what the owner said, as typed."""

    text: str = Field(..., min_length=1, max_length=MAX_NOTE_CHARS, example="业主说他家暖气不热，所以不交")
    unit: Optional[str] = Field(
        None, max_length=64, description="the owner's unit: old arrears there make the manager every card's next step"
    )


class NextStepOut(BaseModel):
    """A next step the coach sets itself (a promise's follow-up, old arrears to the manager)."""

    kind: str
    label: str
    text: str


class TypeOut(BaseModel):
    """An objection type found (or, for an unclear note, a guess)."""

    intent: str
    confidence: float
    title: str


class LegalBasisOut(BaseModel):
    """A rule the answer rests on, with its article."""

    source: str
    article: str
    citation: str
    point: str


class CardOut(BaseModel):
    """One objection, or a repair or complaint request, with the playbook's coaching for it."""

    intent: str
    confidence: float
    title: str
    summary: str
    clause: str = Field(..., description="the part of the note it was read from")
    script: List[str] = Field(..., description="what the collector can say, line by line")
    legal_basis: List[LegalBasisOut]
    next_step: str
    next_step_kind: str = Field(..., description="repair_order, agree_date, escalate_supervisor, ...")
    next_step_label: str
    donts: List[str]
    ask: str = Field(..., description="a question to ask the owner about this objection")
    kind: str = Field(..., description="objection, or service_request (a repair or complaint to act on)")
    source: List[str] = Field(..., description="the playbook entries (or entry.field references) the wording is from")
    link: str = Field(..., description="service_request: the console page for the next step (repairs, complaints)")


class CoachOut(BaseModel):
    """The coach's answer: top-level script … donts are the first card's; ``cards`` holds every card."""

    text: str
    status: str = Field(..., description="objections, service_request, unclear, no_objection or empty")
    message: str
    types: List[TypeOut]
    script: List[str]
    legal_basis: List[LegalBasisOut]
    next_step: str
    next_step_kind: Optional[str] = None
    donts: List[str]
    cards: List[CardOut]
    ask: Optional[str] = Field(None, description="unclear: the question to ask the owner")
    guesses: List[TypeOut]
    recognised: List[TypeOut] = Field(..., description="intents found that are no objection (greeting, promise …)")
    next_steps: List[NextStepOut] = Field(..., description="the coach's own steps besides the cards' (a promise …)")


class PromiseBriefOut(BaseModel):
    """A payment promise."""

    number: Optional[str] = None
    status: str
    amount: Optional[float] = None
    due_date: Optional[str] = None
    created_at: str


class ReasonOut(BaseModel):
    """Something the owner raised before."""

    source: str = Field(..., description="conversation, escalation, repairs, complaints, bill_checks, instalments")
    code: str = Field(..., description="the intent, the escalation reason or the record's status")
    title: str
    at: Optional[str] = None
    text: str
    number: Optional[str] = None


class OwnerBriefOut(BaseModel):
    """An owner as the coach shows them (phone masked for collectors)."""

    owner_id: int
    name: str
    phone: str
    unit: str
    outstanding: float
    arrears_since: Optional[str] = None
    arrears_months: int
    old_arrears: bool = Field(..., description="old arrears: the project manager's case")
    promises: List[PromiseBriefOut]
    reasons: List[ReasonOut]


class CoachOwnersOut(BaseModel):
    """The owners whose unit matches the query."""

    unit: str
    owners: List[OwnerBriefOut]


def _brief_out(brief: OwnerBrief, user: StaffUser) -> OwnerBriefOut:
    return OwnerBriefOut(
        owner_id=brief.owner_id,
        name=brief.name,
        phone=phone_for(brief.phone, role=user.role),
        unit=brief.unit,
        outstanding=float(brief.outstanding),
        arrears_since=brief.arrears_since,
        arrears_months=brief.arrears_months,
        old_arrears=brief.old_arrears,
        promises=[
            PromiseBriefOut(
                number=promise.number,
                status=promise.status,
                amount=float(promise.amount) if promise.amount is not None else None,
                due_date=promise.due_date.isoformat() if promise.due_date else None,
                created_at=promise.created_at.isoformat(),
            )
            for promise in brief.promises
        ],
        reasons=[
            ReasonOut(
                source=reason.source, code=reason.code, title=reason.title,
                at=reason.at.isoformat() if reason.at else None, text=reason.text, number=reason.number,
            )  # fmt: skip
            for reason in brief.reasons
        ],
    )


@router.post("/api/coach", response_model=CoachOut)
def coach_api(body: CoachIn, user: StaffUser = current_user, db: Session = get_db) -> CoachOut:
    """What the owner means, what to say, on what grounds, what next and what never to say.

    Several objections give several cards; an unsure model gives ``status: unclear`` with the question to
    ask and the best guesses. With ``unit``, the owner there is looked up (audited; 403 for a role that may
    not see owners): old arrears make the project manager every card's next step. 503 when no trained model
    is installed.
    """
    unit = (body.unit or "").strip()
    briefs = _lookup(db, user, unit, "coach_api") if unit else []
    coach = _coach(db)
    if coach is None:
        raise HTTPException(status_code=503, detail="the coach's model is not available")
    answer = as_json(_guarded(db, user, coach.answer(body.text, old_arrears=any(brief.old_arrears for brief in briefs))))
    _audit_answer(db, user, answer, "api")
    return CoachOut(**answer)


@router.get("/api/coach/owner", response_model=CoachOwnersOut)
def coach_owner(
    unit: str = Query(..., min_length=1, max_length=64, description="a unit (3-2-801, 3栋2单元801) or part of its code"),
    user: StaffUser = current_user,
    db: Session = get_db,
) -> CoachOwnersOut:
    """The owners of ``unit``: arrears, reasons given before and promises (phone masked for collectors)."""
    return CoachOwnersOut(unit=unit, owners=[_brief_out(brief, user) for brief in _lookup(db, user, unit, "coach_api")])
