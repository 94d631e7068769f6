"""Scoring a trained Rasa model on held-out examples, message by message, as the server would parse them."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from bot.nlu.heldout import Example
from bot.nlu.scoring import FALLBACK_INTENT, Scores, score


def _top_intent(result: Dict[str, Any]) -> str:
    return str((result.get("intent") or {}).get("name") or "None")


def _top_ignoring_fallback(result: Dict[str, Any]) -> Tuple[str, float]:
    for entry in result.get("intent_ranking") or []:
        if entry.get("name") != FALLBACK_INTENT:
            return str(entry["name"]), float(entry.get("confidence") or 0.0)
    return _top_intent(result), 0.0


def parse_all(model: Path, texts: Sequence[str]) -> Tuple[List[Dict[str, Any]], List[float]]:
    """Load ``model``, parse every text one at a time; the results and each parse's milliseconds."""
    from rasa.core.agent import Agent
    from rasa.utils.log_utils import configure_structlog

    configure_structlog(logging.WARNING)  # one debug line per parse would bury the figures
    agent = Agent.load(str(model))
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(agent.parse_message("你好"))  # loads lazily-loaded parts before timing
        results: List[Dict[str, Any]] = []
        latencies: List[float] = []
        for text in texts:
            start = time.perf_counter()
            results.append(loop.run_until_complete(agent.parse_message(text)))
            latencies.append((time.perf_counter() - start) * 1000)
    finally:
        loop.close()
    return results, latencies


def rasa_parse(model: Path, examples: Sequence[Example]) -> List[Tuple[str, float]]:
    """The top intent other than the fallback, and its confidence, for every example."""
    results, _ = parse_all(model, [e.text for e in examples])
    return [_top_ignoring_fallback(r) for r in results]


def rasa_scores(
    name: str, model: Path, heldout: Sequence[Example], *, train_seconds: Optional[float] = None, notes: str = ""
) -> Scores:
    """Score ``model`` on ``heldout``, timing each parse."""
    results, latencies = parse_all(model, [e.text for e in heldout])
    return score(
        name,
        heldout,
        [_top_intent(r) for r in results],
        predicted_ignoring_fallback=[_top_ignoring_fallback(r)[0] for r in results],
        train_seconds=train_seconds,
        latencies_ms=latencies,
        notes=notes,
    )
