"""Benchmark: `logprobe serve` against llama.cpp's own C++ `llama-server` and llama-cpp-python's
server, same GGUF, same threads, measured in one run.

All servers are started first and stay up (an idle server sleeps); then every round measures
each of them in turn (the order rotates), so a slow spell of this shared machine hits all of
them, and each round gives paired ratios. Per server and per logprob setting
(`top_logprobs` 20, 5, and logprobs off): completion tokens/s of one streaming chat request,
time to first token, and the aggregate tokens/s of 4 concurrent streams. Chat, greedy,
`max_tokens` fixed, fixed prompts. The client is a raw socket that parses the events after each
stream ends (``--client raw``, default), or httpx parsing every event as it arrives
(``--client httpx``): on 2 cores the latter's CPU competes with the server being measured.

    .venv/bin/python bench/bench_server.py [--threads 2] [--max-tokens 128] [--rounds 5]
        [--client raw|httpx] [--out docs/experiments/server_bench.md] [--skip-peer]
        [--skip-llama-server]

`llama-server` is built once from the llama.cpp sources vendored in the installed
llama-cpp-python (`bench/peer_llama_server.py`, ~10 min on 2 cores); if it cannot be built the
bench says so and measures the rest. The llama-cpp-python peer needs
`llama-cpp-python[server]` (the `bench` extra).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from server_clients import PROMPTS, stream_chat, stream_chat_raw


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited early with code {proc.returncode}")
        try:
            if httpx.get(f"{url}/v1/models", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"server at {url} did not come up in {timeout:.0f} s")


TOPS: tuple[int | None, ...] = (20, 5, None)


def top_name(top: int | None) -> str:
    return "logprobs off" if top is None else f"top_logprobs {top}"


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds (user + system) of each thread of a process (Linux ``/proc``; empty
    elsewhere)."""
    tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out: dict[str, float] = {}
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:  # the thread ended
            continue
        out[task.name] = (int(fields[11]) + int(fields[12])) / tick
    return out


def serving_cpu_ms(before: dict[str, float], after: dict[str, float], tokens: int) -> float:
    """CPU ms per generated token spent by a server's threads other than its two busiest (the
    llama.cpp compute threads, with 2 threads): HTTP, JSON, event loop, queues. With more
    threads than 2 the split is only indicative."""
    deltas = sorted((after[t] - before.get(t, 0.0) for t in after), reverse=True)
    return 1000 * sum(deltas[2:]) / tokens if tokens else float("nan")


def measure_round(
    url: str,
    model: str,
    max_tokens: int,
    top: int | None,
    k: int,
    pid: int | None = None,
    client: str = "raw",
) -> dict[str, float]:
    """One round for one server and setting: a single stream, then 4 concurrent streams."""
    chat = stream_chat_raw if client == "raw" else stream_chat
    cpu0 = thread_cpu(pid) if pid else {}
    one = chat(url, model, PROMPTS[k % len(PROMPTS)], max_tokens, top)
    t0 = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda p: chat(url, model, p, max_tokens, top), PROMPTS))
    wall = time.perf_counter() - t0
    tokens = one.tokens + sum(r.tokens for r in results)
    return {
        "single": one.tokens / one.seconds,
        "ttft_ms": 1000 * (one.ttft or float("nan")),
        "conc4": sum(r.tokens for r in results) / wall,
        "broken": float(one.broken + sum(r.broken for r in results)),
        "alts": statistics.median(one.top_counts) if one.top_counts else 0.0,
        "serve_cpu_ms": serving_cpu_ms(cpu0, thread_cpu(pid), tokens) if cpu0 else float("nan"),
    }


