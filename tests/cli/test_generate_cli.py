"""`logprobe generate` / `logprobe score` on the real embedded model, in process and as process."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from logprobe.cli.main import main

LOGPROBE = str(Path(sys.executable).with_name("logprobe"))


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict:
    assert main([*args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_generate_json_has_completion_and_report(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "generate", "Name a colour.", "--max-tokens", "8", "-k", "3")
    ch = out["completion"]["choices"][0]
    assert ch["tokens"] and len(ch["tokens"]) <= 8
    assert (
        bytes(b for t in ch["tokens"] for b in t["bytes"]).decode("utf-8", "replace") == ch["text"]
    )
    for t in ch["tokens"]:
        assert len(t["top_logprobs"]) == 3 and t["logprob"] <= 0
    rep = out["report"]
    assert rep["decision"] in ("publish", "review", "reject")
    assert rep["summary"]["mean_logprob"] == pytest.approx(
        sum(t["logprob"] for t in ch["tokens"]) / len(ch["tokens"]), abs=1e-6
    )


def test_score_json_perplexity(capsys: pytest.CaptureFixture[str]) -> None:
    out = run_json(capsys, "score", "The cat sat on the mat.")
    lps = [t["logprob"] for t in out["tokens"]]
    assert lps[0] is None
    assert out["perplexity"] == pytest.approx(math.exp(-sum(lps[1:]) / len(lps[1:])))
    out2 = run_json(capsys, "score", " on the mat.", "--prompt", "The cat sat")
    assert all(t["logprob"] is not None for t in out2["tokens"])


def test_generate_pretty_output(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["generate", "Say hello.", "--max-tokens", "6", "--raw"]) == 0
    out = capsys.readouterr().out
    assert "decision:" in out and "logprob" in out and "legend" in out


@pytest.mark.parametrize(
    "args, needle",
    [
        (["generate", ""], "empty"),
        (["generate", "hi", "--model", "/no/such.gguf"], "not found"),
        (["generate", "hi", "-k", "99"], "top_logprobs"),
        (["generate", "hi", "--max-tokens", "-3"], "max_tokens"),
        (["generate", "hi", "--temperature", "9"], "temperature"),
        (["score", ""], "empty"),
        (["generate", "hi", "--bogus-flag"], "bogus"),
    ],
)
def test_bad_input_one_line_exit_2(
    capsys: pytest.CaptureFixture[str], args: list[str], needle: str
) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and needle in err
    assert "Traceback" not in err


def test_real_process_invalid_utf8_and_long_prompt(tmp_path: Path) -> None:
    env = os.environ | {"PYTHONIOENCODING": "utf-8"}
    bad = subprocess.run(
        [LOGPROBE.encode(), b"generate", b"caf\xff"], capture_output=True, env=env, timeout=120
    )
    assert bad.returncode == 2
    assert b"UTF-8" in bad.stderr and b"Traceback" not in bad.stderr
    long = subprocess.run(
        [LOGPROBE, "score", "word " * 9000], capture_output=True, text=True, env=env, timeout=120
    )
    assert long.returncode == 2 and "context length" in long.stderr
    ok = subprocess.run(
        [LOGPROBE, "score", "Hello there.", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert ok.returncode == 0 and json.loads(ok.stdout)["tokens"][0]["token"] == "Hello"


def test_generate_and_score_record_into_a_run(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from logprobe.store import Store

    db = f"sqlite:///{tmp_path / 'runs.db'}"
    assert (
        main(
            [
                "generate",
                "Name a fruit.",
                "--max-tokens",
                "5",
                "--run",
                "demo",
                "--db",
                db,
                "--json",
            ]
        )
        == 0
    )
    gen = json.loads(capsys.readouterr().out)
    assert main(["score", "An apple a day.", "--run", "demo", "--db", db, "--json"]) == 0
    capsys.readouterr()
    store = Store.open(db)
    try:
        rows = store.responses("demo")
        assert len(rows) == 2
        texts = {r.text for r in rows}
        assert gen["completion"]["choices"][0]["text"] in texts and "An apple a day." in texts
    finally:
        store.close()
