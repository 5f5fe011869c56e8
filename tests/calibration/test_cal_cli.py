"""`logprobe calibrate`: in-process through main([...]) and once as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from logprobe.calibration import load_calibrator
from logprobe.cli.main import main

from .cal_helpers import assert_valid_png, synthetic


def write_predictions(path: Path, n: int = 400, extra: list[str] | None = None) -> Path:
    conf, correct = synthetic(n)
    lines = [
        json.dumps({"confidence": float(c), "correct": bool(y)})
        for c, y in zip(conf, correct, strict=True)
    ]
    path.write_text("\n".join(lines + (extra or [])) + "\n")
    return path


def no_nan(text: str) -> dict:
    return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON"))


def test_cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write_predictions(tmp_path / "p.jsonl", extra=['{"confidence": 7, "correct": true}'])
    code = main(["calibrate", str(f), "--json", "--bootstrap", "50", "--seed", "3"])
    out = capsys.readouterr()
    assert code == 0
    report = no_nan(out.out)
    assert report["n"] == 400 and report["n_skipped"] == 1
    assert report["skipped"] == [{"line": 401, "reason": "confidence 7 outside [0, 1]"}]
    assert report["bootstrap"] == {"n_boot": 50, "seed": 3, "level": 0.95}
    assert 0 < report["metrics"]["ece"]["value"] < 1
    assert "skipped 1 bad row(s): line 401" in out.err


def test_cli_recalibrate_save_target_plot(
    tmp_path: Path, isolated_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = write_predictions(tmp_path / "p.jsonl")
    png = tmp_path / "rel.png"
    saved = tmp_path / "iso.json"
    code = main(
        [
            "calibrate",
            str(f),
            "--json",
            "--method",
            "isotonic",
            "--fit-split",
            "0.6",
            "--seed",
            "1",
            "--save",
            str(saved),
            "--target",
            "errors_caught=0.8",
            "--plot",
            str(png),
            "--bootstrap",
            "30",
        ]
    )
    report = no_nan(capsys.readouterr().out)
    assert code == 0
    rec = report["recalibration"]
    assert (rec["fit_n"], rec["eval_n"]) == (240, 160)
    assert rec["after"]["ece"]["value"] < rec["before"]["ece"]["value"]
    assert report["saved_calibrator"] == str(saved)
    cal = load_calibrator(path=saved)
    assert cal is not None and cal.method == "isotonic" and cal.n_fit == 240
    assert cal.signature is None  # the rows record no task
    assert not (isolated_env / "calibrators").exists()
    assert report["threshold"]["held_out"]["n"] == 160
    assert report["plot"] == str(png)
    assert_valid_png(png)


def test_cli_human_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write_predictions(tmp_path / "p.jsonl")
    explicit = tmp_path / "cal.json"
    code = main(
        [
            "calibrate",
            str(f),
            "--method",
            "platt",
            "--save",
            str(explicit),
            "--target",
            "precision=0.8",
            "--bootstrap",
            "20",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "ECE (equal-width)" in out and "before" in out and "after" in out
    assert "threshold for precision=0.8" in out and "held-out rows" in out
    assert f"calibrator written to {explicit}" in out
    assert load_calibrator(path=explicit).method == "platt"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.jsonl"], "predictions file not found"),
        (["{f}", "--target", "recall=0.9"], "unknown target 'recall'"),
        (["{f}", "--save", "x.json"], "choose one with --method"),
        (["{f}", "--method", "beta"], "unknown --method 'beta'; choose one of temperature"),
        (["{f}", "--method", "platt", "--fit-split", "1.5"], "fit fraction must be in (0, 1]"),
        (["{f}", "--bins", "0"], "bins must be >= 1"),
        (["{f}", "--bootstrap", "-1"], "--bootstrap must be >= 0"),
    ],
)
def test_cli_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    f = write_predictions(tmp_path / "p.jsonl", n=60)
    argv = ["calibrate"] + [a.replace("{f}", str(f)) for a in args]
    code = main(argv if "--bootstrap" in args else [*argv, "--bootstrap", "10"])
    captured = capsys.readouterr()
    assert code == 2
    assert captured.err.startswith("error: ") and message in captured.err
    assert "Traceback" not in captured.err


def test_cli_unreachable_target_is_reported_not_fatal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    f = tmp_path / "p.jsonl"
    rows = [{"confidence": 0.99, "correct": False}] + [
        {"confidence": 0.5 + i / 100, "correct": i % 3 != 0} for i in range(40)
    ]
    f.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert main(["calibrate", str(f), "--target", "precision=0.95", "--bootstrap", "10"]) == 0
    out = capsys.readouterr().out
    assert "threshold for precision=0.95: no threshold reaches precision 0.95" in out
    assert main(["calibrate", str(f), "--json", "--target", "precision=0.95"]) == 0
    assert "no threshold reaches" in no_nan(capsys.readouterr().out)["threshold"]["error"]


def test_cli_plot_without_method(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    f = write_predictions(tmp_path / "p.jsonl")
    png = tmp_path / "raw.png"
    assert main(["calibrate", str(f), "--plot", str(png), "--bootstrap", "0"]) == 0
    assert f"plot written to {png}" in capsys.readouterr().out
    assert_valid_png(png)


def test_cli_real_subprocess(tmp_path: Path) -> None:
    f = write_predictions(tmp_path / "p.jsonl")
    exe = Path(sys.executable).parent / "logprobe"
    proc = subprocess.run(
        [
            str(exe),
            "calibrate",
            str(f),
            "--json",
            "--method",
            "temperature",
            "--no-save",
            "--target",
            "review_rate=0.1",
            "--bootstrap",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    report = no_nan(proc.stdout)
    assert report["recalibration"]["params"]["temperature"] > 0
    assert report["saved_calibrator"] is None and report["not_saved_because"] == "--no-save"
    assert report["threshold"]["review_rate"] <= 0.1
    bad = subprocess.run(
        [str(exe), "calibrate", str(tmp_path / "nope.jsonl")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: predictions file not found")
