"""Recalibration: known temperatures are recovered, Platt/isotonic reduce ECE on held-out data,
calibrators round-trip through JSON files and apply to confidences and distributions."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from scipy.special import expit, softmax

from logprobe.calibration import (
    IsotonicCalibrator,
    PlattCalibrator,
    TemperatureCalibrator,
    calibrator_from_dict,
    calibrator_path,
    ece,
    fit_calibrator,
    fit_isotonic,
    fit_platt,
    fit_temperature,
    load_calibrator,
    save_calibrator,
    split_indices,
)
from logprobe.errors import CalibrationError


def multiclass_data(scale: float, n: int = 6000, k: int = 4, seed: int = 0):
    """True logits z; gold ~ softmax(z); the model reports softmax(scale * z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0.0, 1.5, size=(n, k))
    true_p = softmax(z, axis=1)
    gold = np.array([rng.choice(k, p=row) for row in true_p])
    return softmax(scale * z, axis=1), gold


def binary_data(scale: float, n: int = 8000, seed: int = 0):
    """Correctness ~ Bernoulli(sigmoid(z)); the model reports sigmoid(scale * z)."""
    rng = np.random.default_rng(seed)
    z = rng.normal(1.0, 1.5, size=n)
    correct = rng.random(n) < expit(z)
    return expit(scale * z), correct


def overconfident(n: int = 4000, seed: int = 1):
    """Confidence in [0.5, 1] with true accuracy well below it."""
    rng = np.random.default_rng(seed)
    conf = rng.uniform(0.5, 1.0, size=n)
    correct = rng.random(n) < 0.3 + 0.6 * (conf - 0.5) ** 1.5 / 0.5**1.5
    return conf, correct


@pytest.mark.parametrize("scale", [2.5, 0.5, 1.0])
def test_temperature_recovers_known_temperature_multiclass(scale: float) -> None:
    probs, gold = multiclass_data(scale)
    cal = fit_temperature(probs=probs, gold=gold)
    assert cal.temperature == pytest.approx(scale, rel=0.1)
    assert cal.info["input"] == "probs" and not cal.info["at_bound"]
    # calibrated probabilities are (close to) the true ones: softmax(z)
    recovered = cal.apply_probs(probs)
    true_p = softmax(np.log(probs) / scale, axis=1)
    np.testing.assert_allclose(recovered, true_p, atol=0.05)
    assert (recovered.argmax(axis=1) == probs.argmax(axis=1)).all()


@pytest.mark.parametrize("scale", [3.0, 0.6])
def test_temperature_recovers_known_temperature_binary(scale: float) -> None:
    conf, correct = binary_data(scale)
    cal = fit_temperature(conf, correct)
    assert cal.temperature == pytest.approx(scale, rel=0.1)
    assert cal.info["input"] == "confidence"


@pytest.mark.parametrize("method", ["platt", "isotonic", "temperature"])
def test_recalibration_reduces_held_out_ece(method: str) -> None:
    conf, correct = overconfident()
    fit, held = split_indices(conf.size, 0.5, seed=3)
    cal = fit_calibrator(method, conf[fit], correct[fit])
    before = ece(conf[held], correct[held], 15)
    after = ece(cal.apply_confidence(conf[held]), correct[held], 15)
    assert before > 0.15
    assert after < before / 2 if method != "temperature" else after < before
    if method != "temperature":
        assert after < 0.05


def test_platt_recovers_a_known_logistic_map() -> None:
    rng = np.random.default_rng(5)
    conf = rng.uniform(0.01, 0.99, size=20000)
    z = np.log(conf / (1 - conf))
    correct = rng.random(conf.size) < expit(0.6 * z - 0.4)
    cal = fit_platt(conf, correct)
    assert cal.slope == pytest.approx(0.6, abs=0.05)
    assert cal.intercept == pytest.approx(-0.4, abs=0.05)


def test_isotonic_map_is_monotone_and_bounded() -> None:
    conf, correct = overconfident(seed=9)
    cal = fit_isotonic(conf, correct)
    grid = np.linspace(0, 1, 201)
    out = cal.apply_confidence(grid)
    assert np.all(np.diff(out) >= 0) and out.min() >= 0 and out.max() <= 1


def test_apply_shapes_and_kinds() -> None:
    cal = TemperatureCalibrator(temperature=2.0)
    assert cal.apply(0.5) == pytest.approx(0.5)
    assert cal.apply(0.9) == pytest.approx(expit(np.log(9) / 2))
    d = cal.apply({"positive": 0.8, "negative": 0.2})
    assert list(d) == ["positive", "negative"]
    assert d["positive"] == pytest.approx(2 / 3)  # sqrt(.8)/(sqrt(.8)+sqrt(.2))
    assert sum(d.values()) == pytest.approx(1.0)
    lst = cal.apply([0.7, 0.2, 0.1])
    assert isinstance(lst, list) and sum(lst) == pytest.approx(1.0)
    arr = cal.apply(np.array([[0.7, 0.3], [0.1, 0.9]]))
    assert arr.shape == (2, 2)
    # two classes: the distribution and the bare confidence agree
    assert cal.apply([0.9, 0.1])[0] == pytest.approx(cal.apply(0.9))


def test_top_label_maps_keep_proportions() -> None:
    cal = PlattCalibrator(slope=0.5, intercept=0.0)
    out = cal.apply({"a": 0.6, "b": 0.3, "c": 0.1})
    assert out["a"] == pytest.approx(cal.apply(0.6))
    assert out["b"] / out["c"] == pytest.approx(3.0)
    assert sum(out.values()) == pytest.approx(1.0)
    one_hot = cal.apply([1.0, 0.0, 0.0])
    assert one_hot[1] == pytest.approx(one_hot[2]) and sum(one_hot) == pytest.approx(1.0)


