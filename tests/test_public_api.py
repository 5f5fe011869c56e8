"""The public API: explicit, sorted ``__all__`` lists whose names all resolve."""

from __future__ import annotations

import importlib

import pytest

PACKAGES = [
    "logprobe",
    "logprobe.engines",
    "logprobe.normalize",
    "logprobe.analysis",
    "logprobe.tasks",
    "logprobe.calibration",
    "logprobe.store",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_is_sorted_and_resolves(name: str) -> None:
    mod = importlib.import_module(name)
    names = list(mod.__all__)
    assert len(names) == len(set(names))
    for n in names:
        assert hasattr(mod, n), f"{name}.{n} is in __all__ but missing"
    if name == "logprobe":
        assert names == sorted(names)
