"""The run store on real SQLite and real PostgreSQL: round trips, metrics, runs, errors."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from sqlalchemy import text
from store_factories import completion, completions, sentence, tok

from logprobe.engines import GenerationParams
from logprobe.errors import InvalidRequestError, StoreError
from logprobe.store import MIGRATIONS, Run, RunNotFoundError, Store, default_url
from logprobe.store.migrations import migrate
from logprobe.types import LOGPROB_FLOOR, Alternative, Choice, Completion, ScoredText, TokenLogprob


def test_migrations_are_recorded_in_order_and_applied_once(store: Store) -> None:
    with store.transaction(write=False) as conn:
        rows = conn.execute(text("SELECT name FROM migrations ORDER BY applied_at, name")).all()
    assert [r[0] for r in rows] == [name for name, _ in MIGRATIONS]
    assert migrate(store._engine, store._write_engine) == []  # up to date: nothing re-applied


def test_reopening_keeps_data(db_url: str) -> None:
    with Store.open(db_url) as s:
        s.record("keep", "p", sentence(["a"], [-0.5]))
    with Store.open(db_url) as s:
        assert [r.name for r in s.runs()] == ["keep"]
        assert s.responses("keep")[0].text == "a"


def test_record_round_trips_every_token_field(store: Store) -> None:
    euro = "€".encode()
    tokens = (
        TokenLogprob(
            token="\ufffd",
            bytes=euro[:2],
            logprob=-0.25,
            id=12,
            rank=1,
            top_logprobs=(
                Alternative("\ufffd", euro[:2], -0.25, 12),
                Alternative("x", b"x", -3.0, 87),
            ),
            entropy=0.7,
        ),
        TokenLogprob(token="\ufffd", bytes=euro[2:], logprob=-0.01, id=13, rank=1),
        TokenLogprob(
            token="<0x00>",
            bytes=b"\x00",
            logprob=LOGPROB_FLOOR,
            id=3,
            rank=40,
            top_logprobs=(Alternative("\x00", None, -1.0),),
        ),
        TokenLogprob(token="nul\x00in", bytes=None, logprob=-2.0, top_logprobs=()),
        TokenLogprob(token="\x01marked", bytes=b"\x01marked", logprob=-0.5),
    )
    prompt_tokens = (
        TokenLogprob(token="Hi", bytes=b"Hi", logprob=None, id=1),
        TokenLogprob(token="!", bytes=b"!", logprob=-4.5, id=2, rank=3),
    )
    second = Choice(
        text="other", tokens=(TokenLogprob("o", b"o", -1.5),), finish_reason="length", index=1
    )
    comp = Completion(
        choices=(
            Choice(
                text="€<0x00>",
                tokens=tokens,
                finish_reason="stop",
                index=0,
                prompt_tokens=prompt_tokens,
            ),
            second,
        ),
        model="m",
        provider="openai",
        logprob_mode="processed",
        id="cmpl-1",
        created=5,
    )
    rec = store.record("rt", "Hi!", comp, {"temperature": 0.5, "stop": ["\n"]})
    assert len(rec.response_ids) == 2
    got = [store.response(i) for i in rec.response_ids]
    assert got[0].tokens == tokens
    assert got[0].prompt_tokens == prompt_tokens
    assert got[1].tokens == second.tokens and got[1].prompt_tokens is None
    assert got[1].finish_reason == "length" and got[1].choice_index == 1
    back = got[0].to_completion()
    assert back.choices[0] == comp.choices[0]
    assert (back.model, back.provider, back.logprob_mode, back.id) == (
        "m",
        "openai",
        "processed",
        "cmpl-1",
    )
    assert got[0].params == {"temperature": 0.5, "stop": ["\n"]}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(comp=completions())
def test_any_completion_round_trips(store: Store, comp: Completion) -> None:
    rec = store.record("prop", "prompt", comp)
    for response_id, choice in zip(rec.response_ids, comp.choices, strict=True):
        got = store.response(response_id)
        assert got.to_completion().choices[0] == choice
        assert got.n_tokens == len(choice.tokens)


def test_odd_text_is_stored_exactly(store: Store) -> None:
    odd = "\x00 nul, \ud800 lone surrogate, \x01 marker, <b>html</b>, \u2028 line sep"
    store.record("odd", odd, completion([tok("x", -1.0)]), {"note": odd})
    got = store.responses("odd")[0]
    assert got.prompt == odd and got.params == {"note": odd}


def test_metrics_are_computed_at_insert(store: Store) -> None:
    lps = [-0.1, -2.0, None, -0.6, float("-inf")]
    toks = [tok(f"t{i}", lp, entropy=0.5) for i, lp in enumerate(lps)]
    rid = store.record("m", "p", completion(toks)).response_ids[0]
    r = store.response(rid, with_tokens=False)
    scored = np.array([-0.1, -2.0, -0.6, LOGPROB_FLOOR])
    assert r.n_tokens == 5 and r.n_scored == 4
    assert r.sum_logprob == pytest.approx(scored.sum())
    assert r.mean_logprob == pytest.approx(scored.mean())
    assert r.min_logprob == LOGPROB_FLOOR
    assert r.perplexity == 1e300  # exp(2500) capped: still a finite number
    assert r.mean_entropy == pytest.approx(0.5)
    assert r.n_low_confidence == 2  # p(-2.0) and p(floor) are below 0.5
    empty = store.record("m", "q", completion([])).response_ids[0]
    e = store.response(empty, with_tokens=False)
    assert (e.n_tokens, e.mean_logprob, e.perplexity, e.min_logprob) == (0, None, None, None)


def test_perplexity_matches_definition(store: Store) -> None:
    rid = store.record("ppl", "p", sentence(["a", "b"], [-1.0, -3.0])).response_ids[0]
    assert store.response(rid).perplexity == pytest.approx(math.exp(2.0))


def test_runs_create_list_filter_and_duplicates(store: Store) -> None:
    store.create_run(
        "base",
        model="smol",
        model_version="q4_1",
        prompt_template="Q: {x}",
        params={"temperature": 0},
        tags=["nightly", "eval"],
    )
    store.create_run("other", model="gemma", tags=["eval"])
    with pytest.raises(StoreError, match="already exists"):
        store.create_run("base")
    assert store.create_run("base", exist_ok=True).model == "smol"
    run = store.run("base")
    assert (run.model_version, run.prompt_template, run.tags) == (
        "q4_1",
        "Q: {x}",
        ("eval", "nightly"),
    )
    assert [r.name for r in store.runs()] == ["other", "base"]  # newest first
    assert [r.name for r in store.runs(tag="nightly")] == ["base"]
    assert [r.name for r in store.runs(model="GEM")] == ["other"]
    assert [r.name for r in store.runs(search="bas")] == ["base"]
    store.record("base", "p", sentence(["a"], [-0.2]))
    assert store.run("base").n_responses == 1
    assert store.run("base").mean_logprob == pytest.approx(-0.2)


def test_unknown_run_is_a_clear_error(store: Store) -> None:
    store.create_run("alpha")
    with pytest.raises(RunNotFoundError) as e:
        store.responses("alpah")
    assert str(e.value) == "no run named 'alpah' (known runs: 'alpha')"
    with pytest.raises(RunNotFoundError, match="no response with id 999"):
        store.response(999)


@pytest.mark.parametrize("name", ["", "   ", "x" * 201, "tab\there", 7])
def test_bad_run_names_are_rejected(store: Store, name: object) -> None:
    with pytest.raises(InvalidRequestError):
        store.create_run(name)  # type: ignore[arg-type]


def test_record_needs_a_completion(store: Store) -> None:
    with pytest.raises(InvalidRequestError, match="needs a Completion, got dict"):
        store.record("r", "p", {"choices": []})  # type: ignore[arg-type]
    assert store.runs() == []


def test_record_accepts_chat_messages_generation_params_and_scores(store: Store) -> None:
    params = GenerationParams.make(max_tokens=4, temperature=0, stop="\n", logit_bias={5: -1.0})
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi"}]
    rid = store.record(
        "chat",
        msgs,
        sentence(["hello"], [-0.3]),
        params,
        correct=True,
        meta={"case": 1},
        latency_ms=12.5,
    ).response_ids[0]
    r = store.response(rid)
    assert r.prompt == "system: be brief\nuser: hi" and r.messages == msgs
    assert r.params["stop"] == ["\n"] and r.params["logit_bias"] == {"5": -1.0}
    assert (r.correct, r.meta, r.latency_ms) == (True, {"case": 1}, 12.5)
    scored = ScoredText(
        text=" Paris", tokens=(tok(" Paris", -0.05),), prompt="Capital:", prompt_token_count=3
    )
    sid = store.record_scored("chat", scored).response_ids[0]
    s = store.response(sid)
    assert (s.prompt, s.text, s.tokens) == ("Capital:", " Paris", scored.tokens)
    store.set_correct(sid, False)
    assert store.response(sid, with_tokens=False).correct is False
    with pytest.raises(RunNotFoundError):
        store.set_correct(10_000, True)


def test_token_pages_and_counts(store: Store) -> None:
    toks = [tok(f"w{i}", -i / 100) for i in range(250)]
    rid = store.record("pages", "p", completion(toks)).response_ids[0]
    page = store.tokens(rid, offset=100, limit=50)
    assert [t.token for t in page] == [f"w{i}" for i in range(100, 150)]
    assert store.count_tokens(rid) == 250 and store.count_tokens(rid, prompt=True) == 0
    assert store.tokens(rid, offset=240, limit=50, alternatives=False)[-1].token == "w249"


def test_responses_are_paged_in_insertion_order(store: Store) -> None:
    for i in range(12):
        store.record("order", f"p{i}", sentence(["x"], [-0.1]))
    got = store.responses("order", offset=5, limit=4)
    assert [r.prompt for r in got] == ["p5", "p6", "p7", "p8"]
    assert store.count_responses("order") == 12


def test_artifacts_are_kept_and_replaced(store: Store) -> None:
    store.create_run("art")
    store.add_artifact(
        "art", "predictions.jsonl", '{"confidence": 0.9, "correct": true}\n', "application/jsonl"
    )
    store.add_artifact("art", "predictions.jsonl", b"v2")
    assert store.artifact("art", "predictions.jsonl") == b"v2"
    assert [a["name"] for a in store.artifacts("art")] == ["predictions.jsonl"]
    with pytest.raises(RunNotFoundError, match="no artifact named 'x'"):
        store.artifact("art", "x")


def test_delete_run_removes_everything_below_it(store: Store) -> None:
    rid = store.record("gone", "p", sentence(["a", "b"], [-0.1, -0.2])).response_ids[0]
    store.record("stays", "p", sentence(["a"], [-0.1]))
    store.add_artifact("gone", "f", b"1")
    store.delete_run("gone")
    with store.transaction(write=False) as conn:
        n_tok = conn.execute(
            text("SELECT count(*) FROM tokens WHERE response_id = :r"), {"r": rid}
        ).scalar_one()
        n_req = conn.execute(text("SELECT count(*) FROM requests")).scalar_one()
        n_art = conn.execute(text("SELECT count(*) FROM artifacts")).scalar_one()
    assert (n_tok, n_req, n_art) == (0, 1, 0)
    assert [r.name for r in store.runs()] == ["stays"]


def test_run_objects_can_be_passed_instead_of_names(store: Store) -> None:
    run = store.create_run("obj", model="m")
    assert isinstance(run, Run)
    store.record(run, "p", sentence(["a"], [-0.1]))
    assert len(store.responses(run)) == 1


# -- where the store lives ------------------------------------------------------------------
def test_default_location_follows_logprobe_home(
    isolated_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert default_url() == f"sqlite:///{isolated_env / 'logprobe.db'}"
    with Store.open() as s:
        s.create_run("home")
    assert (isolated_env / "logprobe.db").exists()
    monkeypatch.setenv("LOGPROBE_DB", f"sqlite:///{isolated_env / 'other.db'}")
    with Store.open() as s:
        assert s.runs() == []
    bare = isolated_env / "bare.db"
    with Store.open(str(bare)) as s:
        s.create_run("bare")
    assert bare.exists()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path: Path) -> None:
    with Store.open(f"sqlite:///{tmp_path / 's.db'}") as s, s.transaction(write=False) as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    raw = sqlite3.connect(tmp_path / "s.db")
    assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    raw.close()


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(
        StoreError, match="^cannot open store sqlite:///.*junk.db: file is not a database$"
    ):
        Store.open(f"sqlite:///{junk}")


def test_in_memory_sqlite_works_across_threads() -> None:
    import threading

    with Store.open("sqlite://") as s:
        t = threading.Thread(target=lambda: s.record("mem", "p", sentence(["a"], [-0.1])))
        t.start()
        t.join()
        assert s.count_responses("mem") == 1


@pytest.mark.parametrize(
    "url, message",
    [
        (
            "postgresql+psycopg://alice:s3cret@127.0.0.1:1/nope",
            "cannot open store postgresql+psycopg://alice:***@127.0.0.1:1/nope: ",
        ),
        ("mysql://u@h/db", "unsupported database 'mysql'"),
        (
            "sqlite:////proc/logprobe-nope/x.db",
            "cannot create the store directory /proc/logprobe-nope",
        ),
        ("://nowhere", "invalid database URL"),
    ],
)
def test_unusable_database_urls_give_one_line_errors(url: str, message: str) -> None:
    with pytest.raises(StoreError) as e:
        Store.open(url)
    msg = str(e.value)
    assert msg.startswith(message) if "open store" in message else message in msg
    assert "\n" not in msg and "s3cret" not in msg
