"""The staff console's FastAPI app (:func:`create_app`)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional
from urllib.parse import quote

from fastapi import Depends, FastAPI, Request
from fastapi.exception_handlers import request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from apps.staff import api, nlu_inbox, practice, privacy, review, screens, security, users, work_orders
from apps.staff import coach as coach_screens
from apps.staff import ownership as ownership_screens
from apps.staff import payments as payment_screens
from apps.staff import playbook as playbook_screens
from apps.staff import quality as quality_screens
from apps.staff import reminders as reminder_screens
from apps.staff.deps import API_PREFIX, CsrfRefused, Forbidden, NotAuthenticated, StaffConfig, csrf_guard
from apps.staff.pages import owner_lookup_roles, router
from apps.staff.templating import templates
from apps.staff.wecom import app as wecom
from bot.services.staff_auth import LoginPolicy
from bot.settings import Settings, get_settings

STATIC_DIR = Path(__file__).resolve().parent / "static"

# Everything the pages load comes from this origin: no CDN, no web fonts, no inline script or style.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "style-src 'self'",
        "img-src 'self' data:",
        "script-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}


class SecurityHeaders:
    """Adds the security headers to every response, and ``Cache-Control: no-store`` to all but assets."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to the response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        is_asset = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [(name, value) for name, value in message.get("headers", [])]
                present = {name.lower() for name, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.encode() not in present:
                        headers.append((name.encode(), value.encode()))
                if not is_asset and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def staff_config(settings: Settings, database_url: Optional[str] = None) -> StaffConfig:
    """The app's configuration from ``settings`` (``database_url`` overrides ``DATABASE_URL``)."""
    secret = settings.staff_secret_key.get_secret_value()
    return StaffConfig(
        database_url=database_url or settings.database_url,
        session_signer=security.CookieSigner(secret, "session"),
        login_csrf_signer=security.CookieSigner(secret, "login-csrf"),
        cookies=security.CookiePolicy(secure=settings.environment != "local"),
        policy=LoginPolicy.from_settings(settings),
    )


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def create_app(settings: Optional[Settings] = None, *, database_url: Optional[str] = None) -> FastAPI:
    """The staff console.

    Args:
        settings: Settings to use (default: the process's); outside ``local`` they have already refused a
            default or empty ``STAFF_SECRET_KEY``.
        database_url: The database (default: the settings' ``DATABASE_URL``).

    Returns:
        The app, ready for uvicorn or a test client.
    """
    settings = settings or get_settings()
    app = FastAPI(
        title="物业费催缴 · 员工后台",
        docs_url=None,  # Swagger UI and ReDoc load from a CDN; the schema is at /api/openapi.json
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(csrf_guard)],
    )
    app.state.staff = staff_config(settings, database_url)
    app.include_router(router)
    app.include_router(screens.router)
    app.include_router(api.router)
    app.include_router(nlu_inbox.router)
    app.include_router(work_orders.router)
    app.include_router(review.router)
    app.include_router(quality_screens.router)
    app.include_router(coach_screens.router)
    app.include_router(payment_screens.router)
    app.include_router(ownership_screens.router)
    app.include_router(reminder_screens.router)
    app.include_router(practice.router)
    app.include_router(playbook_screens.router)
    app.include_router(users.router)
    app.include_router(privacy.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    # WeCom signs its callbacks itself: its own app, outside the console's session and CSRF checks.
    app.mount(
        wecom.MOUNT_PATH,
        wecom.create_app(
            settings, database_url=app.state.staff.database_url, lookup_roles=owner_lookup_roles()
        ),
    )
    app.add_middleware(SecurityHeaders)

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, _error: NotAuthenticated) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": "not authenticated"}, status_code=401)
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"{security.LOGIN_PATH}?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, _error: Forbidden) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": "forbidden"}, status_code=403)
        return templates.TemplateResponse(request, "error.html", {"user": None, "kind": "forbidden"}, status_code=403)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, _error: CsrfRefused) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": "missing or wrong CSRF token"}, status_code=403)
        return templates.TemplateResponse(request, "error.html", {"user": None, "kind": "csrf"}, status_code=403)

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, error: RequestValidationError) -> Response:
        if _wants_json(request):
            return await request_validation_exception_handler(request, error)
        # A page asked with a malformed id (/owners/abc) does not exist; other bad input is a plain 400 page.
        in_path = any(detail.get("loc", ("",))[0] == "path" for detail in error.errors())
        status_code = 404 if in_path else 400
        kind = "not_found" if in_path else "other"
        return templates.TemplateResponse(request, "error.html", {"user": None, "kind": kind}, status_code=status_code)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, error: StarletteHTTPException) -> Response:
        if _wants_json(request):
            return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)
        kind = "not_found" if error.status_code == 404 else "other"
        return templates.TemplateResponse(
            request, "error.html", {"user": None, "kind": kind}, status_code=error.status_code, headers=error.headers
        )

    return app
