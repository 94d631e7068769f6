"""WeChat Official Account (公众号) input channel for Rasa.

Listed in ``credentials.yml`` as ``bot.channels.wechat.WeChatInput`` (no secrets there: Rasa fails on an
unset ``${VAR}``). Token, AppID, AppSecret and EncodingAESKey come from the environment through
``bot.settings``; without ``WECHAT_TOKEN`` the webhook answers 503 and the rest of the server runs.

Routes: ``GET/POST /webhooks/wechat/webhook`` (the URL entered in 公众平台 → 设置与开发 → 基本配置) and
``GET /webhooks/wechat/`` (health). Everything WeChat-specific is in ``bot.channels.wechat_handler`` and the
small modules it uses; this class only adapts it to Rasa and Sanic.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Sequence

from rasa.core.channels.channel import CollectingOutputChannel, InputChannel, UserMessage
from sanic import Blueprint, response
from sanic.request import Request
from sanic.response import HTTPResponse

from bot.channels.takeover import HoldGate
from bot.channels.wechat_handler import CHANNEL_NAME, BotTurn, HttpAnswer, WeChatConfig, WeChatWebhook
from bot.settings import get_settings
from bot.wechat.api import WeChatAPI
from bot.wechat.store import WeChatStore

logger = logging.getLogger(__name__)

OnNewMessage = Callable[[UserMessage], Awaitable[Any]]


class WeChatInput(InputChannel):
    """Receives messages from a WeChat Official Account and answers them (passively or by API).

    Args:
        config: The channel's settings; default from the environment (``bot.settings``).
        store: Database state; default on ``DATABASE_URL``.
        api: WeChat API client; default built from ``config``.
        follow_up_delay: Seconds between a passive answer and the messages sent after it.
    """

    def __init__(
        self,
        config: Optional[WeChatConfig] = None,
        store: Optional[WeChatStore] = None,
        api: Optional[WeChatAPI] = None,
        follow_up_delay: float = 0.5,
    ) -> None:
        self.config = config if config is not None else WeChatConfig.from_settings(get_settings())
        self.store = store
        self.api = api
        self.follow_up_delay = follow_up_delay

    @classmethod
    def name(cls) -> str:
        """The channel's name: the tracker's input channel and the URL prefix."""
        return CHANNEL_NAME

    @classmethod
    def from_credentials(cls, credentials: Optional[Dict[str, Any]]) -> InputChannel:
        """Build from the environment; anything under the ``credentials.yml`` entry is ignored."""
        if credentials:
            logger.warning("wechat: credentials.yml values are ignored; set WECHAT_* in the environment")
        return cls()

    def webhook(self, on_new_message: OnNewMessage) -> WeChatWebhook:
        """The framework-independent webhook, running the bot through Rasa's ``on_new_message``."""

        async def run_bot(turn: BotTurn) -> Sequence[Mapping[str, Any]]:
            collector = CollectingOutputChannel()
            await on_new_message(
                UserMessage(
                    turn.text,
                    collector,
                    turn.openid,
                    input_channel=self.name(),
                    message_id=turn.message_id,
                    metadata=turn.metadata,
                )
            )
            return list(collector.messages)

        return WeChatWebhook(
            self.config,
            run_bot,
            self.store,
            self.api,
            follow_up_delay=self.follow_up_delay,
            # The HoldGate's: no "please type" or refusal while a person holds the conversation.
            refused_while_held=getattr(on_new_message, "refused_while_held", None),
        )

    def blueprint(self, on_new_message: OnNewMessage) -> Blueprint:
        """Sanic routes: health, URL verification (GET) and messages (POST)."""
        webhook = self.webhook(HoldGate(on_new_message))  # silent while a person holds the conversation
        blueprint = Blueprint("wechat_webhook", __name__)

        @blueprint.route("/", methods=["GET"])
        async def health(request: Request) -> HTTPResponse:
            if webhook.config_error:
                return response.json({"status": "not configured", "reason": webhook.config_error}, status=503)
            return response.json({"status": "ok"})

        @blueprint.route("/webhook", methods=["GET"])
        async def verify(request: Request) -> HTTPResponse:
            return _http(await webhook.verify(_query(request)))

        @blueprint.route("/webhook", methods=["POST"])
        async def receive(request: Request) -> HTTPResponse:
            return _http(await webhook.receive(_query(request), request.body or b""))

        blueprint.ctx.webhook = webhook
        return blueprint


def _query(request: Request) -> Dict[str, Optional[str]]:
    """The query string, first value of each parameter."""
    args: Mapping[str, List[str]] = request.args
    return {name: values[0] if values else None for name, values in args.items()}


def _http(answer: HttpAnswer) -> HTTPResponse:
    return response.text(answer.body, status=answer.status, content_type=answer.content_type)
