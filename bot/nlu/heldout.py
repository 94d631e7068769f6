"""The held-out NLU set: messages never used for training, each labelled with its writing style and part.

``tests/nlu/heldout/<part>/<style>.yml``. The ``dev`` part is what pipeline choices were measured on; the
``final`` part was written apart from the training data and scored only once the choices were made, so it
says how the model does on wording nobody tuned for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Tuple

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HELDOUT_DIR = PROJECT_ROOT / "tests" / "nlu" / "heldout"
TRAINING_DIR = PROJECT_ROOT / "data" / "nlu"
STYLES = ("owner", "collector", "regional", "noisy")
"""Plain first-person owners; collectors' third-person reports; Traditional, Cantonese and Taiwan wording;
typos, pinyin, emoji and rambling."""
PARTS = ("dev", "final")
_ANNOTATION = re.compile(r"\[([^\]]+)\]\((\w+)\)")


@dataclass(frozen=True)
class Example:
    """One labelled message."""

    text: str
    intent: str
    style: str = ""
    part: str = ""


def plain_text(example: str) -> str:
    """The message without entity annotations: ``[下周五](time)交`` → ``下周五交``."""
    return _ANNOTATION.sub(r"\1", example)


def read_nlu_file(path: Path, style: str = "", part: str = "") -> List[Example]:
    """Every intent example in one Rasa NLU YAML file, annotations removed."""
    examples = []
    for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu", []):
        if "intent" not in block:
            continue
        for line in block["examples"].splitlines():
            if line.strip().startswith("- "):
                examples.append(Example(plain_text(line.strip()[2:].strip()), block["intent"], style, part))
    return examples


def training_examples(directory: Path = TRAINING_DIR) -> List[Example]:
    """The training data."""
    return [example for path in sorted(directory.glob("*.yml")) for example in read_nlu_file(path)]


def heldout_examples(parts: Sequence[str] = PARTS, directory: Path = HELDOUT_DIR) -> List[Example]:
    """The held-out examples of ``parts``, in a stable order."""
    examples = []
    for part in parts:
        for style in STYLES:
            path = directory / part / f"{style}.yml"
            if path.exists():
                examples.extend(read_nlu_file(path, style, part))
    return examples


def heldout_files(parts: Sequence[str] = PARTS, directory: Path = HELDOUT_DIR) -> List[Path]:
    """The files behind :func:`heldout_examples`."""
    return [directory / part / f"{style}.yml" for part in parts for style in STYLES if (directory / part / f"{style}.yml").exists()]


def by_intent(examples: Iterable[Example]) -> Dict[str, List[str]]:
    """Texts grouped by intent."""
    grouped: Dict[str, List[str]] = {}
    for example in examples:
        grouped.setdefault(example.intent, []).append(example.text)
    return grouped


def texts_and_labels(examples: Sequence[Example]) -> Tuple[List[str], List[str]]:
    """Two parallel lists."""
    return [e.text for e in examples], [e.intent for e in examples]
