"""One sender per channel that can push a text to an owner, and what a send came to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Collection, Optional, Protocol

from bot.conversations import handoff
from bot.db.session import off_the_loop

# How often a WeChat send may fail for want of a connection before the row fails for good.
MAX_TRANSPORT_RETRIES = 5
WECHAT_NOT_CONFIGURED = "wechat_not_configured"


@dataclass(frozen=True)
class Outcome:
    """What one send came to.

    Attributes:
        failure: Why the row failed for good (what staff see), or None.
        retry: The channel could not be reached now: release the row for a later round.
    """

    failure: Optional[str] = None
    retry: bool = False

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

    async def send(self, sender_id: str, text: str, *, attempts: int) -> Outcome:
        """Send ``text`` (already checked by the guard) to the owner of ``sender_id``.

        Args:
            sender_id: The conversation.
            text: The text.
            attempts: How many times the row has been claimed, this time included.
        """
        ...


class WeChatCustomerServiceSender:
    """WeChat's customer-service API, while the owner's 48-hour window is open.

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

    async def send(self, sender_id: str, text: str, *, attempts: int) -> Outcome:
        """Send by the customer-service API; the window closed or the API's refusal fail the row."""
        from bot.wechat.api import WeChatAPIError

        if not await off_the_loop(handoff.wechat_window_open, database_url=self.database_url, openid=sender_id):
            return failed(handoff.Blocked.WECHAT_WINDOW_CLOSED.value)
        if self.api is None:
            return failed(WECHAT_NOT_CONFIGURED)
        try:
            await self.api.send_text(sender_id, text)
        except WeChatAPIError as error:
            if error.errcode == -2 and attempts < MAX_TRANSPORT_RETRIES:  # -2: no connection to WeChat
                return RETRY
            return failed(f"wechat_api_error:{error.errcode}")
        return DELIVERED
