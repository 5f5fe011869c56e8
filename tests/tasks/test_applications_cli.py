"""The application commands through ``main([...])`` on small slices of the shared data, their
one-line errors (exit 2), and one real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from logprobe.cli import apps
from logprobe.cli import main as cli_main

TICKETS = Path(__file__).resolve().parents[2] / "bench" / "data" / "tickets" / "tickets.jsonl"
POLICY = Path(__file__).resolve().parents[2] / "bench" / "data" / "moderation" / "offensive.toml"
REGISTER = (
    "from logprobe.cli import apps, main as m\n"
    "names = {c.name for c in m.app.registered_commands}\n"
    "if 'relevance' not in names: apps.register(m.app)\n"
    "raise SystemExit(m.main(__import__('sys').argv[1:]))\n"
)


@pytest.fixture(autouse=True, scope="module")
def registered() -> None:
    """Until cli/main.py lists ``apps``, add its commands to the app (no-op once it does)."""
    if "relevance" not in {c.name for c in cli_main.app.registered_commands}:
        apps.register(cli_main.app)


def run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, Any, str]:
    code = cli_main.main(args)
    cap = capsys.readouterr()
    try:
        out = json.loads(cap.out) if cap.out.strip().startswith("{") else cap.out
    except json.JSONDecodeError:
        out = cap.out
    return code, out, cap.err


def one_line_error(code: int, err: str, needle: str) -> None:
    assert code == 2
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err


def test_relevance_dataset_reports_ranking_metrics(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = (shared_data / "wikiqa" / "WikiQA-test.tsv").read_text(encoding="utf-8").splitlines()
    answered = list(dict.fromkeys(ln.split("\t")[0] for ln in src[1:] if ln.endswith("\t1")))
    rows = [src[0]] + [ln for ln in src[1:] if ln.split("\t")[0] in answered[:2]]
    data = tmp_path / "slice.tsv"
    data.write_text("\n".join(rows) + "\n", encoding="utf-8")
    out, run_file = tmp_path / "q.jsonl", tmp_path / "run.trec"
    code, d, _ = run(
        [
            "relevance",
            "--dataset",
            str(data),
            "--qid-col",
            "QuestionID",
            "--question-col",
            "Question",
            "--passage-col",
            "Sentence",
            "--label-col",
            "Label",
            "--all",
            "--out",
            str(out),
            "--run",
            str(run_file),
            "--threads",
            "1",
            "--json",
        ],
        capsys,
    )
    assert code == 0
    n_q = d["questions"]
    assert n_q >= 1 and len(out.read_text().splitlines()) == n_q
    for name in ("judge", "ql", "combined", "word_overlap", "document_order"):
        m = d["methods"][name]
        assert all(0.0 <= m[k] <= 1.0 for k in ("map", "mrr", "ndcg@10", "p@1"))
        assert m["mrr"] >= m["p@1"]
    assert len(run_file.read_text().splitlines()) == sum(
        len(json.loads(ln)["candidates"]) for ln in out.read_text().splitlines()
    )


def test_relevance_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(["relevance", "What is it?"], capsys)
    one_line_error(code, err, "no candidate passages")
    empty = tmp_path / "empty.txt"
    empty.write_text("\n", encoding="utf-8")
    code, _, err = run(["relevance", "What is it?", "--file", str(empty)], capsys)
    one_line_error(code, err, "no candidate passages")
    data = tmp_path / "d.tsv"
    data.write_text("QuestionID\tQuestion\tSentence\tLabel\nQ1\tq?\ts\t1\n", encoding="utf-8")
    code, _, err = run(["relevance", "--dataset", str(data)], capsys)
    one_line_error(code, err, "missing column 'qid'")


def test_moderate_fit_and_report_on_a_slice(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    t = shared_data / "tweet_eval_offensive"
    texts = (t / "val_text.txt").read_text(encoding="utf-8").split("\n")[:24]
    labels = (t / "val_labels.txt").read_text(encoding="utf-8").split("\n")[:24]
    data = tmp_path / "val.jsonl"
    data.write_text(
        "".join(
            json.dumps({"text": x, "label": y}) + "\n" for x, y in zip(texts, labels, strict=True)
        ),
        encoding="utf-8",
    )
    fit = tmp_path / "fit.json"
    code, d, _ = run(
        [
            "moderate",
            "--policy",
            str(POLICY),
            "--dataset",
            str(data),
            "--label-map",
            "0=not offensive,1=offensive",
            "--fit",
            str(fit),
            "--target-precision",
            "0.6",
            "--allow-precision",
            "0.6",
            "--threads",
            "1",
            "--json",
        ],
        capsys,
    )
    assert code == 0 and fit.is_file()
    assert d["rows"] == 24 and sum(d["decisions"].values()) == 24
    assert 0.0 <= d["macro_f1"] <= 1.0 and d["calibrated"]
    th = d["fit"]["thresholds"]["offensive"]
    assert 0.0 <= th["allow_below"] <= th["flag_at"] <= 1.0
    code, one, _ = run(
        [
            "moderate",
            "--policy",
            str(POLICY),
            "--calibration",
            str(fit),
            "You are all wonderful people.",
            "--json",
        ],
        capsys,
    )
    assert code == 0 and one["decision"] in ("flag", "allow", "review") and one["calibrated"]


def test_moderate_rejects_a_policy_with_unknown_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        POLICY.read_text(encoding="utf-8").replace(
            "[thresholds.offensive]", "[thresholds.offensve]"
        ),
        encoding="utf-8",
    )
    code, _, err = run(["moderate", "--policy", str(bad), "hello"], capsys)
    one_line_error(code, err, "unknown label 'offensve'")
    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"tweet": "hi", "label": "offensive"}) + "\n", encoding="utf-8")
    code, _, err = run(["moderate", "--policy", str(POLICY), "--dataset", str(data)], capsys)
    one_line_error(code, err, "missing column 'text'")


def test_autocomplete_list_and_dataset(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, d, _ = run(
        ["autocomplete", "The capital of France is", "Lyon", "Paris", "--json"], capsys
    )
    assert code == 0 and d["best"] == "Paris" and d["source"] == "list"
    lines = (shared_data / "lambada" / "lambada_test.jsonl").read_text().splitlines()[:2]
    data = tmp_path / "l.jsonl"
    data.write_text("\n".join(lines) + "\n", encoding="utf-8")
    code, d, _ = run(
        ["autocomplete", "--dataset", str(data), "--top-k", "4", "--workers", "1", "--json"], capsys
    )
    assert code == 0 and d["n"] == 2
    assert 0.0 <= d["ranked_accuracy"] <= d["recall"] <= 1.0
    assert d["ranked_accuracy"] <= d["ranked_mrr"] <= d["recall"]
    empty = tmp_path / "none.txt"
    empty.write_text("", encoding="utf-8")
    code, _, err = run(["autocomplete", "The capital is", "--file", str(empty)], capsys)
    one_line_error(code, err, "no candidates")


def test_triage_dataset_fit_and_one_message(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "t.jsonl"
    data.write_text(
        "".join(TICKETS.read_text(encoding="utf-8").splitlines(True)[:12]), encoding="utf-8"
    )
    fit = tmp_path / "th.json"
    code, d, _ = run(
        ["triage", "--dataset", str(data), "--fit", str(fit), "--route-precision", "0.5", "--json"],
        capsys,
    )
    assert code == 0 and d["rows"] == 12
    assert d["route_rate"] + d["clarify_rate"] + d["escalate_rate"] == pytest.approx(1.0)
    assert json.loads(fit.read_text())["clarify_margin"] == d["thresholds"]["clarify_margin"]
    code, one, _ = run(
        ["triage", "My invoice shows the wrong amount.", "--thresholds", str(fit), "--json"], capsys
    )
    assert code == 0 and one["action"] in ("route", "clarify", "escalate")
    code, _, err = run(["triage", "hello", "--labels", "billing,billing"], capsys)
    one_line_error(code, err, "duplicate label")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"text": "hi", "label": "sales"}) + "\n", encoding="utf-8")
    code, _, err = run(["triage", "--dataset", str(bad)], capsys)
    one_line_error(code, err, "fewer than two labelled rows")


def test_subprocess_relevance_one_line_error_and_json() -> None:
    py = sys.executable
    bad = subprocess.run(
        [py, "-c", REGISTER, "relevance", "Who?"], capture_output=True, text=True, timeout=600
    )
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr
    ok = subprocess.run(
        [
            py,
            "-c",
            REGISTER,
            "relevance",
            "What is the capital of France?",
            "Paris is the capital of France.",
            "Cats purr.",
            "--method",
            "ql",
            "--threads",
            "1",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert ok.returncode == 0, ok.stderr
    d = json.loads(ok.stdout)
    assert d["method"] == "ql" and sorted(d["order"]) == [0, 1]
