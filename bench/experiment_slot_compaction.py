"""Experiment: what keeping running sequences on consecutive slots is worth (docs/BENCHMARKS.md).

With a KV stream per sequence, llama.cpp decodes sequences in one pass only while their ids are
consecutive (``split_equal(sequential=true)``). Six chat streams of mixed lengths (128, 24, 128,
48, 128, 24 tokens, started 20 ms apart) run on an 8-sequence engine, so short ones finish between
long ones; each round runs them once with the scheduler's compaction (the highest running sequence
moves into a gap) and once without it, and prints the aggregate tokens/s and the paired ratio.

    .venv/bin/python bench/experiment_slot_compaction.py [--threads 2] [--rounds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

from server_clients import PROMPTS

from logprobe import LlamaEngine
from logprobe.engines import _scheduler

LENGTHS = [128, 24, 128, 48, 128, 24]
QUESTIONS = [*PROMPTS, "Describe a mountain in detail.", "Describe a river in detail."]


async def burst(engine: LlamaEngine, ban: dict[int, float]) -> float:
    async def one(question: str, n: int) -> int:
        events = await engine.astream(
            messages=[{"role": "user", "content": question}],
            max_tokens=n,
            temperature=0,
            logit_bias=ban,
        )
        return sum([1 async for ev in events if ev.token is not None])

    t0 = time.perf_counter()
    tasks = []
    for question, n in zip(QUESTIONS, LENGTHS, strict=True):
        tasks.append(asyncio.create_task(one(question, n)))
        await asyncio.sleep(0.02)
    tokens = sum(await asyncio.gather(*tasks))
    return tokens / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=4)
    args = ap.parse_args()
    engine = LlamaEngine(n_threads=args.threads, n_seq_max=8)
    ban = {i: -100.0 for i in engine.eog_ids}  # every stream runs to its length
    compact = _scheduler.Scheduler._compact
    rates: dict[str, list[float]] = {"with compaction": [], "without": []}
    asyncio.run(burst(engine, ban))  # warm-up
    try:
        for _ in range(args.rounds):
            for mode in rates:
                _scheduler.Scheduler._compact = (  # type: ignore[method-assign]
                    compact if mode == "with compaction" else (lambda self: None)
                )
                rates[mode].append(asyncio.run(burst(engine, ban)))
    finally:
        _scheduler.Scheduler._compact = compact  # type: ignore[method-assign]
        engine.close()
    for mode, values in rates.items():
        print(f"{mode}: {statistics.median(values):.1f} tok/s (rounds {values})")
    paired = [a / b for a, b in zip(*rates.values(), strict=True)]
    print(f"with / without, paired median: {statistics.median(paired):.2f}x")


if __name__ == "__main__":
    main()
