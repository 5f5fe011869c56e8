"""The headless Chromium fixture of the browser tests (tests/web and tests/security): Debian's
``/usr/bin/chromium`` driven by Playwright, never a downloaded browser."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from web_support import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="module", name="browser")
def chromium_browser() -> Iterator[Any]:
    """One headless Chromium per test module, skipped (with the reason) when Chromium or
    Playwright is missing. Module scope: no Playwright instance stays open past the module that
    uses it, so the two suites never hold two at once."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} not found (apt-get install -y chromium chromium-driver)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install playwright; no browser download)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
