"""``logprobe runs list|show|compare|attach|delete`` on real stores."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from store_factories import completion, sentence, tok

from logprobe.cli.main import main
from logprobe.store import Store

LOGPROBE = Path(sys.executable).with_name("logprobe")


@pytest.fixture
def two_runs(db_url: str) -> str:
    """Run A (baseline) and run B (candidate): B is less sure on 'q1', surer on 'q2'."""
    with Store.open(db_url) as s:
        s.create_run("A", model="m-a", tags=["base"])
        s.create_run("B", model="m-b")
        s.record("A", "q1", sentence(["Paris", "!"], [-0.1, -0.2]))
        s.record("B", "q1", sentence(["Paris", "!"], [-2.0, -0.2]))
        s.record("A", "q2", sentence(["4"], [-1.0]))
        s.record("B", "q2", sentence(["4"], [-0.1]))
        s.record("A", "q3", sentence(["blue", " sky"], [-0.5, -0.5]))
        s.record("B", "q3", sentence(["red", " sky"], [-0.4, -0.9]))
        s.record("A", "only in A", sentence(["x"], [-0.1]))
        s.record("B", "only in B", sentence(["y"], [-0.1]))
    return db_url


def test_compare_puts_regressions_first(two_runs: str) -> None:
    with Store.open(two_runs) as s:
        cmp = s.compare("A", "B")
    assert [r.prompt for r in cmp.rows] == ["q1", "q3", "q2"]
    assert [r.status for r in cmp.rows] == ["regressed", "regressed", "improved"]
    assert cmp.rows[0].delta == pytest.approx(-0.95)
    worst = cmp.rows[0].tokens[0]
    assert (worst.token_a, worst.delta) == ("Paris", pytest.approx(-1.9))
    assert cmp.rows[1].n_changed_tokens == 1  # "blue" vs "red"; " sky" aligned
    assert [t.token_a for t in cmp.rows[1].tokens] == [" sky"]
    assert (cmp.only_a, cmp.only_b) == (("only in A",), ("only in B",))
    assert cmp.summary()["n_regressed"] == 2 and cmp.summary()["n_improved"] == 1


def test_runs_list_in_every_format(
    two_runs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "list", "--db", two_runs]) == 0
    table = capsys.readouterr().out
    assert "A" in table and "m-b" in table and "2 run(s)" in table
    assert main(["runs", "list", "--db", two_runs, "--format", "jsonl", "--tag", "base"]) == 0
    rows = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert [(r["name"], r["n_responses"]) for r in rows] == [("A", 4)]
    out = tmp_path / "runs.csv"
    assert main(["runs", "list", "--db", two_runs, "--format", "csv", "--out", str(out)]) == 0
    assert capsys.readouterr().out == ""
    got = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["name"] for r in got] == ["B", "A"] and got[1]["tags"] == '["base"]'


def test_runs_show(two_runs: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["runs", "show", "A", "--db", two_runs]) == 0
    out = capsys.readouterr().out
    assert "model: m-a" in out and "Paris!" in out
    assert (
        main(
            ["runs", "show", "A", "--db", two_runs, "--format", "jsonl", "--tokens", "--limit", "1"]
        )
        == 0
    )
    row = json.loads(capsys.readouterr().out)
    assert row["prompt"] == "q1" and [t["token"] for t in row["tokens"]] == ["Paris", "!"]


def test_runs_compare_formats(
    two_runs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["runs", "compare", "A", "B", "--db", two_runs, "--format", "jsonl"]) == 0
    captured = capsys.readouterr()
    rows = [json.loads(x) for x in captured.out.splitlines()]
    assert [r["prompt"] for r in rows] == ["q1", "q3", "q2"]
    assert rows[0]["tokens"][0]["token_a"] == "Paris"
    assert "3 common prompt(s): 2 regressed, 1 improved" in captured.err
    out = tmp_path / "cmp.csv"
    assert (
        main(["runs", "compare", "A", "B", "--db", two_runs, "--format", "csv", "--out", str(out)])
        == 0
    )
    got = list(csv.DictReader(io.StringIO(out.read_text())))
    assert got[0]["status"] == "regressed" and got[0]["prompt"] == "q1"
    assert (
        main(
            ["runs", "compare", "A", "B", "--db", two_runs, "--level", "token", "--format", "jsonl"]
        )
        == 0
    )
    toks = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert toks[0]["token_a"] == "Paris" and toks[0]["delta"] == pytest.approx(-1.9)
    assert [t["delta"] for t in toks] == sorted(t["delta"] for t in toks)
    assert main(["runs", "compare", "A", "B", "--db", two_runs]) == 0
    assert "regressed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv, message",
    [
        (["runs", "show", "nope"], "error: no run named 'nope' (known runs: 'A', 'B')"),
        (["runs", "compare", "A", "zzz"], "error: no run named 'zzz'"),
        (["runs", "list", "--format", "xml"], "error: unknown format 'xml'"),
        (["runs", "compare", "A", "B", "--level", "word"], "error: --level must be"),
        (["runs", "show", "A", "--limit", "-1"], "error: --limit and --offset must be >= 0"),
    ],
)
def test_cli_errors_are_one_line(
    two_runs: str, argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main([*argv, "--db", two_runs]) == 2
    err = capsys.readouterr().err
    assert err.startswith(message) and err.count("\n") == 1


def test_attach_and_delete(
    two_runs: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    preds = tmp_path / "predictions.jsonl"
    preds.write_text('{"confidence": 0.8, "correct": true}\n')
    assert main(["runs", "attach", "A", str(preds), "--db", two_runs]) == 0
    with Store.open(two_runs) as s:
        assert s.artifact("A", "predictions.jsonl") == preds.read_bytes()
    assert main(["runs", "delete", "A", "--db", two_runs, "--yes"]) == 0
    assert main(["runs", "list", "--db", two_runs, "--format", "jsonl"]) == 0
    out = capsys.readouterr().out.strip().splitlines()[-1]
    assert json.loads(out)["name"] == "B"


def test_unreachable_database_in_a_real_process() -> None:
    proc = subprocess.run(
        [str(LOGPROBE), "runs", "list", "--db", "postgresql://bob:hunter2@127.0.0.1:9/logs"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        "error: cannot open store postgresql+psycopg://bob:***@127.0.0.1:9/logs: "
    )
    assert proc.stderr.count("\n") == 1 and "hunter2" not in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_scores_and_chat_prompts_align_in_compare(db_url: str) -> None:
    with Store.open(db_url) as s:
        msgs = [{"role": "user", "content": "hi"}]
        s.record("c1", msgs, completion([tok("Hello", -0.2)]))
        s.record("c2", msgs, completion([tok("Hello", -0.9)]))
        assert [r.prompt for r in s.compare("c1", "c2").rows] == ["user: hi"]
