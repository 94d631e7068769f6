"""Run the staff console: ``python -m apps.staff [--host 127.0.0.1] [--port 5006]``.

``bot run`` starts it beside the Rasa server and the action server (``bot.cli.start_servers``); SIGTERM or
SIGINT stops it. Outside ``local`` it refuses to start with a default or empty ``STAFF_SECRET_KEY``.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import Optional, Sequence

# Connections still open this long after SIGTERM are closed: the process is gone well within bot run's 6 s.
GRACEFUL_SHUTDOWN_SECONDS = 3


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: read the settings (refusing bad secrets), then serve until a signal stops the server.

    Args:
        argv: Command line arguments (default: ``sys.argv[1:]``).

    Returns:
        The exit status: 0 after a stop request, 2 when the settings refuse to load.
    """
    from pydantic import ValidationError

    from bot.settings import get_settings
    from bot.startup import exit_with_parent

    exit_with_parent()
    try:
        settings = get_settings()
    except ValidationError as error:
        print(f"error: the staff console does not start: {error}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="python -m apps.staff", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=settings.staff_host, help="address to listen on (STAFF_HOST)")
    parser.add_argument("--port", type=int, default=settings.staff_port, help="port (STAFF_PORT)")
    args = parser.parse_args(argv)

    import uvicorn

    from apps.staff.access_log import log_config
    from apps.staff.app import create_app

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from apps.staff.coach import preload

    preload()  # the coach's model loads in the background, so the first coach request does not wait for it
    proxies = settings.trusted_proxies
    uvicorn.run(
        create_app(settings),
        host=args.host,
        port=args.port,
        # X-Forwarded-For / -Proto are believed only from our own reverse proxies.
        proxy_headers=bool(proxies),
        forwarded_allow_ips=",".join(proxies) if proxies else None,
        server_header=False,
        http="h11",
        # rasa pins an older ``websockets`` than uvicorn's WebSocket support needs; no page uses one yet.
        ws="none",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        log_level="info",
        # The access log shows handles, never a conversation's id, a query string or a cookie.
        log_config=log_config(),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
