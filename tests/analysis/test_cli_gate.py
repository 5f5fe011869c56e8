"""``logprobe gate`` in-process and through a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from analysis_helpers import completion, p, toks

from logprobe.cli.main import main

GOOD = completion(
    toks([("The", p(0.95)), (" sky", p(0.9)), (" is", p(0.97)), (" blue", p(0.93))]), id="good"
)
WEAK = completion(toks([(" a", -1.6), (" b", -1.7), (" c", -1.8)]), id="weak")
OPENAI_CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "model": "gpt-x",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Hi"},
            "logprobs": {
                "content": [
                    {"token": "Hi", "logprob": -0.7, "bytes": [72, 105], "top_logprobs": []}
                ],
                "refusal": None,
            },
        }
    ],
}


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def mixed(tmp_path: Path) -> Path:
    return write_jsonl(
        tmp_path / "in.jsonl",
        [
            json.dumps(GOOD.to_dict()),
            "not json {",
            json.dumps(WEAK.to_dict()),
            "",
            "[1, 2]",
            json.dumps({"unknown": "shape"}),
            json.dumps(OPENAI_CHAT),
        ],
    )


def test_gate_writes_decisions_and_skips_bad_lines(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "decisions.jsonl"
    assert main(["gate", str(mixed(tmp_path)), "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["line"], r["id"], r["decision"]) for r in records] == [
        (1, "good", "publish"),
        (3, "weak", "reject"),
        (7, "chatcmpl-1", "review"),
    ]
    assert records[2]["model"] == "gpt-x" and records[2]["text"] == "Hi"
    assert records[1]["reasons"][0]["rule"] == "mean-publish-bar"
    stdout = capsys.readouterr().out
    assert "skipped line 2: not JSON" in stdout
    assert "skipped line 5: expected a JSON object, got list" in stdout
    assert "skipped line 6:" in stdout and "unrecognized payload" in stdout
    assert "skipped (bad lines)" in stdout


def test_gate_to_stdout_with_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [json.dumps(GOOD.to_dict())])
    assert main(["gate", str(src), "--policy", "strict"]) == 0
    captured = capsys.readouterr()
    (record,) = [json.loads(line) for line in captured.out.splitlines()]
    assert record["policy"] == "strict" and record["decision"] == "publish"
    assert "gate: policy 'strict'" in captured.err


def test_gate_with_toml_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [json.dumps(GOOD.to_dict())])
    cfg = tmp_path / "tight.toml"
    cfg.write_text(
        '[[rules]]\nname = "too-short"\nmetric = "n_scored"\nbelow = 10\naction = "reject"\n',
        encoding="utf-8",
    )
    assert main(["gate", str(src), "--config", str(cfg)]) == 0
    (record,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert (record["policy"], record["decision"]) == ("tight", "reject")
    assert record["reasons"][0]["rule"] == "too-short"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--policy", "nope"], "unknown policy 'nope'"),
        (["--policy", "strict", "--config", "x.toml"], "not both"),
        (["--config", "missing.toml"], "policy file not found"),
    ],
)
def test_gate_option_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    src = write_jsonl(tmp_path / "in.jsonl", [json.dumps(GOOD.to_dict())])
    assert main(["gate", str(src), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err


def test_gate_all_bad_or_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", ["nope", "{}"])
    assert main(["gate", str(bad)]) == 2
    assert "no usable response" in capsys.readouterr().err
    assert main(["gate", str(tmp_path / "none.jsonl")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_gate_invalid_utf8_line_is_skipped(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\xff\xfe{}\n" + json.dumps(GOOD.to_dict()).encode() + b"\n")
    out = tmp_path / "o.jsonl"
    assert main(["gate", str(src), "--out", str(out)]) == 0
    assert "skipped line 1: not UTF-8" in capsys.readouterr().out
    assert len(out.read_text(encoding="utf-8").splitlines()) == 1


def test_gate_subprocess(tmp_path: Path) -> None:
    exe = Path(sys.executable).parent / "logprobe"
    out = tmp_path / "d.jsonl"
    proc = subprocess.run(
        [str(exe), "gate", str(mixed(tmp_path)), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "publish" in proc.stdout and "skipped line 2" in proc.stdout
    assert "Traceback" not in proc.stderr
    assert len(out.read_text(encoding="utf-8").splitlines()) == 3
    bad = subprocess.run(
        [str(exe), "gate", str(tmp_path / "missing.jsonl")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: cannot read")
