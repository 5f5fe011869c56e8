"""Vector and matrix scaling, contextual calibration and method="auto" on synthetic data: maps
that change the decision, fixed on one split and checked on another."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logprobe.calibration import (
    ContextualCalibrator,
    MatrixCalibrator,
    VectorCalibrator,
    calibrator_from_dict,
    fit_calibrator,
    fit_contextual,
)
from logprobe.calibration.autoselect import choose_method
from logprobe.calibration.metrics import ece, nll_multiclass
from logprobe.errors import CalibrationError

from .cal_helpers import biased_probs


def _accuracy(p: np.ndarray, gold: np.ndarray) -> float:
    return float((p.argmax(axis=1) == gold).mean())


@pytest.mark.parametrize("method", ["vector", "matrix"])
def test_decision_changing_maps_fix_a_biased_classifier(method: str) -> None:
    fit_p, fit_g = biased_probs(600, seed=0)
    test_p, test_g = biased_probs(600, seed=1)
    raw_acc = _accuracy(test_p, test_g)
    cal = fit_calibrator(method, probs=fit_p, gold=fit_g, labels=("a", "b", "c"))
    after = cal.apply_probs(test_p)
    assert np.allclose(after.sum(axis=1), 1.0)
    assert _accuracy(after, test_g) > raw_acc + 0.1  # the decision moved, for the better
    assert (after.argmax(axis=1) != test_p.argmax(axis=1)).mean() > 0.1
    assert nll_multiclass(after, test_g) < nll_multiclass(test_p, test_g)
    conf = after.max(axis=1)
    assert ece(conf, after.argmax(axis=1) == test_g) < 0.06


def test_temperature_never_changes_the_decision_on_the_same_case() -> None:
    fit_p, fit_g = biased_probs(600, seed=0)
    test_p, _ = biased_probs(600, seed=1)
    cal = fit_calibrator("temperature", probs=fit_p, gold=fit_g)
    assert (cal.apply_probs(test_p).argmax(axis=1) == test_p.argmax(axis=1)).all()


def test_vector_parameters_undo_the_bias() -> None:
    fit_p, fit_g = biased_probs(3000, seed=2, bias=2.0)
    cal = fit_calibrator("vector", probs=fit_p, gold=fit_g)
    assert isinstance(cal, VectorCalibrator)
    # label 0's logit was pushed up by 2 nats: the fitted bias pulls it down relative to the others
    assert cal.bias[0] < min(cal.bias[1:]) - 1.0
    assert abs(sum(cal.bias)) < 1e-9


@pytest.mark.parametrize("method", ["vector", "matrix"])
def test_round_trip_and_label_order(method: str) -> None:
    p, g = biased_probs(200, seed=3)
    cal = fit_calibrator(method, probs=p, gold=g, labels=("a", "b", "c"))
    again = calibrator_from_dict(json.loads(json.dumps(cal.to_dict())))
    assert type(again) is type(cal) and np.allclose(again.apply_probs(p), cal.apply_probs(p))
    # a dict is read in the fitted label order, whatever its own order
    row = {"c": 0.2, "a": 0.5, "b": 0.3}
    out = cal.apply(row)
    assert out == pytest.approx(dict(zip("abc", cal.apply_probs([0.5, 0.3, 0.2]), strict=True)))
    with pytest.raises(CalibrationError, match=r"fitted on labels \[a, b, c\]"):
        cal.apply({"a": 0.5, "b": 0.3, "z": 0.2})
    with pytest.raises(CalibrationError, match="maps label distributions"):
        cal.apply(0.7)
    with pytest.raises(CalibrationError, match="fitted on 3 labels"):
        cal.apply_probs([0.5, 0.5])


def test_matrix_binary_and_unseen_labels() -> None:
    p, g = biased_probs(300, k=2, seed=4)
    cal = fit_calibrator("matrix", probs=p, gold=g)
    assert isinstance(cal, MatrixCalibrator) and len(cal.bias) == 2
    assert _accuracy(cal.apply_probs(p), g) >= _accuracy(p, g)
    p3, g3 = biased_probs(300, k=3, seed=5)
    keep = g3 != 2  # label 2 never seen in the fit rows
    cal3 = fit_calibrator("matrix", probs=p3[keep], gold=g3[keep])
    assert (cal3.apply_probs(p3).argmax(axis=1) != 2).all()


def test_fit_errors() -> None:
    p, g = biased_probs(30, seed=6)
    with pytest.raises(CalibrationError, match="at least 10 labelled rows"):
        fit_calibrator("vector", probs=p[:5], gold=g[:5])
    with pytest.raises(CalibrationError, match="at least two gold labels"):
        fit_calibrator("matrix", probs=p, gold=np.zeros(30, dtype=np.int64))
    with pytest.raises(CalibrationError, match="needs probs over the labels and gold"):
        fit_calibrator("vector", p.max(axis=1), np.ones(30, dtype=bool))
    with pytest.raises(CalibrationError, match="content-free"):
        fit_calibrator("contextual", probs=p, gold=g)


def test_contextual_divides_out_the_prior() -> None:
    prior = np.array([0.7, 0.2, 0.1])
    cal = fit_contextual([prior], inputs=["N/A"])
    assert isinstance(cal, ContextualCalibrator) and cal.n_fit == 0
    assert cal.apply_probs(prior) == pytest.approx(np.full(3, 1 / 3))
    # the same prior pushed into every row is removed from every row
    p, g = biased_probs(500, seed=7, bias=0.0)
    tilted = p * prior
    tilted /= tilted.sum(axis=1, keepdims=True)
    assert np.allclose(cal.apply_probs(tilted), p)
    assert fit_contextual([[0.6, 0.4], [0.2, 0.8]]).prior == pytest.approx((0.4, 0.6))


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0.01, 1.0), min_size=2, max_size=6),
    st.lists(st.floats(0.01, 1.0), min_size=6, max_size=6),
)
def test_identity_maps(weights: list[float], other: list[float]) -> None:
    k = len(weights)
    p = np.asarray(weights) / sum(weights)
    assert fit_contextual([np.full(k, 1 / k)]).apply_probs(p) == pytest.approx(p)
    assert VectorCalibrator(scale=1.0, bias=(0.0,) * k).apply_probs(p) == pytest.approx(p)
    eye = tuple(tuple(float(i == j) for j in range(k)) for i in range(k))
    assert MatrixCalibrator(weights=eye, bias=(0.0,) * k).apply_probs(p) == pytest.approx(p)
    q = np.asarray(other[:k]) / sum(other[:k])
    out = fit_contextual([q]).apply_probs(p)
    assert out.sum() == pytest.approx(1.0) and (out > 0).all()


def test_auto_picks_a_decision_changing_map_for_a_biased_model() -> None:
    p, g = biased_probs(400, seed=8)
    choice = choose_method(p, g, folds=5, seed=0)
    assert choice.method in ("vector", "matrix")
    assert choice.scores[choice.method] < choice.scores["none"]
    assert choice.scores[choice.method] == min(choice.scores.values())
    assert "lowest cross-validated log loss" in choice.reason
    assert "contextual" in choice.errors


def test_auto_says_when_nothing_helps() -> None:
    rng = np.random.default_rng(9)
    p = rng.dirichlet(np.ones(3), size=400)  # a perfectly calibrated model:
    g = np.array([rng.choice(3, p=row) for row in p])  # gold drawn from its own distribution
    cal = fit_contextual([[0.98, 0.01, 0.01]])  # a bad prior, scored as a candidate
    choice = choose_method(p, g, folds=5, seed=0, contextual=cal)
    assert choice.method == "none"
    assert choice.reason.startswith("no method beats the raw distribution")
    assert choice.scores["contextual"] > choice.scores["none"]


def test_auto_needs_enough_rows() -> None:
    p, g = biased_probs(8, seed=10)
    with pytest.raises(CalibrationError, match="at least 10 labelled fit rows"):
        choose_method(p, g, folds=5)
