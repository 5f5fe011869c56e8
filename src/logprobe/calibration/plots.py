"""Reliability diagrams and risk-coverage curves: as JSON-ready data, and as PNG (matplotlib).

:func:`reliability_data` and :func:`risk_coverage_data` return plain dicts (``None`` for
undefined values) for the web viewer; :func:`save_calibration_plot` draws both panels into a PNG
with matplotlib's Agg canvas (no pyplot, no global state). matplotlib is the ``calibration``
extra and is imported only when a PNG is drawn.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from ..errors import CalibrationError
from . import metrics as m

MAX_CURVE_POINTS = 500


def reliability_data(
    confidence: ArrayLike,
    correct: ArrayLike,
    n_bins: int = m.DEFAULT_BINS,
    binning: m.Binning = "equal_width",
) -> dict[str, Any]:
    """Per-bin data of a reliability diagram plus ECE/MCE.

    Returns ``{"n", "n_bins", "binning", "ece", "mce", "bins": [{"lower", "upper", "count",
    "accuracy", "confidence", "gap"}]}``; ``accuracy``/``confidence``/``gap`` are ``None`` for
    empty bins.
    """
    conf, corr = m.check_inputs(confidence, correct)
    b = m.bin_stats(conf, corr, n_bins, binning)

    def num(v: float) -> float | None:
        return None if not np.isfinite(v) else float(v)

    bins = [
        {
            "lower": float(lo),
            "upper": float(hi),
            "count": int(c),
            "accuracy": num(a),
            "confidence": num(mc),
            "gap": num(a - mc),
        }
        for lo, hi, c, a, mc in zip(
            b.lower, b.upper, b.count, b.accuracy, b.confidence, strict=True
        )
    ]
    return {
        "n": int(conf.size),
        "n_bins": int(n_bins),
        "binning": binning,
        "ece": m.ece(conf, corr, n_bins, binning),
        "mce": m.mce(conf, corr, n_bins, binning),
        "bins": bins,
    }


def risk_coverage_data(
    confidence: ArrayLike,
    correct: ArrayLike,
    max_points: int = MAX_CURVE_POINTS,
) -> dict[str, Any]:
    """Risk-coverage curve (most confident first) with AURC and its random/oracle references.

    Returns ``{"n", "coverage": [...], "risk": [...], "threshold": [...], "aurc",
    "oracle_aurc", "random_aurc", "error_rate"}``; the curve has one point per distinct
    confidence, thinned evenly to at most ``max_points`` (the last point, full coverage, kept).
    """
    conf, corr = m.check_inputs(confidence, correct)
    coverage, risk, thr = m.risk_coverage(conf, corr)
    if max_points < 2:
        raise CalibrationError("max_points must be >= 2", param="max_points")
    if coverage.size > max_points:
        keep = np.unique(np.linspace(0, coverage.size - 1, max_points).round().astype(int))
        coverage, risk, thr = coverage[keep], risk[keep], thr[keep]
    error_rate = float(np.mean(~corr))
    return {
        "n": int(conf.size),
        "coverage": coverage.tolist(),
        "risk": risk.tolist(),
        "threshold": thr.tolist(),
        "aurc": m.aurc(conf, corr),
        "oracle_aurc": m.oracle_aurc(corr),
        "random_aurc": error_rate,
        "error_rate": error_rate,
    }


def _require_matplotlib() -> Any:
    try:
        from matplotlib.figure import Figure
    except ImportError:
        raise CalibrationError(
            "drawing plots needs matplotlib: pip install 'logprobe[calibration]'", param="plot"
        ) from None
    return Figure


COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")


def _draw_reliability(ax: Any, series: Sequence[tuple[str, dict[str, Any]]]) -> None:
    """The first series as bars (accuracy per bin), every series as a line through the bins'
    (mean confidence, accuracy) points."""
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="perfect")
    first = series[0][1]
    filled = [b for b in first["bins"] if b["count"] > 0]
    ax.bar(
        [(b["lower"] + b["upper"]) / 2 for b in filled],
        [b["accuracy"] for b in filled],
        width=[b["upper"] - b["lower"] or 0.01 for b in filled],
        alpha=0.25,
        color=COLOURS[0],
        edgecolor="black",
        linewidth=0.4,
    )
    for k, (name, d) in enumerate(series):
        pts = [b for b in d["bins"] if b["count"] > 0]
        ax.plot(
            [b["confidence"] for b in pts],
            [b["accuracy"] for b in pts],
            marker="o",
            markersize=3,
            color=COLOURS[k % len(COLOURS)],
            linewidth=1.2,
            label=f"{name} (ECE {d['ece']:.3f})",
        )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability diagram")
    ax.legend(loc="upper left", fontsize=8)


def _draw_risk_coverage(ax: Any, series: Sequence[tuple[str, dict[str, Any]]]) -> None:
    for k, (name, d) in enumerate(series):
        ax.plot(
            d["coverage"],
            d["risk"],
            color=COLOURS[k % len(COLOURS)],
            label=f"{name} (AURC {d['aurc']:.3f})",
        )
    d0 = series[0][1]
    ax.axhline(
        d0["error_rate"],
        linestyle="--",
        color="grey",
        linewidth=1,
        label=f"random (AURC {d0['random_aurc']:.3f})",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("coverage (share accepted, most confident first)")
    ax.set_ylabel("risk (error rate of accepted)")
    ax.set_title("Risk-coverage")
    ax.legend(loc="upper left", fontsize=8)


def save_calibration_plot(
    path: str | Path,
    confidence: ArrayLike,
    correct: ArrayLike,
    *,
    calibrated: ArrayLike | Mapping[str, ArrayLike] | None = None,
    calibrated_label: str = "calibrated",
    n_bins: int = m.DEFAULT_BINS,
    title: str | None = None,
) -> Path:
    """Write a PNG with a reliability diagram and a risk-coverage curve side by side.

    ``calibrated`` (same rows as ``confidence``) adds recalibrated confidences as more series:
    one array (named ``calibrated_label``) or ``{name: array}``. Returns the written path.
    """
    Figure = _require_matplotlib()
    others: dict[str, ArrayLike] = {}
    if isinstance(calibrated, Mapping):
        others = dict(calibrated)
    elif calibrated is not None:
        others = {calibrated_label: calibrated}
    series_r = [("raw", reliability_data(confidence, correct, n_bins))]
    series_c = [("raw", risk_coverage_data(confidence, correct))]
    for name, conf in others.items():
        series_r.append((name, reliability_data(conf, correct, n_bins)))
        series_c.append((name, risk_coverage_data(conf, correct)))
    fig = Figure(figsize=(10, 4.4), dpi=100, layout="constrained")
    ax_r, ax_c = fig.subplots(1, 2)
    _draw_reliability(ax_r, series_r)
    _draw_risk_coverage(ax_c, series_c)
    if title:
        fig.suptitle(title)
    out = Path(path)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(out, format="png")
    except OSError as e:
        raise CalibrationError(
            f"cannot write plot {out}: {e.strerror or e}", param="plot"
        ) from None
    return out
