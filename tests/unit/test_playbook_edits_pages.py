"""The playbook screens (话术库) on SQLite and PostgreSQL: supervisors and managers only, a save as a version
with who and when, refusals shown with their reason and the typed text kept (forbidden phrase, schema, stale),
CSRF, the history with its diff, revert, and the audit rows."""

from __future__ import annotations

import html
import re
from typing import Any, Dict, Iterator, List

import pytest
from sqlalchemy import select

from bot import clock
from bot.db.playbook_models import PlaybookEdit
from bot.db.session import session_scope
from bot.playbook import default_playbook
from bot.services import playbook_edits
from tests.unit.test_staff_app import (  # noqa: F401  (fixtures)
    NOW,
    app,
    client,
    csrf_of,
    local_settings,
    log_in,
    staff_db,
)
from tests.unit.test_staff_screens import as_user, audit_of  # noqa: F401  (fixtures)

HEATING = "objection_heating"
NEW_ANSWERS = [
    "暖气不热确实难受，我们今天就安排师傅上门测温，找出原因马上处理。物业费也请您按时交上。",
    "您说的情况我们记下了，工程人员会上门排查暖气，每一步进展都告诉您。物业费这边还请您安排一下。",
]
FORBIDDEN_FOLLOW_UP = "这个月不交，下个月就给您停暖。"


@pytest.fixture(autouse=True)
def fresh_cache() -> Iterator[None]:
    playbook_edits.clear_cache()
    yield
    playbook_edits.clear_cache()


def stored_versions(url: str) -> List[Dict[str, Any]]:
    with session_scope(url) as session:
        rows = session.execute(select(PlaybookEdit).order_by(PlaybookEdit.id)).scalars()
        return [
            {"intent": row.intent, "version": row.version, "by": row.edited_by, "data": row.data, "note": row.note}
            for row in rows
        ]


def form_of(page_text: str, **changes: str) -> Dict[str, str]:
    """The entry page's form as a browser would post it (every textarea as shown), with ``changes``."""
    values = {
        name: html.unescape(value)
        for name, value in re.findall(r'<textarea[^>]*name="([^"]+)"[^>]*>(.*?)</textarea>', page_text, re.S)
    }
    based_on = re.search(r'name="based_on" value="(\d+)"', page_text)
    assert based_on and values, page_text[:500]
    return {**values, "based_on": based_on.group(1), "csrf_token": csrf_of(page_text), "note": "", **changes}


def test_collectors_get_403_supervisors_and_managers_see_the_list(as_user: Any) -> None:  # noqa: F811
    wang = as_user("wang")
    assert wang.get("/playbook").status_code == 403
    assert wang.get(f"/playbook/{HEATING}").status_code == 403
    for username in ("zhao", "li"):
        page = as_user(username).get("/playbook")
        assert page.status_code == 200 and "<h1>话术库</h1>" in page.text and "即将上线" not in page.text
        for entry in default_playbook():
            assert f'href="/playbook/{entry.intent}"' in page.text and entry.title in page.text
    assert 'href="/playbook"' in as_user("zhao").get("/").text


def test_a_collector_cannot_post_an_edit(as_user: Any, staff_db: str) -> None:  # noqa: F811
    wang = as_user("wang")
    token = csrf_of(wang.get("/").text)
    response = wang.post(f"/playbook/{HEATING}", data={"csrf_token": token, "based_on": "0", "follow_up": "好"})
    assert response.status_code == 403
    assert stored_versions(staff_db) == []


