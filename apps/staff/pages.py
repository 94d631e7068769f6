"""The console's routes.

Login and logout, the home page, the sections still to come, the audit log, ``/api/me`` and ``/health``.
"""

from __future__ import annotations

from typing import Any, Dict, Optional

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from apps.staff import security
from apps.staff.deps import (
    client_address,
    config,
    current_session,
    current_user,
    get_db,
    login_csrf_token,
    require_role,
    session_token,
)
from apps.staff.templating import templates
from bot.db import audit
from bot.db.staff_models import StaffRole, StaffUser
from bot.services import staff_auth

router = APIRouter()

SUPERVISOR_OR_MANAGER = require_role(StaffRole.SUPERVISOR, StaffRole.MANAGER)
MANAGER_ONLY = require_role(StaffRole.MANAGER)
AUDIT_PAGE_SIZE = 200

# The nav bar's sections in order, each with the roles that see it (the home page's tiles follow it too).
_EVERYONE = frozenset(StaffRole)
_SUPERVISORS = frozenset({StaffRole.SUPERVISOR, StaffRole.MANAGER})
SECTIONS: tuple[tuple[str, frozenset], ...] = (
    ("home", _EVERYONE),
    ("queue", _EVERYONE),
    ("conversations", _EVERYONE),
    ("owners", _EVERYONE),
    ("records", _EVERYONE),
    ("calls", _EVERYONE),
    ("coach", _EVERYONE),
    ("practice", _EVERYONE),
    ("review", _SUPERVISORS),
    ("quality", _SUPERVISORS),
    ("reminders", _SUPERVISORS),
    ("playbook", _SUPERVISORS),
    ("nlu", _SUPERVISORS),
    ("audit", frozenset({StaffRole.MANAGER})),
    ("users", frozenset({StaffRole.MANAGER})),
)

# Sections whose screens are not built yet (each says 「即将上线」 and shows no data).
COMING_SOON: tuple[str, ...] = ()


def owner_lookup_roles() -> frozenset:
    """The roles that may see owners: the ``owners`` section's.

    One answer wherever owners are looked up: the owner screens, the coach's lookup, WeCom's lookup.
    """
    return dict(SECTIONS)["owners"]


def sections_for(user: Optional[StaffUser]) -> list[str]:
    """The sections ``user``'s role may open, in nav order."""
    if user is None:
        return []
    return [name for name, roles in SECTIONS if user.role in roles]


def render(
    request: Request,
    name: str,
    *,
    user: Optional[StaffUser] = None,
    active: Optional[staff_auth.ActiveSession] = None,
    status_code: int = 200,
    **context: Any,
) -> HTMLResponse:
    """A page from ``templates/``, with the signed-in user and the session's CSRF token for its forms."""
    values: Dict[str, Any] = {
        "user": user,
        "csrf_token": active.csrf_token if active else "",
        "section": context.pop("section", ""),
        "sections": sections_for(user),
        "coming_soon": COMING_SOON,
        **context,
    }
    return templates.TemplateResponse(request, name, values, status_code=status_code)


def refused_page(
    request: Request,
    user: StaffUser,
    active: Optional[staff_auth.ActiveSession],
    code: str,
    back: str,
    status_code: int,
    *,
    template: str,
    section: str,
    **context: Any,
) -> HTMLResponse:
    """The one way a screen answers a refused form: the form's action did not happen (``code`` says why).

    Each screen binds its page once: ``_refused = functools.partial(refused_page, template=..., section=...)``.

    Args:
        request: The request.
        user: The signed-in staff member.
        active: Their session (its CSRF token goes into the page's forms).
        code: Why the action was refused; the template names each code in words.
        back: Where the page's link leads.
        status_code: The response's status.
        template: The page (``record_refused.html`` …).
        section: The console section the page belongs to.
        **context: Further template values.
    """
    return render(
        request, template, user=user, active=active, section=section, code=code, back=back,
        status_code=status_code, **context,
    )  # fmt: skip


@router.get("/health", include_in_schema=False)
def health() -> Dict[str, str]:
    """The process is up (reveals nothing else)."""
    return {"status": "ok"}


@router.get("/login", response_class=HTMLResponse, include_in_schema=False)
def login_page(
    request: Request, next: str = "/", active: Optional[staff_auth.ActiveSession] = current_session
) -> Response:
    """The login form; a signed-in user goes straight on."""
    if active is not None:
        return RedirectResponse(security.safe_next(next), status_code=303)
    return _login_form(request, next_path=next)


