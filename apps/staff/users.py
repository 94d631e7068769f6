"""The managers' users page (账号管理): staff accounts and what ``bot user`` does to them.

``/users`` lists the accounts (state, lock-out, WeCom UserID, last login, open sessions) with a form to add
one; ``/users/{username}`` shows one with its forms: deactivate / reactivate, reset the password, change the
role, end its sessions, lift its lock-out, bind its WeCom UserID. Managers only (403 for the others); every
POST carries the session's CSRF token like every form of the console; every view and change is an audit row
(:mod:`bot.services.staff_lifecycle` writes the changes' rows, with the manager and the account, never a
password). A refused change shows the page again with the reason, 400 (bad input), 404 (no such account) or
409 (the account's state: already deactivated, the last manager, yourself, a WeCom UserID in use), and changes
nothing. A change redirects to the account's page with a notice (``?done=...``).
"""

from __future__ import annotations

from typing import Any, Optional

from fastapi import APIRouter, Form, HTTPException, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from apps.staff.deps import config, current_session, get_db
from apps.staff.pages import MANAGER_ONLY, render
from bot.db import audit
from bot.db.staff_models import USERNAME_LENGTH, StaffRole, StaffUser
from bot.services import staff_auth, staff_lifecycle, staff_users
from bot.services.staff_users import AccountError

router = APIRouter(include_in_schema=False)
USERNAME = Path(..., min_length=1, max_length=USERNAME_LENGTH)

# The notices a change's redirect may ask for (anything else in ``?done=`` shows nothing).
DONE = frozenset({"added", "deactivated", "reactivated", "password", "role", "sessions", "unlocked", "wecom"})


def _status(error: AccountError) -> int:
    if error.code == "not_found":
        return 404
    return 409 if error.code in staff_lifecycle.CONFLICTS else 400


def _list_page(
    request: Request,
    db: Session,
    *,
    user: StaffUser,
    active: Optional[staff_auth.ActiveSession],
    error: Optional[AccountError] = None,
    typed: Optional[dict] = None,
) -> HTMLResponse:
    accounts = staff_lifecycle.list_accounts(db, policy=config(request).policy)
    audit.record(
        db,
        actor=str(user.username),
        action=staff_lifecycle.USERS_VIEWED,
        target="users",
        detail={"rows": len(accounts)},
    )
    return render(
        request,
        "users.html",
        user=user,
        active=active,
        section="users",
        accounts=accounts,
        roles=list(StaffRole),
        error=error.code if error else "",
        typed=typed or {},
        min_length=staff_users.minimum_password_length(),
        status_code=_status(error) if error else 200,
    )


def _account_page(
    request: Request,
    db: Session,
    *,
    username: str,
    user: StaffUser,
    active: Optional[staff_auth.ActiveSession],
    done: str = "",
    error: Optional[AccountError] = None,
    form: str = "",
) -> HTMLResponse:
    try:
        account = staff_lifecycle.summary(db, username=username, policy=config(request).policy)
    except AccountError:
        raise HTTPException(status_code=404) from None
    audit.record(db, actor=str(user.username), action=staff_lifecycle.USER_VIEWED, target=account.username)
    return render(
        request,
        "user.html",
        user=user,
        active=active,
        section="users",
        account=account,
        roles=list(StaffRole),
        done=done if done in DONE else "",
        error=error.code if error else "",
        form=form,
        is_self=account.username == user.username,
        min_length=staff_users.minimum_password_length(),
        status_code=_status(error) if error else 200,
    )


