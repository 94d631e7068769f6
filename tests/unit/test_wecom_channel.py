"""The WeCom (企业微信) channel through the staff console's app (Starlette's TestClient), on SQLite and
PostgreSQL: WeCom's URL verification, a collector's question answered by the real coach through the fake
WeCom API's message/send, forged and stale callbacks refused, retries and replays answered once, strangers
refused, the owner lookup by unit (audited, phone by role), and what each callback leaves in
``wecom_callbacks``.

Callbacks are built by the simulated WeCom client with wechatpy's enterprise crypto. The background send
runs before TestClient returns, so what was sent is known when the request is done.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from apps.staff.app import create_app
from apps.staff.wecom.callback import Responder, WeComChannel, WeComConfig
from apps.staff.wecom.store import WeComStore
from bot import clock, wording
from bot.db import models
from bot.db.session import session_scope
from bot.db.staff_models import AuditEntry, StaffRole, StaffUser
from bot.db.wecom_models import WeComCallback, WeComCallbackStatus
from bot.owners import importer
from bot.services import staff_lifecycle, staff_users
from bot.settings import Settings, get_settings
from tests.db_fixtures import DEMO_ESTATE_FILE
from tests.fakes.wecom_api import TEST_AGENT_ID, FakeWeComAPI, wecom_test_env
from tests.fakes.wecom_client import SignedRequest, WeComClient

URL = "/wecom/callback"
PASSWORD = "Shoufei-2026!"
# Console username -> role, display name and the WeCom UserID a manager bound to it (never the same as the name:
# the channel must answer the bound UserID, not a name that happens to match).
WANG, ZHAO, OLD = "WangXiaoMing", "ZhaoZhuGuan", "LiuYuanGong"
STAFF = {
    "wang": ("collector", "王小明", WANG),
    "zhao": ("supervisor", "赵主管", ZHAO),
    "old": ("collector", "离职员工", OLD),
}
NOT_LIVING_HERE = "业主说房子一直空着没住人，所以不交物业费"


@pytest.fixture(scope="module")
def fake_api() -> Iterator[FakeWeComAPI]:
    api = FakeWeComAPI().start()
    yield api
    api.stop()


@pytest.fixture
def fake(fake_api: FakeWeComAPI) -> FakeWeComAPI:
    fake_api.sent.clear()
    fake_api.rejected.clear()
    fake_api.token_requests = 0
    fake_api.expire_tokens()  # nothing issued for an earlier test's app is any use
    return fake_api


@pytest.fixture
def coach_model(trained_model: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The real coach reads with the project's trained model (loaded once per test process)."""
    monkeypatch.setenv("COACH_MODEL_PATH", str(trained_model))
    get_settings.cache_clear()
    yield trained_model
    get_settings.cache_clear()


@pytest.fixture
def estate(database_url: str) -> str:
    """The demo estate and three staff accounts bound to WeCom UserIDs: a collector, a supervisor and a
    collector who has left."""
    with session_scope(database_url) as session:
        importer.import_arrears(session, Path(DEMO_ESTATE_FILE))
        for username, (role, name, wecom_user_id) in STAFF.items():
            staff_users.create_user(
                session,
                username=username,
                password=PASSWORD,
                role=role,
                display_name=name,
                wecom_user_id=wecom_user_id,
                actor="cli:test",
            )
        session.execute(update(StaffUser).where(StaffUser.username == "old").values(active=False))
        session.execute(AuditEntry.__table__.delete())
    return database_url


def settings_for(fake: FakeWeComAPI, **overrides: Any) -> Settings:
    values: Dict[str, Any] = {key.lower(): value for key, value in wecom_test_env(fake.base_url).items()}
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def http(estate: str, fake: FakeWeComAPI, coach_model: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings_for(fake), database_url=estate)) as client:
        yield client


def post(http: TestClient, request: SignedRequest) -> Any:
    return http.post(URL, params=request.params, content=request.body, headers={"Content-Type": "text/xml"})


