"""Rasa's endpoints file, written at start-up so the tracker store uses the same database as the records."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

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


def write_endpoints(path: Path, *, database_url: str, action_server_url: str) -> Path:
    """Write an endpoints file for the Rasa server and return its path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    endpoints = {
        "action_endpoint": {"url": action_server_url},
        "tracker_store": tracker_store_config(database_url),
    }
    path.write_text(yaml.safe_dump(endpoints, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path
