"""The task commands through ``main([...])`` and one real subprocess."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from logprobe.cli.main import main

REVIEW = "An absolute delight from start to finish; I loved every minute."


def _json(capsys: pytest.CaptureFixture[str]) -> Any:
    out = capsys.readouterr().out
    return json.loads(out)


def test_classify_text_json(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "classify",
            "--labels",
            "positive,negative,so so",
            REVIEW,
            "--json",
            "--normalize",
            "tokens",
            "--abstain-margin",
            "0.99",
        ]
    )
    assert code == 0
    d = _json(capsys)
    assert set(d["probs"]) == {"positive", "negative", "so so"}
    assert abs(sum(d["probs"].values()) - 1.0) < 1e-9
    assert d["normalize"] == "tokens" and d["decision"] == "abstain"


def test_classify_table_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", "-l", "positive,negative", REVIEW, "--chat"]) == 0
    out = capsys.readouterr().out
    assert "positive" in out and "negative" in out and "method=exact" in out


def test_saved_calibrator_is_applied(engine: Any, capsys: pytest.CaptureFixture[str]) -> None:
    cal_mod = pytest.importorskip("logprobe.calibration")
    from logprobe.calibration.recalibrate import TemperatureCalibrator
    from logprobe.tasks import classify_signature

    # a per-model file of an older logprobe is not applied: it may belong to another task
    cal_mod.save_calibrator(TemperatureCalibrator(temperature=2.0, model=engine.model_name))
    assert main(["classify", "-l", "positive,negative", REVIEW, "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["calibrated"] is False
    assert "per-model calibrator of an older logprobe" in captured.err
    sig = classify_signature(engine, ["positive", "negative"])
    cal_mod.save_calibrator(TemperatureCalibrator(temperature=2.0, signature=sig))
    assert main(["classify", "-l", "positive,negative", REVIEW, "--json"]) == 0
    d = _json(capsys)
    p = d["raw_confidence"]
    expected = 1 / (1 + math.exp(-math.log(p / (1 - p)) / 2.0))
    assert d["calibrated"] is True and d["confidence"] == pytest.approx(expected, rel=1e-6)
    assert d["signature"] == sig.to_dict() and d["calibrator"] == "temperature"
    assert main(["classify", "-l", "positive,negative", REVIEW, "--json", "--uncalibrated"]) == 0
    d = _json(capsys)
    assert d["calibrated"] is False and d["confidence"] == d["raw_confidence"]


def test_classify_dataset_mode(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "d.tsv"
    data.write_text(
        "sentence\tlabel\nwonderful , moving film\t1\nboring mess\t0\nonly one field\n\t1\n",
        encoding="utf-8",
    )
    out = tmp_path / "preds.jsonl"
    code = main(
        [
            "classify",
            "--dataset",
            str(data),
            "--labels",
            "negative,positive",
            "--text-col",
            "sentence",
            "--label-col",
            "label",
            "--label-map",
            "0=negative,1=positive",
            "--out",
            str(out),
            "--json",
        ]
    )
    assert code == 0
    d = _json(capsys)
    assert d["written"] == 2 and d["skipped"] == 2 and d["labelled"] == 2
    assert [s["line"] for s in d["skipped_rows"]] == [4, 5]
    preds = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [p["gold"] for p in preds] == ["positive", "negative"]
    assert all({"label", "probs", "confidence", "gold", "correct"} <= set(p) for p in preds)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["classify", "--labels", "a,a", "text"], "duplicate label 'a'"),
        (["classify", "--labels", "a,,b", "text"], "label 1 is empty"),
        (["classify", "--labels", "a,b"], "give a TEXT or --dataset"),
        (["classify", "--labels", "a,b", "--dataset", "/nonexistent.jsonl"], "no such file"),
        (["choose", "x", "--regex", "(unclosed"], "Invalid 'regex'"),
        (
            ["choose", "x", "--json-schema", '{"type": "integer", "minimum": 3, "maximum": 1}'],
            "Unsatisfiable",
        ),
        (["choose", "x"], "exactly one of"),
        (["eval", "mc", "/nonexistent.jsonl"], "no such file"),
        (["rerank", "prompt", "a", "a"], "duplicate candidate"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err
    assert "Traceback" not in err and len(err.splitlines()) == 1


def test_choose_and_rerank_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["choose", "Is the sky blue? Answer:", "--choices", "yes,no", "--json"]) == 0
    d = _json(capsys)
    assert d["output"] in ("yes", "no") and set(d["distribution"]) == {"yes", "no"}
    assert main(["choose", "The year was", "--regex", "[0-9]{4}", "--json"]) == 0
    d = _json(capsys)
    assert len(d["output"]) == 4 and d["output"].isdigit() and d["complete"]
    assert (
        main(
            [
                "rerank",
                "The capital of France is",
                "Paris.",
                "a potato.",
                "--json",
                "--normalize",
                "none",
            ]
        )
        == 0
    )
    d = _json(capsys)
    assert d["best"] == "Paris." and d["order"] == [0, 1]


def test_eval_mc_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "mc.jsonl"
    items = [
        {
            "query": "Question: What color is grass?\nAnswer:",
            "choices": ["green", "purple"],
            "gold": 0,
        },
        {
            "query": "Question: How many days are in a week?\nAnswer:",
            "choices": ["seven", "forty"],
            "gold": 0,
        },
        {"query": "Question: broken", "choices": ["x"], "gold": 0},
    ]
    data.write_text("\n".join(json.dumps(i) for i in items) + "\n", encoding="utf-8")
    out = tmp_path / "items.jsonl"
    code = main(
        ["eval", "mc", str(data), "--limit", "2", "--seed", "1", "--json", "--out", str(out)]
    )
    assert code == 0
    d = _json(capsys)
    assert d["n"] == 2 and len(out.read_text(encoding="utf-8").splitlines()) == 2
    # resuming scores nothing again and reports the same metrics
    assert (
        main(
            [
                "eval",
                "mc",
                str(data),
                "--limit",
                "2",
                "--seed",
                "1",
                "--json",
                "--out",
                str(out),
                "--resume",
            ]
        )
        == 0
    )
    again = _json(capsys)
    assert again["resumed"] == 2 and again["acc"] == d["acc"] and again["n"] == 2
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
    for m in ("acc", "acc_norm_tokens", "acc_norm_chars"):
        assert 0.0 <= d[m] <= 1.0 and f"{m}_stderr" in d
    assert d["skipped"][0]["line"] == 3
    assert main(["eval", "mc", str(data), "--chat-template", "--json"]) == 0
    assert _json(capsys)["chat_template"] is True


def test_eval_loglik_perplexity_compare(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "loglik", "One, two, three,", " four", " zebra", "--json"]) == 0
    rows = _json(capsys)
    assert rows[0]["logprob"] > rows[1]["logprob"] and rows[0]["is_greedy"] is True
    doc = tmp_path / "doc.txt"
    doc.write_text("The cat sat on the mat. The dog sat on the log.", encoding="utf-8")
    assert main(["eval", "perplexity", str(doc), "--json"]) == 0
    d = _json(capsys)
    assert d["documents"] == 1 and d["perplexity"] > 1.0
    assert main(["eval", "compare", str(doc), "--model-b", _default_model(), "--json"]) == 0
    c = _json(capsys)
    assert c["regressions"] == 0 and c["same_tokenization"] is True
    assert c["segments"] > 5


def _default_model() -> str:
    from logprobe.engines.llamacpp import default_model_path

    return default_model_path()


def test_route_single_and_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = _default_model()
    assert (
        main(
            [
                "route",
                REVIEW,
                "--labels",
                "positive,negative",
                "--strong",
                model,
                "--threshold",
                "1.01",
                "--json",
            ]
        )
        == 0
    )
    d = _json(capsys)
    assert d["escalated"] is True and d["answer"] in ("positive", "negative")
    data = tmp_path / "r.jsonl"
    data.write_text(
        '{"text": "I loved it.", "gold": "positive"}\n'
        '{"text": "I hated it.", "gold": "negative"}\n'
        '{"text": "Dull.", "gold": "negative"}\n',
        encoding="utf-8",
    )
    assert (
        main(
            [
                "route",
                "--dataset",
                str(data),
                "--labels",
                "positive,negative",
                "--strong",
                model,
                "--target-accuracy",
                "0.0",
                "--json",
            ]
        )
        == 0
    )
    r = _json(capsys)
    assert r["n"] == 3 and r["sweep"][0]["escalation_rate"] == 0.0
    assert r["sweep"][-1]["escalation_rate"] == 1.0
    assert r["chosen"]["cost_per_item"] == 1.0  # target 0: never escalate is cheapest


def test_real_subprocess(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("logprobe")
    env = {**os.environ, "LOGPROBE_HOME": str(tmp_path)}
    proc = subprocess.run(
        [str(exe), "classify", "--labels", "positive,negative", REVIEW, "--json"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    d = json.loads(proc.stdout)
    assert abs(sum(d["probs"].values()) - 1.0) < 1e-9
    bad = subprocess.run(
        [str(exe), "classify", "--labels", "x,x", "t"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: ") and not bad.stdout
