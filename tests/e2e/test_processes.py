"""The processes around the conversation: stopping ``bot run`` (Rasa, the action server, the staff console)
by signal, the action server going down, and every process restarted in the middle of a form.

Each test starts its own servers (``bot run`` itself, or ``bot run``'s launcher) on a fresh SQLite database,
so killing and restarting them does not disturb the shared ``servers`` fixture.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path
from typing import Callable, Iterator, List

import pytest
import requests
import yaml
from sqlalchemy import select

from bot.cli import ServerPlan, stop
from bot.db import models
from bot.db.session import session_scope
from bot.rasa.runtime import ACTION_CALL_TIMEOUT_SECONDS
from bot.services.promises import confirmation_question, format_date
from bot.wording import text
from tests.conftest import (
    ROOT,
    Servers,
    demo_database,
    free_port,
    server_env,
    server_plan,
    start_and_wait,
    wait_for,
)

pytestmark = [pytest.mark.e2e, pytest.mark.model]
TODAY = "2026-11-23"  # a Monday: "下周五" is 12月4日
STOP_DEADLINE_SECONDS = 10.0
POLITE_REPLY_DEADLINE_SECONDS = 2.0


def children_of(pid: int) -> List[int]:
    """The direct children of ``pid`` (Linux /proc)."""
    children: List[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += [int(child) for child in (task / "children").read_text().split()]
    return children


def is_running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, already dead but not reaped, does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def port_is_free(port: int) -> bool:
    """Whether a server could listen on ``port`` now (every address; TIME_WAIT leftovers do not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("", port))
            sock.listen()
        except OSError:
            return False
        return True


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``condition`` until it holds; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout} s")
        time.sleep(0.05)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_to_bot_run_alone_stops_every_process_it_started(
    signum: signal.Signals, trained_model: Path, tmp_path: Path
) -> None:
    rasa_port, actions_port, staff_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
        **server_env(),
        "STAFF_PORT": str(staff_port),  # the setting bot run reads for the staff console
    }
    env.pop("ACTION_SERVER_TOKEN", None)  # local mode without a token: bot run makes one up for this run
    env.pop("STAFF_HOST", None)  # the default: loopback
    command = [sys.executable, "-m", "bot.cli", "run", "--port", str(rasa_port), "--actions-port", str(actions_port)]
    with (tmp_path / "bot-run.log").open("w") as log:
        bot_run = subprocess.Popen(
            [*command, "--model", str(trained_model)], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT
        )
    children: List[int] = []
    try:
        wait_for(f"http://127.0.0.1:{actions_port}/health", bot_run)
        wait_for(f"http://127.0.0.1:{rasa_port}/", bot_run)  # bot run serves no HTTP API (no /status)
        wait_for(f"http://127.0.0.1:{staff_port}/health", bot_run)
        children = children_of(bot_run.pid)
        assert len(children) == 4 and all(is_running(pid) for pid in children), children
        # Rasa, the action server, the staff console and the reminder worker, one process each.
        commands = " ".join(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode() for pid in children)
        assert "apps.staff" in commands and "apps.worker" in commands, commands
        # The staff console is up, behind its login page.
        console = requests.get(f"http://127.0.0.1:{staff_port}/", allow_redirects=False, timeout=10)
        assert console.status_code == 303 and console.headers["location"].startswith("/login")
        # The action server bot run started is private even with no token configured.
        assert requests.get(f"http://127.0.0.1:{actions_port}/actions", timeout=10).status_code == 401

        sent = time.monotonic()
        os.kill(bot_run.pid, signum)  # that pid only, as systemd or docker would
        bot_run.wait(timeout=STOP_DEADLINE_SECONDS)
        assert time.monotonic() - sent < STOP_DEADLINE_SECONDS
        assert bot_run.returncode == 0, (tmp_path / "bot-run.log").read_text()[-3000:]
        assert [pid for pid in children if is_running(pid)] == []
        assert port_is_free(rasa_port) and port_is_free(actions_port) and port_is_free(staff_port)
    finally:
        if bot_run.poll() is None:
            bot_run.kill()
            bot_run.wait()
        for pid in children:  # only when the test failed: do not leave its servers behind
            if is_running(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.fixture
def own_servers(trained_model: Path, tmp_path: Path) -> Iterator[ServerPlan]:
    """A plan for servers of this test alone, on a fresh database with the demo estate."""
    yield server_plan(trained_model, tmp_path, demo_database(tmp_path))


def client(plan: ServerPlan) -> Servers:
    return Servers(plan.rasa_url, plan.actions_url, plan.workdir, plan.database_url, plan.token)


def verify_owner_501(say: Callable[[str], List[str]]) -> None:
    """Identity for 3栋2单元501 (王建国, phone ending 6688 in data/demo/arrears.csv)."""
    assert say("我欠多少物业费"), "no identity question"
    assert say("3栋2单元501"), "no question for the phone tail"
    replies = say("6688")
    assert any("2,460.00" in reply for reply in replies), replies  # verified: the arrears are stated


def test_with_the_action_server_down_the_owner_gets_a_polite_reply_within_2_s(own_servers: ServerPlan) -> None:
    plan = own_servers
    processes = start_and_wait(plan)
    try:
        owner = f"owner-{uuid.uuid4().hex}"
        servers = client(plan)
        say = lambda message: servers.say(owner, message, date=TODAY)  # noqa: E731
        polite = text("service.actions_unavailable")
        assert say("我欠多少物业费") and say("3栋2单元501")  # the identity form is waiting for the phone tail

        processes[0].kill()  # the action server is gone; its port refuses connections
        processes[0].wait()
        started = time.monotonic()
        replies = say("6688")  # needs the action server (identity check)
        elapsed = time.monotonic() - started
        assert replies == [polite]
        assert elapsed < POLITE_REPLY_DEADLINE_SECONDS, f"polite reply took {elapsed:.2f} s"

        # Logged, with the action and the conversation.
        log = plan.workdir / "rasa.log"
        wait_until(lambda: f"failed for conversation {owner}" in log.read_text(errors="replace"), 10, "the log line")
        # The Rasa server is still healthy and still answers, politely, every time.
        assert processes[1].poll() is None
        assert requests.get(f"{plan.rasa_url}/status", timeout=10).status_code == 200
        started = time.monotonic()
        assert say("6688") == [polite]
        assert time.monotonic() - started < POLITE_REPLY_DEADLINE_SECONDS
    finally:
        stop(processes)


def test_a_hung_action_server_gets_the_polite_reply_after_the_call_deadline(own_servers: ServerPlan) -> None:
    plan = own_servers
    processes = start_and_wait(plan)
    try:
        owner = f"owner-{uuid.uuid4().hex}"
        servers = client(plan)
        say = lambda message: servers.say(owner, message, date=TODAY)  # noqa: E731
        assert say("我欠多少物业费") and say("3栋2单元501")
        os.kill(processes[0].pid, signal.SIGSTOP)  # accepts connections (the kernel does), never answers
        try:
            started = time.monotonic()
            replies = say("6688")
            elapsed = time.monotonic() - started
        finally:
            os.kill(processes[0].pid, signal.SIGCONT)
        assert replies == [text("service.actions_unavailable")]
        assert ACTION_CALL_TIMEOUT_SECONDS - 0.5 < elapsed < ACTION_CALL_TIMEOUT_SECONDS + 2
    finally:
        stop(processes)


def test_every_process_restarted_mid_form_the_promise_is_recorded_once(own_servers: ServerPlan) -> None:
    plan = own_servers
    owner = f"owner-{uuid.uuid4().hex}"
    servers = client(plan)
    say = lambda message: servers.say(owner, message, date=TODAY)  # noqa: E731
    due, amount = dt.date(2026, 12, 4), Decimal("2460.00")

    processes = start_and_wait(plan)
    try:
        verify_owner_501(say)
        assert say("下周五交") == [confirmation_question(due, amount, today=dt.date(2026, 11, 23))]
    finally:
        stop(processes)
    assert not any(process.poll() is None for process in processes)
    assert port_is_free(plan.rasa_port) and port_is_free(plan.actions_port) and port_is_free(plan.staff_port)

    processes = start_and_wait(plan)  # same database (records and conversations), fresh processes
    try:
        replies = say("对")
    finally:
        stop(processes)

    domain = yaml.safe_load((ROOT / "domain.yml").read_text(encoding="utf-8"))
    recorded = domain["responses"]["utter_promise_recorded"][0]["text"]
    expected_start = recorded[: recorded.index("{number}")].format(date=format_date(due), amount=f"{amount:,.2f}")
    assert len(replies) == 1 and replies[0].startswith(expected_start), replies
    with session_scope(plan.database_url) as session:
        promises = (
            session.execute(select(models.PaymentPromise).where(models.PaymentPromise.sender_id == owner))
            .scalars()
            .all()
        )
        assert [(promise.due_date, promise.amount) for promise in promises] == [(due, amount)]
        assert promises[0].number in replies[0]
