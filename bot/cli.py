"""``bot`` command line: train the model when its inputs changed, run the servers, score the NLU, manage staff."""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import List, Mapping, Optional, Sequence

from bot.startup import PARENT_PID_VARIABLE, preflight

PROJECT_ROOT = Path(__file__).resolve().parents[1]
MODELS_DIR = PROJECT_ROOT / "models"
MODEL_NAME = "current"
MODEL_PATH = MODELS_DIR / f"{MODEL_NAME}.tar.gz"
FINGERPRINT_PATH = MODELS_DIR / f"{MODEL_NAME}.fingerprint"
VAR_DIR = PROJECT_ROOT / "var"

# Everything that shapes the trained model; a change to any of it retrains. The guard's own training data and
# weights (data/compliance) shape the guard, not the Rasa model.
MODEL_INPUTS = ("config.yml", "domain.yml", "data", "bot/components", "bot/text")
NOT_MODEL_INPUTS = ("data/compliance",)


def model_fingerprint(root: Path = PROJECT_ROOT) -> str:
    """A hash of the contents of every model input, independent of file times."""
    digest = hashlib.sha256()
    for name in MODEL_INPUTS:
        path = root / name
        if not path.exists():
            continue
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            relative = file.relative_to(root).as_posix()
            if "__pycache__" in file.parts or any(relative.startswith(f"{skip}/") for skip in NOT_MODEL_INPUTS):
                continue
            digest.update(str(file.relative_to(root)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()


def _rasa(*args: str) -> List[str]:
    return [sys.executable, "-m", "rasa", *args]


def _up_to_date(fingerprint: str) -> bool:
    return (
        MODEL_PATH.exists() and FINGERPRINT_PATH.exists() and FINGERPRINT_PATH.read_text().strip() == fingerprint
    )


def train(force: bool = False) -> Path:
    """Train the model unless one trained from the same inputs exists; return its path.

    Several processes may ask at once (the test workers): one trains while the others wait on a file lock, and
    the model is trained beside its place and then moved in, so no process ever reads half a model.
    """
    fingerprint = model_fingerprint()
    if not force and _up_to_date(fingerprint):
        print(f"Model is up to date: {MODEL_PATH.relative_to(PROJECT_ROOT)}")
        return MODEL_PATH
    MODELS_DIR.mkdir(exist_ok=True)
    with open(MODELS_DIR / ".train.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not force and _up_to_date(fingerprint):
            return MODEL_PATH
        with tempfile.TemporaryDirectory(dir=MODELS_DIR, prefix=".training-") as out:
            subprocess.run(
                _rasa("train", "--fixed-model-name", MODEL_NAME, "--out", out), cwd=PROJECT_ROOT, check=True
            )
            os.replace(Path(out) / MODEL_PATH.name, MODEL_PATH)
        FINGERPRINT_PATH.write_text(fingerprint + "\n")
    return MODEL_PATH


# SIGTERM to a server, then SIGKILL after this long: everything is gone well within 10 s of a stop request.
STOP_GRACE_SECONDS = 6.0
LOOPBACK = "127.0.0.1"


@dataclass
class ServerPlan:
    """The assistant's processes (action server, Rasa server, staff console, reminder worker) and what they need.

    ``bot run`` and the end-to-end tests start them through :func:`start_servers`, the same way.
    """

    model: Path
    database_url: str
    workdir: Path  # the endpoints file (it holds the action server token) is written here
    token: str
    rasa_port: int = 5005
    actions_port: int = 5055
    actions_host: str = LOOPBACK
    staff_port: int = 5006
    staff_host: str = LOOPBACK
    env: Mapping[str, str] = field(default_factory=dict)  # added to this process's environment
    enable_api: bool = False
    log_dir: Optional[Path] = None  # None: the processes write to this process's stdout and stderr
    worker: bool = True  # the reminder worker (python -m apps.worker), started last
    lock_store_url: Optional[str] = None  # Redis for Rasa's lock store; None: LOCK_STORE_URL / REDIS_URL, if set
    credentials: Optional[Path] = None  # the channels the Rasa server runs; None: the project's credentials.yml

    @property
    def actions_url(self) -> str:
        """Where the Rasa server reaches the action server (loopback when it listens on every address)."""
        host = LOOPBACK if self.actions_host in ("0.0.0.0", "::", "") else self.actions_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.actions_port}"

    @property
    def rasa_url(self) -> str:
        """The Rasa server on loopback."""
        return f"http://{LOOPBACK}:{self.rasa_port}"

    @property
    def staff_url(self) -> str:
        """The staff console (on loopback when it listens on every address)."""
        host = LOOPBACK if self.staff_host in ("0.0.0.0", "::", "") else self.staff_host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.staff_port}"


def action_server_token() -> str:
    """``ACTION_SERVER_TOKEN``, or in local mode without one a random token for this run only.

    Outside local mode the settings refuse to load without the token, so a random one is never used there.
    """
    from bot.settings import get_settings

    configured = get_settings().action_server_token
    return configured.get_secret_value() if configured else secrets.token_urlsafe(32)


def start_servers(plan: ServerPlan) -> List[subprocess.Popen]:
    """Start the action server, then the Rasa server, then the staff console, then the reminder worker.

    Args:
        plan: Ports, addresses, model, database and token.

    Returns:
        The processes: action server, Rasa server, staff console and (``plan.worker``) the reminder worker.
    """
    processes = [start_action_server(plan)]
    try:
        processes.append(start_rasa_server(plan))
        processes.append(start_staff_app(plan))
        if plan.worker:
            processes.append(start_reminder_worker(plan))
    except BaseException:
        stop(processes)
        raise
    return processes


def start_action_server(plan: ServerPlan) -> subprocess.Popen:
    """Start ``python -m bot.action_server`` on the plan's address with the plan's token."""
    command = [sys.executable, "-m", "bot.action_server", "--host", plan.actions_host, "--port", str(plan.actions_port)]
    return _start("actions", command, plan)


def start_rasa_server(plan: ServerPlan) -> subprocess.Popen:
    """Write the endpoints file (tracker store, action server URL and token) and start the Rasa server."""
    from bot.rasa.endpoints import write_endpoints
    from bot.settings import configured_lock_store_url

    endpoints = write_endpoints(
        plan.workdir / "endpoints.yml",
        database_url=plan.database_url,
        action_server_url=f"{plan.actions_url}/webhook",
        action_server_token=plan.token,
        lock_store_url=plan.lock_store_url or configured_lock_store_url(),
    )
    command = [
        sys.executable,
        "-m",
        "bot.rasa.runtime",
        "run",
        "--model",
        str(plan.model),
        "--port",
        str(plan.rasa_port),
        "--endpoints",
        str(endpoints),
        "--credentials",
        str(plan.credentials or PROJECT_ROOT / "credentials.yml"),
        *(["--enable-api"] if plan.enable_api else []),
    ]
    return _start("rasa", command, plan)


def start_staff_app(plan: ServerPlan) -> subprocess.Popen:
    """Start the staff console, ``python -m apps.staff``, on the plan's address and database."""
    command = [sys.executable, "-m", "apps.staff", "--host", plan.staff_host, "--port", str(plan.staff_port)]
    if plan.model.is_file() and "COACH_MODEL_PATH" not in plan.env:
        # The console's coach reads notes with the very model the Rasa server serves.
        from dataclasses import replace

        plan = replace(plan, env={**plan.env, "COACH_MODEL_PATH": str(plan.model)})
    return _start("staff", command, plan)


def start_reminder_worker(plan: ServerPlan) -> subprocess.Popen:
    """Start the reminder worker, ``python -m apps.worker``, on the plan's database."""
    return _start("worker", [sys.executable, "-m", "apps.worker"], plan)


def _start(name: str, command: List[str], plan: ServerPlan) -> subprocess.Popen:
    """Start one server process with the plan's environment.

    It runs in its own session (a terminal's Ctrl-C reaches only the parent, which stops the servers in
    order) and, on Linux, gets SIGTERM if the parent dies without stopping it (:func:`bot.startup.exit_with_parent`).
    """
    env = {
        **os.environ,
        "PYTHONPATH": str(PROJECT_ROOT),
        "DATABASE_URL": plan.database_url,
        **plan.env,
        "ACTION_SERVER_TOKEN": plan.token,
        "ACTION_SERVER_HOST": plan.actions_host,
        PARENT_PID_VARIABLE: str(os.getpid()),
    }
    output = (plan.log_dir / f"{name}.log").open("a") if plan.log_dir else None
    try:
        return subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT if output else None,
            start_new_session=True,
        )
    finally:
        if output:
            output.close()  # the child has its own copy


