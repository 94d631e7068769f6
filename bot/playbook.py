"""The objection-handling playbook: one YAML file per intent under ``data/playbook/``.

It is the single source of truth for what the bot answers owners, what the coach tells collectors and
what the docs list. Entries are validated on load, so a malformed file fails fast and loudly.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

import yaml

PLAYBOOK_DIR = Path(__file__).resolve().parents[1] / "data" / "playbook"

OFFER_KINDS = frozenset(
    {
        "repair_order",
        "complaint_record",
        "itemised_breakdown",
        "instalment_request",
        "developer_letter",
        "site_visit",
        "police_certificate",
        "joint_petition",
        "bill_check",
        "staff_callback",
        "payment_date",
    }
)
ENTRY_KINDS = frozenset({"objection", "question", "request"})
# What a collector does next, as a kind the coach and the staff app can act on (the seeds' collection ladder):
# open a repair order the same day, agree a date and follow up on it, hand a hard case to the customer-service
# supervisor, old arrears to the project manager, have the bill checked, or file an instalment request.
NEXT_STEP_KINDS = frozenset(
    {
        "repair_order",
        "agree_date",
        "escalate_supervisor",
        "old_arrears_manager",
        "bill_check",
        "instalment_request",
    }
)
SCRIPT_LINES = (2, 3)


class PlaybookError(ValueError):
    """A playbook file is missing a field or holds a value of the wrong shape."""


@dataclass(frozen=True)
class LegalBasis:
    """A rule the answer rests on."""

    source: str
    article: str
    point: str

    @property
    def citation(self) -> str:
        """E.g. 《民法典》第九百四十四条."""
        return f"《{self.source}》{self.article}"


@dataclass(frozen=True)
class Offer:
    """The concrete help offered alongside the answer."""

    kind: str
    text: str


@dataclass(frozen=True)
class Coaching:
    """What a collector needs: how to handle it, on what grounds, what next, what never to do."""

    strategy: Tuple[str, ...]
    legal_basis: Tuple[LegalBasis, ...]
    next_step: str
    donts: Tuple[str, ...]
    script: Tuple[str, ...] = ()
    next_step_kind: str = "agree_date"
    ask: str = ""


@dataclass(frozen=True)
class Entry:
    """One playbook entry, keyed by the intent it answers."""

    intent: str
    title: str
    kind: str
    summary: str
    answers: Tuple[str, ...]
    follow_up: str
    offer: Offer
    coach: Coaching

    def answer(self, attempt: int) -> str:
        """The answer variant for the ``attempt``-th time (0-based) this objection comes up, rotating."""
        return self.answers[attempt % len(self.answers)]

    def owner_facing_texts(self) -> Iterator[str]:
        """Every sentence this entry may send to an owner, or a collector may say to one from the coach."""
        yield from self.answers
        yield self.follow_up
        yield self.offer.text
        yield from self.coach.script
        if self.coach.ask:
            yield self.coach.ask


def _require(data: Mapping[str, Any], key: str, where: str) -> Any:
    if key not in data or data[key] in (None, "", []):
        raise PlaybookError(f"{where}: missing '{key}'")
    return data[key]


def _strings(value: Any, where: str) -> Tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise PlaybookError(f"{where}: expected a list of non-empty strings")
    return tuple(v.strip() for v in value)


def parse_entry(data: Mapping[str, Any], where: str) -> Entry:
    """Build an :class:`Entry` from one file's YAML, checking every field."""
    offer_data = _require(data, "offer", where)
    coach_data = _require(data, "coach", where)
    kind = str(_require(data, "kind", where))
    if kind not in ENTRY_KINDS:
        raise PlaybookError(f"{where}: kind '{kind}' is not one of {sorted(ENTRY_KINDS)}")
    offer_kind = str(_require(offer_data, "kind", f"{where} offer"))
    if offer_kind not in OFFER_KINDS:
        raise PlaybookError(f"{where}: offer kind '{offer_kind}' is not one of {sorted(OFFER_KINDS)}")
    legal = [
        LegalBasis(
            source=str(_require(item, "source", f"{where} legal_basis")),
            article=str(_require(item, "article", f"{where} legal_basis")),
            point=str(_require(item, "point", f"{where} legal_basis")).strip(),
        )
        for item in _require(coach_data, "legal_basis", f"{where} coach")
    ]
    answers = _strings(_require(data, "answers", where), f"{where} answers")
    if len(answers) < 2:
        raise PlaybookError(f"{where}: at least two answer variants are needed")
    script = _strings(_require(coach_data, "script", f"{where} coach"), f"{where} script")
    if not SCRIPT_LINES[0] <= len(script) <= SCRIPT_LINES[1]:
        raise PlaybookError(
            f"{where}: the coach script needs {SCRIPT_LINES[0]} to {SCRIPT_LINES[1]} spoken lines"
        )
    next_step_kind = str(_require(coach_data, "next_step_kind", f"{where} coach"))
    if next_step_kind not in NEXT_STEP_KINDS:
        raise PlaybookError(
            f"{where}: next_step_kind '{next_step_kind}' is not one of {sorted(NEXT_STEP_KINDS)}"
        )
    return Entry(
        intent=str(_require(data, "intent", where)),
        title=str(_require(data, "title", where)),
        kind=kind,
        summary=str(_require(data, "summary", where)).strip(),
        answers=answers,
        follow_up=str(_require(data, "follow_up", where)).strip(),
        offer=Offer(kind=offer_kind, text=str(_require(offer_data, "text", f"{where} offer")).strip()),
        coach=Coaching(
            strategy=_strings(_require(coach_data, "strategy", f"{where} coach"), f"{where} strategy"),
            legal_basis=tuple(legal),
            next_step=str(_require(coach_data, "next_step", f"{where} coach")).strip(),
            donts=_strings(_require(coach_data, "donts", f"{where} coach"), f"{where} donts"),
            script=script,
            next_step_kind=next_step_kind,
            ask=str(_require(coach_data, "ask", f"{where} coach")).strip(),
        ),
    )


