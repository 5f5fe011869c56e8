"""Engine test fixtures: ``fake``, the scripted OpenAI stand-in (see :mod:`.remote_fakes`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .remote_fakes import Scripted


@pytest.fixture
def fake() -> Iterator[Scripted]:
    s = Scripted()
    yield s
    s.close()