def run(
    rasa_port: int = 5005,
    actions_port: int = 5055,
    model: Optional[Path] = None,
    staff_port: Optional[int] = None,
) -> int:
    """Start the action server, the Rasa server, the staff console and the reminder worker until a signal.

    SIGTERM or SIGINT to this process (a supervisor, ``kill``, a terminal's Ctrl-C) stops every server and
    frees their ports within 10 s; so does any server exiting on its own.

    Args:
        rasa_port: The Rasa server's port.
        actions_port: The action server's port.
        model: A trained model to serve; by default the project's model, trained first if out of date.
        staff_port: The staff console's port (default: ``STAFF_PORT``, 5006).

    Returns:
        0 after a stop request, 1 if the wording check failed or a server exited by itself.
    """
    stopping = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        print(f"{signal.Signals(signum).name}: stopping the servers", file=sys.stderr, flush=True)
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    processes: List[subprocess.Popen] = []
    try:
        if not preflight():
            return 1
        from bot.channels.webchat_page import CHAT_PATH
        from bot.db import migrate
        from bot.settings import get_settings

        settings = get_settings()
        model = model or train()
        VAR_DIR.mkdir(exist_ok=True)
        migrate.upgrade(settings.database_url)
        load_demo_estate_once(settings.database_url)
        if stopping.is_set():
            return 0
        with tempfile.TemporaryDirectory(prefix="bot-run-", dir=VAR_DIR) as workdir:
            plan = ServerPlan(
                model=model,
                database_url=settings.database_url,
                workdir=Path(workdir),
                token=action_server_token(),
                rasa_port=rasa_port,
                actions_port=actions_port,
                actions_host=settings.action_server_host,
                staff_port=staff_port or settings.staff_port,
                staff_host=settings.staff_host,
            )
            processes = start_servers(plan)
            print(f"Web chat page: http://localhost:{rasa_port}{CHAT_PATH}")
            print(f"Chat over REST: POST http://localhost:{rasa_port}/webhooks/rest/webhook  (Ctrl-C stops)")
            print(f"Action server: {plan.actions_url} (token required)")
            print(f"Staff console: {plan.staff_url}/ (add an account: bot user add NAME --role ROLE)")
            print("Reminder worker: sends due reminders (staff console: /reminders, /calls)", flush=True)
            while not stopping.wait(0.5):
                exited = [process for process in processes if process.poll() is not None]
                if exited:
                    print(f"a server exited with {exited[0].returncode}; stopping the others", file=sys.stderr)
                    return 1
            return 0
    finally:
        stop(processes)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


