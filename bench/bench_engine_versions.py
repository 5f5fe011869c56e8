"""Engine throughput of two logprobe versions and of plain llama.cpp, measured in one run.

Used for the batch-invariance change: the engine before it (a git revision, checked out into a
temporary worktree) against the working tree, and the working tree with llama.cpp's default
kernels (`batch_invariant=False`, what exact invariance costs), alternating in rounds, each
measurement in a fresh process, and llama.cpp's own batching ceiling (a plain low-level decode
loop, argmax only, 1 vs
4 sequences, llama.cpp's default kernels) in the same rounds.

    .venv/bin/python bench/bench_engine_versions.py --before 8c9e884 [--rounds 5] [--threads 2]

Measures per version: greedy decode tok/s of 1 stream with 20 alternatives, aggregate tok/s of
4 concurrent streams, teacher-forced scoring tok/s of an ~800-token text, and the time to first
token of a chat whose system prompt an earlier chat already used (prefix cache).
Prints medians and paired ratios (median of per-round ratios) as Markdown.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MEASURE = r"""
import json, sys, threading, time
from logprobe.engines.llamacpp import LlamaEngine
from logprobe.engines.base import GenerationParams
threads, tokens, fast = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "fast"
eng = LlamaEngine(n_threads=threads, **({"batch_invariant": False} if fast else {}))
bias = {t: -100.0 for t in eng.eog_ids}
p = GenerationParams.make(temperature=0, max_tokens=tokens, top_logprobs=20, logit_bias=bias)
prompts = ["Write a long story about a dragon who learns to bake bread.",
           "Explain in detail how a bicycle works, part by part.",
           "Describe a walk through a busy city market in the morning.",
           "Write a letter to a friend about a trip to the mountains."]
eng.complete(prompts[0], GenerationParams.make(temperature=0, max_tokens=4))  # warm-up
t0 = time.perf_counter(); c = eng.complete(prompts[0], p); t1 = time.perf_counter()
one = len(c.choices[0].tokens) / (t1 - t0)
out = [None] * 4
def run(i): out[i] = eng.complete(prompts[i], p)
ths = [threading.Thread(target=run, args=(i,)) for i in range(4)]
t0 = time.perf_counter()
[t.start() for t in ths]; [t.join() for t in ths]
t1 = time.perf_counter()
four = sum(len(o.choices[0].tokens) for o in out) / (t1 - t0)
text = " ".join(["The harbour town wakes early and the boats go out before dawn."] * 60)
t0 = time.perf_counter(); s = eng.score(text); t1 = time.perf_counter()
score = len(s.tokens) / (t1 - t0)
system = {"role": "system", "content": " ".join(["You answer questions about sailing."] * 20)}
q = lambda x: [system, {"role": "user", "content": x}]
one_tok = GenerationParams.make(temperature=0, max_tokens=1)
eng.chat(q("What is a jib?"), one_tok)
t0 = time.perf_counter(); eng.chat(q("What is a keel?"), one_tok); t1 = time.perf_counter()
print(json.dumps({"gen1": one, "gen4": four, "score": score, "ttft_shared_system": t1 - t0,
                  "batch_invariant": getattr(eng, "batch_invariant", False)}))
eng.close()
"""

CEILING = r"""
import json, sys, time
import numpy as np, llama_cpp as ll
from logprobe.engines.llamacpp import default_model_path
from logprobe.engines.portability import apply_model_params
threads, steps = int(sys.argv[1]), int(sys.argv[2])
ll.llama_backend_init()
cb = ll.llama_log_callback(lambda l, t, d: None); ll.llama_log_set(cb, None)
m = ll.llama_model_load_from_file(default_model_path().encode(),
                                  apply_model_params(ll.llama_model_default_params()))
