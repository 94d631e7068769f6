"""The trained Rasa NLU model the bot uses, loaded once per process for the coach.

The coach reads collectors' notes with the very model the bot serves (``models/current.tar.gz`` unless a
path is named), parsed through Rasa's ``Agent.parse_message`` as :mod:`bot.nlu.rasa_model` does, so a
collector sees what the bot would understand. Loading takes seconds and a few hundred megabytes, so
:func:`load_parser` keeps one parser per model file for the whole process, whoever asks (the CLI, the staff
app, the WeCom channel).

``Agent.parse_message`` is a coroutine; callers are synchronous code (the CLI, FastAPI's thread pool) and
async code (a channel's handler) alike. A parser therefore owns one event loop on a daemon thread and hands
every parse to it, which works from any thread, and keeps parses in one order on one loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Dict, Optional, Protocol

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_PATH = PROJECT_ROOT / "models" / "current.tar.gz"
PARSE_TIMEOUT_SECONDS = 120.0  # generous: the first parse loads parts lazily, and the machine may be busy
WARM_UP_TEXT = "hello"

logger = logging.getLogger(__name__)


class ModelNotFound(FileNotFoundError):
    """No trained model at the given path (train one with ``bot train``)."""


class Parser(Protocol):
    """Reads one message: Rasa's parse result (``intent``, ``intent_ranking``, ``entities``)."""

    def parse(self, text: str) -> Dict[str, Any]:
        """The parse of ``text``."""
        ...


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
        logger.info("coach: loaded the NLU model %s", model_path)

    def parse(self, text: str) -> Dict[str, Any]:
        """Rasa's parse of ``text``, from whichever thread calls (never from the parser's own loop)."""
        future: Future[Dict[str, Any]] = asyncio.run_coroutine_threadsafe(
            self._agent.parse_message(text), self._loop
        )
        result: Dict[str, Any] = future.result(timeout=PARSE_TIMEOUT_SECONDS)
        return result


_parsers: Dict[Path, RasaParser] = {}
_lock = threading.Lock()


def resolve_model_path(model_path: Optional[Path] = None) -> Path:
    """``model_path``, else ``COACH_MODEL_PATH`` from the settings, else ``models/current.tar.gz``."""
    if model_path is not None:
        return Path(model_path).resolve()
    from bot.settings import get_settings

    configured = get_settings().coach_model_path
    return Path(configured).resolve() if configured else DEFAULT_MODEL_PATH


def load_parser(model_path: Optional[Path] = None) -> RasaParser:
    """The process's parser for ``model_path`` (see :func:`resolve_model_path`), loaded on first use.

    Concurrent first calls wait for one load instead of loading the model twice.

    Raises:
        ModelNotFound: If the model file does not exist.
    """
    path = resolve_model_path(model_path)
    with _lock:
        parser = _parsers.get(path)
        if parser is None:
            parser = RasaParser(path)
            _parsers[path] = parser
        return parser


def loaded_models() -> list[Path]:
    """The model files loaded in this process so far (to check nothing is loaded twice)."""
    with _lock:
        return list(_parsers)
