"""One calibration report: metrics with bootstrap intervals, a held-out recalibration, a threshold.

Everything returned here is JSON-ready: plain floats, lists and dicts, ``None`` where a value is
undefined (never NaN or inf). Fallbacks, each recorded in ``notes``:

* fewer than ``MIN_POINTS_PER_BIN * n_bins`` predictions: the number of bins is lowered to
  ``max(1, n // MIN_POINTS_PER_BIN)``;
* all predictions right (or all wrong): ROC-AUC and the prediction-rejection ratio are ``None``;
* a recalibration or threshold that the data cannot support is reported as ``{"error": ...}``
  instead of failing the whole report.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import CalibrationError
from . import metrics as m
from .bootstrap import bootstrap_cis
from .io import Predictions
from .recalibrate import Calibrator, PlattCalibrator, fit_calibrator, split_indices
from .thresholds import Target, pick_threshold

MIN_POINTS_PER_BIN = 10


@dataclass(frozen=True)
class ReportOptions:
    """How to compute a report (the CLI's options)."""

    n_bins: int = m.DEFAULT_BINS
    n_boot: int = 1000
    seed: int = 0
    level: float = 0.95
    method: str | None = None
    fit_split: float | None = None
    target: Target | None = None
    model: str | None = None


def json_safe(value: Any) -> Any:
    """``value`` with numpy scalars/arrays made plain and NaN/inf replaced by ``None``."""
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, np.ndarray):
        return json_safe(value.tolist())
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        v = float(value)
        return v if math.isfinite(v) else None
    return value