def batch_ceiling(model: str, threads: int, steps: int = 48, rounds: int = 5) -> dict[str, Any]:
    """What llama.cpp itself gains from batching on this machine: greedy decode of 1 sequence
    vs 4 sequences per ``llama_decode`` (logits of every row, argmax only, no logprobs, no
    server). No server can make 4 streams gain more than this over one."""
    import numpy as np

    from logprobe.engines._llama import ContextConfig, LlamaContext, LlamaModel

    m = LlamaModel(model)
    ctx = LlamaContext(
        m,
        ContextConfig(
            n_ctx_seq=1024, n_batch=512, n_seq_max=4, n_threads=threads, reference_kernels=False
        ),
    )  # llama.cpp's defaults
    ids = m.tokenize(PROMPTS[0], add_bos=True, special=False)

    def rate(n_seq: int) -> float:
        ctx.clear()
        for s in range(n_seq):
            ctx.decode(ids, np.arange(len(ids)), [s] * len(ids), [False] * (len(ids) - 1) + [True])
        toks = [ids[-1]] * n_seq
        t0 = time.perf_counter()
        for k in range(steps):
            rows = ctx.decode(toks, [len(ids) + k] * n_seq, list(range(n_seq)), [True] * n_seq)
            toks = [int(t) for t in rows.argmax(axis=1)]
        return n_seq * steps / (time.perf_counter() - t0)

    rate(1)  # warm-up
    ones, fours, ratios = [], [], []
    for _ in range(rounds):
        ones.append(rate(1))
        fours.append(rate(4))
        ratios.append(fours[-1] / ones[-1])
    ctx.close()
    return {
        "one_tok_s": statistics.median(ones),
        "four_tok_s": statistics.median(fours),
        "four_over_one": statistics.median(ratios),
        "ratios": ratios,
    }


class Server:
    def __init__(self, name: str, cmd: list[str], port: int) -> None:
        self.name, self.url = name, f"http://127.0.0.1:{port}"
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def ready(self) -> str:
        wait_ready(self.url, self.proc)
        model = str(httpx.get(f"{self.url}/v1/models").json()["data"][0]["id"])
        stream_chat(self.url, model, "Hello.", 8)  # warm-up
        return model

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def main(argv: list[str] | None = None) -> int:
    from logprobe.engines.llamacpp import default_model_path

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--out", default="docs/experiments/server_bench.md")
    ap.add_argument("--skip-peer", action="store_true", help="no llama_cpp.server")
    ap.add_argument("--skip-llama-server", action="store_true")
    ap.add_argument(
        "--client",
        choices=("raw", "httpx"),
        default="raw",
        help="raw: a socket that parses after the stream ends (default); httpx: parse each "
        "event as it arrives, as a Python application would",
    )
    args = ap.parse_args(argv)
    model = args.model or default_model_path()
    exe = Path(sys.executable)
    t = str(args.threads)
    cmds: dict[str, list[str]] = {
        "logprobe serve": [
            str(exe.with_name("logprobe")),
            "serve",
            "--model",
            model,
            "--threads",
            t,
            "--ctx",
            "2048",
            "--parallel",
            "4",
        ]
    }
    notes: list[str] = []
    if not args.skip_llama_server:
        sys.path.insert(0, str(Path(__file__).parent))
        from peer_llama_server import available

        binary = available()
        if binary is None:
            notes.append("llama-server could not be built here: not measured.")
        else:
            cmds["llama-server"] = [
                str(binary),
                "-m",
                model,
                "-t",
                t,
                "-tb",
                t,
                "-c",
                "8192",
                "-np",
                "4",
                "--no-repack",
                "--jinja",
                "--host",
                "127.0.0.1",
            ]
    if not args.skip_peer:
        # loads its model by logprobe's portability rule (no AMX extra buffers)
        cmds["llama_cpp.server"] = [
            str(exe),
            "-m",
            "logprobe.engines.portability",
            "llama_cpp.server",
            "--model",
            model,
            "--host",
            "127.0.0.1",
            "--n_threads",
            t,
            "--logits_all",
            "true",
            # by default it cuts a running stream off when another request arrives
            "--interrupt_requests",
            "false",
        ]
    load_before = os.getloadavg()
    ceiling = batch_ceiling(model, args.threads)
    print("llama.cpp batching ceiling:", json.dumps(ceiling), flush=True)
    servers, models = [], {}
    try:
        for name, cmd in cmds.items():
            port = free_port()
            flag = ["--port", str(port)]
            servers.append(Server(name, [*cmd, *flag], port))
            models[name] = servers[-1].ready()
        rows: dict[tuple[str, int | None], list[dict[str, float]]] = {}
        for k in range(args.rounds):
            for top in TOPS:
                order = servers[k % len(servers) :] + servers[: k % len(servers)]
                for srv in order:
                    r = measure_round(
                        srv.url,
                        models[srv.name],
                        args.max_tokens,
                        top,
                        k,
                        srv.proc.pid,
                        args.client,
                    )
                    rows.setdefault((srv.name, top), []).append(r)
                    print(f"round {k + 1} {srv.name} {top_name(top)}:", json.dumps(r), flush=True)
    finally:
        for srv in servers:
            srv.stop()
    load_after = os.getloadavg()
    write_report(
        Path(args.out), rows, list(cmds), ceiling, args, model, load_before, load_after, argv, notes
    )
    return 0


