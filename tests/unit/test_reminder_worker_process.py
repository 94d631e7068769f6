"""The reminder worker as a process (``python -m apps.worker``): it sends what is due and stops on SIGTERM."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import select

from bot import clock
from bot.db import migrate
from bot.db.models import ConversationLink, Owner, Unit
from bot.db.reminder_models import Reminder, ReminderPurpose, ReminderState
from bot.db.session import session_scope
from bot.owners import importer
from bot.reminders import schedule

ROOT = Path(__file__).resolve().parents[2]


def test_the_worker_process_sends_a_due_reminder_and_stops_on_sigterm(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'bot.db'}"
    migrate.upgrade(url)
    with session_scope(url) as session:
        importer.import_arrears(session, ROOT / "data" / "demo" / "arrears.csv")
        owner = session.execute(select(Owner).join(Unit).where(Unit.code == "3-2-501")).scalar_one()
        session.add(ConversationLink(channel="socketio", sender_id="web-1", owner_id=owner.id))
        session.flush()
        schedule._add(
            session, owner=owner, sender_id="web-1", channel="socketio", purpose=ReminderPurpose.MONTHLY_BILL,
            due_at=clock.now() - dt.timedelta(minutes=1), dedupe_key="process:1",
        )
    env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(ROOT), "REMINDERS_MAX_PER_WEEK": "5"}
    process = subprocess.Popen(
        [sys.executable, "-m", "apps.worker", "--poll", "0.2"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        row = None
        while time.monotonic() < deadline:
            with session_scope(url) as session:
                row = session.execute(select(Reminder)).scalar_one()
            if row.state is not ReminderState.SCHEDULED:
                break
            time.sleep(0.2)
        assert row is not None and row.locked_by.startswith("worker:")
        # Sent now, or moved to 08:00 when the test runs in the estate's quiet hours: never left or dropped.
        assert (row.state, row.reason) in {(ReminderState.SENT, None), (ReminderState.MOVED, "quiet_hours")}
        stopped = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert process.wait(10) == 0
        assert time.monotonic() - stopped < 5
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
