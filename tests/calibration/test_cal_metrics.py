"""Metrics against independent textbook implementations, third-party references, hand-computed
cases and properties."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.calibration import calibration_curve
from sklearn.metrics import log_loss as sk_log_loss
from sklearn.metrics import roc_auc_score

from logprobe.calibration import (
    aurc,
    bin_stats,
    bootstrap_ci,
    bootstrap_cis,
    brier_multiclass,
    brier_score,
    ece,
    log_loss,
    mce,
    nll_multiclass,
    prediction_rejection_ratio,
    risk_coverage,
    roc_auc,
)
from logprobe.errors import CalibrationError

# ------------------------------------------------------------------ independent references
# Written from the textbook formulas (Naeini et al. 2015; Guo et al. 2017; as in netcal and
# torchmetrics): bins ((m-1)/M, m/M], 0 in the first bin; ECE = sum |B|/n |acc - conf|.


def ref_bins(conf: list[float], correct: list[int], n_bins: int) -> list[tuple[int, float, float]]:
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    out = []
    for m in range(n_bins):
        members = [
            i for i, c in enumerate(conf) if (edges[m] < c <= edges[m + 1]) or (m == 0 and c == 0.0)
        ]
        if members:
            acc = sum(correct[i] for i in members) / len(members)
            avg = sum(conf[i] for i in members) / len(members)
            out.append((len(members), acc, avg))
    return out


def ref_ece(conf: list[float], correct: list[int], n_bins: int) -> float:
    n = len(conf)
    return sum(cnt / n * abs(acc - avg) for cnt, acc, avg in ref_bins(conf, correct, n_bins))


def ref_mce(conf: list[float], correct: list[int], n_bins: int) -> float:
    return max(abs(acc - avg) for _, acc, avg in ref_bins(conf, correct, n_bins))


def ref_ece_mass(conf: list[float], correct: list[int], n_bins: int) -> float:
    order = sorted(range(len(conf)), key=lambda i: conf[i])
    size, extra = divmod(len(conf), n_bins)
    total, start = 0.0, 0
    for m in range(n_bins):
        members = order[start : start + size + (1 if m < extra else 0)]
        start += len(members)
        acc = sum(correct[i] for i in members) / len(members)
        avg = sum(conf[i] for i in members) / len(members)
        total += len(members) / len(conf) * abs(acc - avg)
    return total


def ref_brier(conf: list[float], correct: list[int]) -> float:
    return sum((c - y) ** 2 for c, y in zip(conf, correct, strict=True)) / len(conf)


def ref_brier_mc(probs: list[list[float]], gold: list[int]) -> float:
    return sum(
        sum((p - (1.0 if k == g else 0.0)) ** 2 for k, p in enumerate(row))
        for row, g in zip(probs, gold, strict=True)
    ) / len(gold)


def fixed_inputs(seed: int = 7, n: int = 500) -> tuple[list[float], list[int]]:
    rng = np.random.default_rng(seed)
    conf = rng.beta(5, 2, size=n)
    correct = (rng.random(n) < conf**1.5).astype(int)
    return conf.tolist(), correct.tolist()


# ------------------------------------------------------------------ reference comparisons


@pytest.mark.parametrize("n_bins", [1, 5, 10, 15, 20])
def test_ece_mce_match_textbook_reference(n_bins: int) -> None:
    conf, correct = fixed_inputs()
    assert ece(conf, correct, n_bins) == pytest.approx(ref_ece(conf, correct, n_bins), abs=1e-12)
    assert mce(conf, correct, n_bins) == pytest.approx(ref_mce(conf, correct, n_bins), abs=1e-12)


@pytest.mark.parametrize("n_bins", [1, 3, 10, 15])
def test_equal_mass_ece_matches_reference(n_bins: int) -> None:
    conf, correct = fixed_inputs(seed=3, n=437)
    got = ece(conf, correct, n_bins, binning="equal_mass")
    assert got == pytest.approx(ref_ece_mass(conf, correct, n_bins), abs=1e-12)


def test_brier_matches_reference_and_multiclass_reference() -> None:
    conf, correct = fixed_inputs()
    assert brier_score(conf, correct) == pytest.approx(ref_brier(conf, correct), abs=1e-12)
    rng = np.random.default_rng(1)
    probs = rng.dirichlet([1.0, 2.0, 3.0], size=200)
    gold = rng.integers(0, 3, size=200)
    assert brier_multiclass(probs, gold) == pytest.approx(
        ref_brier_mc(probs.tolist(), gold.tolist()), abs=1e-12
    )


def test_bins_match_sklearn_calibration_curve() -> None:
    conf, correct = fixed_inputs(seed=11)
    prob_true, prob_pred = calibration_curve(correct, conf, n_bins=10, strategy="uniform")
    b = bin_stats(conf, correct, 10)
    filled = b.count > 0
    np.testing.assert_allclose(b.accuracy[filled], prob_true, atol=1e-12)
    np.testing.assert_allclose(b.confidence[filled], prob_pred, atol=1e-12)


def test_log_loss_and_auc_match_sklearn() -> None:
    conf, correct = fixed_inputs(seed=5)
    assert log_loss(conf, correct) == pytest.approx(sk_log_loss(correct, conf), rel=1e-9)
    assert roc_auc(conf, correct) == pytest.approx(roc_auc_score(correct, conf), abs=1e-12)
    rng = np.random.default_rng(2)
    probs = rng.dirichlet([1.0, 1.0, 1.0, 1.0], size=300)
    gold = rng.integers(0, 4, size=300)
    assert nll_multiclass(probs, gold) == pytest.approx(
        sk_log_loss(gold, probs, labels=[0, 1, 2, 3]), rel=1e-9
    )


def test_auc_with_ties_matches_sklearn() -> None:
    conf = [0.5, 0.5, 0.7, 0.7, 0.9, 0.2, 0.5]
    correct = [1, 0, 1, 0, 1, 0, 1]
    assert roc_auc(conf, correct) == pytest.approx(roc_auc_score(correct, conf), abs=1e-12)


# ------------------------------------------------------------------ hand-computed cases

HAND_CONF = [0.95, 0.85, 0.75, 0.3]
HAND_CORRECT = [1, 1, 0, 0]


def test_hand_case() -> None:
    # bins of width 0.2: (0.8,1] -> acc 1, conf 0.9; (0.6,0.8] -> 0 vs 0.75; (0.2,0.4] -> 0 vs 0.3
    assert ece(HAND_CONF, HAND_CORRECT, 5) == pytest.approx(0.5 * 0.1 + 0.25 * 0.75 + 0.25 * 0.3)
    assert mce(HAND_CONF, HAND_CORRECT, 5) == pytest.approx(0.75)
    assert ece(HAND_CONF, HAND_CORRECT, 2, binning="equal_mass") == pytest.approx(
        0.5 * 0.525 + 0.5 * 0.1
    )
    assert brier_score(HAND_CONF, HAND_CORRECT) == pytest.approx(0.6775 / 4)
    assert roc_auc(HAND_CONF, HAND_CORRECT) == 1.0
    # risks at coverage 1/4..4/4: 0, 0, 1/3, 1/2
    assert aurc(HAND_CONF, HAND_CORRECT) == pytest.approx((1 / 3 + 1 / 2) / 4)
    assert prediction_rejection_ratio(HAND_CONF, HAND_CORRECT) == pytest.approx(1.0)
    cov, risk, thr = risk_coverage(HAND_CONF, HAND_CORRECT)
    np.testing.assert_allclose(cov, [0.25, 0.5, 0.75, 1.0])
    np.testing.assert_allclose(risk, [0, 0, 1 / 3, 0.5])
    np.testing.assert_allclose(thr, [0.95, 0.85, 0.75, 0.3])


def test_boundary_confidences_fall_in_lower_bin() -> None:
    # 0.6 belongs to (0.5, 0.6], 0 to the first bin, 1 to the last bin
    b = bin_stats([0.0, 0.6, 1.0], [1, 1, 1], 10)
    assert b.count.tolist() == [1, 0, 0, 0, 0, 1, 0, 0, 0, 1]


def test_constant_confidence_ranks_like_random() -> None:
    conf, correct = [0.5] * 4, [1, 0, 1, 0]
    assert aurc(conf, correct) == pytest.approx(0.5)
    assert prediction_rejection_ratio(conf, correct) == pytest.approx(0.0)
    assert roc_auc(conf, correct) == pytest.approx(0.5)


def test_reversed_ranking_has_negative_prr() -> None:
    assert prediction_rejection_ratio([0.1, 0.2, 0.8, 0.9], [1, 1, 0, 0]) < 0


def test_perfectly_calibrated_bins_have_zero_ece() -> None:
    conf = [0.25] * 4 + [0.75] * 4
    correct = [1, 0, 0, 0] + [1, 1, 1, 0]
    assert ece(conf, correct, 10) == pytest.approx(0.0)
    assert mce(conf, correct, 10) == pytest.approx(0.0)


# ------------------------------------------------------------------ properties

confs = st.lists(st.floats(0.0, 1.0, allow_nan=False), min_size=2, max_size=60)


grid_confs = st.lists(st.integers(0, 100).map(lambda v: v / 100), min_size=2, max_size=60)


@st.composite
def conf_correct(draw: st.DrawFn, grid: bool = False) -> tuple[list[float], list[bool]]:
    c = draw(grid_confs if grid else confs)
    y = draw(st.lists(st.booleans(), min_size=len(c), max_size=len(c)))
    return c, y


@settings(max_examples=150, deadline=None)
@given(conf_correct(), st.integers(1, 20))
def test_ece_properties(data: tuple[list[float], list[bool]], n_bins: int) -> None:
    conf, correct = data
    e, mx = ece(conf, correct, n_bins), mce(conf, correct, n_bins)
    assert 0.0 <= e <= mx + 1e-12 <= 1.0 + 1e-12
    assert e == pytest.approx(ref_ece(conf, [int(v) for v in correct], n_bins), abs=1e-9)
    perm = np.random.default_rng(0).permutation(len(conf))
    assert ece(np.array(conf)[perm], np.array(correct)[perm], n_bins) == pytest.approx(e)


@settings(max_examples=150, deadline=None)
@given(conf_correct(grid=True))  # a coarse grid: many ties, and 1 - c keeps them apart exactly
def test_ranking_properties(data: tuple[list[float], list[bool]]) -> None:
    conf, correct = data
    c, y = np.array(conf), np.array(correct)
    a = aurc(c, y)
    oracle = aurc(y.astype(float), y)  # confidence = correctness is a perfect ranking
    worst = aurc(1.0 - y.astype(float), y)
    assert oracle - 1e-12 <= a <= worst + 1e-12
    cov, risk, _ = risk_coverage(c, y)
    assert cov[-1] == 1.0 and risk[-1] == pytest.approx(np.mean(~y))
    if 0 < y.sum() < y.size:
        auc = roc_auc(c, y)
        assert 0.0 <= auc <= 1.0
        assert auc + roc_auc(1.0 - c, y) == pytest.approx(1.0)
        assert prediction_rejection_ratio(c, y) <= 1.0 + 1e-9


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.floats(0.0, 1.0), st.booleans()), min_size=1, max_size=40))
def test_two_class_brier_is_twice_confidence_brier(rows: list[tuple[float, bool]]) -> None:
    # with two classes, sum_k (p_k - y_k)^2 = 2 (p_gold - 1)^2 = 2 (conf - correct)^2
    p_first = np.array([r[0] for r in rows])
    gold = np.array([0 if r[1] else 1 for r in rows])
    probs = np.stack([p_first, 1.0 - p_first], axis=1)
    pred = probs.argmax(axis=1)
    conf = probs[np.arange(len(rows)), pred]
    correct = pred == gold
    assert brier_multiclass(probs, gold) == pytest.approx(2 * brier_score(conf, correct), abs=1e-12)


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    ("conf", "correct", "match"),
    [
        ([0.5, 1.2], [1, 0], r"must lie in \[0, 1\]; got 1.2 at index 1"),
        ([0.5, -0.1], [1, 0], r"must lie in \[0, 1\]"),
        ([0.5, math.nan], [1, 0], "NaN/inf value.*index 1"),
        ([0.5, math.inf], [1, 0], "NaN/inf"),
        ([], [], "empty"),
        ([0.5, 0.6], [1], "differ in length"),
        ([0.5, 0.6], [1, 2], "booleans or 0/1; got 2 at index 1"),
        (["a", "b"], [1, 0], "must be numbers"),
    ],
)
def test_bad_inputs_raise_calibration_error(conf: list, correct: list, match: str) -> None:
    with pytest.raises(CalibrationError, match=match) as info:
        ece(conf, correct)
    assert info.value.param in ("confidence", "correct")


def test_single_class_is_an_error_for_ranking_metrics() -> None:
    with pytest.raises(CalibrationError, match="both correct and wrong.*all 3 are correct"):
        roc_auc([0.2, 0.5, 0.9], [1, 1, 1])
    with pytest.raises(CalibrationError, match="all 2 are wrong"):
        prediction_rejection_ratio([0.2, 0.5], [0, 0])
    # calibration metrics stay defined for a single class
    assert ece([0.2, 0.5, 0.9], [1, 1, 1], 10) == pytest.approx(1 - (0.2 + 0.5 + 0.9) / 3)


def test_too_few_points_for_equal_mass_bins() -> None:
    with pytest.raises(CalibrationError, match="3 points, 10 bins"):
        ece([0.1, 0.5, 0.9], [1, 0, 1], 10, binning="equal_mass")
    with pytest.raises(CalibrationError, match="positive integer"):
        ece([0.1], [1], 0)
    with pytest.raises(CalibrationError, match="binning must be"):
        ece([0.1], [1], 3, binning="log")  # type: ignore[arg-type]


def test_bad_probs_raise() -> None:
    with pytest.raises(CalibrationError, match="row 1 sums to 0.8"):
        brier_multiclass([[0.5, 0.5], [0.4, 0.4]], [0, 1])
    with pytest.raises(CalibrationError, match="gold indices"):
        nll_multiclass([[0.5, 0.5]], [2])
    with pytest.raises(CalibrationError, match="shape"):
        brier_multiclass([[1.0]], [0])


def test_bootstrap_is_seeded_and_brackets_the_estimate() -> None:
    conf, correct = fixed_inputs()
    c, y = np.array(conf), np.array(correct, dtype=bool)

    def stat(w: np.ndarray) -> float:
        idx = np.repeat(np.arange(c.size), w.astype(int))  # the resample as rows
        assert idx.size == c.size
        return ece(c[idx], y[idx], 10)

    ci1 = bootstrap_ci(stat, c.size, n_boot=200, seed=4)
    ci2 = bootstrap_ci(stat, c.size, n_boot=200, seed=4)
    assert ci1 == ci2 and ci1 is not None
    assert ci1[0] < ece(c, y, 10) < ci1[1]
    assert bootstrap_ci(stat, c.size, n_boot=0) is None
    assert bootstrap_ci(lambda w: None, c.size, n_boot=20) is None
    many = bootstrap_cis(
        lambda w: {"mean": float(np.dot(w, c) / c.size), "none": None}, c.size, n_boot=200, seed=4
    )
    assert set(many) == {"mean"} and many["mean"][0] < c.mean() < many["mean"][1]
    with pytest.raises(CalibrationError, match="n_boot"):
        bootstrap_cis(lambda w: {}, c.size, n_boot=-1)


def test_equal_mass_ties_are_shared_pro_rata() -> None:
    # four tied points (two right) straddle the cut between two bins of three
    conf = [0.2, 0.5, 0.5, 0.5, 0.5, 0.9]
    correct = [0, 1, 1, 0, 0, 1]
    b = bin_stats(conf, correct, 2, binning="equal_mass")
    assert b.count.tolist() == [3, 3]
    # bin 1: 0.2 (wrong) + two of the ties (one right on average)
    assert b.accuracy.tolist() == pytest.approx([1 / 3, 2 / 3])
    assert b.lower.tolist() == [0.2, 0.5] and b.upper.tolist() == [0.5, 0.9]
