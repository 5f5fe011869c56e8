"""JSON safety: non-finite floats become ``None`` everywhere in a nested structure."""

from __future__ import annotations

import math
from typing import Any


def finite(value: float | None) -> float | None:
    """``value`` if it is a finite number, else ``None``."""
    if value is None:
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def json_safe(obj: Any) -> Any:
    """Copy of ``obj`` with NaN/inf floats replaced by ``None`` (dicts, lists, tuples walked)."""
    if isinstance(obj, bool) or obj is None or isinstance(obj, (int, str)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalar
        return json_safe(obj.item())
    return obj
