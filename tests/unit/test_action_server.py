"""The action server is private: loopback by default, and nothing without the shared token.

The server runs as a real process (``bot run``'s launcher, no Rasa and no model needed) on a database with
the demo estate; the requests are what an attacker would send, a hand-written tracker that claims to be
verified as owner 1 and asks for ``action_tell_arrears``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest
import requests

from bot import cli
from bot.action_server import create_app, token_is_valid
from bot.cli import ServerPlan, start_action_server, stop
from bot.startup import preflight
from tests.conftest import ROOT, demo_database, free_port, wait_for

TOKEN = "unit-test-action-token"
# Owner 1 of data/demo/arrears.csv: what must not leak.
UNIT, AMOUNT = "3栋2单元501", "2,460.00"


def forged_call(action: str = "action_tell_arrears") -> Dict[str, Any]:
    """A tracker written by hand, as an attacker would: verified as owner 1, asking for the arrears."""
    return {
        "next_action": action,
        "sender_id": "attacker",
        "version": "3.6.21",
        "domain": {},
        "tracker": {
            "sender_id": "attacker",
            "slots": {"verified_owner_id": 1},
            "latest_message": {
                "text": "我欠多少物业费",
                "intent": {"name": "ask_arrears", "confidence": 1.0},
                "entities": [],
            },
            "events": [],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
            "latest_input_channel": "rest",
        },
    }


def leaks_owner_data(response: requests.Response) -> bool:
    """Whether the unit or the amount is anywhere in the body (raw or JSON-decoded)."""
    texts = [response.text]
    try:
        texts.append(json.dumps(response.json(), ensure_ascii=False))
    except ValueError:
        pass
    return any(secret in text for text in texts for secret in (UNIT, AMOUNT, "2460"))


@pytest.fixture(scope="module")
def action_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerPlan]:
    work = tmp_path_factory.mktemp("action-server")
    plan = ServerPlan(
        model=Path("unused"),
        database_url=demo_database(work),
        workdir=work,
        token=TOKEN,
        actions_port=free_port(),
        log_dir=work,
    )
    process = start_action_server(plan)
    try:
        wait_for(f"{plan.actions_url}/health", process, timeout=60)
        yield plan
    finally:
        stop([process])


@pytest.mark.parametrize(
    "params",
    [{}, {"token": ""}, {"token": "wrong"}, {"token": TOKEN[:-1]}, {"token": TOKEN + "x"}, {"Token": TOKEN}],
    ids=["no-token", "empty", "wrong", "prefix", "longer", "other-name"],
)
def test_a_forged_tracker_without_the_token_gets_401_and_nothing(action_server: ServerPlan, params: Dict) -> None:
    response = requests.post(f"{action_server.actions_url}/webhook", params=params, json=forged_call(), timeout=10)
    assert response.status_code == 401
    assert not leaks_owner_data(response), response.text


def test_the_token_in_a_header_instead_of_the_query_is_refused(action_server: ServerPlan) -> None:
    response = requests.post(
        f"{action_server.actions_url}/webhook",
        headers={"Authorization": f"Bearer {TOKEN}", "token": TOKEN},
        json=forged_call(),
        timeout=10,
    )
    assert response.status_code == 401
    assert not leaks_owner_data(response)


def test_the_action_list_needs_the_token_too(action_server: ServerPlan) -> None:
    refused = requests.get(f"{action_server.actions_url}/actions", timeout=10)
    assert refused.status_code == 401
    assert "action_tell_arrears" not in refused.text
    listed = requests.get(f"{action_server.actions_url}/actions", params={"token": TOKEN}, timeout=10)
    assert listed.status_code == 200
    assert {"name": "action_tell_arrears"} in listed.json()


def test_with_the_right_token_the_same_call_works(action_server: ServerPlan) -> None:
    # What Rasa sends (rasa.utils.endpoints.EndpointConfig: the token as the query parameter "token").
    response = requests.post(
        f"{action_server.actions_url}/webhook", params={"token": TOKEN}, json=forged_call(), timeout=30
    )
    assert response.status_code == 200, response.text
    assert leaks_owner_data(response)  # the check above is not vacuous: this is what the token protects


def test_health_is_open_and_says_nothing(action_server: ServerPlan) -> None:
    response = requests.get(f"{action_server.actions_url}/health", timeout=10)
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def non_loopback_addresses() -> List[str]:
    """This machine's addresses other than loopback (``hostname -I``, then the default route's source)."""
    found: List[str] = []
    try:
        found += subprocess.run(["hostname", "-I"], capture_output=True, text=True, timeout=5).stdout.split()
    except (OSError, subprocess.SubprocessError):
        pass
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent; this only picks the outgoing address
            found.append(probe.getsockname()[0])
        except OSError:
            pass
    addresses = []
    for text in found:
        try:
            address = ipaddress.ip_address(text.split("%")[0])
        except ValueError:
            continue
        if not (address.is_loopback or address.is_unspecified or address.is_link_local):
            addresses.append(str(address))
    return sorted(set(addresses))


def connects(address: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(3)
        return sock.connect_ex((address, port)) == 0


def test_the_action_server_is_not_reachable_on_other_addresses(action_server: ServerPlan) -> None:
    assert connects("127.0.0.1", action_server.actions_port)  # it is up: the next assertion means something
    addresses = non_loopback_addresses()
    if not addresses:
        pytest.skip("this machine has no non-loopback address")
    reachable = [address for address in addresses if connects(address, action_server.actions_port)]
    assert reachable == [], f"action server port {action_server.actions_port} is open on {reachable}"


def test_the_token_check_is_exact() -> None:
    assert token_is_valid(TOKEN, TOKEN)
    assert not token_is_valid(None, TOKEN)
    assert not token_is_valid("", TOKEN)
    assert not token_is_valid("", "")
    assert not token_is_valid(TOKEN.upper(), TOKEN)
    assert not token_is_valid("令牌", TOKEN)


def test_there_is_no_open_action_server_app() -> None:
    with pytest.raises(ValueError):
        create_app("")


def run_module(module: str, *args: str, env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_action_server_refuses_to_start_without_a_token(tmp_path: Path) -> None:
    port = free_port()
    result = run_module(
        "bot.action_server",
        "--port",
        str(port),
        env={"ACTION_SERVER_TOKEN": "", "DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}"},
    )
    assert result.returncode != 0
    assert "ACTION_SERVER_TOKEN" in result.stderr
    assert not connects("127.0.0.1", port)


# --- pre-flight: forbidden owner wording stops everything before it starts ---------------------------------


@pytest.fixture
def project_with_forbidden_wording(tmp_path: Path) -> Path:
    """A copy of the wording sources where one data/wording.yml sentence threatens to cut the water."""
    shutil.copy(ROOT / "domain.yml", tmp_path / "domain.yml")
    shutil.copytree(ROOT / "data" / "playbook", tmp_path / "data" / "playbook")
    wording = (ROOT / "data" / "wording.yml").read_text(encoding="utf-8")
    wording += '\nforbidden_test:\n  threat: "再不交就停水了。"\n'
    (tmp_path / "data" / "wording.yml").write_text(wording, encoding="utf-8")
    return tmp_path


def test_preflight_passes_the_project_wording(capsys: pytest.CaptureFixture) -> None:
    assert preflight() is True
    assert capsys.readouterr().err == ""


def test_preflight_names_file_and_text_of_forbidden_wording(
    project_with_forbidden_wording: Path, capsys: pytest.CaptureFixture
) -> None:
    assert preflight(project_with_forbidden_wording) is False
    error = capsys.readouterr().err
    assert "data/wording.yml:forbidden_test.threat" in error
    assert "停水" in error and "再不交就停水了。" in error


def test_bot_run_and_the_action_server_start_nothing_on_forbidden_wording(
    project_with_forbidden_wording: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    from bot import action_server, startup

    def no_process(*args: object, **kwargs: object) -> None:
        raise AssertionError("a process was started despite forbidden wording")

    monkeypatch.setattr(startup, "PROJECT_ROOT", project_with_forbidden_wording)  # what preflight checks
    monkeypatch.setattr(cli.subprocess, "Popen", no_process)
    monkeypatch.setattr(cli, "train", no_process)
    monkeypatch.setattr(action_server, "serve", no_process)
    monkeypatch.setenv("ACTION_SERVER_TOKEN", TOKEN)

    assert cli.main(["run", "--port", str(free_port()), "--actions-port", str(free_port())]) != 0
    assert "停水" in capsys.readouterr().err
    assert action_server.main(["--port", str(free_port())]) != 0
    assert "停水" in capsys.readouterr().err


def test_a_server_started_by_the_launcher_exits_when_its_parent_dies(tmp_path: Path) -> None:
    """A ``bot run`` killed with SIGKILL (no chance to clean up) leaves no action server behind."""
    port = free_port()
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from bot.cli import ServerPlan, start_action_server\n"
        f"plan = ServerPlan(model=Path('unused'), database_url={demo_database(tmp_path)!r}, workdir=Path({str(tmp_path)!r}),"
        f" token='t', actions_port={port}, log_dir=Path({str(tmp_path)!r}))\n"
        "print(start_action_server(plan).pid, flush=True)\n"
        "sys.stdin.readline()\n"  # live until the test closes stdin... or kills us
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
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
        while process_is_running(server_pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not process_is_running(server_pid)
        assert not connects("127.0.0.1", port)
    finally:
        if process_is_running(server_pid):
            os.kill(server_pid, signal.SIGKILL)


def process_is_running(pid: int) -> bool:
    """Whether ``pid`` is alive (a zombie does not count)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state not in ("Z", "X")


