"""The console's working screens: the queue, conversations and owners.

Each route is a thin adapter: it reads query parameters, calls :mod:`bot.services` with the request's one
session, writes the audit row (every view of owners' data, every change) and renders a template. Refusals
from the queue (held by another person, an invalid transition) are shown as a polite page (409), never a
500.

A conversation is addressed by its handle (``/conversations/W-3F9K-2A7Q``, :mod:`bot.conversations.handles`),
never by its sender id: the URL, the page, the audit row and the access log show only the handle. A sender id
in the URL is not a handle, so it finds nothing (404).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Dict, List, Optional
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from apps.staff import security
from apps.staff.api import conversation_data, sender_of
from apps.staff.deps import current_session, current_user, get_db, require_role
from apps.staff.pages import render
from apps.staff.templating import templates
from bot.casework import owner_view
from bot.conversations import handles, handoff, outbox, transcripts
from bot.db import audit
from bot.db.models import EscalationState
from bot.db.staff_models import StaffRole, StaffUser
from bot.owners.units import parse_unit
from bot.reminders import schedule as reminder_schedule
from bot.services import queue, staff_auth

router = APIRouter(include_in_schema=False)

SUPERVISOR_OR_MANAGER = require_role(StaffRole.SUPERVISOR, StaffRole.MANAGER)

# The queue's state filter: the default shows what still needs someone.
STATE_FILTERS = {
    "active": (EscalationState.PENDING, EscalationState.OPEN),
    "pending": (EscalationState.PENDING,),
    "open": (EscalationState.OPEN,),
    "resolved": (EscalationState.RESOLVED,),
    "all": None,
}
SORTS = tuple(sort.value for sort in queue.Sort)
QUERY_TEXT_MAX = 64


def waiting_text(value: Optional[dt.timedelta]) -> str:
    """A waiting time as people say it: 3天2小时, 1小时5分, 12分钟, 不到1分钟."""
    if value is None:
        return ""
    minutes = int(value.total_seconds() // 60)
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days}天{hours}小时"
    if hours:
        return f"{hours}小时{minutes}分"
    return f"{minutes}分钟" if minutes else "不到1分钟"


def percent(value: Optional[float]) -> str:
    """A confidence as a percentage (0.813 → 81%)."""
    return "" if value is None else f"{value * 100:.0f}%"


def amount(value: Any) -> str:
    """An amount in yuan with two decimals and thousands separators."""
    return "" if value is None else f"{float(value):,.2f}"


templates.env.filters["waiting"] = waiting_text
templates.env.filters["percent"] = percent
templates.env.filters["amount"] = amount
templates.env.filters["path_part"] = lambda value: quote(str(value), safe="")


def _text(value: Optional[str]) -> Optional[str]:
    cleaned = (value or "").strip()[:QUERY_TEXT_MAX]
    return cleaned or None


def _actor(user: StaffUser) -> str:
    return str(user.username)


# --- the queue ------------------------------------------------------------------------------------------


@router.get("/queue", response_class=HTMLResponse)
def queue_page(
    request: Request,
    state: str = "active",
    reason: Optional[str] = None,
    channel: Optional[str] = None,
    assignee: Optional[str] = None,
    mine: bool = False,
    sort: str = "waiting",
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> HTMLResponse:
    """The escalation queue, filtered and sorted by the query parameters; the view is audited.

    Unknown filter or sort values fall back to the defaults (unresolved, waiting longest first).
    """
    state = state if state in STATE_FILTERS else "active"
    sort = sort if sort in SORTS else queue.Sort.WAITING.value
    reason, channel, assignee = _text(reason), _text(channel), _text(assignee)
    holder = _actor(user) if mine else assignee
    entries = queue.list_escalations(
        db, state=STATE_FILTERS[state], reason=reason, channel=channel, assignee=holder, sort=sort
    )
    everything = queue.list_escalations(db)
    filters = {"state": state, "reason": reason, "channel": channel, "assignee": assignee, "mine": mine, "sort": sort}
    audit.record(
        db,
        actor=_actor(user),
        action=audit.QUEUE_VIEWED,
        detail={**{key: value for key, value in filters.items() if value}, "rows": len(entries)},
    )
    staff = owner_view.active_staff(db)
    return render(
        request,
        "queue.html",
        user=user,
        active=active,
        section="queue",
        entries=entries,
        filters=filters,
        reasons=sorted({entry.reason for entry in everything}),
        channels=sorted({entry.channel for entry in everything if entry.channel}),
        staff=staff,
        names={username: name for username, name, _ in staff},
        here=request.url.path + (f"?{request.url.query}" if request.url.query else ""),
    )


def _refused(
    request: Request,
    user: StaffUser,
    active: Optional[staff_auth.ActiveSession],
    db: Session,
    error: queue.QueueError,
    back: str,
) -> HTMLResponse:
    names = {username: name for username, name, _ in owner_view.active_staff(db)}
    if isinstance(error, queue.HeldByAnother):
        kind, holder = "held", names.get(error.holder, error.holder)
    elif isinstance(error, queue.ClaimedByAnother):
        kind, holder = "claimed", names.get(error.assignee, error.assignee)
    elif isinstance(error, queue.InvalidTransition):
        kind, holder = f"invalid_{error.state.value}", ""
    elif isinstance(error, queue.OutcomeRequired):
        kind, holder = "outcome_required", ""
    else:
        kind, holder = "other", ""
    return render(
        request,
        "refused.html",
        user=user,
        active=active,
        section="queue",
        kind=kind,
        holder=holder,
        back=back,
        status_code=400 if kind == "outcome_required" else 409,
    )


def _change(
    request: Request,
    *,
    escalation_id: int,
    user: StaffUser,
    active: Optional[staff_auth.ActiveSession],
    db: Session,
    next_path: str,
    operation: Any,
    action: str,
    **arguments: Any,
) -> Response:
    back = security.safe_next(next_path)
    try:
        entry = operation(db, escalation_id=escalation_id, **arguments)
    except queue.EscalationNotFound:
        raise HTTPException(status_code=404) from None
    except queue.QueueError as error:
        return _refused(request, user, active, db, error, back)
    detail: Dict[str, Any] = {"escalation_id": entry.id, "state": entry.state.value}
    if entry.sender_id:
        detail["conversation"] = handles.handle_of(entry.sender_id)
    if action == audit.ESCALATION_ASSIGNED:
        detail["assignee"] = entry.assignee
    if action == audit.ESCALATION_RESOLVED:
        detail["outcome"] = entry.outcome
    audit.record(db, actor=_actor(user), action=action, target=entry.number or f"#{entry.id}", detail=detail)
    return RedirectResponse(back, status_code=303)


@router.post("/queue/{escalation_id}/claim")
def claim(
    request: Request,
    escalation_id: int,
    next: str = Form("/queue"),
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """The signed-in staff member takes responsibility for the case (认领).

    The bot keeps the conversation: taking the chat over is the explicit 接管 on the conversation page
    (the owner is told a person joined). Claiming a conversation someone else holds, or a case a colleague
    claimed or was assigned, is refused with a page naming them: a supervisor or manager reassigns it (分派).
    """
    return _change(
        request,
        escalation_id=escalation_id,
        user=user,
        active=active,
        db=db,
        next_path=next,
        operation=queue.claim,
        action=audit.ESCALATION_CLAIMED,
        staff=_actor(user),
    )


@router.post("/queue/{escalation_id}/assign")
def assign(
    request: Request,
    escalation_id: int,
    assignee: str = Form(""),
    next: str = Form("/queue"),
    user: StaffUser = SUPERVISOR_OR_MANAGER,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """A supervisor or manager makes a named staff member responsible for the case (分派).

    A pending conversation stays with the bot (nobody is silenced without the owner being told); one a
    person holds moves to the named staff member.
    """
    known = {username for username, _, _ in owner_view.active_staff(db)}
    if assignee not in known:
        return render(
            request,
            "refused.html",
            user=user,
            active=active,
            section="queue",
            kind="unknown_staff",
            holder="",
            back=security.safe_next(next),
            status_code=400,
        )
    return _change(
        request,
        escalation_id=escalation_id,
        user=user,
        active=active,
        db=db,
        next_path=next,
        operation=queue.assign,
        action=audit.ESCALATION_ASSIGNED,
        staff=assignee,
        by=_actor(user),
    )


@router.post("/queue/{escalation_id}/resolve")
def resolve(
    request: Request,
    escalation_id: int,
    outcome: str = Form(""),
    next: str = Form("/queue"),
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Settle the escalation (解决) with a note of its outcome: anyone for a pending one, only its holder for an open one."""
    return _change(
        request,
        escalation_id=escalation_id,
        user=user,
        active=active,
        db=db,
        next_path=next,
        operation=queue.resolve,
        action=audit.ESCALATION_RESOLVED,
        staff=_actor(user),
        outcome=outcome,
    )


