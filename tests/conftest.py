"""Shared fixtures: an isolated data directory and environment for every test, the real embedded
engine (loaded once per session), and the path of the shared reference data."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own LOGPROBE_HOME and no provider keys from the developer's shell."""
    home = tmp_path_factory.mktemp("logprobe-home")
    monkeypatch.setenv("LOGPROBE_HOME", str(home))
    for var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "LOGPROBE_API_KEY", "LOGPROBE_DB"):
        monkeypatch.delenv(var, raising=False)
    return home


@pytest.fixture(scope="session")
def engine() -> Iterator[object]:
    """The real embedded engine on the default model, shared by the whole session."""
    from logprobe.engines.llamacpp import LlamaEngine

    eng = LlamaEngine(n_threads=min(2, os.cpu_count() or 1))
    yield eng
    eng.close()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (read-only reference datasets); tests using it skip with a reason if absent"""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"reference data not found at {SHARED_DATA}")
    return SHARED_DATA
