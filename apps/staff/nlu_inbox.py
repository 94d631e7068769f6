"""The NLU inbox screen (supervisors and managers): messages the model was unsure of, and a person's decision.

A thin adapter over :mod:`bot.services.nlu_inbox`; every view and decision is audited. ``bot nlu export``
turns the decisions into a training-data file; nothing reaches the training data from here.
"""

from __future__ import annotations

import functools
from typing import List, Optional

import yaml
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from apps.staff.deps import current_session, get_db, require_role
from apps.staff.pages import render
from bot.db import audit
from bot.db.staff_models import StaffRole, StaffUser
from bot.services import nlu_inbox, staff_auth
from bot.settings import PROJECT_ROOT

router = APIRouter(include_in_schema=False)
SUPERVISOR_OR_MANAGER = require_role(StaffRole.SUPERVISOR, StaffRole.MANAGER)
DISMISS = "__dismiss__"


@functools.lru_cache(maxsize=1)
def known_intents() -> List[str]:
    """The intents a correction may name: the domain's."""
    domain = yaml.safe_load((PROJECT_ROOT / "domain.yml").read_text(encoding="utf-8"))
    return [str(intent) for intent in domain["intents"]]


@router.get("/nlu", response_class=HTMLResponse)
def inbox_page(
    request: Request,
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """The undecided messages, newest first, each with a choice of intent."""
    items = nlu_inbox.inbox(db)
    audit.record(db, actor=user.username, action=audit.NLU_INBOX_VIEWED, detail={"rows": len(items)})
    return render(
        request, "nlu_inbox.html", user=user, active=active, section="nlu", items=items,
        intents=known_intents(), dismiss=DISMISS,
    )  # fmt: skip


@router.post("/nlu/{event_id}")
def decide(
    request: Request,
    event_id: int,
    intent: str = Form(...),
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Store the decision: the right intent, or dismissed."""
    chosen = None if intent == DISMISS else intent
    try:
        correction = nlu_inbox.decide(
            db, event_id=event_id, staff=user.username, intent=chosen, known_intents=known_intents()
        )
    except nlu_inbox.InboxError as error:
        return render(
            request, "refused.html", user=user, active=active, section="nlu", kind="nlu_inbox",
            holder="", reason=str(error), back="/nlu", status_code=400,
        )  # fmt: skip
    audit.record(
        db,
        actor=user.username,
        action=audit.NLU_DECIDED,
        target=f"event:{event_id}",
        detail={"text": correction.text, "predicted": correction.predicted_intent, "intent": chosen},
    )
    return RedirectResponse("/nlu", status_code=303)
