"""`logprobe inspect`: any provider's response file (JSON, JSONL, SSE) -> table or neutral JSON."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from logprobe import Completion
from logprobe.cli.main import main
from logprobe.normalize import normalize

LOGPROBE = str(Path(sys.executable).with_name("logprobe"))


def entry(token: str, lp: float, tops: tuple[tuple[str, float], ...] = ()) -> dict:
    # OpenAI chat logprobs.content entry (wire doc "OpenAI Chat Completions")
    return {
        "token": token,
        "logprob": lp,
        "bytes": list(token.encode()),
        "top_logprobs": [{"token": t, "logprob": v, "bytes": list(t.encode())} for t, v in tops],
    }


CHAT = {
    "id": "chatcmpl-9",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [
        {
            "index": 0,
            "finish_reason": "stop",
            "message": {"role": "assistant", "content": "Paris is nice"},
            "logprobs": {
                "refusal": None,
                "content": [
                    entry("Paris", -0.05, (("Paris", -0.05), ("Lyon", -3.4))),
                    entry(" is", -0.2, ((" is", -0.2), (" was", -1.9))),
                    entry(" nice", -2.3, ((" lovely", -0.9), (" nice", -2.3))),
                ],
            },
        }
    ],
    "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
}


@pytest.fixture
def chat_file(tmp_path: Path) -> Path:
    p = tmp_path / "chat.json"
    p.write_text(json.dumps(CHAT))
    return p


def test_table_and_summary(chat_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", str(chat_file)]) == 0
    out = capsys.readouterr().out
    assert "provider: openai_chat" in out and "gpt-4o-mini" in out
    for text in ("Paris", "' lovely' 0.407", "-2.3000", "0.1003"):
        assert text in out
    assert "mean logprob" in out and "decision:" in out


def test_json_is_the_neutral_structure_with_the_analysis(
    chat_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["inspect", str(chat_file), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    analysis = out["choices"][0].pop("analysis")
    assert out.pop("notes") == []
    assert out == normalize(CHAT).to_dict()
    assert Completion.from_dict(out) == normalize(CHAT)
    assert out["choices"][0]["tokens"][2]["rank"] == 2
    # the same report the human output prints, computed here from the three logprobs
    lps = [-0.05, -0.2, -2.3]
    summary = analysis["summary"]
    assert summary["n_scored"] == 3
    assert summary["mean_logprob"] == pytest.approx(sum(lps) / 3)
    assert summary["min_prob"] == pytest.approx(math.exp(-2.3))
    assert summary["perplexity"] == pytest.approx(math.exp(-sum(lps) / 3))
    assert analysis["decision"] in ("publish", "review", "reject")
    assert analysis["text"] == "Paris is nice"
    assert isinstance(analysis["low_spans"], list) and isinstance(analysis["critical"], list)
    assert "nice" in json.dumps(analysis["low_spans"])  # p = 0.10: the one weak token


def test_sse_and_jsonl_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    chunks = [
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": t},
                    "finish_reason": None,
                    "logprobs": {"content": [entry(t, lp)], "refusal": None},
                }
            ],
        }
        for t, lp in (("Hel", -0.5), ("lo", -0.1))
    ]
    sse = tmp_path / "s.sse"
    sse.write_text("".join(f"data: {json.dumps(c)}\n\n" for c in chunks) + "data: [DONE]\n\n")
    jsonl = tmp_path / "s.jsonl"
    jsonl.write_text("\n".join(json.dumps(c) for c in chunks) + "\n")
    for f in (sse, jsonl):
        assert main(["inspect", str(f), "--json"]) == 0
        assert json.loads(capsys.readouterr().out)["choices"][0]["text"] == "Hello"


def test_notes_go_to_stderr(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ollama = {
        "model": "llama3.2",
        "created_at": "2025-11-20T10:00:00Z",
        "response": "é",
        "done": True,
        "done_reason": "stop",
        "logprobs": [
            {"token": "\ufffd", "logprob": -0.3, "bytes": [239, 191, 189], "top_logprobs": []}
        ],
    }
    f = tmp_path / "o.json"
    f.write_text(json.dumps(ollama))
    assert main(["inspect", str(f), "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["choices"][0]["tokens"][0]["bytes"] is None
    assert "note:" in captured.err and "U+FFFD" in captured.err


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        ('{"choices": [', [], "invalid JSON at line 1"),
        (
            json.dumps({"type": "message", "role": "assistant", "content": []}),
            [],
            "no token logprobs",
        ),
        (json.dumps(CHAT), ["--provider", "bogus"], "unknown provider 'bogus'"),
        (json.dumps(CHAT), ["--choice", "3"], "no choice 3"),
        ("", [], "empty input"),
    ],
)
def test_bad_input_is_one_line_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str, args: list[str], message: str
) -> None:
    f = tmp_path / "bad.json"
    f.write_text(content)
    assert main(["inspect", str(f), *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_missing_file(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["inspect", "/nonexistent/x.json"]) == 2
    assert "cannot read /nonexistent/x.json" in capsys.readouterr().err


def test_stdin_through_a_real_process() -> None:
    proc = subprocess.run(
        [LOGPROBE, "inspect", "-", "--json"],
        input=json.dumps(CHAT),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["choices"][0]["text"] == "Paris is nice"
    bad = subprocess.run(
        [LOGPROBE, "inspect", "-"],
        input="{",
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2 and bad.stderr.startswith("error: invalid JSON")
    assert "Traceback" not in bad.stderr


def test_echo_only_scoring_shows_prompt_tokens(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # legacy completions with echo and max_tokens 0 (wire doc: first prompt token null)
    payload = {
        "object": "text_completion",
        "model": "m",
        "choices": [
            {
                "text": "The cat",
                "index": 0,
                "finish_reason": "length",
                "logprobs": {
                    "tokens": ["The", " cat"],
                    "token_logprobs": [None, -4.2],
                    "top_logprobs": [None, {" dog": -1.0, " cat": -4.2}],
                    "text_offset": [0, 3],
                },
            }
        ],
        "usage": {"prompt_tokens": 2, "completion_tokens": 0, "total_tokens": 2},
    }
    f = tmp_path / "echo.json"
    f.write_text(json.dumps(payload))
    assert main(["inspect", str(f)]) == 0
    out = capsys.readouterr().out
    assert "2 prompt tokens" in out and " cat" in out and "-4.2000" in out
    assert "decision:" in out
    assert main(["inspect", str(f), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)["choices"][0]["analysis"]
    assert report["summary"]["n_scored"] == 1 and report["text"] == "The cat"
