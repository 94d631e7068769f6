"""One sender per channel that can push a text to an owner, and what a send came to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Optional, Protocol

from bot.conversations import handoff
from bot.conversations.outbox import TemplateMessage
from bot.db.session import off_the_loop

# How often a WeChat send may fail for want of a connection before the row fails for good.
MAX_TRANSPORT_RETRIES = 5
WECHAT_NOT_CONFIGURED = "wechat_not_configured"
WECHAT_CUSTOM = "wechat_custom"  # how a WeChat row went out: a customer-service message …
WECHAT_TEMPLATE = "wechat_template"  # … or the row's template message (the window was closed)
NO_CONNECTION = -2  # WeChat's API client: no connection to WeChat
WINDOW_CLOSED = 45015  # WeChat: the user has not written in the last 48 hours


@dataclass(frozen=True)
class Outcome:
    """What one send came to.

    Attributes:
        failure: Why the row failed for good (what staff see), or None.
        retry: The channel could not be reached now: release the row for a later round.
        via: How a delivered row went out, when the channel has more than one way (WeChat).
    """

    failure: Optional[str] = None
    retry: bool = False
    via: Optional[str] = None

    @property
    def delivered(self) -> bool:
        """Whether the owner got the text."""
        return self.failure is None and not self.retry


DELIVERED = Outcome()
RETRY = Outcome(retry=True)


def failed(reason: str) -> Outcome:
    """A send that failed for good, for ``reason``."""
    return Outcome(failure=reason)


class Sender(Protocol):
    """Pushes texts to owners of one channel.

    Attributes:
        channel: The outbox channel it serves (``wechat``, ``socketio`` …).
    """

    channel: str

    def reachable(self) -> Optional[Collection[str]]:
        """The conversations this process can reach now, or None for any (a push API)."""
        ...

    async def send(
        self, sender_id: str, text: str, *, attempts: int, template: Optional[TemplateMessage] = None
    ) -> Outcome:
        """Send ``text`` (already checked by the guard) to the owner of ``sender_id``.

        Args:
            sender_id: The conversation.
            text: The text.
            attempts: How many times the row has been claimed, this time included.
            template: The row's template message, for a channel that can send one instead (WeChat).
        """
        ...


class WeChatCustomerServiceSender:
    """WeChat's customer-service API while the owner's 48-hour window is open; else the row's template message.

    Args:
        api: The WeChat API client (:class:`bot.wechat.api.WeChatAPI`); None when AppID and AppSecret are not
            set, and every row then fails with ``wechat_not_configured``.
        database_url: The database (the window is read from the owner's last inbound message).
    """

    channel = handoff.WECHAT_CHANNEL

    def __init__(self, api: Any, *, database_url: Optional[str] = None) -> None:
        self.api = api
        self.database_url = database_url

    def reachable(self) -> Optional[Collection[str]]:
        """Any owner: the API pushes."""
        return None

    async def send(
        self, sender_id: str, text: str, *, attempts: int, template: Optional[TemplateMessage] = None
    ) -> Outcome:
        """Send by the customer-service API within the window, else by the row's template message.

        A closed window without a template fails the row (``wechat_window_closed``); so does WeChat's refusal
        (``wechat_api_error:<code>``, ``wechat_template_error:<code>``). The window closing between our check
        and the send (45015) falls back to the template. No connection to WeChat releases the row for a later
        round, :data:`MAX_TRANSPORT_RETRIES` times.
        """
        from bot.wechat.api import WeChatAPIError

        window_open = await off_the_loop(handoff.wechat_window_open, database_url=self.database_url, openid=sender_id)
        if not window_open and template is None:
            return failed(handoff.Blocked.WECHAT_WINDOW_CLOSED.value)
        if self.api is None:
            return failed(WECHAT_NOT_CONFIGURED)
        if window_open:
            try:
                await self.api.send_text(sender_id, text)
                return Outcome(via=WECHAT_CUSTOM)
            except WeChatAPIError as error:
                if error.errcode == NO_CONNECTION and attempts < MAX_TRANSPORT_RETRIES:
                    return RETRY
                if error.errcode != WINDOW_CLOSED or template is None:
                    return failed(f"wechat_api_error:{error.errcode}")
        if template is None:  # (the window was open and the send failed: returned above)
            return failed(handoff.Blocked.WECHAT_WINDOW_CLOSED.value)
        try:
            await self.api.send_template(sender_id, template.template_id, template.data)
        except WeChatAPIError as error:
            if error.errcode == NO_CONNECTION and attempts < MAX_TRANSPORT_RETRIES:
                return RETRY
            return failed(f"wechat_template_error:{error.errcode}")
        return Outcome(via=WECHAT_TEMPLATE)
