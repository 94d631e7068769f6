"""The web chat page and its local assets, served by the Rasa server itself.

``GET /chat/`` returns ``index.html``; ``GET /chat/<file>`` returns one of the files listed in
``ASSETS`` (the vendored rasa-webchat bundle, its licence, the page's script and style). Nothing else under
the directory is reachable. ``POST /chat/session/end`` is the page's 退出 (the channel's
``SignedSessionEvents.sign_out``). The page's Content-Security-Policy allows scripts, styles, fonts and
connections from this origin only, so the bundle's ``@import`` of Google Fonts is never fetched: the page
works offline and uses the system's Chinese fonts (``chat.css``).
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any, Callable, Coroutine, Dict, Optional, Tuple

from sanic import Sanic, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot import wording

# Where the Rasa server serves the page (``bot run`` prints it).
CHAT_PATH = "/chat/"
SIGN_OUT_PATH = f"{CHAT_PATH}session/end"
STATIC_DIR = Path(__file__).resolve().parent / "webchat_static"

# file name → (content type, Cache-Control)
ASSETS: Dict[str, Tuple[str, str]] = {
    "rasa-webchat.js": ("application/javascript; charset=utf-8", "public, max-age=86400"),
    "rasa-webchat.LICENSE": ("text/plain; charset=utf-8", "public, max-age=86400"),
    "chat.js": ("application/javascript; charset=utf-8", "no-cache"),
    "chat.css": ("text/css; charset=utf-8", "no-cache"),
}

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        # the bundle injects its CSS as <style> elements
        "style-src 'self' 'unsafe-inline'",
        # the carousel's icon font is embedded as data: URLs; no remote fonts
        "font-src 'self' data:",
        "img-src 'self' data: blob: https:",
        "media-src 'self'",
        # socket.io: long polling and the WebSocket upgrade, same origin only
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def render_page() -> str:
    """``index.html`` with the page's labels from ``data/wording.yml`` (section ``webchat_page``).

    The title and the no-script note are HTML-escaped; the labels for the script travel as a JSON data
    block, with ``<`` escaped so no label can close the element.
    """
    labels = dict(wording.catalogue()["webchat_page"])
    data = json.dumps(labels, ensure_ascii=False).replace("<", "\\u003c")
    html = (STATIC_DIR / "index.html").read_text(encoding="utf-8")
    return (
        html.replace("{{title}}", escape(labels["title"]))
        .replace("{{noscript}}", escape(labels["noscript"]))
        .replace("{{sign_out}}", escape(labels["sign_out"]))
        .replace("{{wording_json}}", data)
    )


async def page(request: Request) -> HTTPResponse:
    """The chat page.

    Args:
        request: The HTTP request (unused).

    Returns:
        The page with its labels and security headers.
    """
    return response.html(render_page(), headers={**SECURITY_HEADERS, "Cache-Control": "no-cache"})


async def asset(request: Request, name: str) -> HTTPResponse:
    """One of the page's files, or 404 for anything not listed in ``ASSETS``.

    Args:
        request: The HTTP request (unused).
        name: The file name from the URL.

    Returns:
        The file, with its content type and caching headers.
    """
    if name not in ASSETS:
        return response.text("not found", status=404)
    content_type, cache_control = ASSETS[name]
    return await response.file(
        STATIC_DIR / name,
        mime_type=content_type,
        headers={"Cache-Control": cache_control, "X-Content-Type-Options": "nosniff"},
    )


async def redirect_to_page(request: Request) -> HTTPResponse:
    """``/chat`` → ``/chat/``, so the page's relative asset URLs resolve under it.

    Args:
        request: The HTTP request (unused).

    Returns:
        A redirect to the page.
    """
    return response.redirect(CHAT_PATH)


def register_page(
    app: Sanic, sign_out: Optional[Callable[[Request], Coroutine[Any, Any, HTTPResponse]]] = None
) -> None:
    """Add the page's routes (``CHAT_PATH``) to the Rasa server's app.

    Args:
        app: The Sanic app the channel is registered with.
        sign_out: The handler of ``POST /chat/session/end`` (the channel's); None: no such route.
    """
    if sign_out is not None:
        app.add_route(sign_out, SIGN_OUT_PATH, methods=["POST"], name="webchat_sign_out")
    app.add_route(page, CHAT_PATH, methods=["GET"], name="webchat_page", strict_slashes=True)
    app.add_route(
        redirect_to_page,
        CHAT_PATH.rstrip("/"),
        methods=["GET"],
        name="webchat_page_redirect",
        strict_slashes=True,
    )
    app.add_route(asset, f"{CHAT_PATH}<name:str>", methods=["GET"], name="webchat_asset")
