"""The loop the calibration module exists for, with the real embedded model: classify a labelled
dataset, fit and save a calibrator for the model, and see `logprobe classify` apply it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from logprobe.calibration import load_calibrator, read_predictions
from logprobe.cli.main import main
from logprobe.engines.llamacpp import default_model_path


@pytest.mark.slow
def test_classify_calibrate_classify(tmp_path: Path, shared_data: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    preds = tmp_path / "preds.jsonl"
    code = main(["classify", "--dataset", str(shared_data / "sst2" / "dev.tsv"),
                 "--labels", "positive,negative", "--label-map", "0=negative,1=positive",
                 "--limit", "24", "--seed", "0", "--out", str(preds), "--uncalibrated",
                 "--threads", "1", "--json"])
    assert code == 0, capsys.readouterr().err
    capsys.readouterr()
    p = read_predictions(preds)
    assert p.n == 24 and p.multiclass and set(p.labels or ()) == {"positive", "negative"}
    assert 0 < p.correct.sum() < 24, "needs right and wrong predictions to fit"

    model = Path(default_model_path()).stem  # the engine's model_name
    code = main(["calibrate", str(preds), "--method", "platt", "--fit-split", "1.0",
                 "--model", model, "--json", "--bootstrap", "20"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0 and report["recalibration"]["fit_n"] == 24
    cal = load_calibrator(model)
    assert cal is not None and cal.method == "platt"

    text = "it 's a charming and often affecting journey ."
    assert main(["classify", text, "--labels", "positive,negative", "--threads", "1",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["calibrated"] is True
    assert out["confidence"] == pytest.approx(cal.apply(out["raw_confidence"]))
