"""The store and web subpackages re-export their public API with a sorted ``__all__``."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("module", ["logprobe.store", "logprobe.web"])
def test_all_is_sorted_and_importable(module: str) -> None:
    mod = importlib.import_module(module)
    assert mod.__all__ == sorted(mod.__all__)
    for name in mod.__all__:
        assert getattr(mod, name) is not None
