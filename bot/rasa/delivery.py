"""The Rasa process's deliverer and hold watch, started by the Rasa server itself, whichever channels it runs.

:func:`install` (called by :mod:`bot.rasa.runtime` before Rasa builds its server) adds listeners to the Sanic
app Rasa configures (``rasa.core.run.configure_app``'s ``server_listeners``): after the server starts, the
process's :class:`~bot.conversations.delivery.deliverer.Deliverer` and its
:class:`~bot.conversations.holds.HoldWatch` (the channels' hold gate answers from it) begin; before it stops,
both stop. The deliverer records in Rasa's trackers through :class:`AgentConversationLog`.

Its senders: WeChat's customer-service API (always; rows fail with ``wechat_not_configured`` without AppID
and AppSecret) and whatever a channel registers with :func:`register_sender` (the web chat's sockets).
"""

from __future__ import annotations

import functools
import logging
from typing import Any, Callable, Dict, List, Optional

from bot.conversations import holds
from bot.conversations.delivery.deliverer import Deliverer
from bot.conversations.delivery.senders import Sender, WeChatCustomerServiceSender
from bot.rasa import trackers

logger = logging.getLogger(__name__)

_senders: Dict[str, Sender] = {}
_deliverer: Optional[Deliverer] = None
_installed = False


class AgentConversationLog:
    """The conversations as Rasa's agent keeps them (tracker store, lock store), for the deliverer.

    Args:
        app: The Rasa server's Sanic app (its ``ctx.agent`` appears once the model is loaded).
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    def _agent(self) -> Any:
        agent = trackers.agent_of(self.app)
        if agent is None:
            raise RuntimeError("the Rasa agent is not loaded")
        return agent

    def ready(self) -> bool:
        """Whether the agent (and so the trackers) is there."""
        return trackers.agent_of(self.app) is not None

    async def set_paused(self, sender_id: str, paused: bool) -> bool:
        """Append ``ConversationPaused`` / ``ConversationResumed`` unless the tracker is already so."""
        return await trackers.set_paused(self._agent(), sender_id, paused)

    async def append_bot_message(self, sender_id: str, text: str, metadata: Dict[str, Any]) -> None:
        """Append the delivered text as ``BotUttered`` with ``metadata``."""
        await trackers.append_bot_message(self._agent(), sender_id, text, metadata)

    async def delivered_before(self, sender_id: str, outbox_id: int) -> bool:
        """Whether the tracker already holds the text of outbox row ``outbox_id``."""
        return await trackers.delivered_before(self._agent(), sender_id, outbox_id)


def register_sender(sender: Sender) -> None:
    """Let this process's deliverer send ``sender.channel``'s rows through ``sender`` (replacing any before)."""
    _senders[sender.channel] = sender


def kick() -> None:
    """Wake this process's deliverer now (an owner's socket has just confirmed its session)."""
    if _deliverer is not None:
        _deliverer.kick()


@functools.lru_cache(maxsize=1)
def _wechat_sender() -> Sender:
    from bot.wechat.api import client_from_settings

    return WeChatCustomerServiceSender(client_from_settings())


def senders() -> List[Sender]:
    """The senders of this process: the registered ones, and WeChat's API unless a channel registered another."""
    found = dict(_senders)
    found.setdefault(_wechat_sender().channel, _wechat_sender())
    return list(found.values())


async def start_delivery(app: Any, _loop: Any = None) -> None:
    """Start this process's deliverer (a Sanic ``after_server_start`` listener)."""
    global _deliverer
    if _deliverer is None:
        _deliverer = Deliverer(AgentConversationLog(app), senders)
        _deliverer.start()


async def stop_delivery(_app: Any = None, _loop: Any = None) -> None:
    """Stop this process's deliverer (a Sanic ``before_server_stop`` listener)."""
    global _deliverer
    if _deliverer is not None:
        await _deliverer.stop()
        _deliverer = None


async def start_hold_watch(_app: Any = None, _loop: Any = None) -> None:
    """Start keeping who holds which conversation in memory (a Sanic ``after_server_start`` listener)."""
    holds.process_watch().start()


async def stop_hold_watch(_app: Any = None, _loop: Any = None) -> None:
    """Stop the hold watch (a Sanic ``before_server_stop`` listener); the gate then asks per message."""
    await holds.process_watch().stop()


LISTENERS = [
    (start_delivery, "after_server_start"),
    (start_hold_watch, "after_server_start"),
    (stop_hold_watch, "before_server_stop"),
    (stop_delivery, "before_server_stop"),
]


def install() -> None:
    """Have every Sanic app Rasa configures in this process run the deliverer (idempotent)."""
    global _installed
    if _installed:
        return
    import rasa.core.run

    rasa.core.run.configure_app = _with_delivery(rasa.core.run.configure_app)
    _installed = True


def _with_delivery(configure_app: Callable[..., Any]) -> Callable[..., Any]:
    """``configure_app`` that adds :data:`LISTENERS` to the server listeners it is given."""

    @functools.wraps(configure_app)
    def configure_app_with_delivery(*args: Any, **kwargs: Any) -> Any:
        kwargs["server_listeners"] = [*(kwargs.get("server_listeners") or []), *LISTENERS]
        return configure_app(*args, **kwargs)

    return configure_app_with_delivery
