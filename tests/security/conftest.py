"""Security, limits and fault tests: servers booted for real (uvicorn in a thread, or
``logprobe serve`` in a subprocess) and attacked with httpx, raw sockets and Chromium."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

# the store tests' real PostgreSQL server (initdb + pg_ctl on loopback), reused as a fixture
_STORE_CONFTEST = Path(__file__).resolve().parents[1] / "store" / "conftest.py"
_spec = importlib.util.spec_from_file_location("tests_store_conftest", _STORE_CONFTEST)
assert _spec is not None and _spec.loader is not None
_store_conftest = importlib.util.module_from_spec(_spec)
sys.modules["tests_store_conftest"] = _store_conftest
_spec.loader.exec_module(_store_conftest)
postgres_server = _store_conftest.postgres_server

# headless Debian Chromium under Playwright: the viewer tests' fixture, shared from tests/web
_WEB = str(Path(__file__).resolve().parents[1] / "web")
if _WEB not in sys.path:
    sys.path.insert(0, _WEB)

from web_browser import chromium_browser  # noqa: E402,F401 (the fixture "browser")
