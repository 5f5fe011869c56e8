"""logprobe._json: one set of JSON-safety rules for every layer (no NaN/inf ever written)."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from logprobe._json import dumps, finite, json_safe

LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=5),
    st.floats(allow_nan=True, allow_infinity=True),
)
TREES = st.recursive(
    LEAVES,
    lambda kids: st.one_of(
        st.lists(kids, max_size=4),
        st.tuples(kids, kids),
        st.dictionaries(st.one_of(st.text(max_size=3), st.integers()), kids, max_size=4),
    ),
    max_leaves=20,
)


def _same_shape(raw: Any, safe: Any) -> None:
    if isinstance(raw, float):
        assert safe == (raw if math.isfinite(raw) else None)
    elif isinstance(raw, dict):
        assert list(safe) == [str(k) for k in raw]
        for k, v in raw.items():
            _same_shape(v, safe[str(k)])
    elif isinstance(raw, list | tuple):
        assert isinstance(safe, list) and len(safe) == len(raw)
        for a, b in zip(raw, safe, strict=True):
            _same_shape(a, b)
    else:
        assert safe == raw and type(safe) is type(raw)


@given(TREES)
def test_every_tree_becomes_strict_json_with_only_non_finite_numbers_dropped(tree: Any) -> None:
    safe = json_safe(tree)
    text = json.dumps(safe, allow_nan=False)  # raises on NaN/inf
    assert "NaN" not in text and "Infinity" not in text
    _same_shape(tree, safe)
    assert dumps(tree) == text


def test_numpy_values_become_plain_python() -> None:
    data = {
        "a": np.float32(0.5),
        "b": np.int64(3),
        "c": np.bool_(True),
        "d": np.array([1.0, np.nan, -np.inf]),
        "e": np.float64("nan"),
    }
    assert json_safe(data) == {"a": 0.5, "b": 3, "c": True, "d": [1.0, None, None], "e": None}
    assert [type(v) for v in json_safe(data).values()][:3] == [float, int, bool]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (1, 1.0),
        (-0.5, -0.5),
        (float("nan"), None),
        (float("-inf"), None),
        (np.float32(2.0), 2.0),
    ],
)
def test_finite(value: Any, expected: float | None) -> None:
    assert finite(value) == expected


def test_dumps_refuses_what_it_cannot_make_safe() -> None:
    with pytest.raises(TypeError):
        dumps({"x": object()})
