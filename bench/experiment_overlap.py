"""Experiment: does overlapping the logprob pass with the next decode pay on this machine?

The issue proposed computing a step's logprobs (``row_stats``: log-softmax, rank, entropy,
top-20) in a second thread while ``llama_decode`` of the next step runs, since only the chosen
token is needed to start it. Three greedy decode loops on one sequence, interleaved:

  plain       argmax only (no logprobs): the ceiling
  serial      decode, then row_stats, then the next decode (what the scheduler does)
  overlapped  decode, argmax, next decode while a worker thread runs row_stats on a copy

    .venv/bin/python bench/experiment_overlap.py [--threads 2] [--tokens 96] [--rounds 6]
"""

from __future__ import annotations

import argparse
import queue
import statistics
import threading
import time

import numpy as np
from server_clients import PROMPTS

from logprobe.engines._llama import ContextConfig, LlamaContext, LlamaModel
from logprobe.engines._logprobs import RowStats, row_stats
from logprobe.engines.llamacpp import default_model_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=96)
    ap.add_argument("--rounds", type=int, default=6)
    args = ap.parse_args()
    model = LlamaModel(default_model_path())
    cfg = ContextConfig(n_ctx_seq=1024, n_batch=512, n_seq_max=1, n_threads=args.threads)
    ctx = LlamaContext(model, cfg)
    ids = model.tokenize(PROMPTS[0], add_bos=True, special=False)
    n = args.tokens

    def prefill() -> int:
        ctx.clear()
        outputs = [False] * (len(ids) - 1) + [True]
        rows = ctx.decode(ids, np.arange(len(ids)), [0] * len(ids), outputs)
        return int(rows[-1].argmax())

    def plain() -> float:
        tok = prefill()
        t0 = time.perf_counter()
        for k in range(n):
            tok = int(ctx.decode([tok], [len(ids) + k], [0], [True])[0].argmax())
        return n / (time.perf_counter() - t0)

    def serial() -> float:
        tok = prefill()
        t0 = time.perf_counter()
        for k in range(n):
            stats = row_stats(ctx.decode([tok], [len(ids) + k], [0], [True]), None, 20)
            tok = int(stats.argmax[0])
        return n / (time.perf_counter() - t0)

    def overlapped() -> float:
        todo: queue.SimpleQueue[np.ndarray | None] = queue.SimpleQueue()
        done: list[RowStats] = []

        def worker() -> None:
            while (rows := todo.get()) is not None:
                done.append(row_stats(rows, None, 20))

        thread = threading.Thread(target=worker)
        thread.start()
        tok = prefill()
        t0 = time.perf_counter()
        for k in range(n):
            rows = ctx.decode([tok], [len(ids) + k], [0], [True])
            tok = int(rows[0].argmax())
            todo.put(np.array(rows))
        todo.put(None)
        thread.join()
        assert len(done) == n
        return n / (time.perf_counter() - t0)

    paths = {"plain": plain, "serial": serial, "overlapped": overlapped}
    for f in paths.values():  # warm-up
        f()
    rates: dict[str, list[float]] = {name: [] for name in paths}
    for _ in range(args.rounds):
        for name, f in paths.items():
            rates[name].append(f())
    ctx.close()
    for name, values in rates.items():
        print(f"{name}: {statistics.median(values):.1f} tok/s")
    for a, b in (("serial", "plain"), ("overlapped", "serial")):
        ratio = statistics.median(x / y for x, y in zip(rates[a], rates[b], strict=True))
        print(f"{a} / {b}, paired median: {ratio:.3f}x")


if __name__ == "__main__":
    main()
