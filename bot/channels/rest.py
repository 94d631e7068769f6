"""The REST channel: input channel pinned to "rest", an optional bearer token, and screened input.

Rasa's own ``RestInput`` lets the request body name any ``input_channel``. The identity code trusts links
made on channels whose sender ids cannot be forged (WeChat, the signed web chat), so a REST client must never
be able to claim one of those names. REST is meant for trusted integrations: outside the local environment
it requires ``REST_CHANNEL_TOKEN`` as ``Authorization: Bearer <token>``; only a caller that presented the
configured token may name the message date in metadata (tests and integrations replaying old messages).

Unlike Rasa's handler, a body that is not a JSON object with a string ``sender`` and a string ``message``
gets a 4xx with a JSON error instead of a 500, and the message is screened
(:mod:`bot.channels.inbound`) before Rasa sees it. A client over its message limits gets ``429`` (the polite
answer in the body the first time, see :mod:`bot.channels.floods`) and its message never reaches Rasa.

A REST client cannot be pushed to, so what staff send the owner (the joined / left notices of a takeover,
staff replies: the outbox, :mod:`bot.conversations.outbox`) waits for the owner's next message and comes
first in that message's response, each message exactly once (:meth:`bot.channels.takeover.HoldGate.outbox_reply`);
it is written to the tracker before the message is handed to the agent, so the transcript keeps the order the
owner saw.
"""

from __future__ import annotations

import hmac
import json
import logging
from asyncio import CancelledError
from typing import Any, Awaitable, Callable, Dict, Optional

from rasa.core.channels.channel import CollectingOutputChannel, UserMessage
from rasa.core.channels.rest import RestInput
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels import floods
from bot.channels.inbound import clean_text, request_client, screen_text, server_metadata
from bot.channels.takeover import HoldGate
from bot.conversations.handles import handle_of
from bot.services.refused_texts import checked_message

logger = logging.getLogger(__name__)

# Room for an over-long message to be refused politely (10,000 emoji escaped as JSON are 120 KB), far
# below Sanic's 100 MB.
MAX_BODY_BYTES = 256 * 1024
MAX_SENDER_CHARS = 128


def bearer_token_matches(authorization: Optional[str], token: Optional[str]) -> bool:
    """Whether an ``Authorization`` header carries the configured token (always true when none is set)."""
    if not token:
        return True
    scheme, _, presented = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), token.encode())


class CheckedCollectingOutputChannel(CollectingOutputChannel):
    """Rasa's collecting output, with every text checked by ``bot.compliance`` before it is kept."""

    async def _persist_message(self, message: Dict[str, Any]) -> None:
        await super()._persist_message(checked_message(message, source="rest"))


def _error(status: int, reason: str) -> HTTPResponse:
    return response.json({"error": reason}, status=status)


def too_many(sender: str, decision: floods.Decision) -> HTTPResponse:
    """429 for a message the limits refused: the polite answer in ``messages`` the first time, none after."""
    notice = floods.refusal_text(decision, source="rest")
    body = {
        "error": "too many messages",
        "retry_after": decision.retry_after,
        "messages": [] if notice is None else [{"recipient_id": sender, "text": notice}],
    }
    return response.json(body, status=429, headers={"Retry-After": str(decision.retry_after)})


def parse_body(body: bytes) -> Dict[str, Any]:
    """The request body as a JSON object with a usable ``sender``.

    Args:
        body: The raw request body.

    Returns:
        The decoded object.

    Raises:
        ValueError: With the reason to answer 400 with.
    """
    if not body:
        raise ValueError("empty body: send a JSON object with sender and message")
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):  # bad JSON, bad UTF-8, absurdly deep nesting
        raise ValueError("the body is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object with sender and message")
    sender = data.get("sender")
    if not isinstance(sender, str) or not sender or len(sender) > MAX_SENDER_CHARS or clean_text(sender) != sender:
        raise ValueError(f"sender must be a non-empty string of at most {MAX_SENDER_CHARS} printable characters")
    return data