def rows(url: str) -> List[WeComCallback]:
    with session_scope(url) as session:
        return list(session.execute(select(WeComCallback).order_by(WeComCallback.id)).scalars())


def audit_rows(url: str) -> List[AuditEntry]:
    with session_scope(url) as session:
        return list(session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars())


# --- URL verification and configuration -----------------------------------------------------------------------


def test_url_verification_answers_the_decrypted_echostr(http: TestClient) -> None:
    answer = http.get(URL, params=WeComClient().verification("6410218813582034543"))
    assert answer.status_code == 200 and answer.text == "6410218813582034543"
    assert answer.headers["content-type"].startswith("text/plain")


def test_url_verification_with_a_forged_signature_or_a_stale_timestamp_is_refused(http: TestClient) -> None:
    forged = WeComClient(token="someone-elses-token").verification("123")
    assert http.get(URL, params=forged).status_code == 403
    stale = WeComClient().verification("123", timestamp=int(clock.utc_now().timestamp()) - 301)
    answer = http.get(URL, params=stale)
    assert answer.status_code == 403 and "123" not in answer.text


def test_an_unconfigured_channel_answers_503(estate: str, fake: FakeWeComAPI) -> None:
    settings = settings_for(fake, wecom_secret=None)
    with TestClient(create_app(settings, database_url=estate)) as client:
        assert client.get(URL, params=WeComClient().verification("1")).status_code == 503
        client_request = WeComClient().sign(WeComClient().text(WANG, NOT_LIVING_HERE))
        assert post(client, client_request).status_code == 503
    assert fake.sent == [] and rows(estate) == []


# --- a collector asks the coach ----------------------------------------------------------------------------------


def test_a_collectors_question_gets_the_coachs_answer_through_message_send(
    http: TestClient, estate: str, fake: FakeWeComAPI
) -> None:
    client = WeComClient()
    answer = post(http, client.sign(client.text(WANG, NOT_LIVING_HERE, msg_id="7001")))

    assert answer.status_code == 200 and answer.text == ""  # acknowledged at once, no passive reply
    [message] = fake.messages_for(WANG)
    assert message.body["touser"] == WANG and message.body["msgtype"] == "text"
    assert message.body["agentid"] == TEST_AGENT_ID
    content = message.content
    assert "房子没住" in content  # the objection's title
    assert "第九百四十四条" in content and "民法典" in content  # its legal basis, with the article
    assert len(content.encode("utf-8")) <= 2048
    [audited] = audit_rows(estate)  # as the coach page audits: which objections, not the note's words
    assert (audited.actor, audited.action, audited.target) == ("wang", "coach_answered", None)
    assert audited.detail == {
        "via": "wecom",
        "status": "objections",
        "intents": ["objection_not_living_here"],
    }
    [row] = rows(estate)
    assert (row.dedupe_key, row.user_id, row.agent_id, row.msg_type, row.status, row.error) == (
        "msg:7001",
        WANG,
        str(TEST_AGENT_ID),
        "text",
        WeComCallbackStatus.SENT,
        None,
    )
    assert row.handled_at is not None


def test_several_objections_in_one_message_get_several_cards(http: TestClient, fake: FakeWeComAPI) -> None:
    client = WeComClient()
    post(http, client.sign(client.text(ZHAO, "业主说暖气一直不热，而且觉得物业费太贵了")))
    content = "\n".join(message.content for message in fake.messages_for(ZHAO))
    assert "暖气不热" in content and "收费太高" in content
    assert "物业管理条例" in content and "第七条" in content


# --- what is refused ------------------------------------------------------------------------------------------------


def test_a_forged_signature_is_refused_403_and_nothing_is_sent_or_stored(
    http: TestClient, estate: str, fake: FakeWeComAPI
) -> None:
    forger = WeComClient(token="guessed-token")
    answer = post(http, forger.sign(forger.text(WANG, NOT_LIVING_HERE)))
    assert answer.status_code == 403
    genuine = WeComClient().sign(WeComClient().text(WANG, NOT_LIVING_HERE))
    tampered = SignedRequest({**genuine.params, "msg_signature": "0" * 40}, genuine.body)
    assert post(http, tampered).status_code == 403
    assert fake.sent == [] and fake.token_requests == 0 and rows(estate) == []