DEMO_ESTATE = PROJECT_ROOT / "data" / "demo" / "arrears.csv"


def load_demo_estate_once(database_url: str) -> None:
    """On the first run (no owners yet) load the demo estate so there is someone to talk about."""
    from sqlalchemy import func, select

    from bot.db.models import Owner
    from bot.db.session import session_scope
    from bot.owners.importer import import_arrears as load

    with session_scope(database_url) as session:
        if session.execute(select(func.count()).select_from(Owner)).scalar_one() == 0:
            report = load(session, DEMO_ESTATE)
            print(f"Loaded the demo estate: {report.created} owners from {DEMO_ESTATE.name}")


def stop(processes: Sequence[subprocess.Popen], grace: float = STOP_GRACE_SECONDS) -> None:
    """Send SIGTERM to every process still running, then SIGKILL the ones still there after ``grace`` s.

    Args:
        processes: The processes to stop.
        grace: How long they get to shut down cleanly, together.
    """
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            print(f"process {process.pid} did not stop within {grace:g} s; killing it", file=sys.stderr)
            process.kill()
            process.wait()


def import_arrears(path: Path, url: Optional[str] = None, as_of: Optional[str] = None) -> int:
    """Migrate, then load the arrears list in one transaction; print what loaded and what did not.

    ``as_of`` (ISO date or time, the estate's zone unless it says otherwise; default now) is when the list
    stated the arrears: payments from then on reduce them (bot/owners/arrears.py). With the default, payments
    made between the company's export and this import are not subtracted; a future ``as_of`` is refused.
    """
    from bot import clock
    from bot.db import migrate
    from bot.db.session import session_scope
    from bot.owners.importer import AsOfError
    from bot.owners.importer import import_arrears as load
    from bot.owners.payments_import import parse_paid_at
    from bot.owners.spreadsheet import ImportFileError

    stated_at = parse_paid_at(as_of) if as_of else None
    if as_of and stated_at is None:
        print(f"error: --as-of {as_of!r} is not a date or time", file=sys.stderr)
        return 2
    migrate.upgrade(url)
    try:
        with session_scope(url) as session:
            report = load(session, path, as_of=stated_at)
    except ImportFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except AsOfError as error:
        print(f"error: --as-of: {error}", file=sys.stderr)
        return 2
    print(f"{path.name}: {report.created} created, {report.updated} updated, {len(report.errors)} rejected")
    if report.retired or report.phone_changed:
        # The list is the roster (bot/owners/ownership.py): listed with another name, the former owner is retired.
        print(f"owners: {report.retired} former owners retired, {report.phone_changed} phone numbers changed")
    if report.as_of is not None:
        print(f"as of {report.as_of.astimezone(clock.zone()).isoformat()} (payments from then on reduce the arrears)")
    for line, reason in report.errors:
        print(f"  line {line}: {reason}")
    return 0 if not report.errors else 1


