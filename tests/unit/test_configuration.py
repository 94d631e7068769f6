import datetime as dt
import sys
import threading
from pathlib import Path
from typing import List

import pytest
import yaml

from bot import cli, clock
from bot.rasa.endpoints import tracker_store_config, write_endpoints
from bot.service_config import get_service_config, load
from bot.settings import Settings


def test_settings_default_to_sqlite_under_var(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = Settings(_env_file=None)
    assert settings.database_url.startswith("sqlite:///") and settings.database_url.endswith("var/bot.db")


def test_settings_refuse_default_secret_outside_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOCK_START")  # the suite's set clock is local only
    with pytest.raises(ValueError, match="SECRET_KEY"):
        Settings(_env_file=None, environment="production")
    with pytest.raises(ValueError, match="REST_CHANNEL_TOKEN"):
        Settings(_env_file=None, environment="production", secret_key="s3cret")
    with pytest.raises(ValueError, match="ACTION_SERVER_TOKEN"):
        Settings(_env_file=None, environment="production", secret_key="s3cret", rest_channel_token="t0ken")
    with pytest.raises(ValueError, match="STAFF_SECRET_KEY must be set"):
        Settings(
            _env_file=None,
            environment="production",
            secret_key="s3cret",
            rest_channel_token="t0ken",
            action_server_token="a-t0ken",
        )
    settings = Settings(
        _env_file=None,
        environment="production",
        secret_key="s3cret",
        rest_channel_token="t0ken",
        action_server_token="a-t0ken",
        staff_secret_key="st4ff-s3cret",
    )
    assert settings.environment == "production" and settings.action_server_host == "127.0.0.1"


def test_tracker_store_follows_the_database_url(tmp_path: Path) -> None:
    assert tracker_store_config("sqlite:////srv/bot.db") == {
        "type": "SQL",
        "dialect": "sqlite",
        "db": "/srv/bot.db",
    }
    assert tracker_store_config("postgresql://bot:pw@db.local:5433/wuye") == {
        "type": "SQL",
        "dialect": "postgresql",
        "url": "db.local",
        "port": 5433,
        "db": "wuye",
        "username": "bot",
        "password": "pw",
    }
    with pytest.raises(ValueError):
        tracker_store_config("mysql://x@y/z")
    path = write_endpoints(
        tmp_path / "e.yml", database_url="sqlite:////srv/bot.db", action_server_url="http://a/webhook"
    )
    assert yaml.safe_load(path.read_text())["action_endpoint"] == {"url": "http://a/webhook"}
    assert yaml.safe_load(path.read_text())["tracker_store"] == tracker_store_config("sqlite:////srv/bot.db")


def test_the_endpoints_file_gives_rasa_the_action_server_token(tmp_path: Path) -> None:
    from rasa.utils.endpoints import read_endpoint_config

    path = tmp_path / "e.yml"
    path.write_text("old, world-readable")
    path.chmod(0o644)
    write_endpoints(
        path,
        database_url="sqlite:////srv/bot.db",
        action_server_url="http://127.0.0.1:5055/webhook",
        action_server_token="s3cret-token",
    )
    endpoint = read_endpoint_config(str(path), "action_endpoint")
    assert endpoint is not None and endpoint.url == "http://127.0.0.1:5055/webhook"
    # What Rasa puts on every call to the action server (the query string), which bot.action_server checks.
    assert endpoint.combine_parameters() == {"token": "s3cret-token"}
    assert path.stat().st_mode & 0o777 == 0o600  # it holds a secret


def test_rasa_reaches_the_action_server_on_loopback_when_it_listens_everywhere(tmp_path: Path) -> None:
    plan = cli.ServerPlan(model=tmp_path, database_url="sqlite://", workdir=tmp_path, token="t", actions_port=6001)
    assert plan.actions_url == "http://127.0.0.1:6001"
    plan.actions_host = "0.0.0.0"
    assert plan.actions_url == "http://127.0.0.1:6001"
    plan.actions_host = "10.1.2.3"
    assert plan.actions_url == "http://10.1.2.3:6001"
    plan.actions_host = "fd00::5"
    assert plan.actions_url == "http://[fd00::5]:6001"


def test_a_local_run_without_a_configured_token_gets_a_fresh_random_one(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot.settings import get_settings

    monkeypatch.delenv("ACTION_SERVER_TOKEN", raising=False)
    get_settings.cache_clear()
    try:
        first, second = cli.action_server_token(), cli.action_server_token()
        assert len(first) >= 32 and first != second
        monkeypatch.setenv("ACTION_SERVER_TOKEN", "configured-token")
        get_settings.cache_clear()
        assert cli.action_server_token() == "configured-token"
    finally:
        get_settings.cache_clear()


def test_service_config_hours(tmp_path: Path) -> None:
    config = get_service_config()
    assert config.payment_methods and config.payment_link.startswith("https://")
    path = tmp_path / "service.yml"
    path.write_text(
        "payment: {link: x, methods: [a]}\nstaff: {days: [1, 2, 3, 4, 5], opens: '09:00', closes: '17:30', phone: '1'}\n",
        encoding="utf-8",
    )
    hours = load(path).staff
    friday_evening = dt.datetime(2026, 11, 27, 11, 0, tzinfo=dt.timezone.utc)  # 19:00 Shanghai
    assert not hours.is_open(friday_evening)
    assert hours.next_answer(friday_evening) == dt.datetime(2026, 11, 30, 9, 0, tzinfo=clock.zone())
    monday_morning = dt.datetime(2026, 11, 30, 2, 0, tzinfo=dt.timezone.utc)  # 10:00 Shanghai
    assert hours.is_open(monday_morning) and hours.next_answer(monday_morning) == monday_morning


def test_model_fingerprint_changes_with_inputs(tmp_path: Path) -> None:
    for name in ("config.yml", "domain.yml"):
        (tmp_path / name).write_text("a", encoding="utf-8")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.yml").write_text("1", encoding="utf-8")
    first = cli.model_fingerprint(tmp_path)
    assert cli.model_fingerprint(tmp_path) == first
    (tmp_path / "data" / "x.yml").write_text("2", encoding="utf-8")
    second = cli.model_fingerprint(tmp_path)
    assert second != first
    # The guard's data shapes the guard, not the Rasa model: retraining the guard does not retrain Rasa.
    (tmp_path / "data" / "compliance").mkdir()
    (tmp_path / "data" / "compliance" / "model.json").write_text("{}", encoding="utf-8")
    assert cli.model_fingerprint(tmp_path) == second


def test_processes_asking_for_the_model_at_once_train_it_once_and_never_see_half_of_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    models = tmp_path / "models"
    monkeypatch.setattr(cli, "MODELS_DIR", models)
    monkeypatch.setattr(cli, "MODEL_PATH", models / "current.tar.gz")
    monkeypatch.setattr(cli, "FINGERPRINT_PATH", models / "current.fingerprint")
    monkeypatch.setattr(cli, "model_fingerprint", lambda root=cli.PROJECT_ROOT: "inputs-1")
    runs = tmp_path / "runs"
    # Stands in for `rasa train --out DIR`: counts its runs and writes the model slowly, in two parts.
    writer = (
        "import pathlib, sys, time; out = pathlib.Path(sys.argv[sys.argv.index('--out') + 1]); "
        f"open({str(runs)!r}, 'a').write('run\\n'); model = out / 'current.tar.gz'; "
        "model.write_text('half'); time.sleep(0.5); model.write_text('whole model')"
    )
    monkeypatch.setattr(cli, "_rasa", lambda *args: [sys.executable, "-c", writer, *args])
    seen: List[str] = []

    def ask() -> None:
        seen.append(cli.train().read_text())

    threads = [threading.Thread(target=ask) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert runs.read_text().splitlines() == ["run"]
    assert seen == ["whole model"] * 3
    assert (models / "current.fingerprint").read_text().strip() == "inputs-1"
    assert [path.name for path in models.iterdir() if path.name.startswith(".training-")] == []


def test_import_command_reports_bad_rows(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "a.csv"
    path.write_text(
        "房号,业主姓名,手机号,欠费金额,欠费起始月\n3栋2单元501,王,13812346688,1,2026-01\nx,y,z,1,2026-01\n",
        encoding="utf-8",
    )
    assert cli.main(["import-arrears", str(path), "--url", f"sqlite:///{tmp_path / 'db.sqlite'}"]) == 1
    out = capsys.readouterr().out
    assert "1 created, 0 updated, 1 rejected" in out and "line 3" in out
