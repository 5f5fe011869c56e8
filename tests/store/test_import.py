"""``logprobe import``: saved provider responses of any shape into a run; bad input is reported
and nothing is half-written."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from store_factories import big_completion, sentence

from logprobe.cli.main import main
from logprobe.errors import InvalidRequestError
from logprobe.store import RunNotFoundError, Store, import_file

LOGPROBE = Path(sys.executable).with_name("logprobe")


def openai_chat(words: list[tuple[str, float]], model: str = "gpt-4o-mini") -> dict[str, Any]:
    """An OpenAI Chat Completions response with logprobs (the documented shape)."""
    content = [
        {
            "token": w,
            "logprob": lp,
            "bytes": list(w.encode()),
            "top_logprobs": [
                {"token": w, "logprob": lp, "bytes": list(w.encode())},
                {"token": "zz", "logprob": lp - 2, "bytes": [122, 122]},
            ],
        }
        for w, lp in words
    ]
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": model,
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "".join(w for w, _ in words)},
                "logprobs": {"content": content, "refusal": None},
            }
        ],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": len(words),
            "total_tokens": 5 + len(words),
        },
    }


def write_jsonl(path: Path, items: list[Any]) -> Path:
    path.write_text("".join(json.dumps(i) + "\n" for i in items), encoding="utf-8")
    return path


def test_import_jsonl_of_many_shapes(store: Store, tmp_path: Path) -> None:
    items = [
        {
            "prompt": "Capital of France?",
            "response": openai_chat([("Paris", -0.01)]),
            "correct": True,
            "params": {"temperature": 0},
        },
        {
            "messages": [{"role": "user", "content": "2+2?"}],
            "response": openai_chat([("4", -0.2)]),
            "correct": 0,
            "meta": {"id": "q2"},
        },
        {
            "custom_id": "req-3",
            "response": {
                "status_code": 200,
                "request_id": "x",
                "body": openai_chat([("Blue", -1.5)]),
            },
        },
        sentence(["neutral", " dict"], [-0.3, -0.4]).to_dict(),
    ]
    path = write_jsonl(tmp_path / "mixed.jsonl", items)
    report = import_file(store, path, "imported")
    assert (report.imported, report.n_tokens, report.skipped) == (4, 5, ())
    got = store.responses("imported", with_tokens=True)
    assert [r.prompt for r in got] == ["Capital of France?", "user: 2+2?", "req-3", ""]
    assert [r.correct for r in got] == [True, False, None, None]
    assert got[0].tokens[0].top_logprobs[1].token == "zz" and got[0].params == {"temperature": 0}
    assert got[1].meta == {"id": "q2"} and got[2].meta == {"custom_id": "req-3"}
    assert got[0].provider == "openai_chat" and got[0].model == "gpt-4o-mini"
    assert store.run("imported").model == "gpt-4o-mini"


def test_import_json_list_single_object_and_sse_stream(store: Store, tmp_path: Path) -> None:
    (tmp_path / "list.json").write_text(
        json.dumps([openai_chat([("a", -0.1)]), openai_chat([("b", -0.2)])])
    )
    (tmp_path / "one.json").write_text(json.dumps(openai_chat([("c", -0.3)])))
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "delta": {"content": "Hi"},
                "finish_reason": None,
                "logprobs": {
                    "content": [
                        {"token": "Hi", "logprob": -0.5, "bytes": [72, 105], "top_logprobs": []}
                    ]
                },
            }
        ],
    }
    last = {
        **chunk,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": None}],
    }
    (tmp_path / "stream.sse").write_text(
        f"data: {json.dumps(chunk)}\n\ndata: {json.dumps(last)}\n\ndata: [DONE]\n\n"
    )
    (tmp_path / "chunks.json").write_text(json.dumps([chunk, last]))
    assert import_file(store, tmp_path / "list.json", "l").imported == 2
    assert import_file(store, tmp_path / "one.json", "o").imported == 1
    assert import_file(store, tmp_path / "stream.sse", "s").imported == 1
    assert import_file(store, tmp_path / "chunks.json", "c").imported == 1
    assert store.responses("s", with_tokens=True)[0].tokens[0].logprob == -0.5
    assert store.responses("c")[0].text == "Hi"


def test_malformed_lines_abort_the_whole_import(store: Store, tmp_path: Path) -> None:
    good = json.dumps(openai_chat([("ok", -0.1)]))
    path = tmp_path / "bad.jsonl"
    path.write_text(
        "\n".join(
            [
                good,
                "{not json",
                good,
                '{"choices": 3}',
                "[1, 2]",
                json.dumps({"response": openai_chat([("x", -1)]), "correct": "maybe"}),
                good,
            ]
        )
        + "\n"
    )
    with pytest.raises(InvalidRequestError) as e:
        import_file(store, path, "strict")
    msg = str(e.value)
    assert msg.startswith(f"{path}: 4 malformed item(s), nothing imported: line 2: invalid JSON")
    assert "line 4:" in msg and "(+1 more)" in msg and "\n" not in msg
    with pytest.raises(RunNotFoundError):
        store.run("strict")  # nothing half-written: not even the run
    report = import_file(store, path, "lenient", skip_invalid=True)
    assert report.imported == 3
    assert [i.where for i in report.skipped] == ["line 2", "line 4", "line 5", "line 6"]
    assert "correct" in report.skipped[-1].message
    assert store.count_responses("lenient") == 3


def test_nan_and_no_logprobs_are_reported(store: Store, tmp_path: Path) -> None:
    no_lp = openai_chat([("x", -0.1)])
    no_lp["choices"][0]["logprobs"] = None
    path = tmp_path / "odd.jsonl"
    path.write_text(
        '{"choices": [{"text": "a", "tokens": [{"token": "a", "logprob": NaN}]}]}\n'
        + json.dumps(no_lp)
        + "\n"
    )
    with pytest.raises(InvalidRequestError) as e:
        import_file(store, path, "odd")
    assert "line 1: NaN is not a valid JSON number" in str(e.value)
    assert "line 2:" in str(e.value) and "logprobs" in str(e.value)


def test_existing_runs_need_append(store: Store, tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [openai_chat([("a", -0.1)])])
    import_file(store, path, "twice")
    with pytest.raises(InvalidRequestError, match="already exists; pass --append"):
        import_file(store, path, "twice")
    import_file(store, path, "twice", append=True)
    assert store.count_responses("twice") == 2


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "cannot read"),
        (b"\xff\xfe\x00bad", "is not UTF-8"),
        (b"", "no responses to import"),
        (b"{oops", "file: invalid JSON"),
    ],
)
def test_unreadable_files(
    store: Store, tmp_path: Path, content: bytes | None, message: str
) -> None:
    path = tmp_path / "f.json"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InvalidRequestError, match=message):
        import_file(store, path, "f")
    assert store.runs() == []


@pytest.fixture(scope="module")
def huge_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A saved 100k-token response with 5 alternatives per token (written once)."""
    path = tmp_path_factory.mktemp("huge") / "huge.json"
    path.write_text(json.dumps(big_completion(100_000, top=5).to_dict()))
    return path


