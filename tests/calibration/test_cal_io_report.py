"""Prediction files (good and bad rows) and the full report (JSON-safe, fallbacks noted)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from logprobe.calibration import (
    ReportOptions,
    calibration_report,
    json_safe,
    parse_target,
    predictions_from_rows,
    read_predictions,
)
from logprobe.errors import CalibrationError, InvalidRequestError


def write_jsonl(path: Path, rows: list, raw_lines: list[str] | None = None) -> Path:
    lines = [json.dumps(r) for r in rows] + (raw_lines or [])
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def classify_rows(n: int = 300, seed: int = 0) -> list[dict]:
    """Rows shaped like `logprobe classify --dataset` output."""
    rng = np.random.default_rng(seed)
    labels = ["World", "Sports", "Business"]
    rows = []
    for _ in range(n):
        p = rng.dirichlet([4.0, 1.0, 1.0])
        p = p[rng.permutation(3)]
        gold = labels[rng.choice(3, p=p**0.5 / (p**0.5).sum())]
        label = labels[int(p.argmax())]
        rows.append(
            {
                "label": label,
                "probs": dict(zip(labels, p.tolist(), strict=True)),
                "confidence": float(p.max()),
                "gold": gold,
                "correct": label == gold,
            }
        )
    return rows


def test_reads_classify_output_with_multiclass(tmp_path: Path) -> None:
    rows = classify_rows()
    p = read_predictions(write_jsonl(tmp_path / "p.jsonl", rows))
    assert p.n == 300 and p.multiclass and p.labels == ("World", "Sports", "Business")
    assert p.n_skipped == 0 and p.notes == ()
    assert (p.pred == p.probs.argmax(axis=1)).all()
    assert p.correct.tolist() == [r["correct"] for r in rows]
    np.testing.assert_allclose(p.probs.sum(axis=1), 1.0)


def test_bad_rows_are_skipped_with_reasons(tmp_path: Path) -> None:
    good = [{"confidence": 0.8, "correct": True}, {"confidence": 0.3, "correct": 0}]
    raw = [
        "{not json",
        "[1, 2]",
        json.dumps({"confidence": 1.4, "correct": True}),
        json.dumps({"confidence": -0.1, "correct": True}),
        '{"confidence": NaN, "correct": true}',
        json.dumps({"confidence": "high", "correct": True}),
        json.dumps({"confidence": 0.5}),
        json.dumps({"confidence": 0.5, "correct": "yes"}),
        json.dumps({"probs": {"a": 0.5}, "correct": True}),
        json.dumps({"probs": {"a": 1.5, "b": -0.5}, "correct": True}),
        "",
    ]
    p = read_predictions(write_jsonl(tmp_path / "p.jsonl", good, raw))
    assert p.n == 2 and p.n_skipped == 10
    reasons = {s.line: s.reason for s in p.skipped}
    assert reasons[3].startswith("not JSON")
    assert reasons[4] == "not a JSON object"
    assert reasons[5] == "confidence 1.4 outside [0, 1]"
    assert reasons[7] == "confidence is not finite (nan)"
    assert "not a number" in reasons[8]
    assert "no correct" in reasons[9]
    assert "true/false" in reasons[10]
    assert "at least 2 labels" in reasons[11]
    assert "[0, 1]" in reasons[12]


def test_derived_fields_and_logprobs(tmp_path: Path) -> None:
    rows = [
        {"probs": [0.2, 0.8], "gold": 1},  # label=argmax, conf from probs
        {"logprobs": {"yes": math.log(0.3), "no": math.log(0.7)}, "label": "yes", "gold": "no"},
        {"probs": {"x": 0.45, "y": 0.45}, "label": "y", "gold": "y"},  # renormalised
    ]
    p = predictions_from_rows(rows)
    assert p.confidence.tolist() == pytest.approx([0.8, 0.3, 0.5])
    assert p.correct.tolist() == [True, False, True]
    assert p.notes == ("multi-class metrics left out: rows have probs over different label sets",)


def test_unusable_files(tmp_path: Path) -> None:
    with pytest.raises(InvalidRequestError, match="not found"):
        read_predictions(tmp_path / "nope.jsonl")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n")
    with pytest.raises(CalibrationError, match="the file is empty"):
        read_predictions(empty)
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"confidence": 2, "correct": True}])
    with pytest.raises(CalibrationError, match=r"first problem: line 1: confidence 2 outside"):
        read_predictions(bad)
    binary = tmp_path / "bin.jsonl"
    binary.write_bytes(b'\xff\xfe{"confidence": 0.5}\n{"confidence": 0.5, "correct": true}\n')
    assert read_predictions(binary).skipped[0].reason == "not UTF-8"


def no_nan(text: str) -> dict:
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


def test_report_metrics_recalibration_threshold(tmp_path: Path) -> None:
    p = predictions_from_rows(classify_rows(600), source="mem")
    opts = ReportOptions(
        n_boot=100,
        seed=1,
        method="temperature",
        target=parse_target("errors_caught=0.8"),
        model="toy",
    )
    report, cal = calibration_report(p, opts)
    no_nan(json.dumps(report, allow_nan=False))
    met = report["metrics"]
    assert {
        "accuracy",
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
    } <= set(met)
    for row in met.values():
        lo, hi = row["ci"]
        assert lo <= row["value"] <= hi
    rec = report["recalibration"]
    assert rec["input"] == "probs" and rec["fit_n"] + rec["eval_n"] == 600
    assert rec["after"]["nll_multiclass"]["value"] < rec["before"]["nll_multiclass"]["value"]
    assert cal is not None and cal.model == "toy" and cal.info["eval_n"] == rec["eval_n"]
    thr = report["threshold"]
    assert thr["picked_on"] == "fit split" and thr["scale"] == "calibrated (temperature)"
    assert thr["errors_caught"] >= 0.8 and thr["held_out"]["n"] == rec["eval_n"]


def test_report_fallbacks_are_noted() -> None:
    p = predictions_from_rows([{"confidence": c, "correct": True} for c in (0.6, 0.7, 0.9)] * 10)
    report, cal = calibration_report(
        p, ReportOptions(n_boot=20, method="platt", target=parse_target("errors_caught=0.8"))
    )
    assert report["n_bins"] == 3
    assert report["metrics"]["roc_auc"] == {"value": None, "ci": None}
    assert report["metrics"]["prr"]["value"] is None
    assert any("using 3 bin(s) instead of 15" in n for n in report["notes"])
    assert any("ROC-AUC and PRR are undefined" in n for n in report["notes"])
    assert "all 15 are correct" in report["recalibration"]["error"] and cal is None
    assert "at least one wrong prediction" in report["threshold"]["error"]


def test_tiny_input_still_reports() -> None:
    report, _ = calibration_report(
        predictions_from_rows([{"confidence": 0.7, "correct": False}]), ReportOptions(n_boot=50)
    )
    assert report["n_bins"] == 1 and report["metrics"]["ece"]["value"] == pytest.approx(0.7)
    assert report["metrics"]["ece"]["ci"] is None


def test_json_safe() -> None:
    out = json_safe(
        {
            "a": np.float64("nan"),
            "b": [np.int64(3), float("inf")],
            "c": np.bool_(True),
            "d": np.array([0.5, np.nan]),
        }
    )
    assert out == {"a": None, "b": [3, None], "c": True, "d": [0.5, None]}


def test_raw_confidence_is_preferred_and_calibrated_rows_are_noted() -> None:
    rows = [
        {
            "label": "a",
            "probs": {"a": 0.9, "b": 0.1},
            "confidence": 0.7,
            "raw_confidence": 0.9,
            "gold": "a",
            "correct": True,
        },
        {
            "label": "b",
            "probs": {"a": 0.2, "b": 0.8},
            "confidence": 0.6,
            "gold": "a",
            "correct": False,
        },
    ]
    p = predictions_from_rows(rows)
    assert p.confidence.tolist() == [0.9, 0.6]
    assert p.notes == (
        "1 row(s) were calibrated when written: their raw outputs "
        "(raw_confidence, raw_probs) are used",
        "1 row(s) have a confidence that differs from probs[label] (already "
        "calibrated?): a calibrator fitted on them stacks on the first",
    )


def test_inverted_platt_fit_is_noted() -> None:
    rng = np.random.default_rng(3)
    conf = rng.uniform(0.5, 1.0, size=400)
    rows = [{"confidence": float(c), "correct": bool(rng.random() < 1.4 - c)} for c in conf]
    report, cal = calibration_report(
        predictions_from_rows(rows), ReportOptions(n_boot=0, method="platt")
    )
    assert cal is not None and cal.slope < 0  # type: ignore[attr-defined]
    assert any("Platt slope" in n and "no ranking signal" in n for n in report["notes"])
