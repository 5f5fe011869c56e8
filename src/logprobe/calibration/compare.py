"""Before/after comparison of a calibrator on held-out rows, with paired bootstrap intervals.

A calibrator that maps whole distributions (temperature, vector, matrix, contextual) changes
the probabilities *and* possibly the decision (the argmax), so accuracy and macro-F1 move too;
Platt and isotonic keep the decision and recalibrate its confidence. :func:`apply_calibrator`
gives the calibrated predictions; :func:`compare_predictions` reports, on the same bootstrap
resamples (paired), every metric before and after, their difference, and the majority-label
baseline (the most frequent gold label of the *fit* rows, predicted for every row).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from . import metrics as m
from .bootstrap import bootstrap_cis
from .io import Predictions
from .recalibrate import Calibrator

COMPARED = (
    "accuracy",
    "macro_f1",
    "ece",
    "brier",
    "brier_multiclass",
    "nll_multiclass",
    "roc_auc",
    "mean_confidence",
)


def apply_calibrator(cal: Calibrator, p: Predictions) -> Predictions:
    """``p`` with calibrated confidences (and probs, decisions and correctness when ``p`` has
    distributions and ``cal`` maps them)."""
    if p.probs is None or p.pred is None:
        return replace(p, confidence=cal.apply_confidence(p.confidence))
    probs = cal.apply_probs(p.probs)
    rows = np.arange(p.n)
    if not cal.changes_decision:
        return replace(p, confidence=cal.apply_confidence(p.confidence), probs=probs)
    pred = probs.argmax(axis=1)
    correct = p.correct if p.gold is None else pred == p.gold
    return replace(p, confidence=probs[rows, pred], probs=probs, pred=pred, correct=correct)


def macro_f1(
    pred: NDArray[np.int64], gold: NDArray[np.int64], k: int, w: m.FloatArray | None = None
) -> float:
    """Mean F1 over the labels that occur as gold or prediction (row weights ``w``)."""
    w = np.ones(pred.size) if w is None else w
    hit = pred == gold
    tp = np.bincount(gold[hit], weights=w[hit], minlength=k)
    fp = np.bincount(pred[~hit], weights=w[~hit], minlength=k)
    fn = np.bincount(gold[~hit], weights=w[~hit], minlength=k)
    denom = 2 * tp + fp + fn
    present = denom > 0
    return float(np.mean(2 * tp[present] / denom[present])) if present.any() else 0.0


class Outcome:
    """Every compared metric of one set of predictions, as a function of resample weights."""

    def __init__(self, p: Predictions, n_bins: int):
        from .report import MetricSet

        self.metrics = MetricSet(p.confidence, p.correct, p.probs, p.gold, n_bins)
        self.pred, self.gold = p.pred, p.gold
        self.k = 0 if p.probs is None else p.probs.shape[1]

    def __call__(self, w: m.FloatArray | None = None) -> dict[str, float | None]:
        out = self.metrics(w)
        if self.pred is not None and self.gold is not None:
            out["macro_f1"] = macro_f1(self.pred, self.gold, self.k, w)
        return {k: out[k] for k in COMPARED if k in out}


def majority_label(fit: Predictions) -> int | None:
    """Index of the most frequent gold label among the fit rows (None without gold)."""
    if fit.gold is None or fit.probs is None:
        return None
    return int(np.bincount(fit.gold, minlength=fit.probs.shape[1]).argmax())


def compare_predictions(
    before: Predictions,
    after: Predictions,
    *,
    n_bins: int,
    n_boot: int,
    seed: int,
    level: float = 0.95,
    majority: int | None = None,
) -> dict[str, Any]:
    """``{"before", "after", "delta", "baseline"}``; each metric ``{"value", "ci"}`` (paired
    resamples: the delta's interval is that of the difference, not of two separate draws)."""
    b, a = Outcome(before, n_bins), Outcome(after, n_bins)
    base_pred = None
    if majority is not None and before.gold is not None:
        base_pred = np.full(before.n, majority, dtype=np.int64)
    k = b.k

    def stat(w: m.FloatArray | None) -> dict[str, float | None]:
        vb, va = b(w), a(w)
        out: dict[str, float | None] = {}
        for name in vb:
            out[f"before.{name}"] = vb[name]
            out[f"after.{name}"] = va.get(name)
            if vb[name] is not None and va.get(name) is not None:
                out[f"delta.{name}"] = va[name] - vb[name]  # type: ignore[operator]
        if base_pred is not None and before.gold is not None:
            ww = np.ones(before.n) if w is None else w
            out["baseline.accuracy"] = float(np.dot(ww, base_pred == before.gold) / ww.sum())
            out["baseline.macro_f1"] = macro_f1(base_pred, before.gold, k, w)
        return out

    values = stat(None)
    cis = bootstrap_cis(stat, before.n, n_boot=n_boot, seed=seed, level=level)
    table: dict[str, Any] = {"before": {}, "after": {}, "delta": {}, "baseline": {}}
    for key, value in values.items():
        part, name = key.split(".", 1)
        ci = cis.get(key) if value is not None else None
        table[part][name] = {"value": value, "ci": None if ci is None else list(ci)}
    if majority is not None:
        table["baseline"]["label_index"] = majority
    return table


__all__ = [
    "COMPARED",
    "Outcome",
    "apply_calibrator",
    "compare_predictions",
    "macro_f1",
    "majority_label",
]
