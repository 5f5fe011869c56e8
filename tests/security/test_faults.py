"""Faults, each against a real server process: SIGTERM drains, SIGKILL while recording loses
no answered response, a full disk under the SQLite store and a PostgreSQL restart are logged
while generation keeps serving."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from logprobe.store import Store

from .sec_support import ServeProcess

HERE = Path(__file__).resolve().parent
NO_EOS = {"0": -100, "2": -100}


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Any]:
    started: list[ServeProcess] = []

    def start(*args: str) -> ServeProcess:
        proc = ServeProcess(list(args), tmp_path)
        started.append(proc)
        return proc.wait_ready()

    yield start
    for p in started:
        p.stop()


def complete(url: str, prompt: str, max_tokens: int = 4, **kw: Any) -> httpx.Response:
    return httpx.post(
        url + "/v1/completions",
        timeout=120,
        json={"prompt": prompt, "max_tokens": max_tokens, "temperature": 0, "logprobs": 2, **kw},
    )


def test_sigterm_drains_in_flight_requests_refuses_new_ones_and_exits(serve: Any) -> None:
    srv = serve()
    lines: list[str] = []

    def stream() -> None:
        body = {
            "prompt": "Once upon a time",
            "max_tokens": 120,
            "stream": True,
            "temperature": 0,
            "logit_bias": NO_EOS,
        }
        with httpx.stream("POST", srv.url + "/v1/completions", json=body, timeout=300) as r:
            lines.extend(line for line in r.iter_lines() if line)

    t = threading.Thread(target=stream)
    t.start()
    deadline = time.monotonic() + 120
    while httpx.get(srv.url + "/health").json()["in_flight"] == 0:
        assert time.monotonic() < deadline and t.is_alive()
        time.sleep(0.05)
    srv.proc.send_signal(signal.SIGTERM)
    while httpx.get(srv.url + "/health").status_code != 503:  # the signal was handled
        assert time.monotonic() < deadline and t.is_alive(), "the stream ended before the probe"
        time.sleep(0.02)
    refused = complete(srv.url, "new request")
    assert refused.status_code == 503
    assert refused.json()["error"]["code"] == "server_shutting_down"
    t.join(timeout=240)
    assert lines[-1] == "data: [DONE]"  # the stream in flight finished whole
    assert sum(1 for line in lines if '"text"' in line) >= 120
    assert srv.proc.wait(timeout=60) == 0
    log = srv.log()
    assert "SIGTERM: draining 1 request(s) in flight" in log and "Traceback" not in log


def test_sigkill_while_recording_keeps_every_answered_response(serve: Any, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'killed.db'}"
    srv = serve("--log", "killed", "--db", db)
    answered: list[str] = []
    stop = threading.Event()

    def load(worker: int) -> None:
        i = 0
        while not stop.is_set():
            prompt = f"Item {worker}-{i}:"
            try:
                kw = {"stream": True} if i % 2 else {}
                r = complete(srv.url, prompt, 3, **kw)
                if r.status_code == 200 and (not kw or r.text.rstrip().endswith("[DONE]")):
                    answered.append(prompt)
            except httpx.HTTPError:
                return  # the server died under us: this reply never completed
            i += 1

    workers = [threading.Thread(target=load, args=(w,)) for w in range(3)]
    for w in workers:
        w.start()
    deadline = time.monotonic() + 180
    while len(answered) < 8:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    srv.proc.kill()  # SIGKILL, with requests in flight and recording going on
    stop.set()
    for w in workers:
        w.join(timeout=60)
    srv.proc.wait(timeout=30)
    with Store.open(db) as store:  # opens cleanly (SQLite WAL recovers)
        stored = {r.prompt for r in store.responses("killed")}
        assert store.run("killed").n_responses == len(stored)
    missing = set(answered) - stored
    assert not missing, f"answered but not recorded: {sorted(missing)}"


def test_full_disk_under_the_sqlite_store_is_logged_and_serving_goes_on(tmp_path: Path) -> None:
    srv = ServeProcess.python(
        HERE / "serve_full_disk.py", [str(tmp_path / "full.db"), "full"], tmp_path
    )
    try:
        srv.wait_ready()
        for i in range(20):  # the file's last free bytes take a few responses
            r = complete(srv.url, f"Disk full {i}:", 3, stream=bool(i % 2))
            assert r.status_code == 200
            if "could not record" in srv.log():
                break
        assert "database or disk is full" in srv.log(), srv.log()[-2000:]
        failed = srv.log().count("could not record")
        assert complete(srv.url, "Still serving:", 3, stream=True).status_code == 200
        r = httpx.post(
            srv.url + "/v1/chat/completions",
            timeout=120,
            json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 3},
        )
        assert r.status_code == 200 and r.json()["choices"][0]["message"]["content"]
        assert srv.proc.poll() is None
        log = srv.log()
        assert log.count("could not record") == failed + 2  # each later one logged too
        assert "Traceback" not in log
    finally:
        srv.stop()


@pytest.mark.postgres
def test_postgres_restart_mid_run_is_a_logged_gap(serve: Any, postgres_server: Any) -> None:
    from tests_store_conftest import _as_server_user, pg_bindir  # type: ignore[import-not-found]

    name = postgres_server.create_database()
    url = postgres_server.url(name)
    srv = serve("--log", "pg", "--db", url)
    assert complete(srv.url, "Before 1:").status_code == 200
    assert complete(srv.url, "Before 2:", stream=True).status_code == 200
    bindir, data = pg_bindir(), postgres_server.base / "data"
    subprocess.run(
        _as_server_user([str(bindir / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
        check=True,
        capture_output=True,
        timeout=60,
    )
    try:
        for i in range(2):
            assert complete(srv.url, f"During {i}:").status_code == 200  # still serving
        assert srv.proc.poll() is None
    finally:
        opts = (
            f"-p {postgres_server.port} -k {postgres_server.base} "
            "-c listen_addresses=127.0.0.1 -c fsync=off"
        )
        subprocess.run(
            _as_server_user(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(postgres_server.base / "server.log"),
                    "-w",
                    "-o",
                    opts,
                    "start",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=60,
        )
    assert complete(srv.url, "After 1:").status_code == 200
    assert complete(srv.url, "After 2:", stream=True).status_code == 200
    with Store.open(url) as store:
        prompts = {r.prompt for r in store.responses("pg")}
    assert prompts == {"Before 1:", "Before 2:", "After 1:", "After 2:"}
    log = srv.log()
    assert log.count("could not record") == 2
    assert "recording into run 'pg' resumed" in log and "2 response(s) not recorded" in log
    assert "Traceback" not in log