def test_another_corporations_key_or_app_is_refused(
    http: TestClient, estate: str, fake: FakeWeComAPI
) -> None:
    other_corp = WeComClient(corp_id="ww_other_corp")
    assert post(http, other_corp.sign(other_corp.text(WANG, NOT_LIVING_HERE))).status_code == 403
    other_app = WeComClient(agent_id=1000099)
    assert post(http, other_app.sign(other_app.text(WANG, NOT_LIVING_HERE))).status_code == 403
    assert fake.sent == [] and rows(estate) == []


def test_a_stale_or_future_timestamp_is_refused(http: TestClient, estate: str, fake: FakeWeComAPI) -> None:
    client = WeComClient()
    now = int(clock.utc_now().timestamp())
    # Well outside the 300 s window: the first request may load the coach's model, and the clock ticks meanwhile.
    for stamp in (now - 600, now + 600):
        answer = post(http, client.sign(client.text(WANG, NOT_LIVING_HERE), timestamp=stamp))
        assert answer.status_code == 403
    assert fake.sent == [] and rows(estate) == []


def test_the_channel_reads_time_from_the_one_clock(http: TestClient, fake: FakeWeComAPI) -> None:
    signed = WeComClient().sign(WeComClient().text(WANG, NOT_LIVING_HERE))
    with clock.frozen(clock.now() + dt.timedelta(minutes=6)):  # the callback arrives six minutes late
        assert post(http, signed).status_code == 403
    assert fake.sent == []


def test_a_replay_of_the_same_request_is_answered_once(
    http: TestClient, estate: str, fake: FakeWeComAPI
) -> None:
    client = WeComClient()
    signed = client.sign(client.text(WANG, NOT_LIVING_HERE))
    first, second = post(http, signed), post(http, signed)
    assert (first.status_code, second.status_code) == (200, 200)
    assert len(fake.messages_for(WANG)) == 1
    [row] = rows(estate)
    assert row.msg_signature == signed.params["msg_signature"] and row.nonce == signed.params["nonce"]
    assert row.status == WeComCallbackStatus.SENT


def test_wecoms_retry_of_a_message_with_a_new_signature_is_answered_once(
    http: TestClient, estate: str, fake: FakeWeComAPI
) -> None:
    client = WeComClient()
    message = client.text(WANG, NOT_LIVING_HERE, msg_id="7002")
    post(http, client.sign(message, nonce="111"))
    retry = post(http, client.sign(message, nonce="222"))
    assert retry.status_code == 200 and len(fake.messages_for(WANG)) == 1
    assert [row.dedupe_key for row in rows(estate)] == ["msg:7002"]


def test_a_stranger_is_refused_politely_and_a_former_collector_too(
    http: TestClient, estate: str, fake: FakeWeComAPI
) -> None:
    client = WeComClient()
    post(http, client.sign(client.text("zhangsan", NOT_LIVING_HERE)))
    post(http, client.sign(client.text(OLD, NOT_LIVING_HERE)))
    assert [m.content for m in fake.messages_for("zhangsan")] == [wording.text("wecom.unknown_user")]
    assert [m.content for m in fake.messages_for(OLD)] == [wording.text("wecom.unknown_user")]
    assert [(row.user_id, row.status) for row in rows(estate)] == [
        ("zhangsan", WeComCallbackStatus.REFUSED),
        (OLD, WeComCallbackStatus.REFUSED),
    ]


