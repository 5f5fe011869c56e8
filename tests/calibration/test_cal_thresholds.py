"""Threshold picking: hand-computed choices, targets met on held-out synthetic data, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from logprobe.calibration import Target, parse_target, pick_threshold, tradeoff_curve
from logprobe.errors import CalibrationError

CONF = [0.1, 0.2, 0.3, 0.4, 0.9]
CORRECT = [0, 1, 0, 1, 1]


@pytest.mark.parametrize(
    ("target", "threshold", "review_rate"),
    [
        ("errors_caught=1.0", 0.4, 0.6),  # flag 0.1, 0.2, 0.3: both errors caught
        ("errors_caught=0.5", 0.2, 0.2),  # flag 0.1 only
        ("precision=1.0", 0.4, 0.6),  # accept {0.4, 0.9}: all right
        ("precision=0.6", 0.1, 0.0),  # accept all: 3/5 right
        ("review_rate=0.5", 0.3, 0.4),  # at most 2.5 of 5 flagged -> 2
        ("review_rate=0", 0.1, 0.0),
        ("escalation_cost=0.3", 0.4, 0.6),  # costs .4 .26 .32 .18 .24 .30 -> min at 0.4
    ],
)
def test_hand_computed_thresholds(target: str, threshold: float, review_rate: float) -> None:
    choice = pick_threshold(CONF, CORRECT, target, n_boot=0)
    assert choice.threshold == pytest.approx(threshold)
    assert choice.tradeoff.review_rate == pytest.approx(review_rate)
    assert choice.threshold_ci is None


def test_hand_tradeoff_values() -> None:
    t = pick_threshold(CONF, CORRECT, "escalation_cost=0.3", n_boot=0).tradeoff
    assert t.precision == 1.0 and t.errors_caught == 1.0 and t.missed_error_rate == 0.0
    assert t.expected_cost == pytest.approx(0.18)
    assert t.coverage == pytest.approx(0.4)


def test_flag_everything_is_a_candidate() -> None:
    choice = pick_threshold([0.9, 0.9, 0.8], [0, 1, 0], "errors_caught=1.0", n_boot=0)
    assert choice.threshold > 0.9  # just above the largest confidence
    assert choice.tradeoff.review_rate == 1.0 and choice.tradeoff.precision is None


def calibrated_data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    conf = 0.5 + 0.5 * rng.beta(2.0, 1.2, size=n)
    return conf, rng.random(n) < conf


@pytest.mark.parametrize(
    ("target", "check"),
    [
        ("errors_caught=0.8", lambda c, y, t: ((c < t) & ~y).sum() / (~y).sum() >= 0.8 - 0.02),
        ("precision=0.95", lambda c, y, t: y[c >= t].mean() >= 0.95 - 0.01),
        ("review_rate=0.1", lambda c, y, t: (c < t).mean() <= 0.1 + 0.01),
    ],
)
def test_targets_hold_on_held_out_data(target: str, check) -> None:
    pick_c, pick_y = calibrated_data(20000, seed=1)
    held_c, held_y = calibrated_data(20000, seed=2)
    choice = pick_threshold(pick_c, pick_y, target, n_boot=100, seed=0)
    assert check(held_c, held_y, choice.threshold)
    lo, hi = choice.threshold_ci
    assert lo <= choice.threshold <= hi
    assert choice.target_met_share is not None and choice.target_met_share > 0.2


def test_escalation_cost_threshold_is_one_minus_cost_when_calibrated() -> None:
    # accepting costs (1 - c) in expectation, escalating costs C: flag when c < 1 - C
    conf, correct = calibrated_data(40000, seed=3)
    for cost in (0.1, 0.25):
        choice = pick_threshold(conf, correct, Target("escalation_cost", cost), n_boot=0)
        assert choice.threshold == pytest.approx(1 - cost, abs=0.03)
        assert choice.tradeoff.expected_cost < min(cost, float(np.mean(~correct)))


def test_intervals_bracket_the_estimates() -> None:
    conf, correct = calibrated_data(3000, seed=4)
    choice = pick_threshold(conf, correct, "errors_caught=0.8", n_boot=200, seed=1)
    d = choice.to_dict()
    for key in ("review_rate", "errors_caught", "precision"):
        lo, hi = d["ci"][key]
        assert lo <= d[key] <= hi
    assert d["rule"].startswith("accept if confidence >= threshold")
    again = pick_threshold(conf, correct, "errors_caught=0.8", n_boot=200, seed=1).to_dict()
    assert again == d


def test_tradeoff_curve_is_monotone() -> None:
    conf, correct = calibrated_data(500, seed=5)
    curve = tradeoff_curve(conf, correct)
    assert curve["review_rate"][0] == 0.0 and curve["review_rate"][-1] == 1.0
    assert np.all(np.diff(curve["review_rate"]) > 0)
    assert np.all(np.diff(curve["errors_caught"]) >= 0)
    assert curve["precision"][-1] is None  # nothing accepted


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("errors_caught", "KIND=VALUE"),
        ("recall=0.8", "unknown target 'recall'"),
        ("precision=high", "must be a number"),
        ("precision=1.5", r"must be in \[0, 1\]"),
        ("escalation_cost=-1", ">= 0"),
        ("review_rate=nan", "finite"),
    ],
)
def test_bad_targets(text: str, match: str) -> None:
    with pytest.raises(CalibrationError, match=match):
        parse_target(text)


def test_unreachable_targets() -> None:
    with pytest.raises(CalibrationError, match="no threshold reaches precision 0.99; the best is"):
        pick_threshold([0.9, 0.8, 0.7], [0, 1, 1], "precision=0.99", n_boot=0)
    with pytest.raises(CalibrationError, match="at least one wrong prediction"):
        pick_threshold([0.9, 0.8], [1, 1], "errors_caught=0.8", n_boot=0)
    with pytest.raises(CalibrationError, match=r"\[0, 1\]"):
        pick_threshold([0.9, 1.8], [1, 0], "review_rate=0.1", n_boot=0)


@st.composite
def labelled(draw: st.DrawFn) -> tuple[list[float], list[bool]]:
    conf = draw(st.lists(st.integers(0, 20).map(lambda v: v / 20), min_size=2, max_size=50))
    correct = draw(st.lists(st.booleans(), min_size=len(conf), max_size=len(conf)))
    return conf, correct


@settings(max_examples=150, deadline=None)
@given(
    labelled(),
    st.sampled_from(["errors_caught", "precision", "review_rate"]),
    st.floats(0.05, 0.95),
)
def test_chosen_threshold_meets_target_and_is_the_best_that_does(
    data: tuple[list[float], list[bool]], kind: str, value: float
) -> None:
    conf, correct = data
    c, y = np.array(conf), np.array(correct)

    def meets(thr: float) -> bool:
        flag = c < thr
        if kind == "errors_caught":
            return (flag & ~y).sum() >= value * (~y).sum() - 1e-9
        if kind == "review_rate":
            return flag.mean() <= value + 1e-9
        return bool((~flag).any() and y[~flag].mean() >= value - 1e-9)

    candidates = sorted(set(conf)) + [np.nextafter(max(conf), 2.0)]
    try:
        choice = pick_threshold(c, y, Target(kind, value), n_boot=0)  # type: ignore[arg-type]
    except CalibrationError:
        # only when truly impossible: no errors to catch, or no threshold reaches the precision
        assert (kind == "errors_caught" and y.all()) or (
            kind == "precision" and not any(meets(u) for u in candidates)
        )
        return
    t = choice.threshold
    assert meets(t)
    # errors_caught / precision: no lower threshold meets it; review_rate: no higher one does
    better = [u for u in candidates if (u > t if kind == "review_rate" else u < t)]
    assert not any(meets(u) for u in better)
