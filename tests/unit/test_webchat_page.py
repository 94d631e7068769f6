"""The web chat page: Chinese UI, local assets only, strict security headers."""

import asyncio
import re
from pathlib import Path

import pytest

from bot.channels import webchat_page
from bot.channels.webchat_page import ASSETS, STATIC_DIR, asset, page

REMOTE_STYLE_OR_FONT = re.compile(r"""@import\s+(?:url\()?\s*["']?(?:https?:)?//|url\(\s*["']?(?:https?:)?//""")


def test_the_page_is_chinese_and_configures_the_widget() -> None:
    response = asyncio.run(page(None))  # type: ignore[arg-type]
    html = response.body.decode("utf-8")
    assert response.status == 200
    assert '<html lang="zh-CN">' in html and "<title>物业服务助手</title>" in html
    assert '<script src="rasa-webchat.js"></script>' in html and '<script src="chat.js"></script>' in html
    assert "<script>" not in html  # no inline script: the CSP allows 'self' only
    script = (STATIC_DIR / "chat.js").read_text(encoding="utf-8")
    for setting in (
        'title: "物业服务助手"',
        'inputTextFieldHint: "请输入您的问题…"',
        'initPayload: "/greet"',
        "socketUrl: window.location.origin",
        'params: { storage: "local" }',
        "showFullScreenButton: false",  # the page is the chat: nothing to enlarge
        "customData: {",
    ):
        assert setting in script


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
