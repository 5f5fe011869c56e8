"""Security, limits and fault tests: servers booted for real (uvicorn in a thread, or
``logprobe serve`` in a subprocess) and attacked with httpx, raw sockets and Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .sec_support import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
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