def import_payments(path: Path, url: Optional[str] = None) -> int:
    """Migrate, then load the payment export in one transaction; print the summary and every refused row.

    Returns:
        0 when every row loaded or was already stored; 1 when a row was bad or conflicted with a stored
        payment (the good rows are loaded); 2 when the file cannot be read (nothing is written).
    """
    from bot.db import migrate
    from bot.db.session import session_scope
    from bot.owners.payments_import import import_payments as load
    from bot.owners.spreadsheet import ImportFileError

    migrate.upgrade(url)
    try:
        with session_scope(url) as session:
            report = load(session, path, actor=_cli_actor())
    except ImportFileError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(
        f"{path.name}: {len(report.loaded)} loaded, {len(report.skipped)} already known, "
        f"{len(report.conflicts)} conflicting, {len(report.errors)} rejected; "
        f"{len(report.promises_changed)} promises changed"
    )
    for line, reason in sorted(report.errors + report.conflicts):
        print(f"  line {line}: {reason}")
    return 0 if report.clean else 1


def nlu_export(out: Optional[Path], url: Optional[str] = None) -> int:
    """Write the NLU inbox's decided corrections as a training-data file under data/nlu/."""
    from bot import clock
    from bot.db import migrate
    from bot.db.session import session_scope
    from bot.services import nlu_inbox

    training_dir = PROJECT_ROOT / "data" / "nlu"
    path = out or training_dir / f"corrections_{clock.today():%Y%m%d}.yml"
    if path.exists():
        print(f"error: {path} exists; review and rename it first, or pass --out", file=sys.stderr)
        return 2
    migrate.upgrade(url)
    with session_scope(url) as session:
        written = nlu_inbox.export(session, path=path, training_dir=training_dir)
    print(f"{written} corrections written to {path}" if written else "no new corrections to export")
    return 0


