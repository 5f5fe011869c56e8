"""Classifying with K labels after one shared prompt vs K separate scorings.

``classify`` scores all labels with one ``score_continuations`` call: the prompt is prefilled
once, its KV cache copied to every label, and the labels decoded together. The baseline scores
each label on its own (``engine.score(label, prompt=prompt)``: K prefills of the same prompt),
which is what a harness without prefix reuse does. Both paths give the same numbers (checked).

    .venv/bin/python bench/bench_classify.py --tokens 200 --ks 4 8 --repeats 5 \
        --out docs/experiments/tasks_bench.md

Runs are interleaved (shared, separate, shared, ...) and medians reported, so background load
hits both paths alike.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from logprobe.engines.llamacpp import LlamaEngine
from logprobe.tasks import classify

LABELS = [
    "World news",
    "Sports",
    "Business",
    "Science and technology",
    "Health",
    "Entertainment",
    "Politics",
    "Travel and tourism",
]
TEXT = (
    "The city council met on Tuesday evening to discuss the new public transport plan, which "
    "would add three tram lines, extend night bus services and close several streets in the "
    "historic centre to private cars. Supporters said the plan would cut traffic, improve air "
    "quality and help local shops, while critics worried about the cost, the years of "
    "construction work and the effect on people who live outside the centre and rely on their "
    "cars. The mayor promised a public consultation before any final decision and said that "
    "the first phase could start next spring if the regional government agrees to pay part of "
    "the bill. Local business groups asked for compensation during the works, and cycling "
    "associations called for protected bike lanes along the new routes. A vote is expected "
    "before the end of the year, after experts publish a detailed study of the costs and of the "
    "expected number of passengers on each of the proposed lines and services across the city."
)


def prompt_of(engine: LlamaEngine, n_tokens: int) -> str:
    """A prompt of exactly ``n_tokens`` tokens (the text cut at a token boundary)."""
    ids = engine.tokenize(TEXT)
    while len(ids) < n_tokens:
        ids = ids + engine.tokenize(" " + TEXT)
    text = engine.detokenize(ids[: n_tokens - 8]).decode("utf-8", errors="ignore")
    prompt = f"Text: {text}\nTopic:"
    return prompt


def separate(engine: LlamaEngine, prompt: str, labels: list[str]) -> list[float]:
    return [engine.score(" " + label, prompt=prompt).logprob for label in labels]


def shared(engine: LlamaEngine, prompt: str, labels: list[str]) -> list[float]:
    r = classify(engine, prompt, labels, template=None)
    return [o.logprob for o in r.options]


def timed(fn: Any, *args: Any) -> tuple[float, Any]:
    t0 = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - t0, out


def run(engine: LlamaEngine, n_tokens: int, k: int, repeats: int) -> dict[str, Any]:
    prompt = prompt_of(engine, n_tokens)
    labels = LABELS[:k]
    shared(engine, prompt, labels)  # warm-up
    t_shared: list[float] = []
    t_sep: list[float] = []
    max_diff = 0.0
    for _ in range(repeats):
        a, lp_a = timed(shared, engine, prompt, labels)
        b, lp_b = timed(separate, engine, prompt, labels)
        t_shared.append(a)
        t_sep.append(b)
        max_diff = max(max_diff, max(abs(x - y) for x, y in zip(lp_a, lp_b, strict=False)))
    ms = statistics.median(t_shared)
    mp = statistics.median(t_sep)
    return {
        "k": k,
        "prompt_tokens": len(engine.tokenize(prompt)),
        "label_tokens": sum(len(engine.tokenize(" " + x)) for x in labels),
        "shared_s": ms,
        "separate_s": mp,
        "speedup": mp / ms,
        "target": 0.6 * k,
        "max_logprob_diff": max_diff,
    }


def markdown(rows: list[dict[str, Any]], args: argparse.Namespace, load: str) -> str:
    lines = [
        "## Shared-prompt classification vs separate scorings",
        "",
        "Command:",
        "",
        "```",
        f".venv/bin/python bench/bench_classify.py --tokens {args.tokens} --ks "
        f"{' '.join(map(str, args.ks))} --repeats {args.repeats} --threads {args.threads}"
        " --out docs/experiments/tasks_bench.md",
        "```",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, {args.threads} engine threads; "
        f"load average at start {load}. Model: embedded SmolLM2-135M-Instruct Q4_1. "
        f"Median of {args.repeats} interleaved runs.",
        "",
        "| K labels | prompt tokens | label tokens | classify (shared prompt) | K separate "
        "scorings | speedup | target (0.6 K) | max abs logprob diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ok = "yes" if r["speedup"] >= r["target"] else "NO"
        lines.append(
            f"| {r['k']} | {r['prompt_tokens']} | {r['label_tokens']} | {r['shared_s'] * 1000:.0f}"
            f" ms | {r['separate_s'] * 1000:.0f} ms | {r['speedup']:.2f}x | "
            f"{r['target']:.1f}x ({ok}) | {r['max_logprob_diff']:.1e} |"
        )
    lines += [
        "",
        "Both paths return the same label logprobs (last column), so the speedup "
        "is free: one prefill of the shared prompt instead of K, and the labels decoded "
        "together in one batch.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=200)
    ap.add_argument("--ks", type=int, nargs="+", default=[4, 8])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    with LlamaEngine(n_threads=args.threads) as engine:
        rows = [run(engine, args.tokens, k, args.repeats) for k in args.ks]
    text = markdown(rows, args, load)
    print(text)
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
