"""Where a profiled Rasa process spends its busy time: shares of py-spy's raw stacks (``bench/turns.py --profile``).

Threads waiting for work (idle executor threads, the server's accept loop) are left out, so a share is of the time
the process was doing something. Run: ``.venv/bin/python bench/profile_shares.py FILE.stacks[.gz] ...``.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path
from typing import List, Sequence, Tuple

# A stack whose innermost frame is one of these is a thread waiting, not working.
WAITING = (
    "_worker (concurrent/futures/thread.py",
    "serve (sanic/server/runners.py",
    "wait (threading.py",
    "select (selectors.py",
)
# What the figures name, and the frames that make a stack count for it.
PARTS: Sequence[Tuple[str, Tuple[str, ...]]] = (
    (
        "hold gate: holder + resume check",
        (
            "holder (bot/channels/takeover.py",
            "resume_if_paused (bot/channels/takeover.py",
            "is_held (bot/conversations/handoff.py",
            "paused_in_store",
        ),
    ),
    ("hold watch refresh", ("bot/conversations/holds.py",)),
    ("SQLAlchemy, all", ("sqlalchemy/",)),
    ("NLU parse", ("parse_message (rasa/core/processor.py",)),
    ("policy prediction", ("predict_next_action (rasa/core/processor.py", "_predict_next_with_tracker")),
    ("tracker store", ("rasa/core/tracker_store.py",)),
    ("action server calls", ("rasa/core/actions/action.py",)),
    ("jsonschema", ("jsonschema/",)),
)


def busy_stacks(path: Path) -> List[Tuple[str, int]]:
    """The stacks of ``path`` (py-spy ``--format raw``, optionally gzipped) with their sample counts, waiting ones left out."""
    opener = gzip.open if path.suffix == ".gz" else open
    rows: List[Tuple[str, int]] = []
    with opener(path, "rt", encoding="utf-8", errors="replace") as lines:  # type: ignore[operator]
        for line in lines:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if stack and not stack.split(";")[-1].startswith(WAITING):
                rows.append((stack, int(count)))
    return rows


def main(paths: Sequence[str]) -> int:
    """Print the busy time and each part's share for every file."""
    for name in paths:
        rows = busy_stacks(Path(name))
        total = sum(count for _, count in rows) or 1
        print(f"{name}: {total} busy samples")
        for label, frames in PARTS:
            share = sum(count for stack, count in rows if any(frame in stack for frame in frames)) / total
            print(f"  {label:<36} {share:6.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
