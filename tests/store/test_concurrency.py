"""Concurrent writers (threads and processes) lose nothing; a writer killed with SIGKILL in the
middle of a transaction leaves a consistent, writable database. Real SQLite and PostgreSQL."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from sqlalchemy import text
from store_factories import big_completion

from logprobe.store import Store

WRITER = Path(__file__).resolve().parent / "store_writer.py"


def assert_consistent(store: Store) -> None:
    """Every response holds exactly its tokens; every request has its responses."""
    with store.transaction(write=False) as conn:
        bad = conn.execute(
            text(
                "SELECT r.id FROM responses r LEFT JOIN (SELECT response_id, count(*) AS c "
                "FROM tokens WHERE part = 0 GROUP BY response_id) t ON t.response_id = r.id "
                "WHERE coalesce(t.c, 0) <> r.n_tokens"
            )
        ).all()
        orphans = conn.execute(
            text(
                "SELECT count(*) FROM requests q WHERE NOT EXISTS "
                "(SELECT 1 FROM responses r WHERE r.request_id = q.id)"
            )
        ).scalar_one()
    assert bad == [] and orphans == 0
    if store.dialect == "sqlite":
        with store.transaction(write=False) as conn:
            assert conn.exec_driver_sql("PRAGMA integrity_check").scalar() == "ok"


def test_threads_writing_at_once_lose_nothing(db_url: str) -> None:
    n_threads, per_thread = 8, 12
    store = Store.open(db_url)
    start = threading.Barrier(n_threads)
    errors: list[BaseException] = []

    def work(t: int) -> None:
        try:
            start.wait()
            for i in range(per_thread):
                store.record("shared", f"thread {t} item {i}", big_completion(40, top=2))
        except BaseException as e:  # collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(n_threads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    responses = store.responses("shared")
    assert len(responses) == n_threads * per_thread
    assert len({r.prompt for r in responses}) == n_threads * per_thread
    assert [r.name for r in store.runs()] == ["shared"]  # created once despite the race
    assert_consistent(store)
    store.close()


def test_processes_writing_at_once_lose_nothing(db_url: str) -> None:
    n_proc, per_proc = 4, 8
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(WRITER), db_url, "multi", str(per_proc), "150"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(n_proc)
    ]  # all open a fresh store at once: migrations race too
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    with Store.open(db_url) as store:
        assert store.count_responses("multi") == n_proc * per_proc
        assert_consistent(store)
        with store.transaction(write=False) as conn:
            names = conn.execute(text("SELECT name FROM migrations")).scalars().all()
        assert len(names) == len(set(names))


@pytest.mark.slow
def test_sigkill_mid_write_leaves_a_usable_database(db_url: str) -> None:
    committed_before = lost = 0
    for round_ in range(3):
        proc = subprocess.Popen(
            [sys.executable, str(WRITER), db_url, "killed", "50", "4000"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        assert proc.stdout is not None
        target = f"begin {2 + round_}"
        for line in proc.stdout:
            if line.strip() == target:
                break
        proc.send_signal(signal.SIGKILL)  # in the middle of writing 4000 token rows
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()  # type: ignore[union-attr]
        assert proc.returncode == -signal.SIGKILL
        with Store.open(db_url) as store:
            n = store.count_responses("killed")
            done_now = 2 + round_
            assert committed_before + done_now <= n <= committed_before + done_now + 1
            lost += n == committed_before + done_now  # the write in flight was rolled back
            assert_consistent(store)
            store.record("killed", f"after kill {round_}", big_completion(10, top=1))
            committed_before = store.count_responses("killed")
    assert lost >= 1  # at least one kill really landed inside a transaction
    if db_url.startswith("sqlite:///"):
        raw = sqlite3.connect(db_url.removeprefix("sqlite:///"))
        assert raw.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        raw.close()
