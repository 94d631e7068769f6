"""Whole owner dialogues over REST against the real servers: turn latency and messages per second.

Starts the servers as ``bot run`` does (action server, Rasa server, staff console, reminder worker) on a fresh
demo database, then has N owners at once each hold the same 7-turn dialogue (greeting → identity → objection →
instalment question → promise → confirmation → thanks), each turn sent as soon as the last was answered.
Prints per-turn p50 / p95 / p99, messages per second and errors, and writes them as JSON.

Run: ``.venv/bin/python bench/turns.py [--owners 1 8] [--database sqlite|postgresql] [--out results/turns.json]``.
It never asserts on time; compare two checkouts by running it in each (the same model, ``--model``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DIALOGUE = (
    "你好",
    "我是3栋2单元501的王建国，手机尾号6688",
    "物业费太贵了，服务也一般",
    "能不能分期交",
    "下周五交两千",
    "对",
    "谢谢",
)
TOKEN = "bench-rest-token"
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/test"


def percentile(values: Sequence[float], share: float) -> float:
    """The ``share`` quantile (nearest rank) of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered)) - 1))]


async def owner(url: str, latencies: List[float], errors: List[str]) -> None:
    """One owner's whole dialogue; each turn's latency in seconds."""
    import aiohttp

    sender = f"bench-{uuid.uuid4().hex[:12]}"
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:
        for text in DIALOGUE:
            started = time.perf_counter()
            try:
                async with http.post(
                    f"{url}/webhooks/rest/webhook",
                    json={"sender": sender, "message": text},
                    headers={"Authorization": f"Bearer {TOKEN}"},
                ) as response:
                    await response.read()
                    if response.status != 200:
                        errors.append(f"HTTP {response.status}")
                        continue
            except Exception as error:  # counted, not raised: the run goes on
                errors.append(type(error).__name__)
                continue
            latencies.append(time.perf_counter() - started)


async def load(url: str, owners: int, rounds: int) -> Dict[str, float]:
    """``rounds`` waves of ``owners`` concurrent dialogues; the figures."""
    latencies: List[float] = []
    errors: List[str] = []
    started = time.perf_counter()
    for _ in range(rounds):
        await asyncio.gather(*(owner(url, latencies, errors) for _ in range(owners)))
    elapsed = time.perf_counter() - started
    return {
        "owners": owners,
        "turns": len(latencies),
        "errors": len(errors),
        "p50_ms": statistics.median(latencies) * 1000 if latencies else float("nan"),
        "p95_ms": percentile(latencies, 0.95) * 1000 if latencies else float("nan"),
        "p99_ms": percentile(latencies, 0.99) * 1000 if latencies else float("nan"),
        "messages_per_second": len(latencies) / elapsed,
    }


def profiler(pid: int, path: Path, owners: int) -> subprocess.Popen:
    """py-spy sampling the Rasa process (100 Hz, raw stacks) into ``path`` with the owner count in its name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    target = path.with_name(f"{path.stem}-{owners}-owners{path.suffix}")
    spy = subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(pid), "-r", "100", "--format", "raw",
         "--nonblocking", "-o", str(target)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1)  # attached before the load starts
    return spy


def database(kind: str, work: Path) -> str:
    """A fresh demo database: SQLite in ``work``, or a new PostgreSQL database."""
    from bot.db import migrate
    from bot.db.session import session_scope
    from bot.owners.importer import import_arrears

    if kind == "sqlite":
        url = f"sqlite:///{work / 'bench.db'}"
    else:
        import sqlalchemy as sa

        name = f"bench_turns_{uuid.uuid4().hex[:8]}"
        admin = sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        url = POSTGRES_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    migrate.upgrade(url)
    with session_scope(url) as session:
        import_arrears(session, ROOT / "data" / "demo" / "arrears.csv")
    return url


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Start the servers, run the load for each owner count, print and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=ROOT / "models" / "current.tar.gz")
    parser.add_argument("--owners", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--rounds", type=int, default=3, help="waves of dialogues per owner count")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--label", default=str(ROOT))
    parser.add_argument("--logs", type=Path, default=None, help="keep the servers' logs here")
    parser.add_argument("--profile", type=Path, default=None, help="py-spy's raw stacks of the Rasa process under load")
    args = parser.parse_args(argv)

    from bot.cli import ServerPlan, start_servers, stop
    from tests.conftest import free_port, wait_for

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        plan = ServerPlan(
            model=args.model, database_url=database(args.database, work), workdir=work,
            token=secrets.token_urlsafe(32), rasa_port=free_port(), actions_port=free_port(),
            staff_port=free_port(), env={"REST_CHANNEL_TOKEN": TOKEN}, log_dir=args.logs or work, enable_api=True,
        )  # fmt: skip
        processes = start_servers(plan)
        try:
            wait_for(f"{plan.actions_url}/health", processes[0], 300)
            wait_for(f"{plan.rasa_url}/status", processes[1], 300)
            asyncio.run(load(plan.rasa_url, 2, 1))  # warm up: the first turns load lazily
            figures = []
            for owners in args.owners:
                spy = profiler(processes[1].pid, args.profile, owners) if args.profile is not None else None
                figures.append(asyncio.run(load(plan.rasa_url, owners, args.rounds)))
                if spy is not None:
                    spy.send_signal(signal.SIGINT)  # py-spy writes what it sampled and exits
                    spy.wait(60)
        finally:
            stop(processes)
    print(f"{args.label} ({args.database})")
    for row in figures:
        print(
            f"  {row['owners']:>3} owners: p50 {row['p50_ms']:7.1f} ms  p95 {row['p95_ms']:7.1f} ms  "
            f"p99 {row['p99_ms']:7.1f} ms  {row['messages_per_second']:5.1f} msg/s  "
            f"{row['turns']} turns, {row['errors']} errors"
        )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"label": args.label, "database": args.database, "figures": figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
