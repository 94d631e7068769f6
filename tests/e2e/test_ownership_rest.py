"""A flat changes hands (issue 16 point 2), over REST against the real Rasa and action servers: after an arrears
import names a new owner, the former owner's old phone tail verifies nothing and tells no amount, and his
conversation verified before the import is no longer verified. The servers' SQLite database; a unit of its own."""

import uuid
from pathlib import Path
from typing import List

import pytest
from sqlalchemy import select

from bot.db import models
from bot.db.models import OwnerRetirement
from bot.db.session import session_scope
from bot.owners import importer
from tests.fakes.wording import response, response_variants

pytestmark = [pytest.mark.e2e, pytest.mark.model]
TODAY = "2026-11-25"
ROOM, UNIT = "16栋2单元1601", "16-2-1601"  # not in the demo estate: no other test talks about it
HEADER = "房号,业主姓名,手机号,欠费金额,欠费起始月\n"
ARREARS = response("utter_arrears", unit=ROOM, amount="1,888.00", since="2026年5月", months=7)


def load(database_url: str, tmp_path: Path, name: str, row: str) -> importer.ImportReport:
    """Import a roster listing only our unit (the other units keep their owners)."""
    path = tmp_path / name
    path.write_text(HEADER + row + "\n", encoding="utf-8")
    with session_scope(database_url) as session:
        return importer.import_arrears(session, path)


def nothing_disclosed(replies: List[str]) -> bool:
    text = "".join(replies)
    return "1,888" not in text and "1888" not in text and "孙新" not in text and "钱进" not in text


def test_the_former_owner_is_refused_after_an_import_names_a_new_owner(servers, tmp_path: Path) -> None:
    report = load(servers.database_url, tmp_path, "before.csv", f"{ROOM},钱进,13766661601,1888.00,2026-05")
    assert (report.created, report.errors) == (1, [])
    former = f"former-{uuid.uuid4().hex}"
    say = lambda text, sender=former: servers.say(sender, text, date=TODAY)  # noqa: E731

    # Before: the owner verifies with his tail and is told what the unit owes.
    assert say("我欠多少物业费") == response_variants("utter_ask_room")
    assert say(ROOM) == response_variants("utter_ask_phone_tail")
    assert say("1601")[:2] == [response("utter_identity_verified", owner_name="钱进"), ARREARS]

    report = load(servers.database_url, tmp_path, "after.csv", f"{ROOM},孙新,13955551602,1888.00,2026-05")
    assert (report.created, report.retired, report.errors) == (1, 1, [])

    # His conversation verified before the import is not verified any more: asked afresh, his tail refused.
    replies = say("我欠多少物业费")
    assert replies == response_variants("utter_ask_room") and nothing_disclosed(replies)
    assert say(ROOM) == response_variants("utter_ask_phone_tail")
    replies = say("1601")
    assert replies == [response("utter_identity_mismatch"), response("utter_ask_room")] and nothing_disclosed(replies)

    # The tester's path: a new conversation, the old phone tail: refused, no amount.
    fresh = f"former-{uuid.uuid4().hex}"
    assert say("我欠多少物业费", fresh) == response_variants("utter_ask_room")
    assert say(ROOM, fresh) == response_variants("utter_ask_phone_tail")
    replies = say("1601", fresh)
    assert replies == [response("utter_identity_mismatch"), response("utter_ask_room")] and nothing_disclosed(replies)

    # The new owner is told.
    owner = f"new-owner-{uuid.uuid4().hex}"
    assert say("我欠多少物业费", owner) == response_variants("utter_ask_room")
    assert say(ROOM, owner) == response_variants("utter_ask_phone_tail")
    assert say("1602", owner)[:2] == [response("utter_identity_verified", owner_name="孙新"), ARREARS]

    with session_scope(servers.database_url) as session:
        rows = session.execute(
            select(models.Owner).join(models.Unit).where(models.Unit.code == UNIT).order_by(models.Owner.id)
        ).scalars().all()
        assert [(row.name, row.phone, row.retired_by) for row in rows] == [
            ("钱进", "13766661601", "import"),
            ("孙新", "13955551602", None),
        ]
        assert OwnerRetirement(rows[0].retired_reason) is OwnerRetirement.ROSTER and rows[1].retired_at is None
        tries = session.execute(
            select(models.IdentityAttempt.sender_id, models.IdentityAttempt.succeeded)
            .where(models.IdentityAttempt.unit_code == UNIT)
            .order_by(models.IdentityAttempt.id)
        ).all()
        assert tries == [(former, True), (former, False), (fresh, False), (owner, True)]