def _paired(
    rows: dict[tuple[str, int | None], list[dict[str, float]]],
    a: str,
    b: str,
    top: int | None,
    key: str,
) -> float | None:
    if (a, top) not in rows or (b, top) not in rows:
        return None
    return statistics.median(
        x[key] / y[key] for x, y in zip(rows[(a, top)], rows[(b, top)], strict=True)
    )


def write_report(
    out: Path,
    rows: dict[tuple[str, int | None], list[dict[str, float]]],
    names: list[str],
    ceiling: dict[str, Any],
    args: argparse.Namespace,
    model: str,
    load_before: tuple[float, ...],
    load_after: tuple[float, ...],
    argv: list[str] | None,
    notes: list[str],
) -> None:
    cmd = " ".join(["python bench/bench_server.py", *(argv if argv is not None else sys.argv[1:])])
    med = {key: {m: statistics.median(r[m] for r in v) for m in v[0]} for key, v in rows.items()}
    lines = [
        "## Server throughput with logprobs: `logprobe serve` vs `llama-server` vs "
        "llama-cpp-python's server",
        "",
        f"Command: `{cmd}` (model `{Path(model).name}`, {args.threads} threads for every "
        f"server, streaming chat, temperature 0, `max_tokens: {args.max_tokens}`, "
        f"{args.rounds} interleaved rounds, {args.client} client). Machine: "
        f"{platform.machine()}, {os.cpu_count()} cores, load average {load_before[0]:.1f} "
        f"before / {load_after[0]:.1f} after.",
        "",
        "Servers: `logprobe serve --threads T --ctx 2048 --parallel 4`; `llama-server -t T -tb T "
        "-c 8192 -np 4 --no-repack --jinja` (built from the llama.cpp that llama-cpp-python "
        "vendors, `-DGGML_NATIVE=ON`); `python -m llama_cpp.server --n_threads T --logits_all "
        "true --interrupt_requests false`.",
        *(["", *notes] if notes else []),
        "",
        "| setting | server | 1 stream tok/s | of ceiling | time to first token | "
        "4 streams tok/s | of ceiling | 4 / 1 | serving CPU ms/token | streams cut off |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for top in TOPS:
        for name in names:
            if (name, top) not in med:
                continue
            m = med[(name, top)]
            gain = statistics.median(r["conc4"] / r["single"] for r in rows[(name, top)])
            lines.append(
                f"| {top_name(top)} | {name} | {m['single']:.1f} | "
                f"{m['single'] / ceiling['one_tok_s']:.2f} | {m['ttft_ms']:.0f} ms | "
                f"{m['conc4']:.1f} | {m['conc4'] / ceiling['four_tok_s']:.2f} | {gain:.2f}x | "
                f"{m['serve_cpu_ms']:.2f} | "
                f"{int(sum(r['broken'] for r in rows[(name, top)]))} |"
            )
    lines += ["", "Paired ratios (median over rounds of the per-round ratio):", ""]
    for peer in ("llama-server", "llama_cpp.server"):
        for top in TOPS:
            for key, what in (("single", "1 stream"), ("conc4", "4 streams")):
                r = _paired(rows, "logprobe serve", peer, top, key)
                if r is not None:
                    lines.append(f"- logprobe / {peer}, {top_name(top)}, {what}: **{r:.2f}x**")
    lines += [
        "",
        f"Ceiling set by llama.cpp on this machine, measured in the same run: a plain "
        f"greedy decode loop (no server, no logprobs, llama.cpp's default kernels) makes "
        f"{ceiling['one_tok_s']:.1f} tok/s with 1 sequence and "
        f"{ceiling['four_tok_s']:.1f} tok/s with 4 sequences per `llama_decode`: "
        f"**{ceiling['four_over_one']:.2f}x** (rounds: "
        f'{", ".join(f"{x:.2f}" for x in ceiling["ratios"])}). "of ceiling" divides a '
        "server's rate by these: no server of this model on this machine can pass 1.0.",
        "",
        "Serving CPU ms/token: CPU time per generated token (both phases of a round) of the "
        "server's threads other than its two busiest, i.e. outside llama.cpp's compute threads "
        "(for logprobe the scheduler's own numpy work runs on a compute thread and is not "
        "counted). On a 2-core machine every such millisecond is taken from the compute threads.",
    ]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote {out}")


if __name__ == "__main__":
    raise SystemExit(main())
