"""Benchmarks: prints figures and ratios; never asserts on time (run: .venv/bin/python bench/run.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, List

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SAMPLES = [
    "管理費太貴了，我唔交",
    "我是3栋2单元501的，手机尾号6688，下周五交两千块",
    "暖气一点都不热，屋里才十五度，这物业费我不交",
    "业主说房子一直空着没人住，不想交物业费",
    "楼道灯坏了一个星期了，麻烦派人来修一下",
]


def timed(label: str, fn: Callable[[], object], repeat: int) -> float:
    """Run ``fn`` ``repeat`` times, print and return the median in milliseconds."""
    times: List[float] = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    median = statistics.median(times) * 1000
    print(f"{label:<48} median {median:8.3f} ms  (n={repeat})")
    return median


def main() -> None:
    """Time the text layer alone, then the full trained pipeline if a model exists."""
    from bot.text.entities import RuleEntityExtractor
    from bot.text.normalize import normalize

    extractor = RuleEntityExtractor()
    today = dt.date(2026, 11, 23)
    extractor.extract("预热", today)
    normalise_ms = timed("normalize (5 messages)", lambda: [normalize(s) for s in SAMPLES], 200)
    extract_ms = timed(
        "normalize + rule entities (5 messages)",
        lambda: [extractor.extract(normalize(s).text, today) for s in SAMPLES],
        200,
    )
    print(f"{'rule entities / normalize ratio':<48} {extract_ms / normalise_ms:8.2f}x")

    model = ROOT / "models" / "current.tar.gz"
    if not model.exists():
        print("no trained model: run `make train` for the full-pipeline figure")
        return
    from rasa.core.agent import Agent

    agent = Agent.load(str(model))

    async def parse_all() -> None:
        for sample in SAMPLES:
            await agent.parse_message(sample)

    asyncio.run(parse_all())
    loop = asyncio.new_event_loop()
    full_ms = timed("full NLU pipeline parse (5 messages)", lambda: loop.run_until_complete(parse_all()), 30)
    print(f"{'full pipeline / rule entities ratio':<48} {full_ms / extract_ms:8.2f}x")
    print(f"{'full pipeline per message':<48} {full_ms / len(SAMPLES):8.3f} ms")


if __name__ == "__main__":
    main()
