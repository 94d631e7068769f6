"""Shared fixtures: the trained model (trained once per run, reused) and live servers."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, List

import pytest
import requests

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")  # no telemetry from test runs either
pytest_plugins = ["tests.db_fixtures"]


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The project model; trains it only when its inputs changed since the last training.

    ``TEST_MODEL_PATH`` names an already trained model instead (while the training data is being edited).
    """
    from bot.cli import train

    override = os.environ.get("TEST_MODEL_PATH")
    return Path(override) if override else train()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {process.returncode}")
        try:
            if requests.get(url, timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(1)
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

    def say(self, sender: str, text: str, **metadata: str) -> List[str]:
        response = requests.post(
            f"{self.rasa_url}/webhooks/rest/webhook",
            json={"sender": sender, "message": text, "metadata": metadata},
            headers={"Authorization": f"Bearer {REST_TOKEN}"},
            timeout=60,
        )
        response.raise_for_status()
        return [message.get("text", "") for message in response.json()]


@pytest.fixture(scope="session")
def servers(trained_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """The real action server and Rasa server (REST channel) on free ports."""
    from bot.cli import DEMO_ESTATE
    from bot.db import migrate
    from bot.db.session import session_scope
    from bot.rasa_endpoints import write_endpoints
    from bot.records.importer import import_arrears

    work = tmp_path_factory.mktemp("servers")
    rasa_port, actions_port = free_port(), free_port()
    database_url = f"sqlite:///{work / 'bot.db'}"
    migrate.upgrade(database_url)
    with session_scope(database_url) as session:
        import_arrears(session, DEMO_ESTATE)
    endpoints = write_endpoints(
        work / "endpoints.yml",
        database_url=database_url,
        action_server_url=f"http://127.0.0.1:{actions_port}/webhook",
    )
    from tests.fakes.wechat_api import wechat_test_env  # WeChat channel on, its API on a local fake

    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "DATABASE_URL": database_url,
        "REST_CHANNEL_TOKEN": REST_TOKEN,
        **wechat_test_env(),
    }
    python = [sys.executable, "-m", "rasa"]
    logs = work
    processes = [
        subprocess.Popen(
            [*python, "run", "actions", "--port", str(actions_port), "--actions", "actions"],
            cwd=ROOT,
            env=env,
            stdout=(work / "actions.log").open("w"),
            stderr=subprocess.STDOUT,
        ),
        subprocess.Popen(
            [
                *python,
                "run",
                "--model",
                str(trained_model),
                "--port",
                str(rasa_port),
                "--endpoints",
                str(endpoints),
                "--credentials",
                str(ROOT / "credentials.yml"),
                "--enable-api",
            ],
            cwd=ROOT,
            env=env,
            stdout=(work / "rasa.log").open("w"),
            stderr=subprocess.STDOUT,
        ),
    ]
    try:
        wait_for(f"http://127.0.0.1:{actions_port}/health", processes[0])
        wait_for(f"http://127.0.0.1:{rasa_port}/status", processes[1])
        yield Servers(f"http://127.0.0.1:{rasa_port}", f"http://127.0.0.1:{actions_port}", logs, database_url)
    finally:
        from bot.cli import stop

        stop(processes)