def test_a_supervisor_edits_and_the_version_is_stored_shown_and_audited(as_user: Any, staff_db: str) -> None:  # noqa: F811
    zhao = as_user("zhao")
    page = zhao.get(f"/playbook/{HEATING}")
    assert page.status_code == 200 and "原始版本" in page.text
    original = default_playbook().get(HEATING)
    assert original is not None and original.answers[0] in page.text

    with clock.frozen(NOW):
        response = zhao.post(
            f"/playbook/{HEATING}",
            data=form_of(page.text, answers="\n".join(NEW_ANSWERS) + "\n\n", note="更口语"),
            follow_redirects=False,
        )

    assert response.status_code == 303 and response.headers["location"] == f"/playbook/{HEATING}?saved=1"
    [version] = stored_versions(staff_db)
    assert (version["intent"], version["version"], version["by"], version["note"]) == (HEATING, 1, "zhao", "更口语")
    # Only the edited field is stored, though the form posts every field: the others stay the YAML's.
    assert version["data"] == {"answers": NEW_ANSWERS}
    [audited] = audit_of(staff_db, "playbook_edited")
    assert (audited["actor"], audited["target"], audited["at"]) == ("zhao", f"playbook:{HEATING}", NOW)
    assert audited["detail"]["fields"] == ["answers"] and audited["detail"]["version"] == 1

    shown = zhao.get(response.headers["location"])
    assert "已保存为第 1 版" in shown.text and "赵主管" in shown.text
    assert f"<ins>{NEW_ANSWERS[0]}</ins>" in shown.text and f"<del>{original.answers[0]}</del>" in shown.text
    listing = as_user("li").get("/playbook").text
    row = re.search(rf'<tr data-intent="{HEATING}">(.*?)</tr>', listing, re.S)
    assert row and "第 1 版" in row.group(1) and "赵主管" in row.group(1)


def test_a_forbidden_phrase_is_refused_with_the_reason_and_the_text_kept(as_user: Any, staff_db: str) -> None:  # noqa: F811
    zhao = as_user("zhao")
    page = zhao.get(f"/playbook/{HEATING}")

    response = zhao.post(f"/playbook/{HEATING}", data=form_of(page.text, follow_up=FORBIDDEN_FOLLOW_UP))

    assert response.status_code == 400
    assert "不能保存：「追问交费日期」里有" in response.text and 'data-category="utilities"' in response.text
    assert 'data-code="forbidden"' in response.text and 'data-field="follow_up"' in response.text
    assert f">{FORBIDDEN_FOLLOW_UP}</textarea>" in response.text
    assert stored_versions(staff_db) == [] and audit_of(staff_db, "playbook_edited") == []


def test_a_schema_error_is_refused_with_the_reason(as_user: Any, staff_db: str) -> None:  # noqa: F811
    zhao = as_user("zhao")
    page = zhao.get(f"/playbook/{HEATING}")

    response = zhao.post(f"/playbook/{HEATING}", data=form_of(page.text, answers=NEW_ANSWERS[0]))

    assert response.status_code == 400
    assert "「机器人的回复」至少要有两种说法" in response.text and f">{NEW_ANSWERS[0]}</textarea>" in response.text
    assert stored_versions(staff_db) == []


def test_a_stale_edit_is_refused_and_the_second_editor_keeps_their_text(as_user: Any, staff_db: str) -> None:  # noqa: F811
    zhao, li = as_user("zhao"), as_user("li")
    zhao_page, li_page = zhao.get(f"/playbook/{HEATING}"), li.get(f"/playbook/{HEATING}")
    assert zhao.post(f"/playbook/{HEATING}", data=form_of(zhao_page.text, follow_up="哪天方便交上？")).status_code == 200

    response = li.post(f"/playbook/{HEATING}", data=form_of(li_page.text, follow_up="您看哪天交？"))

    assert response.status_code == 409
    assert "别人已经保存了第 1 版" in response.text and ">您看哪天交？</textarea>" in response.text
    assert [(v["version"], v["by"], v["data"]["follow_up"]) for v in stored_versions(staff_db)] == [
        (1, "zhao", "哪天方便交上？")
    ]


def test_a_save_without_the_csrf_token_is_refused(as_user: Any, staff_db: str) -> None:  # noqa: F811
    zhao = as_user("zhao")
    form = form_of(zhao.get(f"/playbook/{HEATING}").text, follow_up="哪天方便交上？")
    del form["csrf_token"]
    assert zhao.post(f"/playbook/{HEATING}", data=form).status_code == 403
    assert zhao.post(f"/playbook/{HEATING}", data={**form, "csrf_token": "wrong"}).status_code == 403
    assert stored_versions(staff_db) == []


