"""The Rasa server process: ``rasa`` with the project's fault handling installed before it starts.

Run it like ``rasa``: ``python -m bot.rasa.runtime run --model ... --endpoints ...``.

What Rasa 3.6 does on its own when a custom action fails (action server down, refusing the token, timing out
or crashing): ``RemoteAction.run`` raises ``RasaException`` and ``MessageProcessor._run_action`` logs it and
carries on with the action's events dropped, so the owner gets silence (or whatever the policies predict
next), and a hung action server holds the conversation for Rasa's five-minute request timeout. Here:

* every call to the action server has a deadline (:data:`ACTION_CALL_TIMEOUT_SECONDS`);
* when an action's events are lost, the owner gets ``service.actions_unavailable`` from ``data/wording.yml``,
  the failure is logged with the action's name, and the bot listens again (no chain of further failures).
"""

from __future__ import annotations

import asyncio
import logging
import sys
from typing import Any, Callable, List, Optional, Sequence

logger = logging.getLogger("bot.rasa.runtime")  # also when run as __main__

# A custom action answers in well under a second; past this the owner is told instead of kept waiting.
ACTION_CALL_TIMEOUT_SECONDS = 5.0
FAILURE_WORDING = "service.actions_unavailable"

_installed = False


def install() -> None:
    """Put the deadline on action server calls and the polite reply on lost actions (idempotent)."""
    global _installed
    if _installed:
        return
    from rasa.core.actions.action import RemoteAction
    from rasa.core.processor import MessageProcessor

    RemoteAction.run = _with_deadline(RemoteAction.run)
    MessageProcessor._run_action = _with_polite_failure(MessageProcessor._run_action)
    _installed = True


def _with_deadline(run: Callable[..., Any]) -> Callable[..., Any]:
    """``RemoteAction.run`` that gives up after :data:`ACTION_CALL_TIMEOUT_SECONDS`."""
    from rasa.shared.exceptions import RasaException

    async def run_with_deadline(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.wait_for(run(self, *args, **kwargs), ACTION_CALL_TIMEOUT_SECONDS)
        except asyncio.TimeoutError as error:
            raise RasaException(
                f"custom action '{self.name()}' got no answer from the action server "
                f"within {ACTION_CALL_TIMEOUT_SECONDS:g} s"
            ) from error

    return run_with_deadline


def _with_polite_failure(run_action: Callable[..., Any]) -> Callable[..., Any]:
    """``MessageProcessor._run_action`` that tells the owner when the action's events were lost."""
    from rasa.core.actions.action import ActionExecutionRejection
    from rasa.shared.core.constants import ACTION_LISTEN_NAME
    from rasa.shared.core.events import BotUttered, FollowupAction

    async def run_action_politely(
        self: Any, action: Any, tracker: Any, output_channel: Any, nlg: Any, prediction: Any
    ) -> bool:
        failures: List[BaseException] = []
        run = action.run

        async def watched_run(*args: Any, **kwargs: Any) -> Any:
            try:
                return await run(*args, **kwargs)
            except ActionExecutionRejection:
                raise  # a form rejecting its execution is normal flow, not a fault
            except Exception as error:
                failures.append(error)
                raise

        # Shadow ``run`` on this action object only, for this one call: Rasa catches the exception inside
        # ``_run_action`` and keeps no trace of it.
        action.run = watched_run
        try:
            predict_more: bool = await run_action(self, action, tracker, output_channel, nlg, prediction)
        finally:
            del action.run
        if not failures:
            return predict_more
        logger.error(
            "action '%s' failed for conversation %s; the owner was told to try again: %s",
            action.name(),
            tracker.sender_id,
            _describe(failures[0]),
        )
        reply = BotUttered(_failure_text())
        tracker.update(reply)
        await self.execute_side_effects([reply], tracker, output_channel)
        tracker.update(FollowupAction(ACTION_LISTEN_NAME))  # listen now; do not run into the next failure
        return True

    return run_action_politely


def _describe(error: BaseException) -> str:
    """The error and what caused it, on one line (the cause names the refused connection or the status)."""
    cause = error.__cause__ or error.__context__
    return f"{error} ({type(cause).__name__}: {cause})" if cause else str(error)


def _failure_text() -> str:
    from bot.wording import text

    return text(FAILURE_WORDING)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Check the wording, install the fault handling and the outbox's delivery, then hand over to Rasa's command line.

    Args:
        argv: Arguments for ``rasa`` (default: ``sys.argv[1:]``).

    Returns:
        The exit status; Rasa's own command line exits by itself on errors.
    """
    from bot.startup import exit_with_parent, preflight

    exit_with_parent()
    if not preflight():
        return 1
    install()
    from bot.rasa import delivery

    delivery.install()  # the process delivers staff replies and notices whichever channels it runs
    from rasa.__main__ import main as rasa_main

    sys.argv = ["rasa", *(sys.argv[1:] if argv is None else argv)]
    rasa_main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