def effective_bins(n: int, n_bins: int, notes: list[str]) -> int:
    """``n_bins``, lowered when there are too few points for it (noted)."""
    if n_bins < 1:
        raise CalibrationError(f"bins must be >= 1, got {n_bins}", param="bins")
    if n >= n_bins * MIN_POINTS_PER_BIN:
        return n_bins
    eff = max(1, n // MIN_POINTS_PER_BIN)
    notes.append(f"only {n} predictions: using {eff} bin(s) instead of {n_bins} "
                 f"(at least {MIN_POINTS_PER_BIN} points per bin on average)")
    return eff


class MetricSet:
    """All report metrics of one set of predictions, as a function of resample weights."""

    def __init__(self, conf: m.FloatArray, corr: m.BoolArray, probs: m.FloatArray | None,
                 gold: NDArray[np.int64] | None, n_bins: int):
        self.g = m.Grouped.of(conf, corr)
        self.n_bins = n_bins
        self.mass_bins = min(n_bins, conf.size)
        self.terms = {"brier": m.brier_terms(conf, corr), "log_loss": m.log_loss_terms(conf, corr)}
        if probs is not None and gold is not None:
            self.terms["brier_multiclass"] = m.brier_mc_terms(probs, gold)
            self.terms["nll_multiclass"] = m.nll_mc_terms(probs, gold)

    def __call__(self, w: m.FloatArray | None = None) -> dict[str, float | None]:
        count, cor = self.g.sums(w)
        n, v = float(count.sum()), self.g.values
        out: dict[str, float | None] = {
            "accuracy": float(cor.sum() / n),
            "mean_confidence": float(np.dot(count, v) / n),
            "ece": m._ece_k(v, count, cor, self.n_bins, "equal_width"),
            "ece_equal_mass": m._ece_k(v, count, cor, self.mass_bins, "equal_mass"),
            "mce": m._mce_k(v, count, cor, self.n_bins, "equal_width"),
        }
        for name, terms in self.terms.items():
            out[name] = float(terms.mean() if w is None else np.dot(w, terms) / n)
        out["roc_auc"] = m._auc_k(count, cor)
        out["aurc"] = m._aurc_k(count, cor)
        out["prr"] = m._prr_k(count, cor)
        return out


_ORDER = ("accuracy", "mean_confidence", "ece", "ece_equal_mass", "mce", "brier",
          "brier_multiclass", "log_loss", "nll_multiclass", "roc_auc", "aurc", "prr")


def metric_table(p: Predictions, opts: ReportOptions, n_bins: int,
                 conf: m.FloatArray | None = None, probs: m.FloatArray | None = None,
                 ) -> dict[str, dict[str, Any]]:
    """``{metric: {"value": v, "ci": [lo, hi] | None}}`` for confidences ``conf`` (default: p's)."""
    conf = p.confidence if conf is None else conf
    probs = p.probs if probs is None else probs
    metric_set = MetricSet(conf, p.correct, probs, p.gold, n_bins)
    values = metric_set()
    cis = bootstrap_cis(metric_set, p.n, n_boot=opts.n_boot, seed=opts.seed, level=opts.level)
    table: dict[str, dict[str, Any]] = {}
    for name in _ORDER:
        if name in values:
            ci = cis.get(name) if values[name] is not None else None
            table[name] = {"value": values[name], "ci": None if ci is None else list(ci)}
    return table


def calibrated_outputs(cal: Calibrator, p: Predictions) -> tuple[m.FloatArray, m.FloatArray | None]:
    """Calibrated top-label confidences (and distributions, when p has them)."""
    if p.probs is None or p.pred is None:
        return cal.apply_confidence(p.confidence), None
    probs = cal.apply_probs(p.probs)
    if cal.method == "temperature":
        return probs[np.arange(p.n), p.pred], probs
    return cal.apply_confidence(p.confidence), probs


def fit_on(p: Predictions, method: str, model: str | None) -> Calibrator:
    """Fit ``method`` on all of ``p`` (multi-class temperature scaling when p has probs+gold)."""
    if method == "temperature" and p.multiclass:
        return fit_calibrator(method, probs=p.probs, gold=p.gold, model=model)
    return fit_calibrator(method, p.confidence, p.correct, model=model)


Section = tuple[dict[str, Any], Calibrator | None, Predictions, Predictions | None]


def recalibration_section(p: Predictions, opts: ReportOptions, n_bins: int,
                          notes: list[str]) -> Section:
    """Fit on one split, compare metrics before/after on the other. Returns the section, the
    calibrator (None on failure), the fit split and the evaluation split (None if none)."""
    assert opts.method is not None
    frac = 0.5 if opts.fit_split is None else opts.fit_split
    fit_idx, eval_idx = split_indices(p.n, frac, opts.seed)
    fit_p = p.subset(fit_idx)
    eval_p = p.subset(eval_idx) if eval_idx.size else None
    section: dict[str, Any] = {"method": opts.method, "fit_split": frac, "seed": opts.seed,
                               "fit_n": int(fit_idx.size), "eval_n": int(eval_idx.size)}
    try:
        cal = fit_on(fit_p, opts.method, opts.model)
    except CalibrationError as e:
        section["error"] = e.message
        return section, None, fit_p, eval_p
    section["params"] = cal.params()
    if isinstance(cal, PlattCalibrator) and cal.slope <= 0:
        notes.append(f"Platt slope {cal.slope:.3g} <= 0: on the fit split a higher confidence "
                     "was not more often right, so the calibrated confidence falls as the raw one "
                     "rises; it carries no ranking signal to gate on")
    section["input"] = "probs" if opts.method == "temperature" and p.multiclass else "confidence"
    if eval_p is None:
        section["before"] = section["after"] = None
        notes.append("fit split 1.0: the calibrator is fitted on all rows, nothing held out")
        return section, cal, fit_p, None
    eval_bins = effective_bins(eval_p.n, n_bins, notes)
    section["n_bins"] = eval_bins
    section["before"] = metric_table(eval_p, opts, eval_bins)
    conf_after, probs_after = calibrated_outputs(cal, eval_p)
    section["after"] = metric_table(eval_p, opts, eval_bins, conf_after, probs_after)
    cal_info = {"eval_n": eval_p.n,
                "ece_before": section["before"]["ece"]["value"],
                "ece_after": section["after"]["ece"]["value"]}
    return section, replace(cal, info={**cal.info, **cal_info}), fit_p, eval_p


def threshold_section(target: Target, pick_p: Predictions, check_p: Predictions | None,
                      cal: Calibrator | None, opts: ReportOptions) -> dict[str, Any]:
    """Pick the threshold on ``pick_p`` (calibrated scale when ``cal``), check it on ``check_p``."""
    def conf_of(pp: Predictions) -> m.FloatArray:
        return pp.confidence if cal is None else calibrated_outputs(cal, pp)[0]

    try:
        choice = pick_threshold(conf_of(pick_p), pick_p.correct, target, n_boot=opts.n_boot,
                                seed=opts.seed, level=opts.level)
    except CalibrationError as e:
        return {"target": {"kind": target.kind, "value": target.value}, "error": e.message}
    out = choice.to_dict()
    out["scale"] = "raw" if cal is None else f"calibrated ({cal.method})"
    out["picked_on"] = "fit split" if check_p is not None else "all rows"
    if check_p is not None:
        conf = conf_of(check_p)
        flag = conf < choice.threshold
        wrong = ~check_p.correct
        accepted = int((~flag).sum())
        out["held_out"] = {
            "n": check_p.n,
            "review_rate": float(flag.mean()),
            "precision": float(check_p.correct[~flag].mean()) if accepted else None,
            "errors_caught": float((flag & wrong).sum() / wrong.sum()) if wrong.any() else None,
            "missed_error_rate": float((~flag & wrong).mean()),
        }
    return out


def calibration_report(p: Predictions, opts: ReportOptions | None = None,
                       ) -> tuple[dict[str, Any], Calibrator | None]:
    """The full report (JSON-ready dict) and the fitted calibrator (when ``opts.method``)."""
    opts = opts or ReportOptions()
    notes = list(p.notes)
    n_bins = effective_bins(p.n, opts.n_bins, notes)
    if p.correct.all() or not p.correct.any():
        notes.append("all predictions are " + ("correct" if p.correct.all() else "wrong")
                     + ": ROC-AUC and PRR are undefined (None)")
    report: dict[str, Any] = {
        "source": p.source,
        "n": p.n,
        "n_skipped": p.n_skipped,
        "skipped": [{"line": s.line, "reason": s.reason} for s in p.skipped],
        "labels": None if p.labels is None else list(p.labels),
        "n_bins": n_bins,
        "bootstrap": {"n_boot": opts.n_boot, "seed": opts.seed, "level": opts.level},
        "metrics": metric_table(p, opts, n_bins),
        "recalibration": None,
        "threshold": None,
    }
    cal: Calibrator | None = None
    pick_p, check_p = p, None
    if opts.method is not None:
        section = recalibration_section(p, opts, n_bins, notes)
        report["recalibration"], cal, pick_p, check_p = section
    elif opts.fit_split is not None and opts.target is not None:
        fit_idx, eval_idx = split_indices(p.n, opts.fit_split, opts.seed)
        pick_p = p.subset(fit_idx)
        check_p = p.subset(eval_idx) if eval_idx.size else None
    if opts.target is not None:
        report["threshold"] = threshold_section(opts.target, pick_p, check_p, cal, opts)
    report["notes"] = list(dict.fromkeys(notes))
    return json_safe(report), cal
