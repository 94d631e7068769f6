"""``bot`` command line: train the model when its inputs changed, run the servers, score the NLU."""

from __future__ import annotations

import argparse
import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import List, Optional, Sequence

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = PROJECT_ROOT / "models"
MODEL_NAME = "current"
MODEL_PATH = MODELS_DIR / f"{MODEL_NAME}.tar.gz"
FINGERPRINT_PATH = MODELS_DIR / f"{MODEL_NAME}.fingerprint"
VAR_DIR = PROJECT_ROOT / "var"

# Everything that shapes the trained model; a change to any of it retrains.
MODEL_INPUTS = ("config.yml", "domain.yml", "data", "bot/components", "bot/text")


def model_fingerprint(root: Path = PROJECT_ROOT) -> str:
    """A hash of the contents of every model input, independent of file times."""
    digest = hashlib.sha256()
    for name in MODEL_INPUTS:
        path = root / name
        if not path.exists():
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if "__pycache__" in file.parts:
                continue
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def _rasa(*args: str) -> List[str]:
    return [sys.executable, "-m", "rasa", *args]


def train(force: bool = False) -> Path:
    """Train the model unless one trained from the same inputs exists; return its path."""
    fingerprint = model_fingerprint()
    if (
        not force
        and MODEL_PATH.exists()
        and FINGERPRINT_PATH.exists()
        and FINGERPRINT_PATH.read_text().strip() == fingerprint
    ):
        print(f"Model is up to date: {MODEL_PATH.relative_to(PROJECT_ROOT)}")
        return MODEL_PATH
    MODELS_DIR.mkdir(exist_ok=True)
    subprocess.run(
        _rasa("train", "--fixed-model-name", MODEL_NAME, "--out", str(MODELS_DIR)),
        cwd=PROJECT_ROOT,
        check=True,
    )
    FINGERPRINT_PATH.write_text(fingerprint + "\n")
    return MODEL_PATH


def run(rasa_port: int = 5005, actions_port: int = 5055) -> int:
    """Start the action server and the Rasa server (REST and web chat); Ctrl-C stops both."""
    from bot.channels.webchat_page import CHAT_PATH
    from bot.db import migrate
    from bot.rasa_endpoints import write_endpoints
    from bot.settings import get_settings

    model = train()
    VAR_DIR.mkdir(exist_ok=True)
    database_url = get_settings().database_url
    migrate.upgrade(database_url)
    load_demo_estate_once(database_url)
    endpoints = write_endpoints(
        VAR_DIR / "endpoints.yml",
        database_url=database_url,
        action_server_url=f"http://127.0.0.1:{actions_port}/webhook",
    )
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT), "DATABASE_URL": database_url}
    processes = [
        subprocess.Popen(
            _rasa("run", "actions", "--port", str(actions_port), "--actions", "actions"),
            cwd=PROJECT_ROOT,
            env=env,
        ),
        subprocess.Popen(
            _rasa(
                "run",
                "--model",
                str(model),
                "--port",
                str(rasa_port),
                "--endpoints",
                str(endpoints),
                "--credentials",
                "credentials.yml",
            ),
            cwd=PROJECT_ROOT,
            env=env,
        ),
    ]
    print(f"Web chat page: http://localhost:{rasa_port}{CHAT_PATH}")
    print(f"Chat over REST: POST http://localhost:{rasa_port}/webhooks/rest/webhook  (Ctrl-C stops)")
    try:
        while all(process.poll() is None for process in processes):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop(processes)
    return max((process.returncode or 0) for process in processes)


DEMO_ESTATE = PROJECT_ROOT / "data" / "demo" / "arrears.csv"


def load_demo_estate_once(database_url: str) -> None:
    """On the first run (no owners yet) load the demo estate so there is someone to talk about."""
    from sqlalchemy import func, select

    from bot.db.models import Owner
    from bot.db.session import session_scope
    from bot.records.importer import import_arrears as load

    with session_scope(database_url) as session:
        if session.execute(select(func.count()).select_from(Owner)).scalar_one() == 0:
            report = load(session, DEMO_ESTATE)
            print(f"Loaded the demo estate: {report.created} owners from {DEMO_ESTATE.name}")


def stop(processes: Sequence[subprocess.Popen]) -> None:
    """Ask every process to stop, then kill the ones that do not."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def import_arrears(path: Path, url: Optional[str] = None) -> int:
    """Migrate, then load the arrears list in one transaction; print what loaded and what did not."""
    from bot.db import migrate
    from bot.db.session import session_scope
    from bot.records.importer import ImportFileError
    from bot.records.importer import import_arrears as load

    migrate.upgrade(url)
    try:
        with session_scope(url) as session:
            report = load(session, path)
    except ImportFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{path.name}: {report.created} created, {report.updated} updated, {len(report.errors)} rejected")
    for line, reason in report.errors:
        print(f"  line {line}: {reason}")
    return 0 if not report.errors else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``bot`` command."""
    # No usage telemetry or crash reports leave the machine (Rasa would try Segment and Sentry).
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    parser = argparse.ArgumentParser(prog="bot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser("train", help="train the model if its inputs changed")
    train_parser.add_argument("--force", action="store_true", help="train even if up to date")
    run_parser = commands.add_parser("run", help="run the Rasa server and the action server")
    run_parser.add_argument("--port", type=int, default=5005)
    run_parser.add_argument("--actions-port", type=int, default=5055)
    db_parser = commands.add_parser("db", help="database migrations")
    db_parser.add_argument("action", choices=["upgrade", "downgrade"])
    db_parser.add_argument("--url", help="database URL (default: DATABASE_URL or SQLite under var/)")
    import_parser = commands.add_parser("import-arrears", help="load the arrears list (CSV or XLSX)")
    import_parser.add_argument("file", type=Path)
    import_parser.add_argument("--url", help="database URL (default: DATABASE_URL or SQLite under var/)")
    report = commands.add_parser("nlu-report", help="score the model on the held-out NLU test set")
    report.add_argument("--floor", type=float, default=0.90, help="minimum accuracy (fails below)")
    args = parser.parse_args(argv)

    if args.command == "train":
        train(force=args.force)
        return 0
    if args.command == "run":
        return run(args.port, args.actions_port)
    if args.command == "db":
        from bot.db import migrate

        (migrate.upgrade if args.action == "upgrade" else migrate.downgrade)(args.url)
        return 0
    if args.command == "import-arrears":
        return import_arrears(args.file, args.url)
    if args.command == "nlu-report":
        from bot import nlu_report

        summary = nlu_report.evaluate(train())
        print(summary.markdown)
        return 0 if summary.accuracy >= args.floor else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
