"""The web chat page: Chinese UI, local assets only, strict security headers."""

import asyncio
import json
import re
from pathlib import Path

import pytest

from bot import wording
from bot.channels import webchat_page
from bot.channels.webchat_page import ASSETS, STATIC_DIR, asset, page

REMOTE_STYLE_OR_FONT = re.compile(r"""@import\s+(?:url\()?\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//""")


def test_the_page_is_chinese_and_configures_the_widget() -> None:
    labels = wording.catalogue()["webchat_page"]
    response = asyncio.run(page(None))  # type: ignore[arg-type]
    html = response.body.decode("utf-8")
    assert response.status == 200
    assert '<html lang="zh-CN">' in html and f"<title>{labels['title']}</title>" in html
    assert f"<noscript>{labels['noscript']}</noscript>" in html
    assert '<script src="rasa-webchat.js"></script>' in html and '<script src="chat.js"></script>' in html
    assert "<script>" not in html  # no inline script: the CSP allows 'self' only
    block = re.search(r'<script id="page-wording" type="application/json">(.*?)</script>', html, re.S)
    assert block is not None and json.loads(block.group(1)) == labels
    # 退出: a button with its label from the wording; the script posts the id to session/end, then starts over.
    assert f'<button id="sign-out" class="sign-out" type="button">{labels["sign_out"]}</button>' in html
    assert '<p id="session-notice"' in html
    script = (STATIC_DIR / "chat.js").read_text(encoding="utf-8")
    assert not re.search(r"[\u4e00-\u9fff]", script), "the page's labels live in data/wording.yml"
    assert 'SIGN_OUT_URL = "session/end"' in script and "session_ended:" in script
    for reason in ("signed_out", "idle", "max_age"):
        assert labels[f"ended_{reason}"]  # what the page says after each kind of end
    for setting in (
        "title: WORDING.title",
        "inputTextFieldHint: WORDING.input_hint",
        'initPayload: "/greet"',
        "socketUrl: window.location.origin",
        'params: { storage: "local" }',
        "showFullScreenButton: false",  # the page is the chat: nothing to enlarge
        "customData: {",
    ):
        assert setting in script


def test_a_label_cannot_break_out_of_the_page(monkeypatch: pytest.MonkeyPatch) -> None:
    hostile = {**wording.catalogue()["webchat_page"], "title": "</title><script>x()</script>"}
    hostile["subtitle"] = "</script><script>alert(1)</script>"
    monkeypatch.setitem(wording.catalogue(), "webchat_page", hostile)
    html = webchat_page.render_page()
    assert "<script>x()" not in html and "<script>alert(1)" not in html
    assert "&lt;/title&gt;" in html
    block = re.search(r'<script id="page-wording" type="application/json">(.*?)</script>', html, re.S)
    assert block is not None and json.loads(block.group(1))["subtitle"] == hostile["subtitle"]


def test_the_page_forbids_remote_scripts_styles_fonts_and_connections() -> None:
    headers = asyncio.run(page(None)).headers  # type: ignore[arg-type]
    policy = dict(part.strip().split(" ", 1) for part in headers["Content-Security-Policy"].split(";"))
    assert policy["default-src"] == "'none'"
    assert policy["script-src"] == "'self'"
    assert policy["connect-src"] == "'self'"
    assert policy["font-src"] == "'self' data:"
    assert policy["style-src"] == "'self' 'unsafe-inline'"
    assert headers["X-Content-Type-Options"] == "nosniff"


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_every_asset_is_served_locally_and_fetches_nothing_remote(name: str) -> None:
    response = asyncio.run(asset(None, name))  # type: ignore[arg-type]
    assert response.status == 200
    assert response.content_type == ASSETS[name][0]
    text = (STATIC_DIR / name).read_text(encoding="utf-8")
    assert not REMOTE_STYLE_OR_FONT.search(text), name
    assert "fonts.googleapis.com" not in text and "cdn.jsdelivr.net" not in text


def test_the_vendored_bundle_is_rasa_webchat_1_x_with_its_licence() -> None:
    bundle = (STATIC_DIR / "rasa-webchat.js").read_text(encoding="utf-8")
    assert bundle.startswith("!function(e,t){")
    assert "e.WebChat=t()" in bundle  # the UMD global
    assert '"1.0.1"' in bundle
    assert "Apache License" in (STATIC_DIR / "rasa-webchat.LICENSE").read_text(encoding="utf-8")


@pytest.mark.parametrize("name", ["index.html", "../webchat.py", "..%2Fwebchat.py", "VENDORED.md", ""])
def test_nothing_else_is_served(name: str) -> None:
    assert asyncio.run(asset(None, name)).status == 404  # type: ignore[arg-type]


def test_the_short_url_redirects_to_the_page() -> None:
    response = asyncio.run(webchat_page.redirect_to_page(None))  # type: ignore[arg-type]
    assert response.status == 302 and response.headers["Location"] == "/chat/"


def test_static_files_exist() -> None:
    assert all((STATIC_DIR / name).is_file() for name in ASSETS)
    assert Path(STATIC_DIR / "index.html").is_file()