@router.get("/users", response_class=HTMLResponse)
def users_page(
    request: Request,
    user: StaffUser = MANAGER_ONLY,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Every staff account, and the form to add one."""
    return _list_page(request, db, user=user, active=active)


@router.post("/users", response_class=HTMLResponse)
def add_user(
    request: Request,
    username: str = Form("", max_length=200),
    display_name: str = Form("", max_length=200),
    role: str = Form("", max_length=32),
    password: str = Form(""),
    password_repeat: str = Form(""),
    wecom_user_id: str = Form("", max_length=200),
    user: StaffUser = MANAGER_ONLY,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Add an account (the rules of ``bot user add``); a refusal shows the form again, without passwords."""
    typed = {"username": username, "display_name": display_name, "role": role, "wecom_user_id": wecom_user_id}
    try:
        if password != password_repeat:
            raise AccountError("the passwords differ", code="passwords_differ")
        created = staff_users.create_user(
            db,
            username=username,
            password=password,
            role=role,
            display_name=display_name or None,
            wecom_user_id=wecom_user_id,
            actor=str(user.username),
        )
    except AccountError as error:
        return _list_page(request, db, user=user, active=active, error=error, typed=typed)
    return RedirectResponse(f"/users/{created.username}?done=added", status_code=303)


@router.get("/users/{username}", response_class=HTMLResponse)
def account_page(
    request: Request,
    username: str = USERNAME,
    done: str = "",
    user: StaffUser = MANAGER_ONLY,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """One account and the forms that change it."""
    return _account_page(request, db, username=username, user=user, active=active, done=done)


def _change(
    request: Request,
    db: Session,
    *,
    username: str,
    user: StaffUser,
    active: Optional[staff_auth.ActiveSession],
    done: str,
    form: str,
    action: Any,
) -> Response:
    """Run ``action`` (one change); redirect with the notice, or show the refusal (nothing changed)."""
    try:
        action()
    except AccountError as error:
        if error.code == "not_found":
            raise HTTPException(status_code=404) from None
        return _account_page(request, db, username=username, user=user, active=active, error=error, form=form)
    name = staff_users.normalise_username(username)
    return RedirectResponse(f"/users/{name}?done={done}", status_code=303)


@router.post("/users/{username}/deactivate", response_class=HTMLResponse)
def deactivate(
    request: Request,
    username: str = USERNAME,
    user: StaffUser = MANAGER_ONLY,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Deactivate the account: no more logins (web or WeCom); its open sessions end."""
    actor = str(user.username)
    return _change(
        request,
        db,
        username=username,
        user=user,
        active=active,
        done="deactivated",
        form="state",
        action=lambda: staff_lifecycle.deactivate(db, username=username, actor=actor),
    )


@router.post("/users/{username}/reactivate", response_class=HTMLResponse)
def reactivate(
    request: Request,
    username: str = USERNAME,
    user: StaffUser = MANAGER_ONLY,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Let the deactivated account log in again."""
    actor = str(user.username)
    return _change(
        request,
        db,
        username=username,
        user=user,
        active=active,
        done="reactivated",
        form="state",
        action=lambda: staff_lifecycle.reactivate(db, username=username, actor=actor),
    )


@router.post("/users/{username}/password", response_class=HTMLResponse)
def reset_password(
    request: Request,
    username: str = USERNAME,
    password: str = Form(""),
    password_repeat: str = Form(""),
    user: StaffUser = MANAGER_ONLY,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Set a new password (typed twice, the password rules apply); the account's open sessions end."""
    actor = str(user.username)

    def action() -> None:
        staff_lifecycle.existing(db, username=username)  # an unknown account is a 404, whatever was typed
        if password != password_repeat:
            raise AccountError("the passwords differ", code="passwords_differ")
        staff_lifecycle.reset_password(db, username=username, password=password, actor=actor)

    return _change(
        request,
        db,
        username=username,
        user=user,
        active=active,
        done="password",
        form="password",
        action=action,
    )


@router.post("/users/{username}/role", response_class=HTMLResponse)
def set_role(
    request: Request,
    username: str = USERNAME,
    role: str = Form("", max_length=32),
    user: StaffUser = MANAGER_ONLY,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Change the role; the account's open sessions end, so no open browser keeps the old role's powers."""
    actor = str(user.username)
    return _change(
        request,
        db,
        username=username,
        user=user,
        active=active,
        done="role",
        form="role",
        action=lambda: staff_lifecycle.set_role(db, username=username, role=role, actor=actor),
    )


@router.post("/users/{username}/sessions/revoke", response_class=HTMLResponse)
def revoke_sessions(
    request: Request,
    username: str = USERNAME,
    user: StaffUser = MANAGER_ONLY,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """End every open session of the account."""
    actor = str(user.username)
    return _change(
        request,
        db,
        username=username,
        user=user,
        active=active,
        done="sessions",
        form="sessions",
        action=lambda: staff_lifecycle.revoke_sessions(db, username=username, actor=actor),
    )


@router.post("/users/{username}/unlock", response_class=HTMLResponse)
def unlock(
    request: Request,
    username: str = USERNAME,
    user: StaffUser = MANAGER_ONLY,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Lift the account's login lock-out (its failure count starts afresh)."""
    actor, policy = str(user.username), config(request).policy
    return _change(
        request,
        db,
        username=username,
        user=user,
        active=active,
        done="unlocked",
        form="unlock",
        action=lambda: staff_lifecycle.unlock(db, username=username, actor=actor, policy=policy),
    )


@router.post("/users/{username}/wecom", response_class=HTMLResponse)
def set_wecom(
    request: Request,
    username: str = USERNAME,
    wecom_user_id: str = Form("", max_length=200),
    user: StaffUser = MANAGER_ONLY,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> Response:
    """Bind the account to a WeCom UserID (empty: unbind); the WeCom app answers only that exact member."""
    actor = str(user.username)
    return _change(
        request,
        db,
        username=username,
        user=user,
        active=active,
        done="wecom",
        form="wecom",
        action=lambda: staff_lifecycle.set_wecom_user_id(
            db, username=username, wecom_user_id=wecom_user_id, actor=actor
        ),
    )
