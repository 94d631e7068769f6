"""Several Rasa processes: with a Redis URL configured, the endpoints file ``bot run`` writes gives Rasa its
``RedisLockStore``, so two processes never work on one conversation at once. Checked against the real Redis
server at 127.0.0.1:6379 (``REDIS_TEST_URL`` to use another)."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from bot import cli
from bot.rasa.endpoints import lock_store_config, write_endpoints
from bot.settings import configured_lock_store_url

REDIS_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/3")


def test_lock_store_config_reads_redis_urls() -> None:
    assert lock_store_config("redis://127.0.0.1:6379/3") == {"type": "redis", "url": "127.0.0.1", "port": 6379, "db": 3}
    assert lock_store_config("redis://cache.local") == {"type": "redis", "url": "cache.local", "port": 6379, "db": 1}
    assert lock_store_config("rediss://bot:pw@cache.local:6380/0") == {
        "type": "redis",
        "url": "cache.local",
        "port": 6380,
        "db": 0,
        "username": "bot",
        "password": "pw",
        "use_ssl": True,
    }
    with pytest.raises(ValueError):
        lock_store_config("postgresql://x@y/z")
    with pytest.raises(ValueError):
        lock_store_config("redis://cache.local/locks")


def test_lock_store_url_wins_over_redis_url_and_neither_means_none() -> None:
    both = SimpleNamespace(lock_store_url="redis://locks:6379/2", redis_url="redis://cache:6379/0")
    assert configured_lock_store_url(both) == "redis://locks:6379/2"
    assert configured_lock_store_url(SimpleNamespace(lock_store_url=" ", redis_url="redis://cache:6379/0")) == (
        "redis://cache:6379/0"
    )
    assert configured_lock_store_url(SimpleNamespace(lock_store_url=None, redis_url=None)) is None


def test_without_a_redis_url_the_endpoints_file_has_no_lock_store(tmp_path: Path) -> None:
    path = write_endpoints(tmp_path / "e.yml", database_url="sqlite:////srv/bot.db", action_server_url="http://a/webhook")
    assert "lock_store" not in yaml.safe_load(path.read_text())


def test_bot_runs_rasa_with_the_redis_lock_store_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What ``bot run`` writes, read back by Rasa itself: two stores (two processes) share one lock."""
    from rasa.core.lock_store import LockStore, RedisLockStore
    from rasa.utils.endpoints import read_endpoint_config

    from bot.settings import get_settings

    monkeypatch.setenv("REDIS_URL", REDIS_URL)
    get_settings.cache_clear()
    started = []
    monkeypatch.setattr(cli, "_start", lambda name, command, plan: started.append(command) or object())
    try:
        plan = cli.ServerPlan(model=tmp_path / "m.tar.gz", database_url="sqlite:////srv/bot.db", workdir=tmp_path, token="t")
        cli.start_rasa_server(plan)
    finally:
        get_settings.cache_clear()
    endpoints = tmp_path / "endpoints.yml"
    assert started and str(endpoints) in started[0]
    assert yaml.safe_load(endpoints.read_text())["lock_store"] == lock_store_config(REDIS_URL)

    first = LockStore.create(read_endpoint_config(str(endpoints), "lock_store"))
    second = LockStore.create(read_endpoint_config(str(endpoints), "lock_store"))
    assert isinstance(first, RedisLockStore) and isinstance(second, RedisLockStore)
    sender = f"lock-test-{uuid.uuid4().hex[:8]}"

    log = []

    async def hold(store: RedisLockStore, name: str, delay: float) -> None:
        await asyncio.sleep(delay)
        async with store.lock(sender, lock_lifetime=10, wait_time_in_seconds=0.05):
            log.append(("in", name))
            await asyncio.sleep(0.5)
            log.append(("out", name))

    async def contend() -> None:  # one process's turn, the other's message arriving in the middle of it
        await asyncio.gather(hold(first, "first", 0), hold(second, "second", 0.1))

    asyncio.run(asyncio.wait_for(contend(), 20))
    assert log == [("in", "first"), ("out", "first"), ("in", "second"), ("out", "second")]
    first.red.delete(f"{first.key_prefix}{sender}")


def test_a_plan_can_name_its_own_lock_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "_start", lambda name, command, plan: object())
    plan = cli.ServerPlan(
        model=tmp_path / "m.tar.gz", database_url="sqlite:////srv/bot.db", workdir=tmp_path, token="t",
        lock_store_url="redis://127.0.0.1:6379/5",
    )  # fmt: skip
    cli.start_rasa_server(plan)
    assert yaml.safe_load((tmp_path / "endpoints.yml").read_text())["lock_store"]["db"] == 5
