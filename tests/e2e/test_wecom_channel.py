"""The WeCom (企业微信) channel in a real staff console process (``python -m apps.staff``, started by
``bot run``'s launcher) with the trained model, talking to the fake WeCom API over HTTP: the URL check, a
collector's question acknowledged within WeCom's five seconds and answered by the coach through
message/send, a replay answered once, a forged callback refused.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Iterator, List, Tuple

import pytest
import requests
from sqlalchemy import select

from bot.cli import ServerPlan, start_staff_app, stop
from bot.db import migrate
from bot.db.session import session_scope
from bot.db.wecom_models import WeComCallback, WeComCallbackStatus
from bot.owners import importer
from bot.services import staff_users
from tests.conftest import free_port, wait_for
from tests.db_fixtures import DEMO_ESTATE_FILE
from tests.fakes.wecom_api import TEST_AGENT_ID, FakeWeComAPI, wecom_test_env
from tests.fakes.wecom_client import SignedRequest, WeComClient

pytestmark = [pytest.mark.e2e]

WECOM_ANSWER_WITHIN_SECONDS = 5.0
WANG = "WangXiaoMing"  # the collector's WeCom UserID, bound to the console account ``wang``


@pytest.fixture
def fake() -> Iterator[FakeWeComAPI]:
    api = FakeWeComAPI().start()
    yield api
    api.stop()


@pytest.fixture
def staff(tmp_path: Path, trained_model: Path, fake: FakeWeComAPI) -> Iterator[Tuple[str, str]]:
    """The staff console on a free port with the WeCom channel configured; a collector ``wang`` bound to the
    WeCom UserID ``WangXiaoMing``."""
    database_url = f"sqlite:///{tmp_path / 'bot.db'}"
    migrate.upgrade(database_url)
    with session_scope(database_url) as session:
        importer.import_arrears(session, Path(DEMO_ESTATE_FILE))
        staff_users.create_user(
            session,
            username="wang",
            password="Shoufei-2026!",
            role="collector",
            display_name="王小明",
            wecom_user_id=WANG,
            actor="cli:test",
        )
    plan = ServerPlan(
        model=trained_model,
        database_url=database_url,
        workdir=tmp_path,
        token="unused",
        staff_port=free_port(),
        log_dir=tmp_path,
        env={**wecom_test_env(fake.base_url), "COACH_MODEL_PATH": str(trained_model)},
    )
    process = start_staff_app(plan)
    try:
        wait_for(f"{plan.staff_url}/health", process, timeout=60)
        yield f"{plan.staff_url}/wecom/callback", database_url
    finally:
        stop([process])


def post(url: str, request: SignedRequest) -> requests.Response:
    return requests.post(
        url, params=request.params, data=request.body, headers={"Content-Type": "text/xml"}, timeout=10
    )


def stored_callbacks(database_url: str) -> List[Tuple[str, str, WeComCallbackStatus]]:
    with session_scope(database_url) as session:
        rows = session.execute(select(WeComCallback).order_by(WeComCallback.id)).scalars()
        return [(row.dedupe_key, row.user_id, row.status) for row in rows]


def test_a_collector_asks_from_wecom_and_the_coach_answers(
    staff: Tuple[str, str], fake: FakeWeComAPI
) -> None:
    url, database_url = staff
    client = WeComClient()

    verified = requests.get(url, params=client.verification("5927123455817352144"), timeout=10)
    assert verified.status_code == 200 and verified.text == "5927123455817352144"

    question = client.sign(client.text(WANG, "业主说房子一直空着没住人，所以不交物业费", msg_id="9001"))
    started = time.monotonic()
    answer = post(url, question)
    assert answer.status_code == 200 and answer.text == ""
    assert time.monotonic() - started < WECOM_ANSWER_WITHIN_SECONDS  # before the model is even loaded

    [message] = fake.wait_for_messages(WANG, 1, timeout=180)
    assert message.body["touser"] == WANG and message.body["agentid"] == TEST_AGENT_ID
    assert message.body["msgtype"] == "text"
    assert (
        "房子没住" in message.content and "民法典" in message.content and "第九百四十四条" in message.content
    )

    replayed = post(url, question)
    assert replayed.status_code == 200
    forger = WeComClient(token="guessed-token")
    assert post(url, forger.sign(forger.text(WANG, "查 3-2-501"))).status_code == 403

    post(url, client.sign(client.text(WANG, "查 3-2-501", msg_id="9002")))
    first, second = fake.wait_for_messages(WANG, 2, timeout=60)
    assert first.content == message.content and "王建国" in second.content and "138****6688" in second.content
    assert len(fake.messages_for(WANG)) == 2  # the replay was answered once, the forgery never
    # The row is finished right after message/send answers: give the worker thread a moment.
    deadline = time.monotonic() + 10
    while True:
        stored = stored_callbacks(database_url)
        if (
            all(status != WeComCallbackStatus.PROCESSING for _, _, status in stored)
            or time.monotonic() > deadline
        ):
            break
        time.sleep(0.1)
    assert stored == [
        ("msg:9001", WANG, WeComCallbackStatus.SENT),
        ("msg:9002", WANG, WeComCallbackStatus.SENT),
    ]
