"""The WeCom (企业微信) callback URL, ``/wecom/callback``, served by the staff console (collectors are staff).

A small app of its own, mounted by :func:`apps.staff.app.create_app`: WeCom authenticates itself with the
callback's signature, not with a staff session, so the console's session and CSRF checks do not apply here.
``GET`` answers WeCom's URL verification; ``POST`` checks, claims and acknowledges a message at once and sends
the answer through WeCom's ``message/send`` after the response (in a worker thread). Unconfigured: 503.
"""

from __future__ import annotations

import logging
from typing import FrozenSet, Optional

from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.responses import PlainTextResponse
from starlette.concurrency import run_in_threadpool

from apps.staff.wecom.callback import NOT_CONFIGURED, Responder, WeComChannel, WeComConfig
from apps.staff.wecom.store import WeComStore
from bot.db.staff_models import StaffRole
from bot.settings import Settings

logger = logging.getLogger(__name__)

CALLBACK_PATH = "/callback"
MOUNT_PATH = "/wecom"
MAX_BODY_BYTES = 64 * 1024


def create_app(
    settings: Settings,
    *,
    database_url: str,
    lookup_roles: FrozenSet[StaffRole],
    channel: Optional[WeComChannel] = None,
) -> FastAPI:
    """The callback app, to mount at :data:`MOUNT_PATH`.

    Args:
        settings: The WeCom settings are read from here.
        database_url: The console's database (staff accounts, owners, handled callbacks).
        lookup_roles: The roles that may look owners up by unit from WeCom (the console's owners section's).
        channel: A ready channel (tests); default one made from ``settings``.

    Returns:
        The app.
    """
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    config = WeComConfig.from_settings(settings)
    if channel is None and config is not None:
        store = WeComStore(database_url)
        channel = WeComChannel(
            config, store=store, responder=Responder(database_url, lookup_roles=lookup_roles)
        )
    if channel is None:
        logger.info("wecom: %s", NOT_CONFIGURED)

    @app.get(CALLBACK_PATH, response_class=PlainTextResponse)
    def verify(request: Request) -> PlainTextResponse:
        if channel is None:
            return PlainTextResponse(NOT_CONFIGURED, status_code=503)
        answer = channel.verify_url(request.query_params)
        return PlainTextResponse(answer.body, status_code=answer.status)

    @app.post(CALLBACK_PATH, response_class=PlainTextResponse)
    async def receive(request: Request, background: BackgroundTasks) -> PlainTextResponse:
        if channel is None:
            return PlainTextResponse(NOT_CONFIGURED, status_code=503)
        body = await request.body()
        if len(body) > MAX_BODY_BYTES:
            return PlainTextResponse("body too large", status_code=413)
        # Claiming writes to the database: off the event loop.
        answer, job = await run_in_threadpool(channel.receive, dict(request.query_params), body)
        if job is not None:
            background.add_task(channel.handle, job)  # sync: Starlette runs it in a worker thread
        return PlainTextResponse(answer.body, status_code=answer.status)

    return app