@pytest.mark.parametrize("bad", [True, "0.5", None, 1.5, float("nan"), [0.5], [0.6, 0.6]])
def test_apply_rejects_bad_input(bad: object) -> None:
    with pytest.raises(CalibrationError):
        TemperatureCalibrator(temperature=1.5).apply(bad)  # type: ignore[arg-type]


def test_save_load_round_trip_per_model(isolated_env) -> None:
    conf, correct = overconfident()
    for method in ("temperature", "platt", "isotonic"):
        cal = fit_calibrator(method, conf, correct, model=f"tiny-{method}")
        path = save_calibrator(cal)
        assert path == isolated_env / "calibrators" / f"tiny-{method}.json"
        loaded = load_calibrator(f"tiny-{method}")
        assert loaded == cal
        np.testing.assert_allclose(
            loaded.apply_confidence(conf[:50]), cal.apply_confidence(conf[:50])
        )
        json.loads(path.read_text(), parse_constant=pytest.fail)  # no NaN/Infinity
    assert load_calibrator("no-such-model") is None


def test_model_names_with_slashes_get_distinct_safe_paths() -> None:
    a, b = calibrator_path("org/model"), calibrator_path("org_model")
    assert a != b and a.parent == b.parent and "/" not in a.name
    cal = TemperatureCalibrator(temperature=1.3, model="org/model")
    save_calibrator(cal)
    assert load_calibrator("org/model") == cal
    with pytest.raises(CalibrationError, match="empty"):
        calibrator_path(" ")


def test_explicit_path_and_corrupt_files(tmp_path) -> None:
    cal = PlattCalibrator(slope=1.2, intercept=-0.1, model="m")
    p = save_calibrator(cal, tmp_path / "sub" / "c.json")
    assert load_calibrator(path=p) == cal
    with pytest.raises(CalibrationError, match="not found"):
        load_calibrator(path=tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CalibrationError, match="cannot read calibrator"):
        load_calibrator(path=bad)
    bad.write_text(json.dumps({**cal.to_dict(), "params": {"slope": "x", "intercept": 0}}))
    with pytest.raises(CalibrationError, match="bad platt calibrator params"):
        load_calibrator(path=bad)
    bad.write_text(json.dumps({**cal.to_dict(), "method": "magic"}))
    with pytest.raises(CalibrationError, match="unknown calibration method"):
        load_calibrator(path=bad)
    # a file saved under one model's name but holding another's
    other = save_calibrator(
        PlattCalibrator(slope=1.0, intercept=0.0, model="other"), calibrator_path("mine")
    )
    with pytest.raises(CalibrationError, match="holds a calibrator for 'other'"):
        load_calibrator("mine")
    assert other.is_file()


def test_from_dict_validates_params() -> None:
    base = TemperatureCalibrator(temperature=1.0).to_dict()
    with pytest.raises(CalibrationError, match="temperature must be > 0"):
        calibrator_from_dict({**base, "params": {"temperature": -1}})
    iso = IsotonicCalibrator(x=(0.1, 0.5), y=(0.2, 0.4)).to_dict()
    with pytest.raises(CalibrationError, match="non-decreasing"):
        calibrator_from_dict({**iso, "params": {"x": [0.1, 0.5], "y": [0.4, 0.2]}})
    with pytest.raises(CalibrationError, match="not a calibrator file"):
        calibrator_from_dict({"method": "platt"})


def test_fitting_needs_both_classes_and_enough_points() -> None:
    conf = np.linspace(0.5, 1.0, 30)
    for method in ("temperature", "platt", "isotonic"):
        with pytest.raises(CalibrationError, match="all 30 are correct"):
            fit_calibrator(method, conf, np.ones(30, dtype=bool))
        with pytest.raises(CalibrationError, match="at least 10 predictions"):
            fit_calibrator(method, conf[:5], [1, 0, 1, 0, 1])
    with pytest.raises(CalibrationError, match="unknown method"):
        fit_calibrator("beta", conf, np.arange(30) % 2)


def test_missing_sklearn_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    conf, correct = overconfident(n=100)
    monkeypatch.setitem(sys.modules, "sklearn", None)
    with pytest.raises(CalibrationError, match=r"pip install 'logprobe\[calibration\]'"):
        fit_platt(conf, correct)
    with pytest.raises(CalibrationError, match="scikit-learn"):
        fit_isotonic(conf, correct)
    # temperature scaling and applying saved maps need only numpy/scipy
    assert fit_temperature(conf, correct).temperature > 0
    assert IsotonicCalibrator(x=(0.0, 1.0), y=(0.2, 0.9)).apply(0.5) == pytest.approx(0.55)


def test_split_is_seeded_and_disjoint() -> None:
    a_fit, a_eval = split_indices(101, 0.5, seed=1)
    b_fit, b_eval = split_indices(101, 0.5, seed=1)
    assert (a_fit == b_fit).all() and (a_eval == b_eval).all()
    assert len(set(a_fit) & set(a_eval)) == 0 and len(a_fit) + len(a_eval) == 101
    fit_all, none = split_indices(10, 1.0, seed=0)
    assert fit_all.size == 10 and none.size == 0
    with pytest.raises(CalibrationError, match=r"in \(0, 1\]"):
        split_indices(10, 0.0, seed=0)
