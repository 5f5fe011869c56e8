"""Plot data for the web viewer (JSON-ready) and PNG files."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from logprobe.calibration import (
    reliability_data,
    risk_coverage_data,
    save_calibration_plot,
)
from logprobe.errors import CalibrationError

from .cal_helpers import assert_valid_png, synthetic


def test_reliability_data_is_json_ready() -> None:
    conf, correct = synthetic()
    d = reliability_data(conf, correct, n_bins=10)
    json.dumps(d, allow_nan=False)
    assert d["n"] == 400 and len(d["bins"]) == 10
    assert sum(b["count"] for b in d["bins"]) == 400
    empty = [b for b in d["bins"] if b["count"] == 0]
    assert empty and all(b["accuracy"] is None and b["gap"] is None for b in empty)
    filled = [b for b in d["bins"] if b["count"]]
    assert d["ece"] == pytest.approx(sum(b["count"] / 400 * abs(b["gap"]) for b in filled))
    mass = reliability_data(conf, correct, n_bins=8, binning="equal_mass")
    assert {b["count"] for b in mass["bins"]} == {50}


def test_risk_coverage_data_is_thinned_and_ends_at_full_coverage() -> None:
    conf, correct = synthetic(n=2000)
    d = risk_coverage_data(conf, correct, max_points=100)
    json.dumps(d, allow_nan=False)
    assert len(d["coverage"]) <= 100 and d["coverage"][-1] == 1.0
    assert d["risk"][-1] == pytest.approx(d["error_rate"])
    assert d["oracle_aurc"] <= d["aurc"] <= d["random_aurc"]
    with pytest.raises(CalibrationError, match="max_points"):
        risk_coverage_data(conf, correct, max_points=1)


def test_png_is_written_and_valid(tmp_path: Path) -> None:
    conf, correct = synthetic()
    out = save_calibration_plot(
        tmp_path / "a" / "plot.png", conf, correct, calibrated=np.sqrt(conf) * 0.9, title="test"
    )
    assert assert_valid_png(out) == (1000, 440)
    several = save_calibration_plot(
        tmp_path / "b.png",
        conf,
        correct,
        n_bins=10,
        calibrated={"platt": conf * 0.8, "isotonic": conf**2},
    )
    assert assert_valid_png(several) == (1000, 440)
    assert several.read_bytes() != out.read_bytes()


def test_missing_matplotlib_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    conf, correct = synthetic(50)
    with pytest.raises(CalibrationError, match="needs matplotlib"):
        save_calibration_plot(tmp_path / "x.png", conf, correct)
