"""What the bot says, read from its homes (``domain.yml`` responses, ``data/wording.yml``) for e2e assertions.

End-to-end tests compare replies with the stored wording instead of copying sentences, so rewording a
response does not break them and a test cannot pass on a sentence the bot no longer says.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Dict, List

import yaml

ROOT = Path(__file__).resolve().parents[2]


@functools.lru_cache(maxsize=1)
def _responses() -> Dict[str, List[str]]:
    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8")) or {}
    return {
        name: [str(variant["text"]) for variant in variants or [] if variant.get("text")]
        for name, variants in (domain.get("responses") or {}).items()
    }


def response_variants(name: str, **fields: Any) -> List[str]:
    """Every text variant of the domain response ``name``, with ``{placeholders}`` filled from ``fields``."""
    variants = _responses()[name]
    assert variants, f"domain.yml has no text for {name}"
    return [variant.format(**fields) if fields else variant for variant in variants]


def says(replies: List[str] | str, name: str, **fields: Any) -> bool:
    """Whether one of the ``replies`` contains a variant of the response ``name``."""
    joined = replies if isinstance(replies, str) else "\n".join(replies)
    return any(variant in joined for variant in response_variants(name, **fields))


def response(name: str, **fields: Any) -> str:
    """The text of a single-variant domain response ``name``, with ``{placeholders}`` filled."""
    (text,) = response_variants(name, **fields)
    return text