@pytest.mark.slow
def test_huge_response_imports_in_reasonable_time(store: Store, huge_file: Path) -> None:
    path = huge_file
    t0 = time.perf_counter()
    report = import_file(store, path, "huge")
    seconds = time.perf_counter() - t0
    assert report.n_tokens == 100_000
    assert seconds < 90, f"100k-token import took {seconds:.1f}s"
    rid = store.responses("huge")[0].id
    t0 = time.perf_counter()
    page = store.tokens(rid, offset=99_000, limit=1000)
    assert [t.token for t in page[:2]] == [" w4000", " w4001"] and len(page) == 1000
    assert time.perf_counter() - t0 < 5
    print(
        f"\n100k-token import ({store.dialect}): {seconds:.1f}s, "
        f"{path.stat().st_size / 1e6:.0f} MB JSON"
    )


# -- through the CLI --------------------------------------------------------------------------
def test_cli_import_reports_and_exits_2_on_bad_input(
    db_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_jsonl(
        tmp_path / "ok.jsonl", [openai_chat([("a", -0.1)]), openai_chat([("b", -1)])]
    )
    assert main(["import", str(path), "--run", "cli", "--db", db_url, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["imported"] == 2 and out["run"] == "cli" and out["skipped"] == []
    bad = tmp_path / "bad.jsonl"
    bad.write_text("{nope\n")
    assert main(["import", str(bad), "--run", "cli2", "--db", db_url]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "line 1: invalid JSON" in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_cli_import_in_a_real_process(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'p.db'}"
    path = write_jsonl(tmp_path / "ok.jsonl", [openai_chat([("a", -0.1)])])
    proc = subprocess.run(
        [str(LOGPROBE), "import", str(path), "--run", "proc", "--db", db, "--tag", "t1"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "imported 1 response(s), 1 tokens, into run 'proc'" in proc.stdout
    proc = subprocess.run(
        [str(LOGPROBE), "runs", "list", "--db", db, "--format", "jsonl"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    rows = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [(r["name"], r["tags"], r["n_responses"]) for r in rows] == [("proc", ["t1"], 1)]