# --- the Rasa side: what the owner gets when an action's answer is lost (bot/rasa/runtime.py) ---------------


@pytest.fixture
def rasa_with_fault_handling(monkeypatch: pytest.MonkeyPatch) -> None:
    """Rasa's RemoteAction and MessageProcessor with bot.rasa.runtime's handling, for this test only."""
    from rasa.core.actions.action import RemoteAction
    from rasa.core.processor import MessageProcessor

    from bot.rasa import runtime as rasa_runtime

    monkeypatch.setattr(RemoteAction, "run", rasa_runtime._with_deadline(RemoteAction.run))
    monkeypatch.setattr(
        MessageProcessor, "_run_action", rasa_runtime._with_polite_failure(MessageProcessor._run_action)
    )


def run_one_action(action: Any) -> Dict[str, Any]:
    """Rasa's own ``MessageProcessor._run_action`` on a fresh tracker; what the owner got and what was logged."""
    from rasa.core.channels.channel import CollectingOutputChannel
    from rasa.core.policies.policy import PolicyPrediction
    from rasa.core.processor import MessageProcessor
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

    domain = Domain.from_dict({"actions": [action.name()]})
    processor = MessageProcessor.__new__(MessageProcessor)  # only the parts _run_action uses
    processor.domain = domain
    tracker = DialogueStateTracker.from_events("owner-1", [], slots=domain.slots)
    channel = CollectingOutputChannel()
    prediction = PolicyPrediction.for_action_name(domain, action.name())
    started = time.monotonic()
    predict_more = asyncio.run(processor._run_action(action, tracker, channel, None, prediction))
    return {
        "texts": [message.get("text") for message in channel.messages],
        "events": [event.type_name for event in tracker.events],
        "followup": tracker.followup_action,
        "predict_more": predict_more,
        "seconds": time.monotonic() - started,
    }


