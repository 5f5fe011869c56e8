"""Calibrators belong to a task: signatures, saving under them, refusing other tasks' ones, the
before/after comparison with the majority baseline, and selective prediction (no engine)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from logprobe.calibration import (
    TaskSignature,
    calibrator_from_dict,
    check_same_task,
    load_task_calibrator,
    predictions_from_rows,
    prompt_spec,
    read_calibrator,
    read_predictions,
    task_calibrator_path,
)
from logprobe.calibration.compare import macro_f1
from logprobe.calibration.selective import rule_of_thumb
from logprobe.cli.main import main
from logprobe.errors import CalibrationError

from .cal_helpers import signature_dict, signed_rows, write_rows


def _sig(**kw: object) -> TaskSignature:
    base: dict = {
        "model": "m",
        "labels": ("a", "b"),
        "prompt": prompt_spec(template="T {text}"),
        "method": "exact",
        "normalize": "none",
    }
    base.update(kw)
    return TaskSignature(**base)


def test_signature_identity_and_differences() -> None:
    a = _sig()
    assert a == _sig() and a.id == _sig().id and len(a.id) == 16
    assert TaskSignature.from_dict(json.loads(json.dumps(a.to_dict()))) == a
    for change, field in [
        ({"labels": ("b", "a")}, "labels"),
        ({"prompt": prompt_spec(template="U {text}")}, "prompt_hash"),
        ({"prompt": prompt_spec(template="T {text}", chat=True)}, "prompt_hash"),
        ({"method": "first_token"}, "method"),
        ({"normalize": "tokens"}, "normalize"),
        ({"model": "n"}, "model"),
    ]:
        other = _sig(**change)
        assert other != a and other.id != a.id and a.differences(other) == [field]
    with pytest.raises(CalibrationError) as e:
        check_same_task(a, _sig(labels=("a", "c")))
    assert "differs in labels" in e.value.message and "[a, b]" in e.value.message
    assert "[a, c]" in e.value.message
    check_same_task(None, a)  # an unsigned calibrator is only applied when forced
    bad = a.to_dict() | {"id": "0" * 16}
    with pytest.raises(CalibrationError, match="does not match its fields"):
        TaskSignature.from_dict(bad)


def test_predictions_record_their_task() -> None:
    p = predictions_from_rows(signed_rows(50))
    assert p.signature is not None and p.signature.labels == ("a", "b", "c")
    assert p.mean_logprob is not None and p.mean_logprob.shape == (50,)
    mixed = predictions_from_rows(signed_rows(20) + signed_rows(20, labels=("x", "y", "z")))
    assert mixed.signature is None and len(mixed.signatures) == 2
    with pytest.raises(CalibrationError, match="mixes 2 tasks"):
        mixed.require_signature()
    old = [{k: v for k, v in r.items() if k not in ("signature", "model")} for r in signed_rows(20)]
    with pytest.raises(CalibrationError, match="20 row.* without a task signature"):
        predictions_from_rows(old).require_signature()


def test_rows_written_calibrated_are_read_raw() -> None:
    row = signed_rows(1)[0]
    raw = dict(row)
    row.update(
        {
            "label": "b",
            "probs": {"a": 0.1, "b": 0.8, "c": 0.1},
            "confidence": 0.8,
            "correct": row["gold"] == "b",
            "raw_label": raw["label"],
            "raw_probs": raw["probs"],
            "raw_confidence": raw["confidence"],
            "raw_correct": raw["correct"],
        }
    )
    p = predictions_from_rows([row])
    assert p.confidence[0] == pytest.approx(raw["confidence"])
    assert bool(p.correct[0]) == raw["correct"]
    assert p.probs is not None and p.probs[0].tolist() == pytest.approx(list(raw["probs"].values()))


def test_macro_f1_matches_sklearn() -> None:
    rng = np.random.default_rng(0)
    pred, gold = rng.integers(0, 4, 300), rng.integers(0, 3, 300)
    assert macro_f1(pred, gold, 4) == pytest.approx(f1_score(gold, pred, average="macro"))
    w = rng.integers(0, 3, 300).astype(float)
    rep = np.repeat(np.arange(300), w.astype(int))
    assert macro_f1(pred, gold, 4, w) == pytest.approx(
        f1_score(gold[rep], pred[rep], average="macro")
    )


def test_rule_of_thumb_zones() -> None:
    mlp = np.array([-0.1, -0.4, -1.0, -1.2, -2.0, -3.0])
    correct = np.array([True, True, False, True, False, True])
    r = rule_of_thumb(mlp, correct)
    assert (r["publish_share"], r["grey_share"], r["review_share"]) == pytest.approx(
        (2 / 6, 2 / 6, 2 / 6)
    )
    assert r["lenient"]["review_rate"] == pytest.approx(2 / 6)
    assert r["lenient"]["errors_caught"] == pytest.approx(0.5)  # -2.0 caught, -1.0 missed
    assert r["strict"]["errors_caught"] == pytest.approx(1.0)
    assert r["strict"]["accuracy_of_rest"] == pytest.approx(1.0)


def _json(capsys: pytest.CaptureFixture[str]) -> dict:
    return json.loads(capsys.readouterr().out, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


def test_calibrate_saves_under_the_task_and_reports_before_after(
    tmp_path: Path, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write_rows(tmp_path / "val.jsonl", signed_rows(500, seed=0))
    test = write_rows(tmp_path / "test.jsonl", signed_rows(300, seed=1))
    assert (
        main(
            [
                "calibrate",
                str(f),
                "--method",
                "matrix",
                "--eval-file",
                str(test),
                "--bootstrap",
                "100",
                "--json",
            ]
        )
        == 0
    )
    report = _json(capsys)
    sig = read_predictions(f).require_signature()
    path = task_calibrator_path(sig)
    assert report["saved_calibrator"] == str(path) and path.is_relative_to(isolated_env)
    rec = report["recalibration"]
    assert (rec["fit_n"], rec["eval_n"], rec["eval_source"]) == (500, 300, str(test))
    assert rec["changes_decision"] is True
    for name in ("accuracy", "macro_f1", "ece", "brier", "roc_auc"):
        assert rec["before"][name]["ci"] is not None and rec["after"][name]["ci"] is not None
    acc = rec["delta"]["accuracy"]
    assert acc["value"] > 0.1 and acc["ci"][0] > 0  # paired interval of the gain excludes 0
    assert rec["after"]["accuracy"]["value"] > rec["baseline"]["accuracy"]["value"]
    assert rec["baseline"]["label"] in ("a", "b", "c")
    sel = rec["selective"]
    assert sel["calibrated"]["target"] == {"kind": "errors_caught", "value": 0.8}
    assert "rule_of_thumb" in sel["raw"] and "at_rule_budget" in sel["calibrated"]
    found = load_task_calibrator(sig)
    assert found is not None and found[0].method == "matrix" and found[0].signature == sig
    assert found[0].n_fit == 500


def test_calibrate_human_output_and_auto(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write_rows(tmp_path / "val.jsonl", signed_rows(400, seed=2))
    assert main(["calibrate", str(f), "--method", "auto", "--bootstrap", "50"]) == 0
    out = capsys.readouterr().out
    assert "auto: " in out and "lowest cross-validated log loss" in out
    assert "majority-label baseline" in out and "after - before" in out
    assert "rule of thumb (mean logprob > -0.5 publish" in out
    assert "task: toy-model [a, b, c]" in out
    assert "calibrator written to" in out and "logprobe classify` applies it" in out


def test_unsigned_rows_are_not_fitted_and_dropped(
    tmp_path: Path, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rows = [{k: v for k, v in r.items() if k != "signature"} for r in signed_rows(100)]
    f = write_rows(tmp_path / "old.jsonl", rows)
    assert main(["calibrate", str(f), "--method", "vector", "--bootstrap", "0"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "without a task signature" in err and "--save" in err
    assert not (isolated_env / "calibrators").exists()
    assert main(["calibrate", str(f), "--method", "vector", "--bootstrap", "0", "--no-save"]) == 0
    assert "no calibrator saved: --no-save" in capsys.readouterr().out
    saved = tmp_path / "v.json"
    assert (
        main(
            [
                "calibrate",
                str(f),
                "--method",
                "vector",
                "--bootstrap",
                "0",
                "--save",
                str(saved),
                "--json",
            ]
        )
        == 0
    )
    assert _json(capsys)["saved_calibrator"] == str(saved)
    assert read_calibrator(saved).signature is None and read_calibrator(saved).labels == (
        "a",
        "b",
        "c",
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "x"], "--model is gone"),
        (["--method", "vector", "--save", "a.json", "--no-save"], "contradict"),
        (["--no-save"], "choose one with --method"),
        (["--method", "contextual"], "needs model 'toy-model': pass --engine"),
    ],
)
def test_calibrate_option_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    f = write_rows(tmp_path / "val.jsonl", signed_rows(60))
    assert main(["calibrate", str(f), "--bootstrap", "0", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err


def test_eval_file_of_another_task_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write_rows(tmp_path / "val.jsonl", signed_rows(100))
    other = write_rows(tmp_path / "other.jsonl", signed_rows(100, template="Other {text}"))
    for extra in ([], ["--no-save"]):
        assert (
            main(
                [
                    "calibrate",
                    str(f),
                    "--method",
                    "vector",
                    "--eval-file",
                    str(other),
                    "--bootstrap",
                    "0",
                    *extra,
                ]
            )
            == 2
        )
        err = capsys.readouterr().err
        assert "evaluation rows come from another task (differs in prompt_hash)" in err


def test_version_1_calibrator_files_are_still_read(tmp_path: Path) -> None:
    old = {
        "format": "logprobe.calibrator/1",
        "method": "temperature",
        "model": "m",
        "n_fit": 9,
        "created": "2026-01-01T00:00:00+00:00",
        "params": {"temperature": 2.0},
        "info": {},
    }
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    cal = read_calibrator(path)
    assert cal.signature is None and cal.apply(0.9) < 0.9
    assert calibrator_from_dict(cal.to_dict()).to_dict()["format"] == "logprobe.calibrator/2"
    assert signature_dict()["labels"] == ["a", "b", "c"]
