"""Migrations that last: a store written by the first release (0.1.0) upgrades in place and reads
back everything it held, and the migrations build exactly the schema the code expects. Both on
SQLite and on the real PostgreSQL server of conftest.py."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import Engine

from logprobe.store import Store, frozen, schema
from logprobe.store.migrations import MIGRATIONS, registered, run_sql

FIRST_RELEASE = ["m001_runs_requests_responses_tokens"]
"""Migrations of the first store release; m002 (artifacts) came with the viewer."""

T0 = 1_700_000_000.0


def _first_release_store(url: str) -> None:
    """The database as 0.1.0 left it: its migrations, then rows in its encodings (JSON text
    columns, SafeText's escape for NUL, compact alternatives with hex bytes)."""
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            run_sql(conn, frozen.MIGRATIONS_TABLE)
            for name, fn in MIGRATIONS:
                if name in FIRST_RELEASE:
                    fn(conn)
                    conn.execute(
                        text("INSERT INTO migrations (name, applied_at) VALUES (:name, :t)"),
                        {"name": name, "t": T0},
                    )
            _fill(conn)
    finally:
        engine.dispose()


def _fill(conn: Any) -> None:
    """Ids come from the database, as in 0.1.0 (fresh tables: every first id is 1)."""
    conn.execute(
        text(
            "INSERT INTO runs (name, model, model_version, prompt_template, params, tags, "
            "created_at) VALUES ('old-run', 'smollm2', 'q4_1', 'Q: {q}', :params, :tags, :t)"
        ),
        {"params": json.dumps({"temperature": 0}), "tags": json.dumps(["v0", "eval"]), "t": T0},
    )
    conn.execute(
        text(
            "INSERT INTO requests (run_id, prompt, prompt_hash, messages, params, meta, "
            "latency_ms, created_at) VALUES (1, :prompt, :hash, :messages, :params, :meta, "
            "12.5, :t)"
        ),
        {
            "prompt": "\x01" + json.dumps("a\x00b"),  # SafeText's escape: PostgreSQL has no NUL
            "hash": "0" * 64,
            "messages": json.dumps([{"role": "user", "content": "hi"}]),
            "params": json.dumps({"max_tokens": 2}),
            "meta": json.dumps({"k": 1}),
            "t": T0,
        },
    )
    conn.execute(
        text(
            "INSERT INTO responses (request_id, run_id, choice_index, text, finish_reason, model, "
            "provider, logprob_mode, completion_id, usage_prompt_tokens, usage_completion_tokens, "
            "has_prompt_tokens, n_tokens, n_scored, sum_logprob, mean_logprob, min_logprob, "
            "perplexity, mean_entropy, n_low_confidence, correct, created_at) VALUES (1, 1, 0, "
            "'Hi!', 'stop', 'smollm2', 'logprobe', 'raw', 'cmpl-1', 3, 2, :yes, 2, 2, -0.75, "
            "-0.375, -0.5, 1.4549914146182013, 0.25, 0, :yes, :t)"
        ),
        {"yes": True, "t": T0},
    )
    rows = [  # part 0: generated; part 1: prompt (first prompt token has no logprob)
        (
            0,
            0,
            "Hi",
            b"Hi",
            100,
            -0.25,
            1,
            0.2,
            json.dumps([["Hi", -0.25, 100], ["Hey", -1.5, 101]]),
        ),
        (0, 1, "\ufffd", b"\xe2\x82", 7, -0.5, 2, 0.3, json.dumps([["x", -0.1, 9, "ff"]])),
        (1, 0, "a", b"a", 1, None, None, None, None),
        (1, 1, "b", b"b", 2, -3.0, 4, None, None),
    ]
    for part, pos, tok, raw, tid, lp, rank, ent, alts in rows:
        conn.execute(
            text(
                "INSERT INTO tokens (response_id, part, position, token, bytes, token_id, logprob, "
                "rank, entropy, alternatives) VALUES (1, :part, :pos, :tok, :raw, :tid, :lp, "
                ":rank, :ent, :alts)"
            ),
            {
                "part": part,
                "pos": pos,
                "tok": tok,
                "raw": raw,
                "tid": tid,
                "lp": lp,
                "rank": rank,
                "ent": ent,
                "alts": alts,
            },
        )


@pytest.fixture
def upgraded(db_url: str) -> Iterator[Store]:
    _first_release_store(db_url)
    store = Store.open(db_url)  # applies every migration after the first release
    try:
        yield store
    finally:
        store.close()


def test_a_first_release_store_upgrades_and_reads_everything_back(upgraded: Store) -> None:
    with upgraded.transaction(write=False) as conn:
        applied = list(conn.execute(text("SELECT name FROM migrations")).scalars())
    assert sorted(applied) == sorted(registered())

    run = upgraded.run("old-run")
    assert (run.model, run.model_version, run.prompt_template) == ("smollm2", "q4_1", "Q: {q}")
    assert run.params == {"temperature": 0} and run.tags == ("v0", "eval")
    assert run.created_at == T0 and run.n_responses == 1

    (resp,) = upgraded.responses("old-run", with_tokens=True)
    assert resp.prompt == "a\x00b"
    assert resp.messages == [{"role": "user", "content": "hi"}]
    assert (resp.params, resp.meta, resp.latency_ms) == ({"max_tokens": 2}, {"k": 1}, 12.5)
    assert (resp.text, resp.finish_reason, resp.completion_id) == ("Hi!", "stop", "cmpl-1")
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (3, 2)
    assert (resp.sum_logprob, resp.mean_logprob, resp.min_logprob) == (-0.75, -0.375, -0.5)
    assert resp.correct is True and resp.has_prompt_tokens

    comp = resp.to_completion()
    hi, half = comp.tokens
    assert (hi.token, hi.bytes, hi.id, hi.logprob, hi.rank, hi.entropy) == (
        "Hi",
        b"Hi",
        100,
        -0.25,
        1,
        0.2,
    )
    assert [(a.token, a.logprob, a.id, a.bytes) for a in hi.top_logprobs] == [
        ("Hi", -0.25, 100, b"Hi"),
        ("Hey", -1.5, 101, b"Hey"),
    ]
    assert half.bytes == b"\xe2\x82" and half.top_logprobs[0].bytes == b"\xff"
    assert comp.mean_logprob == pytest.approx(-0.375)
    prompt = comp.choice.prompt_tokens
    assert prompt is not None and [t.logprob for t in prompt] == [None, -3.0]


def test_an_upgraded_store_takes_new_writes(upgraded: Store) -> None:
    upgraded.add_artifact("old-run", "notes.txt", "kept")  # m002's table, added by the upgrade
    assert upgraded.artifact("old-run", "notes.txt") == b"kept"
    upgraded.create_run("new-run", model="m")
    assert {r.name for r in upgraded.runs()} == {"old-run", "new-run"}


def _shape(engine: Engine) -> dict[str, Any]:
    """Everything about the tables that matters to the code: columns with their types as this
    dialect spells them, nullability, keys, indexes and unique constraints."""
    insp = inspect(engine)
    out: dict[str, Any] = {}
    for table in sorted(insp.get_table_names()):
        out[table] = {
            "columns": [
                (c["name"], str(c["type"].compile(engine.dialect)), c["nullable"])
                for c in insp.get_columns(table)
            ],
            "pk": insp.get_pk_constraint(table)["constrained_columns"],
            "fks": sorted(
                (
                    tuple(f["constrained_columns"]),
                    f["referred_table"],
                    tuple(f["referred_columns"]),
                    (f.get("options") or {}).get("ondelete"),
                )
                for f in insp.get_foreign_keys(table)
            ),
            "indexes": sorted(
                (i["name"], tuple(i["column_names"]), bool(i["unique"]))
                for i in insp.get_indexes(table)
            ),
            "unique": sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(table)),
        }
    return out


def test_migrations_build_exactly_the_schema_the_code_uses(
    db_url: str, request: pytest.FixtureRequest, tmp_path: Any
) -> None:
    Store.open(db_url).close()
    if db_url.startswith("sqlite"):
        reference_url = f"sqlite:///{tmp_path / 'reference.db'}"
    else:
        server = request.getfixturevalue("postgres_server")
        name = server.create_database()
        request.addfinalizer(lambda: server.drop_database(name))
        reference_url = server.url(name)
    migrated, reference = create_engine(db_url), create_engine(reference_url)
    try:
        schema.metadata.create_all(reference)
        assert _shape(migrated) == _shape(reference)
    finally:
        migrated.dispose()
        reference.dispose()


def test_migrations_are_registered_once_in_order() -> None:
    names = registered()
    assert names[: len(FIRST_RELEASE)] == FIRST_RELEASE
    assert len(names) == len(set(names)) and names == sorted(names)
    assert time.time() > T0
