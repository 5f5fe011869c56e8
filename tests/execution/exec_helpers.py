"""Helpers of the execution tests: a slow, engine-free row function (so a test can kill an
actor while rows are in flight), datasets, and a real two-node Ray cluster on this machine.

Ray workers cannot import test modules, so this module is pickled by value (see conftest)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from logprobe.errors import InvalidRequestError

RAY_BIN = str(Path(sys.executable).with_name("ray"))
CLUSTER_ENV = {"RAY_AUTH_MODE": "disabled", "RAY_USAGE_STATS_ENABLED": "0"}


@dataclass(frozen=True, slots=True)
class SlowRow:
    """Sleep ``delay`` s, then answer ``{"n", "square", "pid"}``; multiples of ``bad`` fail."""

    delay: float = 0.0
    bad: int = 0

    def __call__(self, engine: Any, n: int) -> dict[str, int]:
        if self.bad and n % self.bad == 0:
            raise InvalidRequestError(f"row {n} is bad on purpose")
        time.sleep(self.delay)
        return {"n": n, "square": n * n, "pid": os.getpid()}


REVIEWS = [
    ("An absolute delight from start to finish.", "positive"),
    ("Dull, slow and far too long.", "negative"),
    ("I loved every minute of it.", "positive"),
    ("The worst film I have seen this year.", "negative"),
    ("A warm, funny and moving story.", "positive"),
    ("Boring plot and wooden acting.", "negative"),
    ("Beautifully shot and wonderfully acted.", "positive"),
    ("I walked out after twenty minutes.", "negative"),
]


def reviews_jsonl(path: Path, n: int) -> Path:
    """``n`` labelled reviews (cycling through a few, numbered so every text differs) plus one
    bad line in the middle."""
    lines = []
    for i in range(n):
        text, gold = REVIEWS[i % len(REVIEWS)]
        lines.append(json.dumps({"text": f"{text} (#{i})", "gold": gold}))
        if i == n // 2:
            lines.append('{"gold": "positive"}')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


MC_ITEMS = [
    ("Question: What color is the sky on a clear day?\nAnswer:", ["blue", "green", "red"], 0),
    ("Question: How many legs does a dog have?\nAnswer:", ["four", "two", "eleven"], 0),
    ("Question: What is the opposite of hot?\nAnswer:", ["loud", "cold", "heavy"], 1),
    ("Question: Which animal says moo?\nAnswer:", ["a cat", "a cow", "a fish"], 1),
    ("Question: What do bees make?\nAnswer:", ["milk", "honey", "silk"], 1),
    ("Question: Which is a fruit?\nAnswer:", ["an apple", "a chair", "a rock"], 0),
]


def mc_jsonl(path: Path) -> Path:
    path.write_text(
        "".join(json.dumps({"query": q, "choices": c, "gold": g}) + "\n" for q, c, g in MC_ITEMS),
        encoding="utf-8",
    )
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _node_ports() -> list[str]:
    args = []
    for flag in (
        "--node-manager-port",
        "--object-manager-port",
        "--dashboard-agent-listen-port",
        "--dashboard-agent-grpc-port",
        "--metrics-export-port",
        "--runtime-env-agent-port",
    ):
        args += [flag, str(free_port())]
    return args + ["--num-cpus", "1", "--disable-usage-stats", "--block"]


class TwoNodeCluster:
    """``ray start --head`` and a second ``ray start --address`` on this machine, each with its
    own temp dir and its own process group; :meth:`stop` ends exactly those processes."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.address = f"127.0.0.1:{self.port}"
        self.dirs = [
            Path(tempfile.mkdtemp(prefix="rayh", dir="/tmp")),
            Path(tempfile.mkdtemp(prefix="rayw", dir="/tmp")),
        ]
        self.env = {**os.environ, **CLUSTER_ENV}
        self.procs: list[subprocess.Popen[bytes]] = []

    def _start(self, args: list[str], temp_dir: Path) -> None:
        log = (self.root / f"{temp_dir.name}.log").open("wb")
        self.procs.append(
            subprocess.Popen(
                [RAY_BIN, "start", *args, "--temp-dir", str(temp_dir), *_node_ports()],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        )

    def start(self, timeout: float = 120.0) -> TwoNodeCluster:
        self._start(
            [
                "--head",
                "--port",
                str(self.port),
                "--include-dashboard",
                "false",
                "--ray-client-server-port",
                str(free_port()),
            ],
            self.dirs[0],
        )
        self._wait(["status", "--address", self.address], timeout)
        self._start(["--address", self.address], self.dirs[1])
        self._wait_for_nodes(2, timeout)  # the second node registers a few seconds later
        return self

    def _wait_for_nodes(self, n: int, timeout: float) -> None:
        probe = (
            "import sys, ray\n"
            f"ray.init(address={self.address!r}, logging_level='ERROR')\n"
            "alive = sum(1 for node in ray.nodes() if node['Alive'])\n"
            "ray.shutdown()\n"
            f"sys.exit(0 if alive >= {n} else 1)\n"
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            done = subprocess.run([sys.executable, "-c", probe], env=self.env, capture_output=True)
            if done.returncode == 0:
                return
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"ray start exited early; see logs in {self.root}")
            time.sleep(1.0)
        raise TimeoutError(f"the Ray cluster has fewer than {n} nodes after {timeout}s")

    def _wait(self, cmd: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if subprocess.run([RAY_BIN, *cmd], env=self.env, capture_output=True).returncode == 0:
                return
            if any(p.poll() is not None for p in self.procs):
                raise RuntimeError(f"ray start exited early; see logs in {self.root}")
            time.sleep(1.0)
        raise TimeoutError(f"Ray cluster not up after {timeout}s; see logs in {self.root}")

    def stop(self) -> None:
        for p in reversed(self.procs):
            _signal_group(p.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for p in self.procs:
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
        for p in self.procs:
            _signal_group(p.pid, signal.SIGKILL)
            p.wait()
        for pid in self.leftover_pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def leftover_pids(self) -> list[int]:
        """Processes still running from this cluster's temp dirs (none after :meth:`stop`)."""
        marks = [str(d) for d in self.dirs]
        pids = []
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            try:
                cmd = (proc / "cmdline").read_bytes().decode("utf-8", "replace")
            except OSError:
                continue
            if any(m in cmd for m in marks):
                pids.append(int(proc.name))
        return pids


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


def _stat(pid: int) -> tuple[int, int] | None:
    """``(ppid, pgid)`` of a process, or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[1]), int(fields[2])


def actor_pids(cluster: TwoNodeCluster, node: int, name: str = "RowActor") -> list[int]:
    """Pids of the ``ray::<name>`` actor processes that node ``node`` of ``cluster`` runs."""
    group = cluster.procs[node].pid
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmd = (proc / "cmdline").read_bytes().decode("utf-8", "replace")
        except OSError:
            continue
        if not cmd.startswith(f"ray::{name}"):
            continue
        pid = int(proc.name)
        while pid > 1:
            st = _stat(pid)
            if st is None:
                break
            if st[1] == group:
                found.append(int(proc.name))
                break
            pid = st[0]
    return found


def logprobe_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 400
) -> subprocess.CompletedProcess[str]:
    exe = str(Path(sys.executable).with_name("logprobe"))
    return subprocess.run([exe, *args], capture_output=True, text=True, timeout=timeout, env=env)
