"""The viewer behind a key, in headless Chromium: login page, session cookie, playground POST."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from logprobe.store import Store
from logprobe.web import create_ui_app

from .sec_support import KEY, LiveServer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def keyed_ui(engine: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = Store.open(f"sqlite:///{tmp_path_factory.mktemp('ui') / 'ui.db'}")
    store.create_run("private-run")
    with LiveServer(create_ui_app(store, engine, api_key=KEY)) as server:
        yield server.url
    store.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.set_default_timeout(30_000)
    yield pg
    context.close()
    assert errors == []


def test_login_then_browse_and_generate(keyed_ui: str, page: Any, tmp_path: Path) -> None:
    page.goto(keyed_ui + "/ui/run.html?name=private-run")
    assert page.url.startswith(keyed_ui + "/ui/login?next=")
    assert page.locator("main h1").inner_text() == "Log in"
    page.fill("#key", "wrong")
    page.click("#login")
    assert page.locator("#login-error").inner_text() == "wrong key"
    page.fill("#key", KEY)
    page.click("#login")
    page.wait_for_url(keyed_ui + "/ui/run.html?name=private-run")
    page.wait_for_selector("text=private-run")
    assert page.evaluate("document.cookie") == ""  # HttpOnly: page scripts cannot read it
    page.goto(keyed_ui + "/ui/playground.html")
    page.fill("textarea[name=prompt]", "The capital of France is")
    page.fill("input[name=max_tokens]", "4")
    page.click("#generate")
    page.wait_for_function(
        "document.getElementById('live-status').textContent.startsWith('done')", timeout=120_000
    )
    assert page.locator("#live-heatmap .tok").count() == 4


def test_an_expired_session_sends_the_page_back_to_login(keyed_ui: str, page: Any) -> None:
    page.context.add_cookies(
        [{"name": "logprobe_session", "value": "1.deadbeef", "url": keyed_ui + "/ui/"}]
    )
    page.goto(keyed_ui + "/ui/")
    page.wait_for_url("**/ui/login?next=*")
    assert page.locator("#key").count() == 1
