"""Security, limits and fault tests: servers booted for real (uvicorn in a thread, or
``logprobe serve`` in a subprocess) and attacked with httpx, raw sockets and Chromium."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .sec_support import CHROMIUM, CHROMIUM_ARGS

# the store tests' real PostgreSQL server (initdb + pg_ctl on loopback), reused as a fixture
_STORE_CONFTEST = Path(__file__).resolve().parents[1] / "store" / "conftest.py"
_spec = importlib.util.spec_from_file_location("tests_store_conftest", _STORE_CONFTEST)
assert _spec is not None and _spec.loader is not None
_store_conftest = importlib.util.module_from_spec(_spec)
sys.modules["tests_store_conftest"] = _store_conftest
_spec.loader.exec_module(_store_conftest)
postgres_server = _store_conftest.postgres_server


@pytest.fixture(scope="module")  # not session: tests/web starts its own Playwright
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
