"""The execution layer without Ray: the JSONL sink, the dataset loop on the local executor,
engine specs and options, and ``score --dataset`` / ``gate --resume`` on the local backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from exec_helpers import SlowRow
from hypothesis import given, settings
from hypothesis import strategies as st

import logprobe.execution as execution
from logprobe.cli.main import main
from logprobe.errors import InvalidRequestError
from logprobe.execution import (
    EngineSpec,
    JsonlSink,
    LocalExecutor,
    RayOptions,
    RowPlan,
    run_dataset,
)

NUMBERS: RowPlan[int, dict[str, int]] = RowPlan(
    key=lambda n: n,
    line=lambda n: n + 1,
    problem=lambda n: "negative" if n < 0 else None,
    record=lambda n, r: {"line": n, "square": r["square"]},
)


def test_public_api_is_sorted() -> None:
    assert execution.__all__ == sorted(execution.__all__)
    assert all(hasattr(execution, name) for name in execution.__all__)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 30), max_size=40), st.integers(0, 40))
def test_sink_writes_each_key_once_across_a_resume(keys: list[int], cut: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "out.jsonl"
        with JsonlSink(path, key="k") as sink:
            for k in keys[:cut]:
                sink.write({"k": k})
        with JsonlSink(path, key="k", resume=True) as sink:
            assert sink.done == set(keys[:cut])
            for k in keys[cut:]:
                sink.write({"k": k})
        written = [json.loads(x)["k"] for x in path.read_text().splitlines()]
        assert sorted(written) == sorted(set(keys))
        assert written == list(dict.fromkeys(keys))  # first occurrence order


def test_sink_drops_a_torn_line_and_never_writes_nan(tmp_path: Path) -> None:
    path = tmp_path / "out.jsonl"
    path.write_text('{"k": 1, "x": 2}\n{"k": 2, "x"', encoding="utf-8")
    with JsonlSink(path, key="k", resume=True) as sink:
        assert sink.done == {1} and sink.resumed == 1
        assert sink.write({"k": 2, "x": float("nan"), "y": [float("-inf"), 1.5]})
        assert not sink.write({"k": 1, "x": 3})
    lines = path.read_text(encoding="utf-8").splitlines()
    assert [json.loads(x) for x in lines] == [
        {"k": 1, "x": 2},
        {"k": 2, "x": None, "y": [None, 1.5]},
    ]
    with pytest.raises(InvalidRequestError, match="is a directory"):
        JsonlSink(tmp_path, key="k")


def test_run_dataset_orders_skips_and_resumes(tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    items = [3, -1, 5, 26, 7, 0, 9]
    seen: list[tuple[int, Any, Any]] = []
    with JsonlSink(out, key="line") as sink:
        run = run_dataset(
            LocalExecutor(None, workers=3),
            SlowRow(0.01, bad=13),
            items,
            sink,
            NUMBERS,
            on_row=lambda n, rec, err: seen.append((n, rec, err)),
        )
    assert (run.rows, run.written, run.resumed) == (7, 4, 0)
    assert run.skipped == [
        {"line": 0, "error": "negative"},
        {"line": 27, "error": "row 26 is bad on purpose"},
        {"line": 1, "error": "row 0 is bad on purpose"},
    ]
    assert [json.loads(x)["line"] for x in out.read_text().splitlines()] == [3, 5, 7, 9]
    assert sorted(n for n, _, _ in seen) == sorted(items)
    with JsonlSink(out, key="line", resume=True) as sink:
        again = run_dataset(LocalExecutor(None), SlowRow(), items + [11], sink, NUMBERS)
    # rows that failed before are tried again; finished ones are not redone
    assert (again.written, again.resumed) == (3, 4)
    assert [json.loads(x)["square"] for x in out.read_text().splitlines()] == [
        9,
        25,
        49,
        81,
        676,
        0,
        121,
    ]


def test_engine_spec_spreads_urls_over_actors() -> None:
    spec = EngineSpec("http://a:1/v1#m, http://b:2/v1#m")
    assert [spec.for_actor(i).model for i in range(3)] == [
        "http://a:1/v1#m",
        "http://b:2/v1#m",
        "http://a:1/v1#m",
    ]
    assert EngineSpec("x.gguf").for_actor(5).model == "x.gguf"
    assert "secret" not in repr(EngineSpec("http://a/v1#m", api_key="secret"))
    with pytest.raises(InvalidRequestError, match="name the remote model"):
        EngineSpec("http://a:1/v1").open()


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"concurrency": 0}, "workers"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"actors": 0}, "actors"),
        ({"actor_cpus": 0}, "actor_cpus"),
        ({"inflight": True}, "inflight"),
    ],
)
def test_ray_options_are_checked(kwargs: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequestError) as e:
        RayOptions(**kwargs)
    assert e.value.param == param


def _score_file(tmp_path: Path) -> Path:
    path = tmp_path / "texts.jsonl"
    path.write_text(
        '{"text": "The cat sat on the mat.", "id": "a"}\n'
        '{"text": ""}\n'
        '{"text": "Paris is the capital of France.", "prompt": "Geography:"}\n'
        "not json\n"
        '{"text": "Colorless green ideas sleep furiously."}\n',
        encoding="utf-8",
    )
    return path


def test_score_dataset_local_and_resume(
    engine: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data, out = _score_file(tmp_path), tmp_path / "scores.jsonl"
    argv = [
        "score",
        "--dataset",
        str(data),
        "--out",
        str(out),
        "--prompt-col",
        "prompt",
        "-k",
        "2",
        "--json",
    ]
    assert main(argv) == 0
    d = json.loads(capsys.readouterr().out)
    assert (d["rows"], d["written"], d["skipped"]) == (5, 3, 2)
    assert [s["line"] for s in d["skipped_rows"]] == [2, 4]
    recs = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    assert [r["line"] for r in recs] == [1, 3, 5] and recs[0]["id"] == "a"
    direct = engine.score("Paris is the capital of France.", prompt="Geography:", top_logprobs=2)
    assert recs[1]["token_logprobs"] == [t.logprob for t in direct.tokens]
    assert recs[1]["n_scored"] == len(direct.tokens)  # the prompt gives the first token context
    assert recs[0]["token_logprobs"][0] is None and recs[0]["n_scored"] == recs[0]["n_tokens"] - 1
    assert all(len(top) <= 2 for r in recs for top in r["top_logprobs"])
    # a run killed after its first row: resume redoes only what is missing
    out.write_text(
        out.read_text(encoding="utf-8").splitlines()[0] + "\n" + '{"index": 2, "li',
        encoding="utf-8",
    )
    assert main([*argv, "--resume"]) == 0
    d2 = json.loads(capsys.readouterr().out)
    assert (d2["written"], d2["resumed"]) == (2, 1)
    assert [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()] == recs
    assert d2["perplexity"] == d["perplexity"] and d2["logprob"] == d["logprob"]


def test_score_needs_text_or_dataset(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["score"]) == 2
    assert "give a TEXT or --dataset" in capsys.readouterr().err


def test_gate_resume_keeps_decisions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from logprobe.types import Choice, Completion, TokenLogprob

    def comp(i: int, lp: float) -> str:
        toks = tuple(
            TokenLogprob(token=f" t{j}", logprob=lp, bytes=f" t{j}".encode()) for j in range(4)
        )
        return json.dumps(
            Completion(
                id=f"c{i}",
                model="m",
                choices=(Choice(index=0, text="".join(t.token for t in toks), tokens=toks),),
            ).to_dict()
        )

    src = tmp_path / "in.jsonl"
    src.write_text(
        "\n".join([comp(0, -0.01), "bad {", comp(2, -2.5), comp(3, -0.02)]) + "\n", encoding="utf-8"
    )
    out = tmp_path / "dec.jsonl"
    assert main(["gate", str(src), "--out", str(out)]) == 0
    full = out.read_text(encoding="utf-8")
    first = capsys.readouterr().out
    out.write_text(full.splitlines()[0] + "\n", encoding="utf-8")
    assert main(["gate", str(src), "--out", str(out), "--resume"]) == 0
    assert out.read_text(encoding="utf-8") == full
    assert capsys.readouterr().out == first  # same counts, kept rows included
    assert main(["gate", str(src), "--resume"]) == 2


def test_score_dataset_through_a_real_subprocess(tmp_path: Path) -> None:
    data, out = _score_file(tmp_path), tmp_path / "s.jsonl"
    exe = Path(sys.executable).with_name("logprobe")
    r = subprocess.run(
        [str(exe), "score", "--dataset", str(data), "--out", str(out), "-k", "0"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    assert "wrote 3 scored rows" in r.stdout and "perplexity" in r.stdout
    assert "rows/s" in r.stderr and "skipped line 2" in r.stderr
