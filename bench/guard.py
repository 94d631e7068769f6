"""Score the coercion guard (bot.compliance) on labelled sets: recall, false alarms, latency.

For each set file (default: the guard set's dev and final parts, tests/data/guard/dev.yml and final.yml) it
prints and writes to results/guard.json and results/guard.md: the share of coercive sentences blocked per
category (and whether a finding names the right category), the share of lawful sentences blocked per
``near`` group and overall, the same by writing style and voice, and the p50 / p95 time per sentence.

Only aggregates are printed for the final part (it is held out: its sentences and per-sentence results are
never shown); ``--misses`` lists the missed and wrongly blocked sentences of the other sets.

Run: ``.venv/bin/python bench/guard.py [--misses] [set.yml ...]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Dict, List, Tuple

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.compliance import CATEGORIES, findings  # noqa: E402

GUARD_SETS = ROOT / "tests" / "data" / "guard"
DEFAULT_SETS = (GUARD_SETS / "dev.yml", GUARD_SETS / "final.yml")
HELD_OUT = "final.yml"
RESULTS = ROOT / "results"
TIMING_ROUNDS = 5


def _share(hits: int, total: int) -> float | None:
    return round(hits / total, 4) if total else None


def score(rows: List[Dict[str, Any]]) -> Tuple[Dict[str, Any], List[Tuple[str, Dict[str, Any], List[Any]]]]:
    """Figures for one set, and the wrong verdicts ``(kind, row, findings)`` (kind: miss or false alarm)."""
    totals: Dict[str, Dict[str, List[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    named = [0, 0]
    wrong: List[Tuple[str, Dict[str, Any], List[Any]]] = []
    for row in rows:
        found = findings(row["text"])
        blocked = bool(found)
        coercive = row["label"] == "coercive"
        group = "recall" if coercive else "false_alarms"
        keys = [
            ("overall", "all"),
            ("category" if coercive else "near", str(row.get("category") if coercive else row.get("near") or "none")),
            ("style", str(row.get("style", "?"))),
            ("voice", str(row.get("voice", "?"))),
        ]
        for dimension, key in keys:
            cell = totals[f"{group}:{dimension}"][key]
            cell[0] += blocked
            cell[1] += 1
        if coercive:
            named[1] += 1
            named[0] += any(hit.category == row["category"] for hit in found)
            if not blocked:
                wrong.append(("miss", row, found))
        elif blocked:
            wrong.append(("false alarm", row, found))
    figures: Dict[str, Any] = {"sentences": len(rows)}
    for name, cells in sorted(totals.items()):
        figures[name] = {key: {"share": _share(*cell), "of": cell[1]} for key, cell in sorted(cells.items())}
    figures["recall"] = figures["recall:overall"]["all"]["share"]
    figures["false_alarm_rate"] = figures["false_alarms:overall"]["all"]["share"]
    figures["category_named"] = _share(*named)
    return figures, wrong


def latency(rows: List[Dict[str, Any]]) -> Dict[str, float]:
    """p50 and p95 milliseconds per sentence, after one warm-up round.

    Each sentence is timed :data:`TIMING_ROUNDS` times and its median kept, so a moment when another process
    holds the (shared) CPU does not count as the guard's cost; the percentiles are over the sentences.
    """
    texts = [row["text"] for row in rows]
    for text in texts:
        findings(text)
    per_sentence: List[float] = []
    for text in texts:
        times = []
        for _ in range(TIMING_ROUNDS):
            start = time.perf_counter()
            findings(text)
            times.append((time.perf_counter() - start) * 1000)
        per_sentence.append(statistics.median(times))
    per_sentence.sort()
    return {
        "p50_ms": round(statistics.median(per_sentence), 4),
        "p95_ms": round(per_sentence[int(0.95 * (len(per_sentence) - 1))], 4),
        "max_ms": round(per_sentence[-1], 4),
    }


def _markdown(results: Dict[str, Dict[str, Any]]) -> str:
    lines = ["# Coercion guard (bot.compliance)", ""]
    for name, figures in results.items():
        lines += [
            f"## {name}: {figures['sentences']} sentences",
            "",
            f"recall {figures['recall']}, false alarms {figures['false_alarm_rate']}, right category named "
            f"{figures['category_named']}; per sentence p50 {figures['latency']['p50_ms']} ms, "
            f"p95 {figures['latency']['p95_ms']} ms",
            "",
            "| category | recall | of | lawful near it: false alarms | of |",
            "|---|---|---|---|---|",
        ]
        recall = figures.get("recall:category", {})
        alarms = figures.get("false_alarms:near", {})
        for category in (*CATEGORIES, "none"):
            got = recall.get(category, {"share": "", "of": 0})
            near = alarms.get(category, {"share": "", "of": 0})
            lines.append(f"| {category} | {got['share']} | {got['of']} | {near['share']} | {near['of']} |")
        lines += ["", "| style / voice | recall | false alarms |", "|---|---|---|"]
        for dimension in ("style", "voice"):
            for key, cell in figures.get(f"recall:{dimension}", {}).items():
                alarm = figures.get(f"false_alarms:{dimension}", {}).get(key, {"share": ""})
                lines.append(f"| {key} | {cell['share']} | {alarm['share']} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    """Score the sets named on the command line (default: dev and final), print and write the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sets", nargs="*", type=Path)
    parser.add_argument("--misses", action="store_true", help="list wrong verdicts (never for the final part)")
    args = parser.parse_args()
    paths = args.sets or [path for path in DEFAULT_SETS if path.exists()]
    results: Dict[str, Dict[str, Any]] = {}
    for path in paths:
        rows = yaml.safe_load(path.read_text(encoding="utf-8"))["sentences"]
        figures, wrong = score(rows)
        figures["latency"] = latency(rows)
        results[path.name] = figures
        print(
            f"{path.name}: {len(rows)} sentences; recall {figures['recall']}, false alarms "
            f"{figures['false_alarm_rate']}, category named {figures['category_named']}; "
            f"p95 {figures['latency']['p95_ms']} ms per sentence"
        )
        for category, cell in figures.get("recall:category", {}).items():
            print(f"  recall {category:<12} {cell['share']} of {cell['of']}")
        for near, cell in figures.get("false_alarms:near", {}).items():
            print(f"  false alarms near {near:<12} {cell['share']} of {cell['of']}")
        if args.misses and path.name != HELD_OUT:
            for kind, row, found in wrong:
                print(f"  {kind}: {row['text']} {[(hit.category, hit.phrase) for hit in found]}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "guard.json").write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    (RESULTS / "guard.md").write_text(_markdown(results), encoding="utf-8")
    print(f"wrote {RESULTS / 'guard.json'} and {RESULTS / 'guard.md'}")


if __name__ == "__main__":
    main()
