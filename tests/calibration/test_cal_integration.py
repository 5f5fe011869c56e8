"""The loop the calibration module exists for, with the real embedded model: classify a labelled
validation slice, fit a calibrator (saved under the task, no --model), classify a test slice
and see it applied to that task only; contextual calibration from content-free inputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from logprobe.calibration import read_calibrator, task_calibrator_path
from logprobe.cli.main import main
from logprobe.errors import CalibrationError
from logprobe.tasks import classify, classify_signature, fit_contextual_for

SST2 = ["--labels", "positive,negative", "--label-map", "0=negative,1=positive", "--threads", "1"]
REVIEW = "it 's a charming and often affecting journey ."


def _out(capsys: pytest.CaptureFixture[str]) -> Any:
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_classify_val_calibrate_classify_test(
    tmp_path: Path, shared_data: Path, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = str(shared_data / "sst2" / "dev.tsv")
    val, test = tmp_path / "val.jsonl", tmp_path / "test.jsonl"
    assert (
        main(
            [
                "classify",
                "--dataset",
                data,
                *SST2,
                "--limit",
                "16",
                "--seed",
                "0",
                "--out",
                str(val),
                "--json",
            ]
        )
        == 0
    ), capsys.readouterr().err
    assert _out(capsys)["calibrated"] is False
    rows = [json.loads(x) for x in val.read_text().splitlines()]
    sig = rows[0]["signature"]
    assert all(r["signature"] == sig and r["model"] == sig["model"] for r in rows)
    assert sig["labels"] == ["positive", "negative"] and sig["method"] == "exact"

    assert (
        main(
            [
                "calibrate",
                str(val),
                "--method",
                "vector",
                "--fit-split",
                "1.0",
                "--bootstrap",
                "20",
                "--json",
            ]
        )
        == 0
    )
    report = _out(capsys)
    saved = Path(report["saved_calibrator"])
    assert saved.is_relative_to(isolated_env / "calibrators" / "tasks")
    cal = read_calibrator(saved)
    assert cal.method == "vector" and cal.signature is not None and cal.signature.id == sig["id"]
    assert saved == task_calibrator_path(cal.signature)

    assert (
        main(
            [
                "classify",
                "--dataset",
                data,
                *SST2,
                "--limit",
                "6",
                "--seed",
                "1",
                "--out",
                str(test),
                "--json",
            ]
        )
        == 0
    )
    summary = _out(capsys)
    assert summary["calibrated"] is True and summary["written"] == 6
    for r in (json.loads(x) for x in test.read_text().splitlines()):
        assert r["calibrator"] == "vector"
        expected = cal.apply(r["raw_probs"])
        assert r["probs"] == pytest.approx(expected)
        assert r["label"] == max(expected, key=expected.__getitem__)
        assert r["confidence"] == pytest.approx(expected[r["label"]])
        assert r["margin"] == pytest.approx(abs(expected["positive"] - expected["negative"]))
        assert r["correct"] == (r["label"] == r["gold"])
        assert r["raw_correct"] == (r["raw_label"] == r["gold"])
        assert r["raw_confidence"] == pytest.approx(max(r["raw_probs"].values()))

    # the same task applies it; another label order or template does not, and forcing it errors
    assert main(["classify", REVIEW, *SST2[:2], "--threads", "1", "--json"]) == 0
    assert _out(capsys)["calibrator"] == "vector"
    for other in (
        ["--labels", "negative,positive"],
        ["--labels", "positive,negative", "--template", "Review: {text}\nIt is"],
    ):
        assert main(["classify", REVIEW, *other, "--threads", "1", "--json"]) == 0
        out = _out(capsys)
        assert out["calibrated"] is False and out["calibrator"] is None
        assert out["probs"] == out["raw_probs"]
        assert main(["classify", REVIEW, *other, "--threads", "1", "--calibrator", str(saved)]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "fitted for another task" in err
        assert f"fitted for {cal.signature.describe()}" in err and "this task is" in err

    assert (
        main(["calibrate", str(val), "--method", "contextual", "--bootstrap", "0", "--json"]) == 0
    )
    rec = _out(capsys)["recalibration"]
    assert rec["method"] == "contextual" and abs(sum(rec["params"]["prior"]) - 1) < 1e-9


@pytest.mark.slow
def test_contextual_calibration_on_the_real_engine(engine: Any) -> None:
    labels = ["positive", "negative"]
    template = "Review: {text}\nSentiment (positive or negative):"
    sig = classify_signature(engine, labels, template=template)
    cal = fit_contextual_for(engine, sig)
    assert cal.info["content_free_inputs"] == ["N/A", "", "[MASK]"]
    assert sum(cal.prior) == pytest.approx(1.0) and cal.signature == sig
    only_na = fit_contextual_for(engine, sig, inputs=["N/A"])
    r = classify(engine, "N/A", labels, template=template, calibrator=only_na)
    # the content-free input is the prior: divided by itself it carries no preference
    assert list(r.probs.values()) == pytest.approx([0.5, 0.5], abs=1e-6)
    assert r.raw is not None and list(r.raw.probs.values()) == pytest.approx(list(only_na.prior))
    raw_sig = classify_signature(engine, labels, template=None)
    assert fit_contextual_for(engine, raw_sig).info["content_free_inputs"] == ["N/A", "[MASK]"]
    with pytest.raises(CalibrationError, match="fitted for another task"):
        classify(engine, "great", list(reversed(labels)), template=template, calibrator=cal)
    other = classify_signature(engine, labels, template=template).to_dict() | {"model": "x"}
    from logprobe.calibration import TaskSignature

    with pytest.raises(CalibrationError, match="needs the task's model 'x'"):
        fit_contextual_for(engine, TaskSignature.from_dict(other | {"id": None}))
    assert np.isfinite(cal.prior).all()


def test_classify_reports_calibrated_beside_raw(engine: Any) -> None:
    from logprobe.calibration import PlattCalibrator, VectorCalibrator

    labels = ["positive", "negative"]
    raw = classify(engine, REVIEW, labels, abstain_margin=0.5)
    loser = min(raw.probs, key=raw.probs.__getitem__)
    push = tuple(20.0 if lab == loser else -20.0 for lab in labels)
    r = classify(
        engine,
        REVIEW,
        labels,
        abstain_margin=0.5,
        calibrator=VectorCalibrator(scale=1.0, bias=push, labels=tuple(labels)),
    )
    assert r.label == loser and r.raw is not None and r.raw.label == raw.label  # decision moved
    assert r.raw.probs == pytest.approx(raw.probs) and r.confidence > 0.99
    assert r.margin == pytest.approx(r.probs[loser] - r.probs[raw.label])
    assert r.decision == "accept" and r.raw.decision == raw.decision
    d = r.to_dict()
    assert (d["label"], d["raw_label"], d["calibrator"]) == (loser, raw.label, "vector")
    assert d["raw_confidence"] == pytest.approx(raw.confidence)
    # a map of the top-label confidence keeps the model's label, even when it calibrates it down
    p = classify(
        engine,
        REVIEW,
        labels,
        calibrator=PlattCalibrator(slope=1.0, intercept=-8.0, labels=tuple(labels)),
    )
    assert p.label == raw.label and p.confidence < raw.confidence
    assert p.margin < 0 and p.to_dict()["calibrator"] == "platt"
