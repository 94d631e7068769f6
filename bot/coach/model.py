"""The trained NLU model the bot uses, loaded once per process for the coach.

The coach reads collectors' notes with the very model the bot serves (``models/current.tar.gz`` unless a
path is named), so a collector sees what the bot would understand. Loading takes seconds and a few hundred
megabytes, so :func:`load_parser` keeps one parser per model file for the whole process, whoever asks (the
CLI, the staff app, the WeCom callback). The coach imports no Rasa: the caller names the factory that loads a
model (``bot.rasa.agent.RasaParser``), and tests may pass their own.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Protocol

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_MODEL_PATH = PROJECT_ROOT / "models" / "current.tar.gz"
PARSE_TIMEOUT_SECONDS = 120.0  # generous: the first parse loads parts lazily, and the machine may be busy
WARM_UP_TEXT = "hello"

class ModelNotFound(FileNotFoundError):
    """No trained model at the given path (train one with ``bot train``)."""


class Parser(Protocol):
    """Reads one message: Rasa's parse result (``intent``, ``intent_ranking``, ``entities``).

    Attributes:
        model_path: The model file it was loaded from.
    """

    model_path: Path

    def parse(self, text: str) -> Dict[str, Any]:
        """The parse of ``text``."""
        ...


ParserFactory = Callable[[Path], Parser]
"""Loads the model at a path (raising :class:`ModelNotFound` when there is none)."""

_parsers: Dict[Path, Parser] = {}
_lock = threading.Lock()


def resolve_model_path(model_path: Optional[Path] = None) -> Path:
    """``model_path``, else ``COACH_MODEL_PATH`` from the settings, else ``models/current.tar.gz``."""
    if model_path is not None:
        return Path(model_path).resolve()
    from bot.settings import get_settings

    configured = get_settings().coach_model_path
    return Path(configured).resolve() if configured else DEFAULT_MODEL_PATH


def load_parser(model_path: Optional[Path] = None, *, factory: ParserFactory) -> Parser:
    """The process's parser for ``model_path`` (see :func:`resolve_model_path`), loaded on first use.

    Concurrent first calls wait for one load instead of loading the model twice.

    Args:
        model_path: The model file (default: see :func:`resolve_model_path`).
        factory: Loads a model file when this process has not loaded it yet.

    Raises:
        ModelNotFound: If the model file does not exist.
    """
    path = resolve_model_path(model_path)
    with _lock:
        parser = _parsers.get(path)
        if parser is None:
            parser = factory(path)
            _parsers[path] = parser
        return parser


def loaded_models() -> list[Path]:
    """The model files loaded in this process so far (to check nothing is loaded twice)."""
    with _lock:
        return list(_parsers)