def playbook_export(out: Optional[Path], url: Optional[str] = None) -> int:
    """Write the staff's playbook edits back to the YAML files (only the edited entries)."""
    from bot.db import migrate
    from bot.db.session import session_scope
    from bot.playbook import PLAYBOOK_DIR
    from bot.services import playbook_edits

    migrate.upgrade(url)
    try:
        with session_scope(url) as session:
            written = playbook_edits.export(session, out_dir=out or PLAYBOOK_DIR, actor=_cli_actor())
    except playbook_edits.EditRefused as error:  # an edit the schema has since outgrown: fix it in the console
        print(f"error: {error}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    print(f"{len(written)} edited entries written" if written else "no playbook edits to export")
    return 0


def _cli_actor() -> str:
    """Who runs this command, for the audit log: ``cli:<login name>``."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name in this environment (a bare container)
        return "cli"


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``bot`` command."""
    # No usage telemetry or crash reports leave the machine (Rasa would try Segment and Sentry).
    os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")
    from bot import holiday_cli, privacy_cli, staff_cli
    from bot.coach import cli as coach_cli

    parser = argparse.ArgumentParser(prog="bot", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train_parser = commands.add_parser("train", help="train the model if its inputs changed")
    train_parser.add_argument("--force", action="store_true", help="train even if up to date")
    run_parser = commands.add_parser("run", help="run the Rasa server and the action server")
    run_parser.add_argument("--port", type=int, default=5005)
    run_parser.add_argument("--actions-port", type=int, default=5055)
    run_parser.add_argument("--model", type=Path, help="serve this trained model (default: train if needed)")
    run_parser.add_argument("--staff-port", type=int, help="the staff console's port (default: STAFF_PORT, 5006)")
    db_parser = commands.add_parser("db", help="database migrations")
    db_parser.add_argument("action", choices=["upgrade", "downgrade"])
    db_parser.add_argument("--url", help="database URL (default: DATABASE_URL or SQLite under var/)")
    import_parser = commands.add_parser("import-arrears", help="load the arrears list (CSV or XLSX)")
    import_parser.add_argument("file", type=Path)
    import_parser.add_argument("--url", help="database URL (default: DATABASE_URL or SQLite under var/)")
    import_parser.add_argument(
        "--as-of",
        help="when the company's export stated the arrears (default: now, so payments between the export and "
        "the import are not subtracted; not in the future); payments from then on reduce them",
    )
    payments_parser = commands.add_parser("import-payments", help="load the payment export (CSV or XLSX)")
    payments_parser.add_argument("file", type=Path)
    payments_parser.add_argument("--url", help="database URL (default: DATABASE_URL or SQLite under var/)")
    user_parser = commands.add_parser("user", help="staff console accounts: add, list, deactivate, reset-password, ...")
    staff_cli.add_arguments(user_parser)
    holidays_parser = commands.add_parser("holidays", help="public holiday schedules for reminders: load, list")
    holiday_cli.add_arguments(holidays_parser)
    privacy_parser = commands.add_parser("privacy", help="an owner's personal information on request: export, erase")
    privacy_cli.add_arguments(privacy_parser)
    nlu_parser = commands.add_parser("nlu", help="the NLU inbox")
    nlu_commands = nlu_parser.add_subparsers(dest="nlu_command", required=True)
    export_parser = nlu_commands.add_parser("export", help="write staff corrections as training data")
    export_parser.add_argument("--out", type=Path, help="file to write (default: data/nlu/corrections_<date>.yml)")
    export_parser.add_argument("--url", help="database URL (default: DATABASE_URL or SQLite under var/)")
    playbook_parser = commands.add_parser("playbook", help="the playbook the staff edit")
    playbook_commands = playbook_parser.add_subparsers(dest="playbook_command", required=True)
    playbook_export_parser = playbook_commands.add_parser("export", help="write the edits back to the YAML files")
    playbook_export_parser.add_argument("--out", type=Path, help="directory (default: data/playbook/)")
    playbook_export_parser.add_argument("--url", help="database URL (default: DATABASE_URL or SQLite under var/)")
    coach_parser = commands.add_parser("coach", help="coach a collector: what the owner means and what to say")
    coach_cli.add_arguments(coach_parser)
    report = commands.add_parser("nlu-report", help="score the model on the held-out NLU test set")
    report.add_argument("--floor", type=float, default=0.93, help="minimum accuracy (fails below)")
    args = parser.parse_args(argv)

    if args.command == "train":
        train(force=args.force)
        return 0
    if args.command == "run":
        return run(args.port, args.actions_port, model=args.model, staff_port=args.staff_port)
    if args.command == "db":
        from bot.db import migrate

        (migrate.upgrade if args.action == "upgrade" else migrate.downgrade)(args.url)
        return 0
    if args.command == "import-arrears":
        return import_arrears(args.file, args.url, args.as_of)
    if args.command == "import-payments":
        return import_payments(args.file, args.url)
    if args.command == "user":
        return staff_cli.run(args, actor=_cli_actor())
    if args.command == "holidays":
        return holiday_cli.run(args, actor=_cli_actor())
    if args.command == "privacy":
        return privacy_cli.run(args, actor=_cli_actor())
    if args.command == "nlu":
        return nlu_export(args.out, args.url)
    if args.command == "playbook":
        return playbook_export(args.out, args.url)
    if args.command == "coach":
        from bot.rasa.agent import RasaParser

        return coach_cli.run(
            coach_cli.notes_of(args.notes), parser_factory=RasaParser, as_json=args.json, model=args.model, url=args.url
        )
    if args.command == "nlu-report":
        from bot import nlu_report

        summary = nlu_report.evaluate(train())
        print(summary.markdown)
        return 0 if summary.accuracy >= args.floor else 1
    return 2


if __name__ == "__main__":
    sys.exit(main())