def test_only_the_bound_wecom_user_id_is_answered_never_a_matching_name(estate: str) -> None:
    asked: List[str] = []

    def coach(text: str) -> str:
        asked.append(text)
        return "coach"

    responder = Responder(estate, coach=coach)
    refused = [wording.text("wecom.unknown_user")]
    # A console username, the bound UserID in another case, an unbound account's name: none is a binding.
    for sender in ("wang", "WANG", "wangxiaoming", "zhao", "old"):
        assert responder.reply(sender, "业主说太贵了").texts == refused, sender
    with session_scope(estate) as session:
        staff_users.create_user(
            session, username="zhangsan", password=PASSWORD, role="collector", display_name="张三", actor="cli:test"
        )
    assert responder.reply("zhangsan", "业主说太贵了").texts == refused  # an account, but not bound
    assert asked == []
    assert responder.reply(WANG, "业主说太贵了").texts == ["coach"]

    # Unbound, WANG is a stranger; bound to another account, the answers are that account's (audited as it).
    with session_scope(estate) as session:
        staff_lifecycle.set_wecom_user_id(session, username="wang", wecom_user_id=None, actor="li")
    assert responder.reply(WANG, "业主说太贵了").texts == refused
    with session_scope(estate) as session:
        staff_lifecycle.set_wecom_user_id(session, username="zhangsan", wecom_user_id=WANG, actor="li")
        session.execute(AuditEntry.__table__.delete())
    [brief] = Responder(estate).reply(WANG, "查 3-2-501").texts
    assert "王建国" in brief and "138****6688" in brief  # a collector's view: zhangsan is a collector
    assert [(row.actor, row.action) for row in audit_rows(estate)] == [
        ("zhangsan", "owners_searched"),
        ("zhangsan", "owner_viewed"),
    ]
    assert responder.reply(WANG, "业主说太贵了").texts == ["coach"]
    with session_scope(estate) as session:
        user = staff_users.find_by_wecom_user_id(session, wecom_user_id=WANG)
        assert user is not None and user.username == "zhangsan"


def test_a_deactivated_account_is_refused_on_wecom_at_once(estate: str) -> None:
    responder = Responder(estate, coach=lambda text: "coach")
    assert responder.reply(ZHAO, "业主说太贵了").texts == ["coach"]
    with session_scope(estate) as session:
        staff_lifecycle.deactivate(session, username="zhao", actor="li")
    assert responder.reply(ZHAO, "业主说太贵了").texts == [wording.text("wecom.unknown_user")]


def test_an_expired_token_is_refreshed_and_the_answer_still_sent(
    http: TestClient, estate: str, fake: FakeWeComAPI
) -> None:
    client = WeComClient()
    post(http, client.sign(client.text(WANG, "查 3-2-501")))
    fake.expire_tokens()
    post(http, client.sign(client.text(WANG, NOT_LIVING_HERE)))
    first, second = fake.messages_for(WANG)
    assert first.access_token != second.access_token and "房子没住" in second.content
    assert fake.token_requests == 2 and [r["errcode"] for r in fake.rejected] == [42001]
    assert [row.status for row in rows(estate)] == [WeComCallbackStatus.SENT, WeComCallbackStatus.SENT]


def test_a_send_wecom_refuses_is_recorded_as_failed(
    http: TestClient, estate: str, fake: FakeWeComAPI
) -> None:
    fake.fail_next_sends(60020)
    client = WeComClient()
    assert post(http, client.sign(client.text(WANG, "查 3-2-501"))).status_code == 200
    [row] = rows(estate)
    assert row.status == WeComCallbackStatus.FAILED and "60020" in (row.error or "")
    assert fake.sent == []


def test_pictures_get_a_please_type_and_events_are_ignored(
    http: TestClient, estate: str, fake: FakeWeComAPI
) -> None:
    client = WeComClient()
    post(http, client.sign(client.image(WANG)))
    post(http, client.sign(client.event(WANG, "enter_agent")))
    assert [m.content for m in fake.messages_for(WANG)] == [wording.text("wecom.not_text")]
    image, event = rows(estate)
    assert (image.msg_type, image.status) == ("image", WeComCallbackStatus.SENT)
    assert (event.msg_type, event.status) == ("event:enter_agent", WeComCallbackStatus.IGNORED)
    assert event.dedupe_key.startswith(f"event:{WANG}:")