cp = ll.llama_context_default_params()
cp.n_ctx = 4096; cp.n_batch = cp.n_ubatch = 512; cp.n_seq_max = 4
cp.n_threads = cp.n_threads_batch = threads
ctx = ll.llama_init_from_model(m, cp)
batch = ll.llama_batch_init(512, 0, 1)
nv = ll.llama_vocab_n_tokens(ll.llama_model_get_vocab(m))
def decode(toks, pos, seqs):
    for i, (t, p, s) in enumerate(zip(toks, pos, seqs)):
        batch.token[i], batch.pos[i], batch.n_seq_id[i], batch.logits[i] = t, p, 1, 1
        batch.seq_id[i][0] = s
    batch.n_tokens = len(toks)
    assert ll.llama_decode(ctx, batch) == 0
    return np.ctypeslib.as_array(ll.llama_get_logits(ctx), shape=(len(toks), nv))
def rate(n):
    ll.llama_memory_clear(ll.llama_get_memory(ctx), True)
    toks = [1] * n
    t0 = time.perf_counter()
    for k in range(steps):
        rows = decode(toks, [k] * n, list(range(n)))
        toks = [int(x) for x in rows.argmax(axis=1)]
    return n * steps / (time.perf_counter() - t0)
rate(1)
print(json.dumps({"ceiling1": rate(1), "ceiling4": rate(4)}))
"""


def run(code: str, src: Path, *args: str) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(src))
    p = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        check=True,
        timeout=1800,
    )
    return dict(json.loads(p.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", required=True, help="git revision of the earlier engine")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--tokens", type=int, default=64)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wt = Path(tmp) / "before"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(wt), args.before],
            check=True,
            capture_output=True,
        )
        try:
            rows: dict[str, list[dict[str, float]]] = {
                "before": [],
                "after": [],
                "after_fast": [],
                "llama": [],
            }
            t, n = str(args.threads), str(args.tokens)
            for r in range(args.rounds):
                rows["before"].append(run(MEASURE, wt / "src", t, n, "-"))
                rows["after"].append(run(MEASURE, ROOT / "src", t, n, "-"))
                rows["after_fast"].append(run(MEASURE, ROOT / "src", t, n, "fast"))
                rows["llama"].append(run(CEILING, ROOT / "src", t, "48"))
                print(
                    f"round {r + 1}:",
                    json.dumps({k: v[-1] for k, v in rows.items()}),
                    file=sys.stderr,
                    flush=True,
                )
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(wt)],
                check=False,
                capture_output=True,
            )
    med = {
        k: {m: statistics.median(x[m] for x in v) for m in v[0] if m != "batch_invariant"}
        for k, v in rows.items()
    }

    def paired(a: str, b: str, m: str) -> float:
        return statistics.median(x[m] / y[m] for x, y in zip(rows[a], rows[b], strict=True))

    print(
        f"| measure (median of {args.rounds}) | before ({args.before}) | after | after, "
        "llama.cpp's default kernels | after / before (paired) | reference / default "
        "kernels (paired) |"
    )
    print("|---|---|---|---|---|---|")
    for m, unit in (
        ("gen1", "tok/s"),
        ("gen4", "tok/s"),
        ("score", "tok/s"),
        ("ttft_shared_system", "s"),
    ):
        print(
            f"| {m} ({unit}) | {med['before'][m]:.3g} | {med['after'][m]:.3g} | "
            f"{med['after_fast'][m]:.3g} | {paired('after', 'before', m):.2f}x | "
            f"{paired('after', 'after_fast', m):.2f}x |"
        )
    gain = {
        k: statistics.median(x["gen4"] / x["gen1"] for x in rows[k])
        for k in ("before", "after", "after_fast")
    }
    ceiling = statistics.median(x["ceiling4"] / x["ceiling1"] for x in rows["llama"])
    print(
        f"\n4-stream gain over 1 stream: before {gain['before']:.2f}x, after "
        f"{gain['after']:.2f}x (default kernels {gain['after_fast']:.2f}x); llama.cpp's own "
        f"ceiling (plain decode loop, 4 vs 1 sequence): {ceiling:.2f}x "
        f"({med['llama']['ceiling1']:.0f} -> {med['llama']['ceiling4']:.0f} tok/s)"
    )


if __name__ == "__main__":
    main()
