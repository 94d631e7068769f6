"""Rule-based entities: time, amount, room, phone_tail and repair_item.

A blank spaCy ``zh`` pipeline with the jieba segmenter and an EntityRuler finds repair items from the
lexicon in ``data/lexicon/repair_items.yml`` (jieba shares the domain dictionary, so 楼道灯 stays one
word). Structured entities (rooms, phone tails, amounts, dates) are matched on characters, because jieba
splits 3栋2单元501 unpredictably. All offsets refer to the normalised text passed in.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

import yaml

from bot.text import amounts, dates

PROJECT_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REPAIR_LEXICON = PROJECT_ROOT / "data" / "lexicon" / "repair_items.yml"
DEFAULT_JIEBA_DICTIONARY = PROJECT_ROOT / "data" / "lexicon" / "jieba" / "userdict.txt"

_ROOM_PATTERNS = (
    re.compile(
        r"(?<![0-9a-z])(?:(\d{1,2})\s*期\s*)?(\d{1,3}|[a-z])\s*(?:号楼|栋|幢|座|号)\s*"
        r"(?:(\d{1,2})\s*(?:单元|门|号门)\s*)?(\d{3,4})(?:\s*(?:室|房|号))?(?!\d)"
    ),
    re.compile(r"(?<![\d-])(\d{1,3})-(\d{1,2})-(\d{3,4})(?![\d-])"),
)
_PHONE_TAIL_PATTERNS = (
    re.compile(
        r"(?:尾号|尾数|后四位|后4位|末四位|末4位|最后四位|最后4位)\s*(?:是|系|为|:|：)?\s*(\d{4})(?!\d)"
    ),
    re.compile(r"(?<!\d)1[3-9]\d{5}(\d{4})(?!\d)"),
    re.compile(r"^\s*(\d{4})\s*$"),
)
# When two rules claim overlapping text, the more specific kind wins.
_PRIORITY = {"room": 0, "phone_tail": 1, "time": 2, "amount": 3, "repair_item": 4}


@dataclass(frozen=True)
class EntitySpan:
    """An entity in Rasa's terms: a labelled span of the text plus its normalised value."""

    entity: str
    start: int
    end: int
    text: str
    value: Any
    additional_info: Dict[str, Any] = field(default_factory=dict)


