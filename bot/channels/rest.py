"""The REST channel, with its input channel pinned to "rest" and an optional bearer token.

Rasa's own ``RestInput`` lets the request body name any ``input_channel``. The identity code trusts links
made on channels whose sender ids cannot be forged (WeChat, the signed web chat), so a REST client must never
be able to claim one of those names. REST is meant for trusted integrations: outside the local environment
it requires ``REST_CHANNEL_TOKEN`` as ``Authorization: Bearer <token>``.
"""

from __future__ import annotations

import hmac
from typing import Any, Awaitable, Callable, Optional

from rasa.core.channels.channel import UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request


def bearer_token_matches(authorization: Optional[str], token: Optional[str]) -> bool:
    """Whether an ``Authorization`` header carries the configured token (always true when none is set)."""
    if not token:
        return True
    scheme, _, presented = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip(), token)


class PinnedRestInput(RestInput):
    """``POST /webhooks/rest/webhook`` exactly as Rasa's, except the points above."""

    def _extract_input_channel(self, req: Request) -> str:
        return self.name()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """Rasa's REST blueprint behind the bearer-token check."""
        from bot.settings import get_settings

        blueprint = super().blueprint(on_new_message)
        secret = get_settings().rest_channel_token
        token = secret.get_secret_value() if secret is not None else None

        @blueprint.middleware("request")
        async def require_token(request: Request) -> Optional[response.HTTPResponse]:
            if bearer_token_matches(request.headers.get("authorization"), token):
                return None
            return response.json({"error": "missing or wrong bearer token"}, status=401)

        return blueprint
