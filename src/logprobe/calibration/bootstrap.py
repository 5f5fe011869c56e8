"""Percentile bootstrap intervals, with a resample given as row weights.

Drawing rows with replacement is the same as giving row ``i`` the weight "how many times it was
drawn"; every metric in :mod:`.metrics` can be computed from weighted per-group sums, so a
resample costs O(n) and no re-sorting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from ..errors import CalibrationError
from .metrics import FloatArray


def bootstrap_cis(
    statistic: Callable[[FloatArray], Mapping[str, float | None]],
    n: int,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, tuple[float, float] | None]:
    """Percentile bootstrap intervals of several statistics over the same ``n_boot`` resamples.

    ``statistic(w)`` gets the resample as weights (``w[i]`` = how many times row ``i`` was
    drawn; they sum to ``n``) and returns ``{name: value}``; a value may be ``None`` (or the call
    may raise :class:`CalibrationError`) when a resample cannot support it. A name gets ``None``
    when fewer than half of the resamples gave it a value, or when ``n_boot == 0`` or ``n < 2``.
    """
    if n_boot < 0 or not 0 < level < 1:
        raise CalibrationError("n_boot must be >= 0 and level in (0, 1)", param="n_boot")
    if n_boot == 0 or n < 2:
        return {}
    rng = np.random.default_rng(seed)
    values: dict[str, list[float]] = {}
    for _ in range(n_boot):
        w = np.bincount(rng.integers(0, n, size=n), minlength=n).astype(np.float64)
        try:
            out = statistic(w)
        except CalibrationError:
            continue
        for name, v in out.items():
            if v is not None and np.isfinite(v):
                values.setdefault(name, []).append(float(v))
    alpha = (1 - level) / 2
    result: dict[str, tuple[float, float] | None] = {}
    for name, vs in values.items():
        if len(vs) >= n_boot / 2:
            lo, hi = np.quantile(vs, [alpha, 1 - alpha])
            result[name] = (float(lo), float(hi))
    return result


def bootstrap_ci(
    statistic: Callable[[FloatArray], float | None],
    n: int,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> tuple[float, float] | None:
    """Percentile bootstrap interval of one statistic of the resample weights (see
    :func:`bootstrap_cis`); ``None`` when it cannot be estimated."""
    return bootstrap_cis(
        lambda w: {"v": statistic(w)}, n, n_boot=n_boot, seed=seed, level=level
    ).get("v")