# --- looking an owner up ---------------------------------------------------------------------------------------------


def test_a_collector_looks_an_owner_up_by_unit_with_the_phone_masked_and_audited(
    http: TestClient, estate: str, fake: FakeWeComAPI
) -> None:
    with session_scope(estate) as session:
        owner = session.execute(
            select(models.Owner).join(models.Unit).where(models.Unit.code == "3-2-501")
        ).scalar_one()
        session.add(
            models.PaymentPromise(
                number="CN-WECOM-1",
                owner_id=owner.id,
                amount=Decimal("1200.00"),
                due_date=dt.date(2026, 11, 30),
            )
        )
        session.add(
            models.Complaint(number="TS-WECOM-1", owner_id=owner.id, description="电梯经常坏，修了又坏")
        )
    client = WeComClient()
    post(http, client.sign(client.text(WANG, "查 3-2-501")))
    [message] = fake.messages_for(WANG)
    assert "3-2-501" in message.content and "王建国" in message.content
    assert "2026-11-30交1200.00元（待兑现）" in message.content  # the promise
    assert "电梯经常坏，修了又坏" in message.content  # what they reported before
    assert "138****6688" in message.content and "13812346688" not in message.content
    assert "2460.00" in message.content and "2026-03" in message.content
    searched, viewed = audit_rows(estate)
    assert (searched.actor, searched.action, searched.detail) == (
        "wang",
        "owners_searched",
        {"unit": "3-2-501", "rows": 1, "via": "wecom"},
    )
    assert (viewed.actor, viewed.action, viewed.detail) == ("wang", "owner_viewed", {"via": "wecom"})
    assert viewed.target is not None and viewed.target.startswith("owner:")


def test_a_supervisor_sees_the_whole_phone_and_a_missing_unit_is_said_so(
    http: TestClient, estate: str, fake: FakeWeComAPI
) -> None:
    client = WeComClient()
    post(http, client.sign(client.text(ZHAO, "查询 3栋2单元501")))
    post(http, client.sign(client.text(ZHAO, "查 9-9-999")))
    found, missing = fake.messages_for(ZHAO)
    assert "13812346688" in found.content
    assert missing.content == wording.text("wecom.lookup_none", unit="9-9-999")


def test_a_role_the_console_does_not_let_see_owners_is_refused_the_lookup(estate: str) -> None:
    asked: List[str] = []

    def coach(text: str) -> str:
        asked.append(text)
        return "coach"

    responder = Responder(estate, coach=coach, lookup_roles=frozenset({StaffRole.SUPERVISOR}))
    assert responder.reply(WANG, "查 3-2-501").texts == [wording.text("wecom.lookup_not_allowed")]
    assert responder.reply(ZHAO, "查").texts == [wording.text("wecom.lookup_usage")]
    assert asked == [] and [entry.action for entry in audit_rows(estate)] == []
    assert responder.reply(WANG, "查一下为什么业主不交").texts == ["coach"]  # not a unit: a question
    assert responder.reply(WANG, "查一下3栋的业主为什么不交").texts == ["coach"]
    assert asked == ["查一下为什么业主不交", "查一下3栋的业主为什么不交"]


