"""Shared fixtures: the trained model (trained once per run, reused) and live servers."""

from __future__ import annotations

import os
import random
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Set, Tuple

import pytest
import requests

from bot.cli import DEMO_ESTATE, ServerPlan, start_servers, stop

ROOT = Path(__file__).resolve().parents[1]

# `make unit-next-year` runs the model tests with the machine's clock moved ahead for Python alone
# (TensorFlow's own waits hang under libfaketime, which moves everything else in that run): before the anchor below.
MACHINE_AHEAD_DAYS = os.environ.get("TEST_MACHINE_CLOCK_AHEAD_DAYS")
if MACHINE_AHEAD_DAYS:
    import datetime as _dt

    import time_machine

    _ahead = _dt.datetime.now(_dt.timezone.utc) + _dt.timedelta(days=int(MACHINE_AHEAD_DAYS))
    time_machine.travel(_ahead, tick=True).start()

# The suite's clock: every test, and every server an end-to-end test starts (they inherit the environment), reads
# the estate's clock (bot/clock.py) as this Wednesday morning ticking on from the moment the run started, whatever the
# machine's calendar says. Set before anything reads the settings; a test that needs another moment freezes it.
TEST_CLOCK_START = "2026-11-25T10:00:00+08:00"
os.environ["CLOCK_START"] = TEST_CLOCK_START
os.environ["CLOCK_ANCHOR"] = repr(time.time())

os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")  # no telemetry from test runs either
pytest_plugins = ["tests.db_fixtures"]


def pytest_collection_modifyitems(items: List[pytest.Item]) -> None:
    """Mark ``model`` every test that needs the trained model, whether or not its module says so.

    ``make unit-next-year`` runs those apart (TensorFlow hangs under libfaketime), so a test that loads the model
    through a fixture must carry the marker.
    """
    for item in items:
        if "trained_model" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("model"):
            item.add_marker(pytest.mark.model)


