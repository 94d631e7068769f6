"""Rasa's endpoints file, written at start-up.

The tracker store uses the same database as the records; the action endpoint carries the action server's
shared token, which Rasa sends with every call. With ``LOCK_STORE_URL`` (or ``REDIS_URL``) set, Rasa's
``RedisLockStore`` serialises the work on one conversation across every Rasa process: without it each
process has its own in-memory locks, and two processes (an owner's message in one, the outbox deliverer
appending a staff reply in another) could load, change and save one tracker at once, losing events.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional

import yaml
from sqlalchemy.engine import make_url

# Rasa's own default database number for its lock store, used when the URL names none.
RASA_LOCK_STORE_DB = 1
REDIS_SCHEMES = {"redis": False, "rediss": True}  # scheme → TLS


def tracker_store_config(database_url: str) -> Dict[str, Any]:
    """Rasa ``SQLTrackerStore`` settings for a SQLAlchemy URL (SQLite or PostgreSQL)."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        return {"type": "SQL", "dialect": "sqlite", "db": url.database}
    if backend != "postgresql":
        raise ValueError(f"unsupported database for the tracker store: {backend}")
    config: Dict[str, Any] = {
        "type": "SQL",
        "dialect": "postgresql",
        "url": url.host or "127.0.0.1",
        "port": url.port or 5432,
        "db": url.database,
        "username": url.username or "postgres",
    }
    if url.password:
        config["password"] = url.password
    return config


def lock_store_config(lock_store_url: str) -> Dict[str, Any]:
    """Rasa ``RedisLockStore`` settings for a Redis URL.

    Args:
        lock_store_url: ``redis://[user:password@]host[:port][/db]`` (``rediss://`` for TLS).

    Returns:
        The ``lock_store`` entry of Rasa's endpoints file.

    Raises:
        ValueError: Not a Redis URL, or a database that is not a number.
    """
    url = make_url(lock_store_url)
    scheme = url.get_backend_name()
    if scheme not in REDIS_SCHEMES:
        raise ValueError(f"the lock store must be Redis (redis:// or rediss://), not {scheme}")
    database = (url.database or "").strip("/")
    if database and not database.isdigit():
        raise ValueError(f"the Redis database must be a number, not {database!r}")
    config: Dict[str, Any] = {
        "type": "redis",
        "url": url.host or "127.0.0.1",
        "port": url.port or 6379,
        "db": int(database) if database else RASA_LOCK_STORE_DB,
    }
    if url.username:
        config["username"] = url.username
    if url.password:
        config["password"] = url.password
    if REDIS_SCHEMES[scheme]:
        config["use_ssl"] = True
    return config


def write_endpoints(
    path: Path,
    *,
    database_url: str,
    action_server_url: str,
    action_server_token: Optional[str] = None,
    lock_store_url: Optional[str] = None,
) -> Path:
    """Write an endpoints file for the Rasa server and return its path.

    Args:
        path: Where to write it; the file is readable by its owner only (it may hold secrets).
        database_url: The records' database, also used for the tracker store.
        action_server_url: The action server's ``/webhook`` URL.
        action_server_token: The shared secret Rasa sends with every action call (as ``?token=``).
        lock_store_url: A Redis URL for Rasa's lock store (needed with several Rasa processes); None keeps
            Rasa's in-memory lock store.

    Returns:
        ``path``.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    action_endpoint: Dict[str, Any] = {"url": action_server_url}
    if action_server_token:
        action_endpoint["token"] = action_server_token
    endpoints = {
        "action_endpoint": action_endpoint,
        "tracker_store": tracker_store_config(database_url),
    }
    if lock_store_url:
        endpoints["lock_store"] = lock_store_config(lock_store_url)
    content = yaml.safe_dump(endpoints, allow_unicode=True, sort_keys=False)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(content)
    os.chmod(path, 0o600)  # also when the file existed with wider permissions
    return path
