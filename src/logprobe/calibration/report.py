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

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._json import json_safe
from ..errors import CalibrationError
from . import metrics as m
from .bootstrap import bootstrap_cis
from .io import Predictions
from .recalibrate import Calibrator, PlattCalibrator, fit_calibrator, split_indices
from .signature import TaskSignature
from .thresholds import Target, parse_target, pick_threshold

DEFAULT_SELECTIVE_TARGET = "errors_caught=0.8"

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
    signature: TaskSignature | None = None  # stored on the fitted calibrator
    contextual: Calibrator | None = None  # prebuilt from the engine (contextual / auto)
    eval_preds: Predictions | None = None  # evaluate on these rows instead of a split
    folds: int = 5  # cross-validation folds of method="auto"


def effective_bins(n: int, n_bins: int, notes: list[str]) -> int:
    """``n_bins``, lowered when there are too few points for it (noted)."""
    if n_bins < 1:
        raise CalibrationError(f"bins must be >= 1, got {n_bins}", param="bins")
    if n >= n_bins * MIN_POINTS_PER_BIN:
        return n_bins
    eff = max(1, n // MIN_POINTS_PER_BIN)
    notes.append(
        f"only {n} predictions: using {eff} bin(s) instead of {n_bins} "
        f"(at least {MIN_POINTS_PER_BIN} points per bin on average)"
    )
    return eff


class MetricSet:
    """All report metrics of one set of predictions, as a function of resample weights."""

    def __init__(
        self,
        conf: m.FloatArray,
        corr: m.BoolArray,
        probs: m.FloatArray | None,
        gold: NDArray[np.int64] | None,
        n_bins: int,
    ):
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


_ORDER = (
    "accuracy",
    "mean_confidence",
    "ece",
    "ece_equal_mass",
    "mce",
    "brier",
    "brier_multiclass",
    "log_loss",
    "nll_multiclass",
    "roc_auc",
    "aurc",
    "prr",
)


def metric_table(
    p: Predictions,
    opts: ReportOptions,
    n_bins: int,
    conf: m.FloatArray | None = None,
    probs: m.FloatArray | None = None,
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
    from .compare import apply_calibrator

    after = apply_calibrator(cal, p)
    return after.confidence, after.probs


def fit_on(
    p: Predictions,
    method: str,
    model: str | None,
    opts: ReportOptions | None = None,
) -> Calibrator:
    """Fit ``method`` on all of ``p`` (on the distributions when p has probs+gold)."""
    common: dict[str, Any] = {}
    if opts is not None and opts.signature is not None:
        common["signature"] = opts.signature
    if p.labels is not None:
        common["labels"] = p.labels
    if method == "contextual":
        if opts is None or opts.contextual is None:
            raise CalibrationError(
                "contextual calibration needs the engine (the model's answers "
                "to content-free inputs)",
                param="method",
            )
        return replace(opts.contextual, **common)
    if method in ("temperature", "vector", "matrix") and p.multiclass:
        return fit_calibrator(method, probs=p.probs, gold=p.gold, model=model, **common)
    if method in ("vector", "matrix"):
        raise CalibrationError(
            f"{method} scaling needs every row's probs over the same labels "
            "and a gold label among them",
            param="method",
        )
    return fit_calibrator(method, p.confidence, p.correct, model=model, **common)


Section = tuple[dict[str, Any], Calibrator | None, Predictions, Predictions | None]


def _split(p: Predictions, opts: ReportOptions) -> tuple[float, Predictions, Predictions | None]:
    if opts.eval_preds is not None:
        fit_sig, eval_sig = p.signature, opts.eval_preds.signature
        if fit_sig is not None and eval_sig is not None and fit_sig != eval_sig:
            raise CalibrationError(
                f"the evaluation rows come from another task (differs in "
                f"{', '.join(fit_sig.differences(eval_sig))}): fit rows {fit_sig.describe()}; "
                f"evaluation rows {eval_sig.describe()}",
                param="eval_file",
            )
        frac = 1.0 if opts.fit_split is None else opts.fit_split
        fit_idx, _ = split_indices(p.n, frac, opts.seed)
        return frac, p.subset(fit_idx), opts.eval_preds
    frac = 0.5 if opts.fit_split is None else opts.fit_split
    fit_idx, eval_idx = split_indices(p.n, frac, opts.seed)
    return frac, p.subset(fit_idx), p.subset(eval_idx) if eval_idx.size else None


def _resolve_auto(fit_p: Predictions, opts: ReportOptions, section: dict[str, Any]) -> str:
    from .autoselect import choose_method

    if not fit_p.multiclass or fit_p.probs is None or fit_p.gold is None:
        raise CalibrationError(
            "auto compares methods on the label distributions: every row "
            "needs probs over the same labels and a gold label",
            param="method",
        )
    choice = choose_method(
        fit_p.probs, fit_p.gold, folds=opts.folds, seed=opts.seed, contextual=opts.contextual
    )
    section["auto"] = choice.to_dict()
    return choice.method


def recalibration_section(
    p: Predictions, opts: ReportOptions, n_bins: int, notes: list[str]
) -> Section:
    """Fit on one split, compare metrics before/after on the other. Returns the section, the
    calibrator (None on failure), the fit split and the evaluation split (None if none)."""
    assert opts.method is not None
    frac, fit_p, eval_p = _split(p, opts)
    section: dict[str, Any] = {
        "method": opts.method,
        "fit_split": frac,
        "seed": opts.seed,
        "fit_n": fit_p.n,
        "eval_n": 0 if eval_p is None else eval_p.n,
        "eval_source": "split" if opts.eval_preds is None else opts.eval_preds.source,
    }
    try:
        method = _resolve_auto(fit_p, opts, section) if opts.method == "auto" else opts.method
        section["method"] = method
        cal = None if method == "none" else fit_on(fit_p, method, opts.model, opts)
    except CalibrationError as e:
        section["error"] = e.message
        return section, None, fit_p, eval_p
    if cal is None:
        section["params"] = {}
        notes.append(section["auto"]["reason"] + ": no calibrator fitted")
        section["before"] = section["after"] = None
        return section, None, fit_p, eval_p
    section["params"] = cal.params()
    if isinstance(cal, PlattCalibrator) and cal.slope <= 0:
        notes.append(
            f"Platt slope {cal.slope:.3g} <= 0: on the fit split a higher confidence "
            "was not more often right, so the calibrated confidence falls as the raw one "
            "rises; it carries no ranking signal to gate on"
        )
    section["input"] = (
        "probs"
        if method in ("temperature", "vector", "matrix", "contextual") and p.multiclass
        else "confidence"
    )
    section["changes_decision"] = cal.changes_decision and section["input"] == "probs"
    if eval_p is None:
        section["before"] = section["after"] = None
        notes.append("fit split 1.0: the calibrator is fitted on all rows, nothing held out")
        return section, cal, fit_p, None
    eval_bins = effective_bins(eval_p.n, n_bins, notes)
    section["n_bins"] = eval_bins
    _before_after(section, cal, fit_p, eval_p, opts, eval_bins)
    cal_info = {
        "eval_n": eval_p.n,
        "ece_before": section["before"]["ece"]["value"],
        "ece_after": section["after"]["ece"]["value"],
    }
    return section, replace(cal, info={**cal.info, **cal_info}), fit_p, eval_p


def _before_after(
    section: dict[str, Any],
    cal: Calibrator,
    fit_p: Predictions,
    eval_p: Predictions,
    opts: ReportOptions,
    eval_bins: int,
) -> None:
    """Fill before/after (+ delta, baseline, selective) on the evaluation rows."""
    from .compare import apply_calibrator, compare_predictions, majority_label
    from .selective import same_budget, selective_report

    after_p = apply_calibrator(cal, eval_p)
    if eval_p.multiclass:
        table = compare_predictions(
            eval_p,
            after_p,
            n_bins=eval_bins,
            n_boot=opts.n_boot,
            seed=opts.seed,
            level=opts.level,
            majority=majority_label(fit_p),
        )
        section.update(table)
        if eval_p.labels is not None and "label_index" in table["baseline"]:
            section["baseline"]["label"] = eval_p.labels[table["baseline"]["label_index"]]
    else:
        section["before"] = metric_table(eval_p, opts, eval_bins)
        section["after"] = metric_table(eval_p, opts, eval_bins, after_p.confidence, after_p.probs)
    target = opts.target or parse_target(DEFAULT_SELECTIVE_TARGET)
    fit_after = apply_calibrator(cal, fit_p)
    raw = selective_report(
        target,
        fit_p.confidence,
        fit_p.correct,
        eval_p.confidence,
        eval_p.correct,
        eval_p.mean_logprob,
    )
    calibrated = selective_report(
        target, fit_after.confidence, fit_after.correct, after_p.confidence, after_p.correct, None
    )
    rule = raw.get("rule_of_thumb")
    if rule is not None:
        calibrated["at_rule_budget"] = {
            reading: same_budget(after_p.confidence, after_p.correct, rule[reading]["review_rate"])
            for reading in ("lenient", "strict")
        }
    section["selective"] = {"raw": raw, "calibrated": calibrated}


def threshold_section(
    target: Target,
    pick_p: Predictions,
    check_p: Predictions | None,
    cal: Calibrator | None,
    opts: ReportOptions,
) -> dict[str, Any]:
    """Pick the threshold on ``pick_p`` (calibrated scale when ``cal``), check it on ``check_p``."""
    from .compare import apply_calibrator

    if cal is not None:
        pick_p = apply_calibrator(cal, pick_p)
        check_p = None if check_p is None else apply_calibrator(cal, check_p)
    try:
        choice = pick_threshold(
            pick_p.confidence,
            pick_p.correct,
            target,
            n_boot=opts.n_boot,
            seed=opts.seed,
            level=opts.level,
        )
    except CalibrationError as e:
        return {"target": {"kind": target.kind, "value": target.value}, "error": e.message}
    out = choice.to_dict()
    out["scale"] = "raw" if cal is None else f"calibrated ({cal.method})"
    out["picked_on"] = "fit split" if check_p is not None else "all rows"
    if check_p is not None:
        flag = check_p.confidence < choice.threshold
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


def calibration_report(
    p: Predictions,
    opts: ReportOptions | None = None,
) -> tuple[dict[str, Any], Calibrator | None]:
    """The full report (JSON-ready dict) and the fitted calibrator (when ``opts.method``)."""
    opts = opts or ReportOptions()
    notes = list(p.notes)
    n_bins = effective_bins(p.n, opts.n_bins, notes)
    if p.correct.all() or not p.correct.any():
        notes.append(
            "all predictions are "
            + ("correct" if p.correct.all() else "wrong")
            + ": ROC-AUC and PRR are undefined (None)"
        )
    report: dict[str, Any] = {
        "source": p.source,
        "n": p.n,
        "n_skipped": p.n_skipped,
        "skipped": [{"line": s.line, "reason": s.reason} for s in p.skipped],
        "labels": None if p.labels is None else list(p.labels),
        "signature": None if p.signature is None else p.signature.to_dict(),
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
