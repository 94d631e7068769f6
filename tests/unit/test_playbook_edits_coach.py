"""The coach uses a supervisor's edit at once: the same staff app process, the real trained model, no restart
(SQLite and PostgreSQL)."""

# ruff: noqa: F811  (pytest fixtures imported from other modules are parameters here)

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from bot.playbook import default_playbook
from bot.services import playbook_edits
from tests.unit.test_coach_staff import NOTE, coach_model, csrf  # noqa: F401  (fixtures)
from tests.unit.test_playbook_edits_pages import form_of
from tests.unit.test_staff_app import app, staff_db  # noqa: F401  (fixtures)
from tests.unit.test_staff_screens import as_user  # noqa: F401  (fixtures)

pytestmark = [pytest.mark.model]

HEATING = "objection_heating"
SCRIPT = [
    "天这么冷暖气还不热，换谁都着急，我今天就来处理。",
    "我马上给您开报修单，师傅上门测室温，查清原因给您回话。",
    "物业费这边也请您安排一下，您看哪天方便交？",
]


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    playbook_edits.clear_cache()
    yield
    playbook_edits.clear_cache()


def test_the_coach_answers_with_the_edited_script_without_a_restart(
    staff_db: str, as_user: Any, coach_model: Path
) -> None:
    wang, zhao = as_user("wang"), as_user("zhao")
    heating = default_playbook().get(HEATING)
    assert heating is not None
    before = wang.post("/api/coach", json={"text": NOTE}, headers={"X-CSRF-Token": csrf(wang)})
    assert before.status_code == 200 and before.json()["script"] == list(heating.coach.script)

    page = zhao.get(f"/playbook/{HEATING}")
    saved = zhao.post(
        f"/playbook/{HEATING}",
        data=form_of(page.text, **{"coach.script": "\n".join(SCRIPT), "coach.next_step": "当天开报修单，约定交费日。"}),
        follow_redirects=False,
    )
    assert saved.status_code == 303

    after = wang.post("/api/coach", json={"text": NOTE}, headers={"X-CSRF-Token": csrf(wang)})
    assert after.status_code == 200
    assert after.json()["script"] == SCRIPT and after.json()["next_step"] == "当天开报修单，约定交费日。"
    assert after.json()["donts"] == list(heating.coach.donts)
