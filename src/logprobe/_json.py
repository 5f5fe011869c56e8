"""JSON safety, once for every layer: what logprobe writes as JSON is always valid JSON.

Rules (the strictest of the five helpers this module replaced):

* floats that are NaN or infinite become ``None`` (JSON has no such numbers; ``-inf`` logprobs
  are clamped to :data:`~logprobe.types.LOGPROB_FLOOR` earlier, by the types themselves);
* numpy scalars become plain ``bool``/``int``/``float``, numpy arrays become lists;
* mappings become dicts with string keys, lists and tuples become lists, recursively;
* everything else (str, int, bool, None, and anything ``json`` would reject anyway) is kept.

Pair it with ``json.dumps(..., allow_nan=False)`` (:func:`dumps`) so a slip fails loudly instead
of writing ``NaN``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def finite(value: float | None) -> float | None:
    """``value`` as a float if it is a finite number, else ``None``."""
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def json_safe(value: Any) -> Any:
    """A copy of ``value`` that ``json.dumps(..., allow_nan=False)`` accepts (rules above)."""
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float | np.floating):
        return finite(float(value))
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def dumps(value: Any, **kwargs: Any) -> str:
    """``json.dumps`` of :func:`json_safe` ``(value)``, refusing NaN/inf (``allow_nan=False``)."""
    return json.dumps(json_safe(value), allow_nan=False, **kwargs)


__all__ = ["dumps", "finite", "json_safe"]