class Playbook:
    """All entries, looked up by intent."""

    def __init__(self, entries: Mapping[str, Entry]) -> None:
        """Wraps already validated entries."""
        self._entries = dict(entries)

    @classmethod
    def load(cls, directory: Path = PLAYBOOK_DIR) -> Playbook:
        """Read and validate every ``*.yml`` file in ``directory``."""
        return cls.from_sources(read_sources(directory), directory)

    @classmethod
    def from_sources(
        cls, sources: Mapping[str, Mapping[str, Any]], directory: Path = PLAYBOOK_DIR
    ) -> Playbook:
        """Validate already read files (:func:`read_sources`: file stem → its mapping)."""
        entries: Dict[str, Entry] = {}
        for stem, data in sources.items():
            entry = parse_entry(data, f"{stem}.yml")
            if entry.intent != stem:
                raise PlaybookError(f"{stem}.yml: intent '{entry.intent}' does not match the file name")
            entries[entry.intent] = entry
        if not entries:
            raise PlaybookError(f"no playbook entries in {directory}")
        return cls(entries)

    def get(self, intent: str) -> Optional[Entry]:
        """The entry for ``intent``, or ``None``."""
        return self._entries.get(intent)

    def __contains__(self, intent: object) -> bool:
        return intent in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries.values())

    @property
    def intents(self) -> List[str]:
        """Intents with an entry, sorted."""
        return sorted(self._entries)


def read_sources(directory: Path = PLAYBOOK_DIR) -> Dict[str, Dict[str, Any]]:
    """Every ``*.yml`` file in ``directory`` as parsed YAML, keyed by file stem, in file-name order."""
    sources: Dict[str, Dict[str, Any]] = {}
    for path in sorted(directory.glob("*.yml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict):
            raise PlaybookError(f"{path.name}: not a mapping")
        sources[path.stem] = data
    return sources


@functools.lru_cache(maxsize=1)
def default_sources() -> Mapping[str, Mapping[str, Any]]:
    """The project's playbook files as parsed YAML, read once per process; shared, so never modify it.

    :func:`default_playbook` is built from it and the staff edits (``bot.services.playbook_edits``) overlay
    their wording on it, so the process holds one parsed copy.
    """
    return read_sources(PLAYBOOK_DIR)


@functools.lru_cache(maxsize=1)
def default_playbook() -> Playbook:
    """The project's playbook, loaded once per process."""
    return Playbook.from_sources(default_sources())