def load_repair_lexicon(path: Path = DEFAULT_REPAIR_LEXICON) -> Dict[str, List[str]]:
    """Canonical repair item → its spellings."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    return {str(name): [str(v) for v in variants] for name, variants in data.items()}


@functools.lru_cache(maxsize=4)
def _spacy_pipeline(lexicon_path: str, jieba_dictionary: str) -> Any:
    import jieba
    import spacy

    jieba.setLogLevel(60)
    if Path(jieba_dictionary).exists():
        jieba.load_userdict(jieba_dictionary)
    lexicon = load_repair_lexicon(Path(lexicon_path))
    for variants in lexicon.values():
        for variant in variants:
            jieba.add_word(variant, freq=100000)
    nlp = spacy.blank("zh", config={"nlp": {"tokenizer": {"segmenter": "jieba"}}})
    ruler: Any = nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "ORTH"})
    ruler.add_patterns(
        [
            {"label": "repair_item", "pattern": variant, "id": name}
            for name, variants in lexicon.items()
            for variant in variants
        ]
    )
    return nlp


class RuleEntityExtractor:
    """Finds the rule-based entities in normalised text."""

    def __init__(
        self,
        repair_lexicon: Path = DEFAULT_REPAIR_LEXICON,
        jieba_dictionary: Path = DEFAULT_JIEBA_DICTIONARY,
    ) -> None:
        self._lexicon_path = str(repair_lexicon)
        self._jieba_dictionary = str(jieba_dictionary)

    def extract(self, text: str, today: dt.date) -> List[EntitySpan]:
        """All entities in ``text``, left to right, without overlaps."""
        candidates = [
            *self._rooms(text),
            *self._phone_tails(text),
            *self._times(text, today),
            *self._amounts(text),
            *self._repair_items(text),
        ]
        candidates.sort(key=lambda s: (_PRIORITY[s.entity], s.start))
        chosen: List[EntitySpan] = []
        for span in candidates:
            if all(span.end <= kept.start or span.start >= kept.end for kept in chosen):
                chosen.append(span)
        return sorted(chosen, key=lambda s: s.start)

    @staticmethod
    def _rooms(text: str) -> List[EntitySpan]:
        return find_rooms(text)

    @staticmethod
    def _phone_tails(text: str) -> List[EntitySpan]:
        spans = []
        for pattern in _PHONE_TAIL_PATTERNS:
            for match in pattern.finditer(text):
                start, end = match.span(1)
                spans.append(EntitySpan("phone_tail", start, end, match.group(1), match.group(1)))
        return spans

    @staticmethod
    def _times(text: str, today: dt.date) -> List[EntitySpan]:
        spans = []
        for found in dates.find_times(text, today):
            info: Dict[str, Any] = {
                "ambiguous": found.ambiguous,
                "grain": "day",
                "reference_date": today.isoformat(),
            }
            if found.earliest is not None:
                info["earliest"] = found.earliest.isoformat()
            value = found.date.isoformat() if found.date else found.text
            spans.append(EntitySpan("time", found.start, found.end, found.text, value, info))
        return spans

    @staticmethod
    def _amounts(text: str) -> List[EntitySpan]:
        return [
            EntitySpan("amount", start, end, text[start:end], amounts.amount_as_text(value))
            for start, end, value in amounts.find_amounts(text)
        ]

    def _repair_items(self, text: str) -> List[EntitySpan]:
        doc = _spacy_pipeline(self._lexicon_path, self._jieba_dictionary)(text)
        return [
            EntitySpan("repair_item", ent.start_char, ent.end_char, ent.text, ent.ent_id_ or ent.text)
            for ent in doc.ents
            if ent.label_ == "repair_item"
        ]


def find_rooms(text: str) -> List[EntitySpan]:
    """Unit addresses (3栋2单元501, 5号楼1203, 12-3-402) in normalised ``text``, possibly overlapping."""
    spans = []
    for pattern in _ROOM_PATTERNS:
        for match in pattern.finditer(text):
            raw = match.group()
            value = re.sub(r"\s+", "", raw).upper()
            spans.append(EntitySpan("room", match.start(), match.end(), raw, value))
    return spans


def entities_as_dicts(spans: Sequence[EntitySpan], extractor: str) -> List[Dict[str, Any]]:
    """Rasa's entity format."""
    result = []
    for span in spans:
        entity: Dict[str, Any] = {
            "entity": span.entity,
            "start": span.start,
            "end": span.end,
            "value": span.value,
            "extractor": extractor,
        }
        if span.additional_info:
            entity["additional_info"] = dict(span.additional_info)
        result.append(entity)
    return result


def reference_date(metadata: Optional[Mapping[str, Any]]) -> dt.date:
    """The date a message was written: from its metadata when given, else the server's today.

    Channels drop the date keys from metadata unless the caller is trusted (the REST channel with its
    token), so a browser or a WeChat client cannot move "today".
    """
    from bot import clock

    if metadata:
        for key in ("date", "timestamp", "sent_at"):
            raw = metadata.get(key)
            if raw in (None, ""):
                continue
            if isinstance(raw, (int, float)):
                return clock.local_date(dt.datetime.fromtimestamp(raw, dt.timezone.utc))
            try:
                parsed = dt.datetime.fromisoformat(str(raw))
            except ValueError:
                continue
            if len(str(raw)) == 10:
                return parsed.date()
            return clock.local_date(parsed if parsed.tzinfo else parsed.replace(tzinfo=clock.zone()))
    return clock.today()