@pytest.fixture(autouse=True)
def quick_password_hashing(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Staff passwords hashed with argon2id at its cheapest inside the test process (not in servers it starts).

    The product's parameters (64 MiB, 3 passes) cost a fifth of a second per hash or check, which the staff
    console's tests paid hundreds of times. Hashes keep their parameters, so the code paths are the product's;
    tests marked ``argon2_defaults`` (what each kind of login costs) keep the real hasher.
    """
    if request.node.get_closest_marker("argon2_defaults"):
        return
    from argon2 import PasswordHasher

    from bot.services import staff_users

    monkeypatch.setattr(staff_users, "_hasher", PasswordHasher(time_cost=1, memory_cost=64, parallelism=1))
    staff_users._dummy_hash.cache_clear()
    request.addfinalizer(staff_users._dummy_hash.cache_clear)


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The project model; trains it only when its inputs changed since the last training.

    ``TEST_MODEL_PATH`` names an already trained model instead (while the training data is being edited).
    """
    from bot.cli import train

    override = os.environ.get("TEST_MODEL_PATH")
    return Path(override) if override else train()


_HANDED_OUT_PORTS: Set[int] = set()
_PORT_PICKER = random.SystemRandom()  # not the random module's state, which a test may seed


def _ephemeral_range() -> Tuple[int, int]:
    """The kernel's range for outgoing connections' local ports (Linux; the usual default elsewhere)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port() -> int:
    """A TCP port nothing listens on right now (on loopback), outside the kernel's ephemeral range.

    A port the kernel hands out for ``bind(0)`` comes from the same range as the local ports of outgoing
    connections, so a test's own HTTP polls or database connections could take it before the server it was
    picked for binds it ("address already in use"). Ports below the range are never taken that way; a port is
    handed out once per process, and the pick is random so that parallel workers rarely meet.
    """
    low, _high = _ephemeral_range()
    top = max(low, 12000)
    for _ in range(200):
        port = _PORT_PICKER.randrange(10000, top)
        if port in _HANDED_OUT_PORTS:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT_PORTS.add(port)
        return port
    raise RuntimeError("no free TCP port below the ephemeral range")


def wait_for(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    """Poll ``url`` until it answers 2xx; fail at once if ``process`` exits, or after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{url} did not come up in {timeout}s")


# The REST channel is the trusted integration: tests call it with its token, which also lets them name the
# message date in metadata.
REST_TOKEN = "test-rest-channel-token"


@dataclass
class Servers:
    rasa_url: str
    actions_url: str
    logs: Path
    database_url: str
    actions_token: str = ""  # what Rasa must send the action server (``action_server_token`` of write_endpoints)
    rasa_pid: int = 0  # the Rasa server's process id; 0: found from the process listening on rasa_url's port
    staff_url: str = ""  # the staff console started beside them (on the same database)

    def say(self, sender: str, text: str, **metadata: str) -> List[str]:
        response = requests.post(
            f"{self.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text, "metadata": metadata},
            headers={"Authorization": f"Bearer {REST_TOKEN}"},
            timeout=60,
        )
        response.raise_for_status()
        return [message.get("text", "") for message in response.json()]

    def rest(
        self, body: object = None, *, raw: bytes | None = None, token: bool = True, timeout: float = 60
    ) -> requests.Response:
        """POST ``body`` as JSON (or ``raw`` bytes as they are) to the REST webhook; the response, unchecked."""
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {REST_TOKEN}"
        data = raw if raw is not None else self.json_bytes(body)
        return requests.post(f"{self.rasa_url}/webhooks/rest/webhook", data=data, headers=headers, timeout=timeout)

    def rasa_process_id(self) -> int:
        """The Rasa server's pid: ``rasa_pid``, or the process listening on the Rasa port (Linux /proc)."""
        if self.rasa_pid:
            return self.rasa_pid
        from urllib.parse import urlparse

        port = urlparse(self.rasa_url).port
        inodes = set()
        for table in ("/proc/net/tcp", "/proc/net/tcp6"):
            try:
                rows = Path(table).read_text().splitlines()[1:]
            except OSError:
                continue
            for row in rows:
                fields = row.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(f"socket:[{fields[9]}]")
        for fd_dir in Path("/proc").glob("[0-9]*/fd"):
            try:
                if any(os.readlink(fd) in inodes for fd in fd_dir.iterdir()):
                    return int(fd_dir.parent.name)
            except OSError:  # a process that ended or is not ours to read
                continue
        raise LookupError(f"no process listens on port {port}")

    def rasa_rss_kb(self) -> int:
        """The Rasa server's resident memory (VmRSS) in kB."""
        status = Path(f"/proc/{self.rasa_process_id()}/status").read_text()
        return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS:")))

    def record_counts(self) -> Dict[str, int]:
        """Rows in each table of owner records, escalations and identity attempts, by table name."""
        from sqlalchemy import func, select

        from bot.db import models
        from bot.db.session import session_scope

        tables = [
            models.RepairOrder, models.Complaint, models.BillCheckRequest, models.PaymentPromise,
            models.InstalmentRequest, models.Escalation,
        ]  # fmt: skip
        with session_scope(self.database_url) as session:
            return {
                table.__tablename__: session.execute(select(func.count()).select_from(table)).scalar_one()
                for table in tables
            }

    @staticmethod
    def json_bytes(body: object) -> bytes:
        """``body`` as JSON (ASCII escapes, so lone surrogates go over the wire as a client may send them)."""
        import json

        return json.dumps(body).encode("ascii")


def server_env() -> Dict[str, str]:
    """Environment for test servers: the REST token, the WeChat channel on its local fake API."""
    from tests.fakes.wechat_api import wechat_test_env

    return {"REST_CHANNEL_TOKEN": REST_TOKEN, **wechat_test_env()}


def server_plan(model: Path, work: Path, database_url: str) -> ServerPlan:
    """How the tests start the servers: as ``bot run`` does, on free ports, with a fresh token, logs in ``work``."""
    return ServerPlan(
        model=model,
        database_url=database_url,
        workdir=work,
        token=secrets.token_urlsafe(32),
        rasa_port=free_port(),
        actions_port=free_port(),
        staff_port=free_port(),
        env=server_env(),
        enable_api=True,
        log_dir=work,
    )


def start_and_wait(plan: ServerPlan, timeout: float = 180) -> List[subprocess.Popen]:
    """Start the servers with ``bot run``'s launcher and wait until each answers (stop all on failure).

    The processes: action server, Rasa server, staff console.
    """
    processes = start_servers(plan)
    try:
        wait_for(f"{plan.actions_url}/health", processes[0], timeout)
        wait_for(f"{plan.rasa_url}/status", processes[1], timeout)
        wait_for(f"{plan.staff_url}/health", processes[2], timeout)
    except BaseException:
        stop(processes)
        raise
    return processes


def demo_database(work: Path) -> str:
    """A migrated SQLite database under ``work`` with the demo estate loaded; its URL."""
    from bot.db import migrate
    from bot.db.session import session_scope
    from bot.owners.importer import import_arrears

    database_url = f"sqlite:///{work / 'bot.db'}"
    migrate.upgrade(database_url)
    with session_scope(database_url) as session:
        import_arrears(session, DEMO_ESTATE)
    return database_url


@pytest.fixture(scope="session")
def servers(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """The real action server and Rasa server (REST channel) on free ports, started as ``bot run`` does."""
    work = tmp_path_factory.mktemp("servers")
    plan = server_plan(trained_model, work, demo_database(work))
    processes = start_and_wait(plan)
    try:
        yield Servers(
            plan.rasa_url, plan.actions_url, work, plan.database_url, plan.token, processes[1].pid, plan.staff_url
        )
    finally:
        stop(processes)
