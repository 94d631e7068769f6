"""A trained Rasa model loaded with ``Agent.load``, parsed from any thread.

``Agent.parse_message`` is a coroutine; callers are synchronous code (the CLI, FastAPI's thread pool) and
async code (a channel's handler) alike. A :class:`RasaParser` therefore owns one event loop on a daemon thread
and hands every parse to it, which works from any thread, and keeps parses in one order on one loop. The coach
(:mod:`bot.coach.model`) keeps one per model file for the process; its callers pass this class as the factory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Dict

from bot.coach.model import PARSE_TIMEOUT_SECONDS, WARM_UP_TEXT, ModelNotFound

logger = logging.getLogger(__name__)


class RasaParser:
    """A loaded Rasa model and the event loop its parses run on."""

    def __init__(self, model_path: Path) -> None:
        """Load the model at ``model_path`` (slow: call :func:`load_parser` instead, which caches it).

        Raises:
            ModelNotFound: If there is no file at ``model_path``.
        """
        if not model_path.is_file():
            raise ModelNotFound(f"no trained model at {model_path}; run `bot train` first")
        from rasa.core.agent import Agent
        from rasa.utils.log_utils import configure_structlog

        self.model_path = model_path
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="coach-nlu", daemon=True)
        self._thread.start()
        # Rasa's log set-up sends the root logger to stdout, and jieba logs its dictionary loading there on the
        # first parse: both happen here, with stdout pointing at stderr, so `bot coach --json` stays clean JSON.
        with contextlib.redirect_stdout(sys.stderr):
            configure_structlog(logging.WARNING)  # one debug line per parse would bury the coach's output
            self._agent = Agent.load(str(model_path))
            self.parse(WARM_UP_TEXT)  # loads the lazily loaded parts (jieba's dictionary) now
        logger.info("loaded the NLU model %s", model_path)

    def parse(self, text: str) -> Dict[str, Any]:
        """Rasa's parse of ``text``, from whichever thread calls (never from the parser's own loop)."""
        future: Future[Dict[str, Any]] = asyncio.run_coroutine_threadsafe(
            self._agent.parse_message(text), self._loop
        )
        result: Dict[str, Any] = future.result(timeout=PARSE_TIMEOUT_SECONDS)
        return result