class PinnedRestInput(RestInput):
    """``POST /webhooks/rest/webhook`` as Rasa's, except the points above (and no ``stream`` mode).

    Each client may send only so many messages (:mod:`bot.channels.floods`): ``limiter`` (default from settings).
    """

    limiter: Optional[floods.MessageLimiter] = None

    def _extract_input_channel(self, req: Request) -> str:
        return self.name()

    def blueprint(self, on_new_message: Callable[[UserMessage], Awaitable[Any]]) -> Blueprint:
        """The REST routes behind the bearer-token check.

        Args:
            on_new_message: Rasa's handler for user messages.

        Returns:
            The blueprint Rasa registers under ``/webhooks/rest``.
        """
        from bot.settings import get_settings

        gate = HoldGate(on_new_message)  # silent while a person holds the conversation
        limiter = floods.limiter(self.limiter)
        secret = get_settings().rest_channel_token
        token = secret.get_secret_value() if secret is not None else None
        blueprint = Blueprint(f"custom_webhook_{type(self).__name__}", __name__)

        @blueprint.middleware("request")
        async def require_token(request: Request) -> Optional[HTTPResponse]:
            if bearer_token_matches(request.headers.get("authorization"), token):
                return None
            return _error(401, "missing or wrong bearer token")

        @blueprint.route("/", methods=["GET"])
        async def health(_: Request) -> HTTPResponse:
            return response.json({"status": "ok"})

        @blueprint.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            body = request.body or b""
            if len(body) > MAX_BODY_BYTES:
                return _error(413, "body too large")
            try:
                data = parse_body(body)
            except ValueError as problem:
                return _error(400, str(problem))
            sender = str(data["sender"])
            screened = screen_text(data.get("message"))
            if screened.text is None and screened.refusal is None:
                return _error(400, f"message must be a non-empty string ({screened.problem})")
            # An authenticated integration serves many owners from one address: count each of its senders.
            # Without a token the caller proves nothing and is counted by its address.
            client = f"rest:{sender}" if token else request_client(request.ip, request.headers)
            decision = limiter.check(client)
            if decision.refused:  # a flood: nothing reaches Rasa, the outbox waits for an admitted message
                logger.info("rest: refused a message from %s: too many (%s)", handle_of(sender), decision.verdict.value)
                return too_many(sender, decision)
            # With a token configured the middleware has already checked it: the caller is trusted.
            metadata = server_metadata(data.get("metadata"), client=client, trusted=bool(token))
            # What staff sent since the owner's last message (the channel cannot push) comes first in the
            # response, so it is claimed and written to the tracker first too: the transcript then shows what
            # the owner saw, in that order (a "left" notice before the bot's first answer after a hand-back).
            waiting = await gate.outbox_reply(sender, self.name())
            if screened.refusal is not None:
                logger.info("rest: refused a message from %s: %s", handle_of(sender), screened.problem)
                # While a person holds the conversation, they answer: no automatic refusal, the message is
                # kept for them (cut, with a note).
                held = await gate.refused_while_held(
                    sender, input_channel=self.name(), problem=str(screened.problem),
                    text=data.get("message") if isinstance(data.get("message"), str) else None, metadata=metadata,
                )  # fmt: skip
                refusal = [] if held else [{"recipient_id": sender, "text": screened.refusal}]
                return response.json(waiting + refusal)
            assert screened.text is not None
            collector = CheckedCollectingOutputChannel()
            message = UserMessage(screened.text, collector, sender, input_channel=self.name(), metadata=metadata)
            try:
                await gate(message)
            except CancelledError:
                logger.error("rest: timed out handling a message from %s", handle_of(sender))
            except Exception:
                logger.exception("rest: failed handling a message from %s", handle_of(sender))
            return response.json(waiting + collector.messages)

        return blueprint