# --- conversations --------------------------------------------------------------------------------------


@router.get("/conversations", response_class=HTMLResponse)
def conversations_page(
    request: Request,
    q: Optional[str] = None,
    handle: Optional[str] = None,
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> HTMLResponse:
    """The most recently active conversations, or those staff look for (``q``).

    ``q`` is a handle (W-3F9K-2A7Q), or who the owner is — a name, a unit in any written form, a room, a phone
    tail — or something the owner wrote (:func:`bot.casework.owner_view.find_conversations`).
    """
    wanted = (q if q is not None else handle or "").strip()[:QUERY_TEXT_MAX]
    found: List[owner_view.RecentConversation] = []
    if not wanted:
        found = owner_view.recent_conversations(db)
    else:
        try:
            sender_id = handles.resolve(db, wanted)
        except handles.AmbiguousHandle:
            sender_id = None
        if sender_id is not None:
            found = owner_view.recent_conversations(db, sender_id=sender_id)
        else:
            found = owner_view.find_conversations(db, text=wanted)
    # What was typed is not logged (a name, a phone tail, or an owner's words): a handle is, normalised.
    shown = handles.normalise(wanted) or ("…" if wanted else "")
    audit.record(
        db, actor=_actor(user), action=audit.CONVERSATIONS_LISTED, detail={"handle": shown, "rows": len(found)}
    )
    return render(
        request, "conversations.html", user=user, active=active, section="conversations", found=found, query=wanted
    )


@router.get("/conversations/{handle}", response_class=HTMLResponse)
def conversation_page(
    request: Request,
    handle: str,
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> HTMLResponse:
    """The whole transcript, its escalations, the owner panel, and the takeover controls.

    The controls (接管, 回复, 交还机器人) come with how a reply would reach the owner (the channel, WeChat's
    48-hour window and the alternatives when it is closed) and what was sent so far.
    """
    return _conversation_page(request, sender_id=sender_of(db, handle), user=user, active=active, db=db)


def _record_prefill(data: Any) -> Dict[str, str]:
    """What a record opened from the conversation starts with: the owner's latest message and its repair item."""
    said = [entry for entry in data.entries if entry.speaker is transcripts.Speaker.OWNER and entry.text]
    if not said:
        return {}
    last = said[-1]
    items = [str(entity.value) for entity in last.entities if entity.name == "repair_item" and entity.value]
    return {"description": str(last.text)[:1000], "item": items[0] if items else ""}


def _conversation_page(
    request: Request,
    *,
    sender_id: str,
    user: StaffUser,
    active: Optional[staff_auth.ActiveSession],
    db: Session,
    reply_error: Optional[handoff.ReplyRefused] = None,
    reply_text: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    handle = handles.handle_of(sender_id)
    data, owner_id = conversation_data(db, sender_id=sender_id, after=None)
    profile = owner_view.owner_profile(db, owner_id=owner_id) if owner_id is not None else None
    audit.record(
        db,
        actor=_actor(user),
        action=audit.CONVERSATION_VIEWED,
        target=handle,
        detail={"owner_id": owner_id, "entries": len(data.entries)},
    )
    staff = owner_view.active_staff(db)
    return render(
        request,
        "conversation.html",
        user=user,
        active=active,
        section="conversations",
        conversation=data,
        prefill=_record_prefill(data),
        profile=profile,
        staff=staff,
        names={username: name for username, name, _ in staff},
        here=request.url.path,
        api_path=f"/api/conversations/{handle}",
        delivery=handoff.delivery_status(db, sender_id=sender_id),
        sent=outbox.messages(db, sender_id=sender_id),
        reply_error=reply_error,
        reply_text=reply_text,
        reply_limit=handoff.MAX_REPLY_CHARS,
        status_code=status_code,
    )


def _conversation_path(sender_id: str) -> str:
    return f"/conversations/{handles.handle_of(sender_id)}"


def _not_held(
    request: Request,
    user: StaffUser,
    active: Optional[staff_auth.ActiveSession],
    db: Session,
    sender_id: str,
    holder: Optional[str],
) -> HTMLResponse:
    names = {username: name for username, name, _ in owner_view.active_staff(db)}
    return render(
        request,
        "refused.html",
        user=user,
        active=active,
        section="conversations",
        kind="held" if holder else "not_held",
        holder=names.get(holder, holder) if holder else "",
        back=_conversation_path(sender_id),
        status_code=409,
    )


def _hold_change(
    request: Request,
    handle: str,
    *,
    operation: Any,
    action: str,
    user: StaffUser,
    active: Optional[staff_auth.ActiveSession],
    db: Session,
    **arguments: Any,
) -> Response:
    """Take over or hand back (``operation``, with ``arguments``), audit it as ``action``, show the conversation."""
    sender_id = sender_of(db, handle)
    try:
        changed = operation(db, sender_id=sender_id, staff=_actor(user), **arguments)
    except (queue.HeldByAnother, handoff.NotHeld) as error:
        return _not_held(request, user, active, db, sender_id, error.holder)
    except queue.OutcomeRequired as error:
        return _refused(request, user, active, db, error, _conversation_path(sender_id))
    except ValueError:
        raise HTTPException(status_code=404) from None
    audit.record(
        db,
        actor=_actor(user),
        action=action,
        target=handles.handle_of(sender_id),
        detail={"escalation_id": changed.escalation_id, "channel": changed.channel, **arguments},
    )
    return RedirectResponse(_conversation_path(sender_id), status_code=303)


@router.post("/conversations/{handle}/take-over")
def take_over(
    request: Request,
    handle: str,
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """接管: the signed-in staff member holds the conversation; the bot falls silent, the owner is told."""
    return _hold_change(
        request, handle, operation=handoff.take_over, action=audit.CONVERSATION_TAKEN_OVER, user=user, active=active,
        db=db,
    )  # fmt: skip


@router.post("/conversations/{handle}/reply")
def reply(
    request: Request,
    handle: str,
    text: str = Form(""),
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """回复: the holder's reply goes to the owner through the outbox; a refused reply is shown with its reason."""
    sender_id = sender_of(db, handle)
    try:
        sent = handoff.staff_reply(db, sender_id=sender_id, staff=_actor(user), text=text)
    except handoff.ReplyRefused as refused:
        return _conversation_page(
            request, sender_id=sender_id, user=user, active=active, db=db, reply_error=refused, reply_text=text,
            status_code=422,
        )  # fmt: skip
    except handoff.NotHeld as error:
        return _not_held(request, user, active, db, sender_id, error.holder)
    audit.record(
        db,
        actor=_actor(user),
        action=audit.STAFF_REPLIED,
        target=handles.handle_of(sender_id),
        detail={"outbox_id": sent.id, "channel": sent.channel, "text": sent.text},
    )
    return RedirectResponse(_conversation_path(sender_id), status_code=303)


@router.post("/conversations/{handle}/hand-back")
def hand_back(
    request: Request,
    handle: str,
    resolve: str = Form(""),
    outcome: str = Form(""),
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """交还机器人: the bot answers again, with the conversation's context; the owner is told.

    交还并解决 (``resolve`` set) also resolves the conversation's escalations with ``outcome``, which is required.
    """
    arguments = {"outcome": outcome.strip()} if resolve else {}
    return _hold_change(
        request, handle, operation=handoff.hand_back, action=audit.CONVERSATION_HANDED_BACK, user=user, active=active,
        db=db, **arguments,
    )  # fmt: skip


# --- owners ---------------------------------------------------------------------------------------------


@router.get("/owners", response_class=HTMLResponse)
def owners_page(
    request: Request,
    q: Optional[str] = None,
    unit: Optional[str] = None,
    former: bool = False,
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> HTMLResponse:
    """Owners found by name, unit in any written form, room or phone tail; phones as the role may see them.

    ``q`` takes 王建国, 7号楼2单元1102, 7-2-1102, 1102 or 6688; ``unit`` still searches by unit alone. Current owners only, unless ``former`` (含前业主) asks for the former owners too, marked as such.
    """
    wanted = (q if q is not None else unit or "").strip()[:QUERY_TEXT_MAX]
    if q is not None:
        found = owner_view.search_owners(db, text=wanted or None, include_former=former)
    else:
        found = owner_view.search_owners(db, unit=wanted or None, include_former=former)
    # A unit is logged as its code; a name or a phone tail is not (personal data in the audit log).
    parsed = parse_unit(wanted) if q is not None and wanted else None
    logged = wanted if q is None else (parsed.code if parsed is not None else ("…" if wanted else ""))
    audit.record(
        db, actor=_actor(user), action=audit.OWNERS_SEARCHED,
        detail={"unit": logged, "rows": len(found), **({"former": True} if former else {})},
    )  # fmt: skip
    return render(
        request, "owners.html", user=user, active=active, section="owners", found=found, query=wanted, former=former
    )


@router.get("/owners/{owner_id}", response_class=HTMLResponse)
def owner_page(
    request: Request,
    owner_id: int,
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> HTMLResponse:
    """Everything about one owner, with links to each of their conversations."""
    try:
        profile = owner_view.owner_profile(db, owner_id=owner_id)
    except owner_view.OwnerNotFound:
        raise HTTPException(status_code=404) from None
    audit.record(db, actor=_actor(user), action=audit.OWNER_VIEWED, target=f"owner:{owner_id}")
    reminders = reminder_schedule.history(db, owner_id=owner_id)  # the owner's reminders (reminders_owner.html)
    return render(
        request, "owner.html", user=user, active=active, section="owners", profile=profile, reminders=reminders
    )


def queue_link(**params: Any) -> str:
    """A queue URL with ``params`` (empty ones left out)."""
    kept = {key: value for key, value in params.items() if value not in (None, "", False)}
    return "/queue" + (f"?{urlencode(kept)}" if kept else "")


templates.env.globals["queue_link"] = queue_link
__all__: List[str] = ["router"]