def _login_form(
    request: Request, *, next_path: str, error: str = "", status_code: int = 200, username: str = ""
) -> HTMLResponse:
    token = login_csrf_token(request) or security.new_csrf_token()
    response = templates.TemplateResponse(
        request,
        "login.html",
        {
            "user": None,
            "csrf_token": token,
            "next": security.safe_next(next_path),
            "error": error,
            "username": username,
            "lockout_minutes": int(config(request).policy.lockout.total_seconds() // 60),
        },
        status_code=status_code,
    )
    config(request).cookies.set_login_csrf(response, config(request).login_csrf_signer.sign(token))
    return response


@router.post("/login", include_in_schema=False)
def login(
    request: Request,
    username: str = Form(""),
    password: str = Form(""),
    next: str = Form("/"),
    db: Session = get_db,
) -> Response:
    """Check the password (counted, lock-out, audit); on success open a session and go on."""
    if not username.strip() or not password:
        return _login_form(request, next_path=next, error="missing", status_code=400, username=username)
    result = staff_auth.log_in(
        db, username=username, password=password, client=client_address(request), policy=config(request).policy
    )
    if result.status is staff_auth.LoginStatus.LOCKED:
        return _login_form(request, next_path=next, error="locked", status_code=429, username=username)
    if result.status is not staff_auth.LoginStatus.SUCCEEDED or result.session is None:
        return _login_form(request, next_path=next, error="failed", status_code=401, username=username)
    response = RedirectResponse(security.safe_next(next), status_code=303)
    config(request).cookies.set_session(response, config(request).session_signer.sign(result.session.token))
    config(request).cookies.clear_login_csrf(response)
    return response


@router.post("/logout", include_in_schema=False)
def logout(request: Request, db: Session = get_db) -> Response:
    """End the session (revoked in the database, so a copy of the cookie opens nothing) and audit it."""
    token = session_token(request)
    if token:
        staff_auth.log_out(db, token=token, client=client_address(request))
    response = RedirectResponse(security.LOGIN_PATH, status_code=303)
    config(request).cookies.clear_session(response)
    return response


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def home(
    request: Request,
    user: StaffUser = current_user,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> HTMLResponse:
    """The first screen after login: who is signed in, with which role, and the sections."""
    previous = staff_auth.last_login(db, username=str(user.username), before=active.record.created_at) if active else None
    return render(request, "home.html", user=user, active=active, section="home", previous_login=previous)


def _coming_soon(section: str) -> Any:
    def page(
        request: Request,
        user: StaffUser = current_user,
        active: Optional[staff_auth.ActiveSession] = current_session,
    ) -> HTMLResponse:
        return render(request, "soon.html", user=user, active=active, section=section)

    page.__name__ = f"{section}_page"
    page.__doc__ = f"The {section} screen (not built yet: says so, shows no data)."
    return page


for _section in COMING_SOON:
    router.add_api_route(
        f"/{_section}", _coming_soon(_section), methods=["GET"], response_class=HTMLResponse, include_in_schema=False
    )


@router.get("/audit", response_class=HTMLResponse, include_in_schema=False)
def audit_log(
    request: Request,
    user: StaffUser = MANAGER_ONLY,
    active: Optional[staff_auth.ActiveSession] = current_session,
    db: Session = get_db,
) -> HTMLResponse:
    """The latest audit rows (managers only); looking is itself audited."""
    entries = audit.recent(db, limit=AUDIT_PAGE_SIZE)
    audit.record(db, actor=str(user.username), action=audit.AUDIT_VIEWED, detail={"rows": len(entries)})
    return render(request, "audit.html", user=user, active=active, section="audit", entries=entries)


@router.get("/api/me")
def me(user: StaffUser = current_user) -> Dict[str, str]:
    """Who is signed in: username, display name and role."""
    return {"username": str(user.username), "display_name": str(user.display_name), "role": user.role.value}


@router.get("/api/openapi.json", include_in_schema=False)
def openapi_schema(request: Request, user: StaffUser = current_user) -> JSONResponse:
    """The JSON API's OpenAPI schema, for signed-in staff."""
    return JSONResponse(request.app.openapi())
