"""Helpers shared by the application experiments (bench/experiment_*.py of issue 17).

Every interval is a seeded percentile bootstrap over the evaluation items
(:func:`logprobe.calibration.bootstrap_cis`: a resample is a weight vector).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from logprobe.calibration import bootstrap_cis, ece

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
N_BOOT = 1000
SEED = 0


def engine(threads: int = 1) -> Any:
    """The embedded engine with one thread (two threads spin-wait on a shared 2-core box)."""
    from logprobe.engines.llamacpp import LlamaEngine

    return LlamaEngine(n_threads=int(os.environ.get("LOGPROBE_THREADS", threads)))


def weighted_mean(values: Sequence[float]) -> Callable[[np.ndarray], float]:
    v = np.asarray(values, dtype=np.float64)
    return lambda w: float(np.average(v, weights=w))


def cis(
    stats: Mapping[str, Callable[[np.ndarray], float | None]], n: int
) -> dict[str, list[float] | None]:
    """95% intervals of several statistics of the same items (same resamples)."""
    out = bootstrap_cis(lambda w: {k: f(w) for k, f in stats.items()}, n, n_boot=N_BOOT, seed=SEED)
    return {
        k: None if out.get(k) is None else [round(x, 4) for x in out[k]]  # type: ignore[union-attr]
        for k in stats
    }


def resampled(w: np.ndarray) -> np.ndarray:
    """Row indices of a bootstrap resample given as weights."""
    return np.repeat(np.arange(w.size), w.astype(np.int64))


def ece_stat(
    conf: Sequence[float], correct: Sequence[bool], n_bins: int = 10
) -> Callable[[np.ndarray], float]:
    c, y = np.asarray(conf, dtype=np.float64), np.asarray(correct, dtype=bool)

    def f(w: np.ndarray) -> float:
        idx = resampled(w)
        return ece(c[idx], y[idx], n_bins=n_bins)

    return f


def fmt(value: float | None, ci: Sequence[float] | None = None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    s = f"{value:.{digits}f}"
    if ci:
        s += f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"
    return s


def write_json(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def cached_jsonl(path: Path) -> dict[str, dict[str, Any]]:
    """Rows already written by an earlier run, by ``key`` (a rerun scores only the rest)."""
    if not path.is_file():
        return {}
    rows: dict[str, dict[str, Any]] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        rows[str(rec["key"])] = rec
    return rows


def append_jsonl(path: Path, rec: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(rec, ensure_ascii=False) + "\n")
