"""A real two-node Ray cluster on this machine (``ray start --head`` and a second ``ray start
--address``, each with its own temp dir): the CLI joins it with ``--ray-address``, uses both
nodes, prints the same figures and writes the same bytes as a local run, and loses or duplicates
nothing when an actor on the worker node is killed mid-job."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from exec_helpers import actor_pids, logprobe_cli, reviews_jsonl

pytestmark = pytest.mark.slow

LABELS = "positive,negative"
FIGURES = (
    "rows",
    "written",
    "skipped",
    "labelled",
    "correct",
    "accuracy",
    "abstained",
    "skipped_rows",
)


def _classify(data: Path, out: Path, *extra: str, env: dict[str, str]) -> dict[str, Any]:
    r = logprobe_cli(
        "classify",
        "--dataset",
        str(data),
        "-l",
        LABELS,
        "--out",
        str(out),
        "--json",
        "--uncalibrated",
        *extra,
        env=env,
    )
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_the_cli_joins_the_cluster_and_matches_the_local_run(
    two_node_cluster: Any, tmp_path: Path
) -> None:
    data = reviews_jsonl(tmp_path / "reviews.jsonl", 10)
    env = two_node_cluster.env
    local = _classify(data, tmp_path / "local.jsonl", env=env)
    remote = _classify(
        data, tmp_path / "cluster.jsonl", "--ray-address", two_node_cluster.address, env=env
    )
    assert remote["execution"] == {
        "backend": "ray",
        "actors": 2,
        "actor_cpus": 1.0,
        "concurrency": 2,
        "nodes": 2,
    }
    assert {k: remote[k] for k in FIGURES} == {k: local[k] for k in FIGURES}
    assert (tmp_path / "cluster.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    # RAY_ADDRESS is the other way to name the cluster
    by_env = _classify(
        data, tmp_path / "env.jsonl", "--ray", env={**env, "RAY_ADDRESS": two_node_cluster.address}
    )
    assert by_env["execution"]["nodes"] == 2
    assert (tmp_path / "env.jsonl").read_bytes() == (tmp_path / "local.jsonl").read_bytes()


def test_killing_an_actor_on_the_worker_node_loses_and_duplicates_nothing(
    two_node_cluster: Any, tmp_path: Path
) -> None:
    data = reviews_jsonl(tmp_path / "reviews.jsonl", 24)
    env = two_node_cluster.env
    _classify(data, tmp_path / "local.jsonl", env=env)
    out = tmp_path / "cluster.jsonl"
    exe = str(Path(sys.executable).with_name("logprobe"))
    job = subprocess.Popen(
        [
            exe,
            "classify",
            "--dataset",
            str(data),
            "-l",
            LABELS,
            "--out",
            str(out),
            "--json",
            "--uncalibrated",
            "--ray-address",
            two_node_cluster.address,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    killed = []
    try:
        deadline = time.monotonic() + 300
        while not killed and job.poll() is None and time.monotonic() < deadline:
            rows = out.read_text(encoding="utf-8").count("\n") if out.is_file() else 0
            pids = actor_pids(two_node_cluster, node=1)
            if rows >= 3 and pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.append(pids[0])
            time.sleep(0.2)
        stdout, stderr = job.communicate(timeout=400)
    finally:
        if job.poll() is None:
            job.kill()
    assert killed, "the job ended before an actor could be killed"
    assert job.returncode == 0, stderr
    assert stdout.strip(), (stdout, stderr[-3000:])
    d = json.loads(stdout)
    assert d["written"] == 24 and d["skipped"] == 1
    assert out.read_bytes() == (tmp_path / "local.jsonl").read_bytes()
    lines = [json.loads(x)["index"] for x in out.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == len(set(lines)) == 24