def test_revert_from_the_page_is_a_new_version(as_user: Any, staff_db: str) -> None:  # noqa: F811
    zhao = as_user("zhao")
    original = default_playbook().get(HEATING)
    assert original is not None
    page = zhao.get(f"/playbook/{HEATING}")
    zhao.post(f"/playbook/{HEATING}", data=form_of(page.text, follow_up="哪天方便交上？"))
    page = zhao.get(f"/playbook/{HEATING}")
    token = csrf_of(page.text)
    assert "恢复到原始版本" in page.text

    response = zhao.post(
        f"/playbook/{HEATING}/revert", data={"csrf_token": token, "version": "0", "based_on": "1"}, follow_redirects=False
    )

    assert response.status_code == 303
    assert [(v["version"], v["by"], v["data"]) for v in stored_versions(staff_db)] == [
        (1, "zhao", {"follow_up": "哪天方便交上？"}),
        (2, "zhao", {}),  # the YAML's wording: nothing edited
    ]
    [audited] = audit_of(staff_db, "playbook_reverted")
    assert audited["detail"]["reverted_from"] == 0 and audited["detail"]["version"] == 2
    assert "恢复自原始版本" in zhao.get(f"/playbook/{HEATING}").text
    stale = zhao.post(f"/playbook/{HEATING}/revert", data={"csrf_token": token, "version": "1", "based_on": "1"})
    assert stale.status_code == 409 and len(stored_versions(staff_db)) == 2


def test_an_unknown_entry_is_404(as_user: Any) -> None:  # noqa: F811
    assert as_user("zhao").get("/playbook/objection_unknown").status_code == 404


@pytest.mark.parametrize(
    ("changes", "field_label", "shown"),
    [
        ({"follow_up": "您看哪天\x00方便交上？"}, "追问交费日期", ">您看哪天方便交上？</textarea>"),
        ({"answers": "\n".join(NEW_ANSWERS) + "\x01"}, "机器人的回复", f"{NEW_ANSWERS[1]}</textarea>"),
        ({"coach.donts": "不得以停暖相威胁\x00"}, "禁忌", ">不得以停暖相威胁</textarea>"),
        ({"follow_up": "哪天方便交上？", "note": "改\x00短"}, "修改说明", 'value="改短"'),
    ],
)
def test_a_control_character_is_refused_politely_and_nothing_is_stored(
    as_user: Any,  # noqa: F811
    staff_db: str,  # noqa: F811
    changes: Dict[str, str],
    field_label: str,
    shown: str,
) -> None:
    zhao = as_user("zhao")
    page = zhao.get(f"/playbook/{HEATING}")

    response = zhao.post(f"/playbook/{HEATING}", data=form_of(page.text, **changes))

    assert response.status_code == 400
    assert f"「{field_label}」里有看不见的控制字符" in response.text and 'data-code="control_character"' in response.text
    assert "\x00" not in response.text and "\x01" not in response.text
    assert shown in response.text  # the text as typed, less the control character
    assert stored_versions(staff_db) == [] and audit_of(staff_db, "playbook_edited") == []


def test_a_version_number_out_of_range_is_a_400_not_a_500(as_user: Any, staff_db: str) -> None:  # noqa: F811
    zhao = as_user("zhao")
    page = zhao.get(f"/playbook/{HEATING}")
    token = csrf_of(page.text)
    too_big = str(2**31)

    assert zhao.post(f"/playbook/{HEATING}", data=form_of(page.text, based_on=too_big)).status_code == 400
    assert zhao.post(f"/playbook/{HEATING}", data=form_of(page.text, based_on=str(10**30))).status_code == 400
    assert zhao.post(f"/playbook/{HEATING}", data=form_of(page.text, based_on="-1")).status_code == 400
    for version in (too_big, str(10**30), "-1"):
        response = zhao.post(
            f"/playbook/{HEATING}/revert", data={"csrf_token": token, "version": version, "based_on": "0"}
        )
        assert response.status_code == 400, version
    assert zhao.get(f"/playbook/{HEATING}?saved={too_big}").status_code == 400
    # The largest number the database holds names no version: refused as unknown, politely.
    largest = zhao.post(
        f"/playbook/{HEATING}/revert", data={"csrf_token": token, "version": str(2**31 - 1), "based_on": "0"}
    )
    assert largest.status_code == 400 and 'data-code="unknown_version"' in largest.text
    assert stored_versions(staff_db) == []
