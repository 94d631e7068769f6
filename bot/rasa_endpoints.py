"""Rasa's endpoints file, written at start-up.

The tracker store uses the same database as the records; the action endpoint carries the action server's
shared token, which Rasa sends with every call.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Dict, Optional

import yaml
from sqlalchemy.engine import make_url


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


def write_endpoints(
    path: Path, *, database_url: str, action_server_url: str, action_server_token: Optional[str] = None
) -> Path:
    """Write an endpoints file for the Rasa server and return its path.

    Args:
        path: Where to write it; the file is readable by its owner only (it may hold secrets).
        database_url: The records' database, also used for the tracker store.
        action_server_url: The action server's ``/webhook`` URL.
        action_server_token: The shared secret Rasa sends with every action call (as ``?token=``).

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
    content = yaml.safe_dump(endpoints, allow_unicode=True, sort_keys=False)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(content)
    os.chmod(path, 0o600)  # also when the file existed with wider permissions
    return path
