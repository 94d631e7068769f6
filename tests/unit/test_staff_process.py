"""The staff console as a process and its command line: ``bot user add``, the settings it refuses, and the
address it listens on by default.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, Iterator, List

import pytest
import requests
from sqlalchemy import select

from bot import cli
from bot.db.session import session_scope
from bot.db.staff_models import AuditEntry, StaffRole, StaffUser
from bot.services import staff_users
from bot.settings import Settings
from tests.conftest import ROOT, free_port, wait_for

PASSWORD = "Shoufei-2026!"


def add_user(monkeypatch: pytest.MonkeyPatch, stdin: str, *args: str) -> int:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))  # not a terminal: the password is the first line
    return cli.main(["user", "add", *args])


def users(url: str) -> List[StaffUser]:
    with session_scope(url) as session:
        return list(session.execute(select(StaffUser).order_by(StaffUser.id)).scalars())


def test_bot_user_add_reads_the_password_from_stdin(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code = add_user(monkeypatch, PASSWORD + "\n", "zhao", "--role", "supervisor", "--name", "赵主管", "--url", database_url)
    assert code == 0
    assert "zhao (supervisor, 赵主管)" in capsys.readouterr().out
    [user] = users(database_url)
    assert (user.username, user.role, user.display_name, user.active) == ("zhao", StaffRole.SUPERVISOR, "赵主管", True)
    assert user.password_hash.startswith("$argon2id$")
    assert staff_users.password_matches(user.password_hash, PASSWORD)  # without the line ending
    with session_scope(database_url) as session:
        entry = session.execute(select(AuditEntry)).scalar_one()
        assert entry.actor.startswith("cli") and entry.action == "user_added" and entry.target == "zhao"
        assert entry.detail == {"role": "supervisor", "name": "赵主管"}


@pytest.mark.parametrize(
    "stdin, args, message",
    [
        ("", ["wang", "--role", "collector"], "empty"),
        ("\n", ["wang", "--role", "collector"], "empty"),
        ("wang12345678\n", ["wang", "--role", "collector"], "contains the username"),
        ("short1!\n", ["wang", "--role", "collector"], "shorter than 10"),
        (PASSWORD + "\n", ["Wang Li", "--role", "collector"], "username"),
    ],
)
def test_bot_user_add_refuses_weak_passwords_and_bad_names(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: str, args: List[str], message: str
) -> None:
    assert add_user(monkeypatch, stdin, *args, "--url", database_url) == 2
    assert message in capsys.readouterr().err
    assert users(database_url) == []


def test_bot_user_add_refuses_a_taken_name_and_an_unknown_role(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert add_user(monkeypatch, PASSWORD, "wang", "--role", "collector", "--url", database_url) == 0
    assert add_user(monkeypatch, PASSWORD, "WANG", "--role", "manager", "--url", database_url) == 2
    assert "taken" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exited:
        add_user(monkeypatch, PASSWORD, "li", "--role", "boss", "--url", database_url)
    assert exited.value.code == 2
    assert [(user.username, user.role) for user in users(database_url)] == [("wang", StaffRole.COLLECTOR)]


def test_settings_refuse_a_default_or_empty_staff_secret_outside_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOCK_START")  # the suite's set clock is local only
    others = {"secret_key": "s3cret", "rest_channel_token": "t0ken", "action_server_token": "a-t0ken"}
    with pytest.raises(ValueError, match="STAFF_SECRET_KEY must be set"):
        Settings(_env_file=None, environment="production", **others)
    with pytest.raises(ValueError, match="STAFF_SECRET_KEY must be set"):
        Settings(_env_file=None, environment="staging", staff_secret_key="change-me", **others)
    for empty in ("", "   "):
        with pytest.raises(ValueError, match="STAFF_SECRET_KEY must not be empty"):
            Settings(_env_file=None, environment="production", staff_secret_key=empty, **others)
    assert Settings(_env_file=None, environment="production", staff_secret_key="x9-real", **others)
    local = Settings(_env_file=None)  # local development needs no configuration
    assert local.staff_secret_key.get_secret_value() == "change-me"
    assert (local.staff_host, local.staff_port) == ("127.0.0.1", 5006)


def process_env(database_url: str, **extra: str) -> Dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("STAFF_", "ENVIRONMENT"))}
    return {**env, "PYTHONPATH": str(ROOT), "DATABASE_URL": database_url, **extra}


def test_the_staff_app_refuses_to_start_outside_local_with_the_default_secret(tmp_path: Path) -> None:
    port = free_port()
    env = process_env(
        f"sqlite:///{tmp_path / 'bot.db'}",
        ENVIRONMENT="production",
        SECRET_KEY="s3cret",
        REST_CHANNEL_TOKEN="t0ken",
        ACTION_SERVER_TOKEN="a-t0ken",
    )
    env.pop("CLOCK_START")  # the suite's set clock is local only
    done = subprocess.run(
        [sys.executable, "-m", "apps.staff", "--port", str(port)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "STAFF_SECRET_KEY must be set" in done.stderr
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/health", timeout=2)


def listening_addresses(port: int) -> List[str]:
    """The local addresses of sockets listening on ``port`` (Linux /proc; IPv4 as dotted quads)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            address, hex_port = fields[1].rsplit(":", 1)
            if fields[3] == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                if len(address) == 8:
                    found.append(".".join(str(int(address[i : i + 2], 16)) for i in (6, 4, 2, 0)))
                else:
                    found.append(address)
    return found


