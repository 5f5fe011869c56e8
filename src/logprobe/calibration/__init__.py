"""Calibration: how far to trust a model's probabilities, how to correct them, which threshold.

* :mod:`.metrics`: accuracy, ECE (equal-width / equal-mass), MCE, Brier, log loss, ROC-AUC,
  risk-coverage / AURC, prediction-rejection ratio, bootstrap intervals (numpy/scipy only).
* :mod:`.recalibrate`: temperature scaling, Platt and isotonic maps (:class:`Calibrator`).
* :mod:`.scaling`: vector and matrix scaling and contextual calibration (maps that can change the
  decision), :mod:`.autoselect`: ``method="auto"`` by cross-validated log loss.
* :mod:`.signature`: the task a calibrator belongs to (:class:`TaskSignature`).
* :mod:`.compare`: before/after tables with paired bootstrap intervals and the majority baseline;
  :mod:`.selective`: review rate for an error-catching target vs the mean-logprob rule of thumb.
* :mod:`.thresholds`: the threshold of a review gate or cascade that meets a target.
* :mod:`.plots`: reliability / risk-coverage data (JSON-ready) and PNG plots.
* :mod:`.bootstrap`: percentile bootstrap intervals (a resample is a weight vector).
* :mod:`.io`: prediction JSONL files and per-model calibrator files.

Other layers apply a saved calibrator with::

    from logprobe.calibration import load_calibrator
    cal = load_calibrator(model_name)          # None when no calibrator was saved for the model
    if cal is not None:
        confidence = cal.apply(confidence)     # float -> float
        probs = cal.apply(probs)               # dict label->prob -> dict (or list -> list)
"""

from __future__ import annotations

from .bootstrap import bootstrap_ci, bootstrap_cis
from .io import (
    Predictions,
    SkippedRow,
    calibrator_path,
    load_calibrator,
    load_task_calibrator,
    logprobe_home,
    predictions_from_rows,
    read_calibrator,
    read_predictions,
    save_calibrator,
    task_calibrator_path,
)
from .metrics import (
    BinStats,
    accuracy,
    aurc,
    bin_stats,
    brier_multiclass,
    brier_score,
    check_inputs,
    ece,
    log_loss,
    mce,
    nll_multiclass,
    oracle_aurc,
    prediction_rejection_ratio,
    risk_coverage,
    roc_auc,
)
from .plots import reliability_data, risk_coverage_data, save_calibration_plot
from .recalibrate import (
    METHODS,
    Calibrator,
    IsotonicCalibrator,
    PlattCalibrator,
    TemperatureCalibrator,
    calibrator_from_dict,
    fit_calibrator,
    fit_isotonic,
    fit_platt,
    fit_temperature,
    split_indices,
)
from .report import ReportOptions, calibration_report, json_safe
from .scaling import (
    CONTENT_FREE_INPUTS,
    ContextualCalibrator,
    MatrixCalibrator,
    VectorCalibrator,
    fit_contextual,
    fit_matrix,
    fit_vector,
)
from .signature import TaskSignature, check_same_task, prompt_spec
from .thresholds import (
    Target,
    ThresholdChoice,
    TradeOff,
    parse_target,
    pick_threshold,
    tradeoff_curve,
)

__all__ = [
    "BinStats",
    "CONTENT_FREE_INPUTS",
    "Calibrator",
    "ContextualCalibrator",
    "IsotonicCalibrator",
    "METHODS",
    "MatrixCalibrator",
    "PlattCalibrator",
    "Predictions",
    "ReportOptions",
    "SkippedRow",
    "Target",
    "TaskSignature",
    "TemperatureCalibrator",
    "ThresholdChoice",
    "TradeOff",
    "VectorCalibrator",
    "accuracy",
    "aurc",
    "bin_stats",
    "bootstrap_ci",
    "bootstrap_cis",
    "brier_multiclass",
    "brier_score",
    "calibration_report",
    "calibrator_from_dict",
    "calibrator_path",
    "check_inputs",
    "check_same_task",
    "ece",
    "fit_calibrator",
    "fit_contextual",
    "fit_isotonic",
    "fit_matrix",
    "fit_platt",
    "fit_temperature",
    "fit_vector",
    "json_safe",
    "load_calibrator",
    "load_task_calibrator",
    "log_loss",
    "logprobe_home",
    "mce",
    "nll_multiclass",
    "oracle_aurc",
    "parse_target",
    "pick_threshold",
    "prediction_rejection_ratio",
    "predictions_from_rows",
    "prompt_spec",
    "read_calibrator",
    "read_predictions",
    "reliability_data",
    "risk_coverage",
    "risk_coverage_data",
    "roc_auc",
    "save_calibration_plot",
    "save_calibrator",
    "split_indices",
    "task_calibrator_path",
    "tradeoff_curve",
]