def remote_action(url: str) -> Any:
    from rasa.core.actions.action import RemoteAction
    from rasa.utils.endpoints import EndpointConfig

    return RemoteAction("action_tell_arrears", EndpointConfig(url=url, token=TOKEN))


def test_an_action_server_refusing_connections_gets_the_owner_a_polite_reply(
    rasa_with_fault_handling: None, caplog: pytest.LogCaptureFixture
) -> None:
    from bot.wording import text

    outcome = run_one_action(remote_action(f"http://127.0.0.1:{free_port()}/webhook"))
    assert outcome["texts"] == [text("service.actions_unavailable")]
    assert outcome["events"] == ["action", "bot", "followup"]  # said, then back to listening
    assert outcome["followup"] == "action_listen" and outcome["predict_more"] is True
    assert outcome["seconds"] < 2
    assert any("action_tell_arrears" in record.getMessage() and "owner-1" in record.getMessage() for record in caplog.records)


def test_a_hung_action_server_is_given_up_on_after_the_deadline(
    rasa_with_fault_handling: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.rasa import runtime as rasa_runtime
    from bot.wording import text

    monkeypatch.setattr(rasa_runtime, "ACTION_CALL_TIMEOUT_SECONDS", 0.5)
    with socket.socket() as listener:  # accepts connections (the kernel does) and never answers
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        outcome = run_one_action(remote_action(f"http://127.0.0.1:{listener.getsockname()[1]}/webhook"))
    assert outcome["texts"] == [text("service.actions_unavailable")]
    assert 0.4 < outcome["seconds"] < 2


def test_a_form_rejecting_its_execution_is_not_a_fault(rasa_with_fault_handling: None) -> None:
    from rasa.core.actions.action import ActionExecutionRejection

    class RejectingAction:
        def name(self) -> str:
            return "validate_promise_form"

        async def run(self, *args: Any) -> List[Any]:
            raise ActionExecutionRejection("validate_promise_form")

    outcome = run_one_action(RejectingAction())
    assert outcome["texts"] == []
    assert outcome["events"] == ["action_execution_rejected"]
