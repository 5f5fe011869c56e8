"""Viewer fixtures: a populated SQLite store, the viewer booted with uvicorn on a free loopback
port in a thread, and pages of headless Debian Chromium driven by Playwright (never a downloaded
one; the ``browser`` fixture is shared with tests/security, in web_browser.py)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:  # --import-mode=importlib keeps test folders off sys.path
    sys.path.insert(0, _HERE)

from web_browser import chromium_browser  # noqa: E402,F401 (the fixture "browser")
from web_data import ViewerData, huge, populate  # noqa: E402
from web_support import LiveServer  # noqa: E402

from logprobe.store import Store  # noqa: E402
from logprobe.web import create_ui_app  # noqa: E402


@pytest.fixture(scope="module")
def viewer_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, ViewerData]]:
    path = tmp_path_factory.mktemp("viewer") / "viewer.db"
    store = Store.open(f"sqlite:///{path}")
    data = populate(store)
    yield store, data
    store.close()


@pytest.fixture(scope="module")
def viewer(viewer_store: tuple[Store, ViewerData]) -> Iterator[tuple[str, Store, ViewerData]]:
    """Base URL of the viewer (``.../ui/``) without an engine, its store and the data ids."""
    store, data = viewer_store
    with LiveServer(create_ui_app(store)) as server:
        yield f"{server.url}/ui/", store, data


@pytest.fixture(scope="module")
def huge_response(viewer_store: tuple[Store, ViewerData]) -> int:
    return huge(viewer_store[0])


def _page(browser: Any, *, bypass_csp: bool) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=bypass_csp)
    pg = context.new_page()
    errors: list[str] = []
    pg.on("pageerror", lambda e: errors.append(str(e)))
    pg.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    pg.set_default_timeout(20_000)
    yield pg
    context.close()
    assert [e for e in errors if "404" not in e and "400" not in e] == []


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page with the viewer's Content-Security-Policy lifted, so the escaping of data
    is what is tested (not the CSP) and Playwright may evaluate waits. JS errors fail the test."""
    yield from _page(browser, bypass_csp=True)


@pytest.fixture
def strict_page(browser: Any) -> Iterator[Any]:
    """A fresh page under the viewer's CSP; any violation (a console error) fails the test."""
    yield from _page(browser, bypass_csp=False)
