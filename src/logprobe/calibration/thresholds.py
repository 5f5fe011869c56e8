"""Pick the confidence threshold of a review gate or cascade from labelled predictions.

The rule is always: **accept** an output when ``confidence >= threshold``; otherwise **flag** it
(send it to review, or escalate it to a stronger model). Candidate thresholds are the distinct
confidences seen, plus one just above the largest (flag everything). Targets:

``precision=P``       accepted outputs are right at least ``P`` of the time; the lowest such
                      threshold (most outputs accepted) wins.
``errors_caught=E``   at least ``E`` of all wrong outputs are flagged; the lowest such threshold
                      (fewest reviews) wins.
``review_rate=R``     at most ``R`` of all outputs are flagged; the highest such threshold (most
                      errors caught) wins.
``escalation_cost=C`` one escalation costs ``C`` and one accepted error costs 1; the threshold
                      with the lowest expected cost per output wins (ties: fewest escalations).

The trade-off reported at the chosen threshold comes with percentile bootstrap intervals
(seeded): ``threshold_ci`` re-picks the threshold on each resample (how stable the choice is;
a resample on which the target cannot be met is left out);
the other intervals keep the chosen threshold fixed (what it is expected to deliver), and
``target_met_share`` is the share of resamples on which the fixed threshold meets the target.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike

from ..errors import CalibrationError
from .bootstrap import bootstrap_cis
from .metrics import FloatArray, Grouped, check_inputs

TargetKind = Literal["precision", "errors_caught", "review_rate", "escalation_cost"]
TARGET_KINDS: tuple[str, ...] = ("precision", "errors_caught", "review_rate", "escalation_cost")


@dataclass(frozen=True)
class Target:
    """What the threshold must achieve (see module docstring)."""

    kind: TargetKind
    value: float

    def __post_init__(self) -> None:
        if self.kind not in TARGET_KINDS:
            raise CalibrationError(
                f"unknown target {self.kind!r}; choose one of {', '.join(TARGET_KINDS)}",
                param="target",
            )
        if not math.isfinite(self.value):
            raise CalibrationError(f"target {self.kind} must be a finite number", param="target")
        if self.kind == "escalation_cost":
            if self.value < 0:
                raise CalibrationError("escalation_cost must be >= 0", param="target")
        elif not 0 <= self.value <= 1:
            raise CalibrationError(
                f"target {self.kind} must be in [0, 1], got {self.value:g}", param="target"
            )

    def __str__(self) -> str:
        return f"{self.kind}={self.value:g}"


def parse_target(text: str) -> Target:
    """Parse ``"errors_caught=0.8"`` (or ``precision=``, ``review_rate=``, ``escalation_cost=``)."""
    kind, sep, value = text.partition("=")
    if not sep:
        raise CalibrationError(
            f"target must look like KIND=VALUE (e.g. errors_caught=0.8), got {text!r}",
            param="target",
        )
    try:
        number = float(value)
    except ValueError:
        raise CalibrationError(
            f"target value must be a number, got {value!r}", param="target"
        ) from None
    return Target(kind.strip(), number)  # type: ignore[arg-type]


@dataclass(frozen=True)
class TradeOff:
    """What a threshold does on a set of predictions (shares are of all outputs unless named)."""

    threshold: float
    review_rate: float  # share flagged (confidence < threshold)
    coverage: float  # share accepted = 1 - review_rate
    precision: float | None  # accuracy of the accepted outputs (None if none accepted)
    errors_caught: float | None  # share of the wrong outputs that are flagged (None if no errors)
    missed_error_rate: float  # share of all outputs that are accepted and wrong
    expected_cost: float | None  # escalation_cost targets only


@dataclass(frozen=True)
class ThresholdChoice:
    """The picked threshold, its trade-off, and bootstrap intervals (see module docstring)."""

    target: Target
    n: int
    tradeoff: TradeOff
    threshold_ci: tuple[float, float] | None = None
    intervals: dict[str, tuple[float, float] | None] = field(default_factory=dict)
    target_met_share: float | None = None
    baseline: dict[str, float | None] = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        return self.tradeoff.threshold

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": {"kind": self.target.kind, "value": self.target.value},
            "rule": "accept if confidence >= threshold, else flag for review/escalation",
            "n": self.n,
            **asdict(self.tradeoff),
            "threshold_ci": None if self.threshold_ci is None else list(self.threshold_ci),
            "ci": {k: None if v is None else list(v) for k, v in self.intervals.items()},
            "target_met_share": self.target_met_share,
            "baseline": self.baseline,
        }


@dataclass(frozen=True)
class _Curve:
    """Per candidate threshold (ascending): flagged counts and flagged errors."""

    thresholds: FloatArray
    flagged: FloatArray
    flagged_errors: FloatArray
    n: float
    n_errors: float


def _curve(values: FloatArray, count: FloatArray, errors: FloatArray) -> _Curve:
    """Candidates from per-confidence-group counts (groups ascending; empty groups dropped)."""
    keep = count > 0
    values, count, errors = values[keep], count[keep], errors[keep]
    thr = np.append(values, np.nextafter(values[-1], np.inf))  # last: flag everything
    flagged = np.concatenate([[0.0], np.cumsum(count)])  # confidence < thr[j]
    flagged_errors = np.concatenate([[0.0], np.cumsum(errors)])
    return _Curve(thr, flagged, flagged_errors, float(count.sum()), float(errors.sum()))


def _costs(c: _Curve, cost: float) -> FloatArray:
    return (cost * c.flagged + (c.n_errors - c.flagged_errors)) / c.n


def _pick(c: _Curve, target: Target) -> int:
    """Index of the chosen candidate threshold; CalibrationError when none meets the target."""
    n, tol = c.n, 1e-12
    accepted = n - c.flagged
    if target.kind == "precision":
        with np.errstate(invalid="ignore", divide="ignore"):
            prec = (accepted - (c.n_errors - c.flagged_errors)) / accepted
        ok = np.flatnonzero((accepted > 0) & (prec >= target.value - tol))
        if ok.size == 0:
            best = np.nanmax(prec)
            raise CalibrationError(
                f"no threshold reaches precision {target.value:g}; the best is {best:.4g}",
                param="target",
            )
        return int(ok[0])
    if target.kind == "errors_caught":
        if c.n_errors == 0:
            raise CalibrationError(
                "errors_caught needs at least one wrong prediction", param="target"
            )
        return int(np.flatnonzero(c.flagged_errors / c.n_errors >= target.value - tol)[0])
    if target.kind == "review_rate":
        return int(np.flatnonzero(c.flagged / n <= target.value + tol)[-1])
    cost = _costs(c, target.value)
    return int(np.flatnonzero(cost <= cost.min() + tol)[0])


def _tradeoff_at(
    values: FloatArray, count: FloatArray, errors: FloatArray, threshold: float, target: Target
) -> TradeOff:
    n, n_err = float(count.sum()), float(errors.sum())
    flag = values < threshold
    n_flag, caught = float(count[flag].sum()), float(errors[flag].sum())
    missed = n_err - caught
    n_acc = n - n_flag
    return TradeOff(
        threshold=float(threshold),
        review_rate=n_flag / n,
        coverage=n_acc / n,
        precision=(n_acc - missed) / n_acc if n_acc else None,
        errors_caught=caught / n_err if n_err else None,
        missed_error_rate=missed / n,
        expected_cost=(target.value * n_flag + missed) / n
        if target.kind == "escalation_cost"
        else None,
    )


def _meets(t: TradeOff, target: Target, best_cost: float) -> bool:
    tol = 1e-12
    if target.kind == "precision":
        return t.precision is not None and t.precision >= target.value - tol
    if target.kind == "errors_caught":
        return t.errors_caught is not None and t.errors_caught >= target.value - tol
    if target.kind == "review_rate":
        return t.review_rate <= target.value + tol
    return t.expected_cost is not None and t.expected_cost <= best_cost + tol


_REPORTED = ("review_rate", "precision", "errors_caught", "missed_error_rate", "expected_cost")


def pick_threshold(
    confidence: ArrayLike,
    correct: ArrayLike,
    target: Target | str,
    *,
    n_boot: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> ThresholdChoice:
    """Choose the threshold that meets ``target`` on these predictions (see module docstring).

    Raises:
        CalibrationError: bad inputs, or a target no threshold can meet (e.g. a precision above
            that of the most confident outputs, or ``errors_caught`` with no wrong outputs).
    """
    tgt = parse_target(target) if isinstance(target, str) else target
    conf, corr = check_inputs(confidence, correct)
    g = Grouped.of(conf, corr)
    count, cor = g.sums()
    full = _curve(g.values, count, count - cor)
    chosen_t = float(full.thresholds[_pick(full, tgt)])
    chosen = _tradeoff_at(g.values, count, count - cor, chosen_t, tgt)
    met: list[bool] = []

    def stat(w: FloatArray) -> dict[str, float | None]:
        cnt, cr = g.sums(w)
        sub = _curve(g.values, cnt, cnt - cr)
        t = _tradeoff_at(g.values, cnt, cnt - cr, chosen_t, tgt)
        met.append(_meets(t, tgt, float(_costs(sub, tgt.value).min())))
        out: dict[str, float | None] = {k: getattr(t, k) for k in _REPORTED}
        try:
            out["threshold"] = float(sub.thresholds[_pick(sub, tgt)])
        except CalibrationError:
            out["threshold"] = None
        return out

    cis = bootstrap_cis(stat, conf.size, n_boot=n_boot, seed=seed, level=level)
    names = [k for k in _REPORTED if k != "expected_cost" or tgt.kind == "escalation_cost"]
    return ThresholdChoice(
        target=tgt,
        n=conf.size,
        tradeoff=chosen,
        threshold_ci=cis.get("threshold"),
        intervals={k: cis.get(k) for k in names},
        target_met_share=sum(met) / len(met) if met else None,
        baseline={
            "error_rate": float(np.mean(~corr)),
            "review_all_cost": tgt.value if tgt.kind == "escalation_cost" else None,
        },
    )


def tradeoff_curve(confidence: ArrayLike, correct: ArrayLike) -> dict[str, list[float | None]]:
    """Every candidate threshold (ascending) with its review rate, precision and errors caught.

    JSON-ready (``None`` where a value is undefined): the data behind an interactive threshold
    slider in the web viewer.
    """
    conf, corr = check_inputs(confidence, correct)
    g = Grouped.of(conf, corr)
    count, cor = g.sums()
    c = _curve(g.values, count, count - cor)
    accepted = c.n - c.flagged
    missed = c.n_errors - c.flagged_errors
    precision = [
        None if a == 0 else float((a - m) / a) for a, m in zip(accepted, missed, strict=True)
    ]
    caught = [None if c.n_errors == 0 else float(e / c.n_errors) for e in c.flagged_errors]
    return {
        "threshold": [float(t) for t in c.thresholds],
        "review_rate": [float(f / c.n) for f in c.flagged],
        "precision": precision,
        "errors_caught": caught,
        "missed_error_rate": [float(m / c.n) for m in missed],
    }
