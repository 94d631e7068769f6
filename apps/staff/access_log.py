"""The staff console's access log, without ids: uvicorn's log of each request, its path redacted.

Every page and API call is logged (``uvicorn.access``); the live conversation view polls every few seconds.
The line never holds a conversation's sender id (a web chat session id is a bearer credential, a WeChat openid a
personal identifier), a query string (``?next=…``, filters) or a cookie: the path is logged as
:func:`bot.conversations.redaction.redact_path` shows it (``/api/conversations/W-3F9K-2A7Q?…``), and uvicorn
logs no headers. :func:`log_config` is uvicorn's own logging configuration with :class:`RedactedAccessLog` on
that logger.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Dict

from bot.conversations.redaction import redact_path

ACCESS_LOGGER = "uvicorn.access"
# uvicorn logs '%s - "%s %s HTTP/%s" %d' with (client, method, path with query, HTTP version, status).
_PATH_ARGUMENT = 2


class RedactedAccessLog(logging.Filter):
    """Replaces the path of every access log record with its redacted form (never drops a record)."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact ``record``'s path argument in place.

        Args:
            record: An access log record as uvicorn makes it.

        Returns:
            Always True: the request is logged, only without ids.
        """
        args = record.args
        if isinstance(args, tuple) and len(args) > _PATH_ARGUMENT:
            path = args[_PATH_ARGUMENT]
            if isinstance(path, str):
                shown = list(args)
                shown[_PATH_ARGUMENT] = redact_path(path)
                record.args = tuple(shown)
        return True


def log_config() -> Dict[str, Any]:
    """The default logging configuration of uvicorn, with :class:`RedactedAccessLog` on its access logger."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_ids"] = {"()": f"{__name__}.RedactedAccessLog"}
    config["loggers"][ACCESS_LOGGER]["filters"] = ["redact_ids"]
    return config