@pytest.fixture
def staff_process(tmp_path: Path) -> Iterator[Dict[str, object]]:
    """``python -m apps.staff`` with no host named, on a free port and a migrated database."""
    from bot.db import migrate

    url = f"sqlite:///{tmp_path / 'bot.db'}"
    migrate.upgrade(url)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "apps.staff", "--port", str(port)],
        cwd=ROOT,
        env=process_env(url),
        stdout=(tmp_path / "staff.log").open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        yield {"process": process, "port": port, "log": tmp_path / "staff.log"}
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_the_staff_app_listens_on_loopback_by_default_and_stops_on_sigterm(staff_process: Dict[str, object]) -> None:
    process, port = staff_process["process"], staff_process["port"]
    assert isinstance(process, subprocess.Popen) and isinstance(port, int)
    wait_for(f"http://127.0.0.1:{port}/health", process, timeout=60)
    assert listening_addresses(port) == ["127.0.0.1"]
    assert cli.ServerPlan(model=Path("m"), database_url="", workdir=Path("."), token="t").staff_host == "127.0.0.1"
    page = requests.get(f"http://127.0.0.1:{port}/", allow_redirects=False, timeout=10)
    assert page.status_code == 303 and page.headers["location"] == "/login?next=%2F"

    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    # uvicorn shuts down cleanly, then re-raises the signal it caught (so the exit says "terminated").
    assert process.wait(timeout=10) in (0, -signal.SIGTERM)
    assert time.monotonic() - started < 6
    log = staff_process["log"]
    assert isinstance(log, Path) and "Application shutdown complete" in log.read_text()
    assert listening_addresses(port) == []


def test_the_staff_app_exits_when_the_process_that_started_it_dies(tmp_path: Path) -> None:
    """A ``bot run`` killed with SIGKILL (no chance to clean up) leaves no staff console behind."""
    from bot.db import migrate

    url = f"sqlite:///{tmp_path / 'bot.db'}"
    migrate.upgrade(url)
    port = free_port()
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from bot.cli import ServerPlan, start_staff_app\n"
        f"plan = ServerPlan(model=Path('unused'), database_url={url!r}, workdir=Path({str(tmp_path)!r}),"
        f" token='t', staff_port={port}, log_dir=Path({str(tmp_path)!r}))\n"
        "print(start_staff_app(plan).pid, flush=True)\n"
        "sys.stdin.readline()\n"  # live until the test kills us
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=process_env(url),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert parent.stdout is not None
    server_pid = int(parent.stdout.readline())
    try:
        wait_for(f"http://127.0.0.1:{port}/health", parent, timeout=60)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while is_alive(server_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not is_alive(server_pid)
        assert listening_addresses(port) == []
    finally:
        if is_alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)


def is_alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")