def test_a_lookup_then_a_note_gets_the_owner_and_old_arrears_to_the_manager(
    http: TestClient, estate: str, fake: FakeWeComAPI
) -> None:
    from bot.coach.data import coach_data

    with session_scope(estate) as session:  # an unpaid bill from two years back: old arrears
        owner = session.execute(
            select(models.Owner).join(models.Unit).where(models.Unit.code == "3-2-501")
        ).scalar_one()
        session.add(models.Bill(unit_id=owner.unit_id, period="2024-06", amount_due=Decimal("500.00"), amount_paid=Decimal("0")))
    client = WeComClient()
    post(http, client.sign(client.text(WANG, "查 3-2-501\n" + NOT_LIVING_HERE, msg_id="7101")))
    post(http, client.sign(client.text(WANG, NOT_LIVING_HERE, msg_id="7102")))
    owner, with_unit, without = fake.messages_for(WANG)
    step = coach_data().next_steps["old_arrears"]
    assert "王建国" in owner.content and coach_data().label("old_arrears") in owner.content
    assert step.text in with_unit.content and coach_data().next_step_kinds["old_arrears_manager"] in with_unit.content
    assert "房子没住" in with_unit.content  # the card's title: the note was answered, not looked up
    assert step.text not in without.content and "王建国" not in without.content
    assert [(row.action, row.detail) for row in audit_rows(estate)] == [
        ("owners_searched", {"via": "wecom", "unit": "3-2-501", "rows": 1}),
        ("owner_viewed", {"via": "wecom"}),
        ("coach_answered", {"via": "wecom", "status": "objections", "intents": ["objection_not_living_here"]}),
        ("coach_answered", {"via": "wecom", "status": "objections", "intents": ["objection_not_living_here"]}),
    ]


def test_the_lookup_roles_are_the_consoles_owners_sections_through_one_helper(
    estate: str, fake: FakeWeComAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    from apps.staff import pages

    sections = tuple(
        (name, frozenset({StaffRole.SUPERVISOR}) if name == "owners" else roles) for name, roles in pages.SECTIONS
    )
    monkeypatch.setattr(pages, "SECTIONS", sections)
    with TestClient(create_app(settings_for(fake), database_url=estate)) as client:
        wecom = WeComClient()
        post(client, wecom.sign(wecom.text(WANG, "查 3-2-501", msg_id="7201")))
        post(client, wecom.sign(wecom.text(ZHAO, "查 3-2-501", msg_id="7202")))
    [refused] = fake.messages_for(WANG)
    [found] = fake.messages_for(ZHAO)
    assert refused.content == wording.text("wecom.lookup_not_allowed")
    assert "王建国" in found.content


# --- the store ---------------------------------------------------------------------------------------------------------


def test_handled_callbacks_are_pruned_after_the_window(estate: str) -> None:
    store = WeComStore(estate)
    assert store.claim(
        "msg:1", msg_signature="a" * 40, nonce="1", user_id="wang", agent_id="1", msg_type="text"
    )
    assert not store.claim(
        "msg:1", msg_signature="b" * 40, nonce="2", user_id="wang", agent_id="1", msg_type="text"
    )
    assert not store.claim(
        "msg:2", msg_signature="a" * 40, nonce="3", user_id="wang", agent_id="1", msg_type="text"
    )
    assert store.prune(clock.utc_now() - dt.timedelta(hours=1)) == 0
    assert store.prune(clock.utc_now() + dt.timedelta(seconds=1)) == 1
    assert rows(estate) == []
    assert store.claim(
        "msg:1", msg_signature="a" * 40, nonce="1", user_id="wang", agent_id="1", msg_type="text"
    )


def test_a_coach_failure_tells_the_collector_and_is_recorded(estate: str, fake: FakeWeComAPI) -> None:
    def broken_coach(text: str) -> str:
        raise RuntimeError("model file unreadable")

    config = WeComConfig.from_settings(settings_for(fake))
    assert config is not None
    channel = WeComChannel(config, store=WeComStore(estate), responder=Responder(estate, coach=broken_coach))
    client = WeComClient()
    signed = client.sign(client.text(WANG, NOT_LIVING_HERE, msg_id="7003"))
    answer, job = channel.receive(signed.params, signed.body)
    assert answer.status == 200 and job is not None and job.text == NOT_LIVING_HERE
    channel.handle(job)
    assert [m.content for m in fake.messages_for(WANG)] == [wording.text("wecom.busy")]
    [row] = rows(estate)
    assert row.status == WeComCallbackStatus.FAILED and "model file unreadable" in (row.error or "")
