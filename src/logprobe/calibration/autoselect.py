"""``method="auto"``: pick the calibration method by cross-validated log loss on the fit rows.

Candidates are the maps of whole label distributions, compared on one scale, the multi-class
log loss (NLL) of the gold label: ``none`` (the raw distribution), ``temperature``, ``vector``,
``matrix`` and, when the content-free prior is known, ``contextual``. Fitted methods are scored
by stratified k-fold cross-validation inside the fit rows (each fold fitted on the others);
``none`` and ``contextual`` fit nothing on the rows and are scored on all of them. Platt and
isotonic calibrate only the top-label confidence, whose binary log loss is not comparable, so
they are not candidates. The lowest mean log loss wins, ``none`` included: when nothing beats
the raw distribution the choice says so and no calibrator is needed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import CalibrationError
from .metrics import FloatArray, nll_multiclass
from .recalibrate import Calibrator, fit_calibrator
from .scaling import cv_folds

AUTO_CANDIDATES = ("none", "temperature", "vector", "matrix", "contextual")


@dataclass(frozen=True)
class AutoChoice:
    """The method chosen, every candidate's cross-validated log loss, and why."""

    method: str
    scores: dict[str, float]
    errors: dict[str, str]
    folds: int
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "cv_log_loss": dict(self.scores),
            "errors": dict(self.errors),
            "folds": self.folds,
            "reason": self.reason,
        }


def _cv(method: str, probs: FloatArray, gold: NDArray[np.int64], folds: int, seed: int) -> float:
    total = 0.0
    for train, test in cv_folds(gold, folds, seed):
        cal = fit_calibrator(method, probs=probs[train], gold=gold[train])
        total += nll_multiclass(cal.apply_probs(probs[test]), gold[test]) * test.size
    return total / gold.size


def choose_method(
    probs: FloatArray,
    gold: NDArray[np.int64],
    *,
    folds: int = 5,
    seed: int = 0,
    contextual: Calibrator | None = None,
) -> AutoChoice:
    """Score every candidate (see module docstring) and pick the lowest log loss."""
    if probs.shape[0] < 2 * folds:
        raise CalibrationError(
            f"auto needs at least {2 * folds} labelled fit rows for "
            f"{folds}-fold cross-validation, got {probs.shape[0]}",
            param="method",
        )
    scores: dict[str, float] = {"none": nll_multiclass(probs, gold)}
    errors: dict[str, str] = {}
    for method in ("temperature", "vector", "matrix"):
        try:
            scores[method] = _cv(method, probs, gold, folds, seed)
        except CalibrationError as e:
            errors[method] = e.message
    if contextual is not None:
        scores["contextual"] = nll_multiclass(contextual.apply_probs(probs), gold)
    else:
        errors["contextual"] = "not a candidate: no content-free prior (needs the engine)"
    best = min(scores, key=scores.__getitem__)
    ranked = sorted(scores, key=scores.__getitem__)
    others = ", ".join(f"{m} {scores[m]:.4f}" for m in ranked[1:])
    if best == "none":
        reason = (
            f"no method beats the raw distribution: log loss {scores['none']:.4f} "
            f"uncalibrated vs {others} (cross-validated)"
        )
    else:
        reason = f"{best} has the lowest cross-validated log loss, {scores[best]:.4f}, vs {others}"
    return AutoChoice(best, scores, errors, folds, reason)


__all__ = ["AUTO_CANDIDATES", "AutoChoice", "choose_method"]
