"""Selective prediction: how many outputs to send to review for an error-catching target, and
what the answers kept are worth, compared with the mean-logprob rule of thumb.

* **Threshold** (this package's way): on the fit rows, pick the confidence threshold that meets
  the target (e.g. ``errors_caught=0.8``) with :func:`.thresholds.pick_threshold`; on the
  evaluation rows, review everything below it. Reported: review rate, accuracy of the rest
  (the answers published), errors caught.
* **Rule of thumb** (the seed documents'): mean token logprob of the answer above -0.5:
  publish; below -1.5: review; in between: a grey zone. Reported for both readings of the grey
  zone (published, or reviewed), on the same evaluation rows.
* **Same budget**: the confidence threshold that reviews as many rows as the rule does, so the
  two signals are compared at equal cost.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import CalibrationError
from .metrics import BoolArray, FloatArray
from .thresholds import Target, pick_threshold

PUBLISH_ABOVE = -0.5
REVIEW_BELOW = -1.5


def gate_outcome(review: BoolArray, correct: BoolArray) -> dict[str, Any]:
    """Review rate, accuracy of the rows kept and share of the errors sent to review."""
    wrong = ~correct
    kept = ~review
    return {
        "review_rate": float(review.mean()),
        "accuracy_of_rest": float(correct[kept].mean()) if kept.any() else None,
        "errors_caught": float((review & wrong).sum() / wrong.sum()) if wrong.any() else None,
        "n": int(review.size),
    }


def rule_of_thumb(
    mean_logprob: FloatArray,
    correct: BoolArray,
    *,
    publish_above: float = PUBLISH_ABOVE,
    review_below: float = REVIEW_BELOW,
) -> dict[str, Any]:
    """The mean-logprob rule on these rows: shares of each zone, and the gate outcome when the
    grey zone is published (``lenient``) or reviewed (``strict``)."""
    publish = mean_logprob > publish_above
    review = mean_logprob < review_below
    return {
        "publish_above": publish_above,
        "review_below": review_below,
        "publish_share": float(publish.mean()),
        "review_share": float(review.mean()),
        "grey_share": float((~publish & ~review).mean()),
        "lenient": gate_outcome(review, correct),
        "strict": gate_outcome(~publish, correct),
    }


def same_budget(conf: FloatArray, correct: BoolArray, review_rate: float) -> dict[str, Any]:
    """Review the ``review_rate`` share of least confident rows (ties broken by order)."""
    n_review = int(round(review_rate * conf.size))
    review = np.zeros(conf.size, dtype=np.bool_)
    review[np.argsort(conf, kind="stable")[:n_review]] = True
    return gate_outcome(review, correct)


def selective_report(
    target: Target,
    fit_conf: FloatArray,
    fit_correct: BoolArray,
    eval_conf: FloatArray,
    eval_correct: BoolArray,
    eval_mean_logprob: FloatArray | None,
) -> dict[str, Any]:
    """The threshold picked on the fit rows and its outcome on the evaluation rows, beside the
    rule of thumb (when mean logprobs are known) and the confidence gate at the rule's budget."""
    out: dict[str, Any] = {"target": {"kind": target.kind, "value": target.value}}
    try:
        choice = pick_threshold(fit_conf, fit_correct, target, n_boot=0)
    except CalibrationError as e:
        out["error"] = e.message
    else:
        out["threshold"] = choice.threshold
        out["fit"] = {
            "review_rate": choice.tradeoff.review_rate,
            "errors_caught": choice.tradeoff.errors_caught,
        }
        out["eval"] = gate_outcome(eval_conf < choice.threshold, eval_correct)
    if eval_mean_logprob is not None:
        rule = rule_of_thumb(eval_mean_logprob, eval_correct)
        rule["confidence_at_same_budget"] = {
            reading: same_budget(eval_conf, eval_correct, rule[reading]["review_rate"])
            for reading in ("lenient", "strict")
        }
        out["rule_of_thumb"] = rule
    return out


__all__ = [
    "PUBLISH_ABOVE",
    "REVIEW_BELOW",
    "gate_outcome",
    "rule_of_thumb",
    "same_budget",
    "selective_report",
]
