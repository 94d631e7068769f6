"""Run the reminder worker: ``python -m apps.worker [--poll SECONDS] [--once]``.

``bot run`` starts it beside the Rasa server, the action server and the staff console
(``bot.cli.start_servers``); SIGTERM or SIGINT stops it after the reminder in hand. Several may run against
one PostgreSQL database (each reminder is claimed with ``FOR UPDATE SKIP LOCKED``); on SQLite run one.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from typing import Optional, Sequence


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point: poll for due reminders until a signal.

    Args:
        argv: Command line arguments (default: ``sys.argv[1:]``).

    Returns:
        0 after a stop request (or one pass with ``--once``), 2 when the settings refuse to load.
    """
    from pydantic import ValidationError

    from bot.settings import get_settings
    from bot.startup import exit_with_parent

    exit_with_parent()
    try:
        settings = get_settings()
    except ValidationError as error:
        print(f"error: the reminder worker does not start: {error}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="python -m apps.worker", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--poll", type=float, default=settings.reminders_poll_seconds, help="seconds between polls (REMINDERS_POLL_SECONDS)"
    )
    parser.add_argument("--once", action="store_true", help="run the daily jobs and send what is due, then exit")
    args = parser.parse_args(argv)

    from bot.reminders.worker import ReminderWorker

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    worker = ReminderWorker(poll_seconds=args.poll)  # it queues; the Rasa processes' deliverers send
    if args.once:
        worker.tick()
        return 0
    stopping = threading.Event()

    def request_stop(signum: int, _frame: object) -> None:
        logging.getLogger(__name__).info("%s: stopping the reminder worker", signal.Signals(signum).name)
        stopping.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, request_stop)
    worker.run(stopping)
    return 0


if __name__ == "__main__":
    sys.exit(main())
