"""Soak test: `logprobe serve --log` under mixed load at about twice its capacity.

    python bench/soak.py --duration 180 [--max-queue 8] [--json soak.json]

Starts `logprobe serve` (recording every response into a SQLite run), then runs
2 x --max-queue closed-loop clients for --duration seconds, each picking at random:

- short prompt (8 tokens), long prompt (~300-token prompt, 16 tokens), n=3 choices;
- a stream cancelled after 3 chunks; a malformed request (bad JSON, or a bad field: must be 400).

Reports p50/p99 latency per kind, status counts (429s), the server's RSS every 2 s, RSS growth
after warm-up (the first quarter), requests still in flight 10 s after the load stopped (stuck),
and whether a fixed probe request gets the same logprobs from the soaked server as from a fresh
one. Exit code 1 when a check fails (stuck requests, 5xx, malformed not 400, growth >= 5%,
probe mismatch).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import httpx

NO_EOS = {"0": -100, "2": -100}
PROBE = {
    "prompt": "The three primary colours are",
    "max_tokens": 8,
    "temperature": 0,
    "logprobs": 5,
}
LONG = " ".join(f"Sentence {i} says the sky is blue and the grass is green." for i in range(25))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class Server:
    def __init__(self, args: argparse.Namespace, tmp: Path, log: bool) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).with_name("logprobe")
        cmd = [
            str(exe),
            "serve",
            "--port",
            str(self.port),
            "--max-queue",
            str(args.max_queue),
            "--parallel",
            str(args.parallel),
            "--ctx",
            "4096",
            "--threads",
            str(args.threads),
        ]
        if log:
            cmd += ["--log", "soak", "--db", f"sqlite:///{tmp / 'soak.db'}"]
        self.log_file = (tmp / f"server-{self.port}.log").open("w")
        self.proc = subprocess.Popen(
            cmd,
            stdout=self.log_file,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        deadline = time.monotonic() + 180
        while True:
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"server did not start; see {self.log_file.name}")
            time.sleep(0.3)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log_file.close()


def probe(url: str) -> list[tuple[str, float]]:
    r = httpx.post(url + "/v1/completions", json=PROBE, timeout=300)
    r.raise_for_status()
    lp = r.json()["choices"][0]["logprobs"]
    return list(zip(lp["tokens"], lp["token_logprobs"], strict=True))


def one(client: httpx.Client, kind: str, rng: random.Random) -> int:
    if kind == "short":
        body = {
            "prompt": f"Question {rng.randint(0, 999)}: what is",
            "max_tokens": 8,
            "logprobs": 3,
            "temperature": 0.7,
        }
    elif kind == "long":
        body = {"prompt": LONG + f" Item {rng.randint(0, 999)}.", "max_tokens": 16, "logprobs": 3}
    elif kind == "n3":
        body = {
            "prompt": "Name a fruit:",
            "max_tokens": 8,
            "n": 3,
            "temperature": 1.0,
            "logprobs": 2,
        }
    elif kind == "cancelled":
        body = {
            "prompt": "Tell me a long story.",
            "max_tokens": 200,
            "stream": True,
            "logprobs": 2,
            "logit_bias": NO_EOS,
        }
        with client.stream("POST", "/v1/completions", json=body) as r:
            if r.status_code == 200:
                for i, _ in enumerate(r.iter_lines()):
                    if i >= 6:  # three chunks (each followed by a blank line), then hang up
                        break
            return r.status_code
    else:  # malformed
        if rng.random() < 0.5:
            r = client.post(
                "/v1/completions",
                content=b'{"prompt": "x", "max_tokens": ',
                headers={"Content-Type": "application/json"},
            )
        else:
            r = client.post("/v1/completions", json={"prompt": "x", "temperature": "hot"})
        return r.status_code
    return client.post("/v1/completions", json=body).status_code


KINDS = {"short": 0.35, "long": 0.2, "n3": 0.15, "cancelled": 0.15, "malformed": 0.15}


def load(url: str, stop: threading.Event, seed: int, results: list[tuple[str, int, float]]) -> None:
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=300) as client:
        while not stop.is_set():
            kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
            t0 = time.perf_counter()
            try:
                status = one(client, kind, rng)
            except httpx.HTTPError:
                status = -1
            results.append((kind, status, time.perf_counter() - t0))
            if status == 429:
                time.sleep(0.2)


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    return statistics.quantiles(xs, n=100, method="inclusive")[q - 1] if len(xs) > 1 else xs[0]


def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="logprobe-soak-"))
    server = Server(args, tmp, log=True)
    results: list[tuple[str, int, float]] = []
    rss: list[tuple[float, float]] = []
    stop = threading.Event()
    t_start = time.monotonic()
    workers = [
        threading.Thread(target=load, args=(server.url, stop, i, results), daemon=True)
        for i in range(2 * args.max_queue)
    ]
    for w in workers:
        w.start()
    while time.monotonic() - t_start < args.duration:
        rss.append((round(time.monotonic() - t_start, 1), round(rss_mb(server.proc.pid), 1)))
        time.sleep(2)
    stop.set()
    for w in workers:
        w.join(timeout=300)
    time.sleep(10)
    health = httpx.get(server.url + "/health", timeout=30).json()
    soaked = probe(server.url)
    rss_end = rss_mb(server.proc.pid)
    server.stop()
    fresh_server = Server(args, tmp, log=False)
    fresh = probe(fresh_server.url)
    fresh_server.stop()

    by_kind: dict[str, list[float]] = defaultdict(list)
    statuses: Counter[str] = Counter()
    for kind, status, secs in results:
        statuses[f"{kind} {status}"] += 1
        if status == 200:
            by_kind[kind].append(secs)
    warm = [m for t, m in rss if t >= args.duration / 4]
    growth = (warm[-1] - warm[0]) / warm[0] * 100 if len(warm) > 1 else float("nan")
    diff = max((abs(a[1] - b[1]) for a, b in zip(soaked, fresh, strict=True)), default=0.0)
    report = {
        "duration_s": args.duration,
        "clients": 2 * args.max_queue,
        "max_queue": args.max_queue,
        "requests": len(results),
        "statuses": dict(sorted(statuses.items())),
        "rejected_429": sum(1 for _, s, _ in results if s == 429),
        "server_errors": sum(1 for _, s, _ in results if s >= 500 or s == -1),
        "malformed_not_400": sum(1 for k, s, _ in results if k == "malformed" and s != 400),
        "latency_s": {
            k: {"n": len(v), "p50": round(pct(v, 50), 3), "p99": round(pct(v, 99), 3)}
            for k, v in sorted(by_kind.items())
        },
        "rss_mb": rss,
        "rss_end_mb": round(rss_end, 1),
        "rss_growth_after_warmup_pct": round(growth, 2),
        "stuck_in_flight": health["in_flight"],
        "streams_cancelled": health["streams_cancelled"],
        "probe_same_tokens": [t for t, _ in soaked] == [t for t, _ in fresh],
        "probe_max_abs_logprob_diff": diff,
    }
    report["ok"] = bool(
        report["stuck_in_flight"] == 0
        and report["server_errors"] == 0
        and report["malformed_not_400"] == 0
        and growth < 5
        and report["probe_same_tokens"]
        and diff < 1e-4
    )
    return report


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=900, help="seconds of load (default 900)")
    ap.add_argument("--max-queue", type=int, default=8, help="server --max-queue; clients = 2x")
    ap.add_argument("--parallel", type=int, default=8, help="server --parallel")
    ap.add_argument("--threads", type=int, default=2, help="server --threads")
    ap.add_argument("--json", type=Path, help="write the report here too")
    args = ap.parse_args()
    report = run(args)
    text = json.dumps(report, indent=1)
    if args.json:
        args.json.write_text(text + "\n")
    print(text)
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main()
