"""Rows per second of ``classify --dataset``: the local executor vs Ray with 1 and 2 actors, in
one run, plus Ray's per-row overhead and each actor's peak memory.

    .venv/bin/python bench/bench_scale.py --rows 48

Every configuration classifies the same SST-2 rows (``../shared/data/sst2/dev.tsv``; a built-in
list when absent) into ``negative`` / ``positive`` and must produce the same records as the local
run (checked). Timings cover the rows only: Ray start-up and engine loading are reported apart.

Per-row overhead of Ray at 1 actor = (wall time of the map - time the actor spent in the row
function) / rows, compared with the actor's model time per row. Peak memory is the actor
process's maximum resident set size (``getrusage``), the engine and Ray's worker together.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import time
from pathlib import Path
from typing import Any

from logprobe.engines.llamacpp import LlamaEngine
from logprobe.execution import EngineSpec, LocalExecutor, RayExecutor, RayOptions
from logprobe.tasks import text_rows
from logprobe.tasks.batch import ClassifyRow, prediction_record
from logprobe.tasks.datasets import TextRow

SST2 = Path(__file__).resolve().parents[2] / "shared" / "data" / "sst2" / "dev.tsv"
LABELS = ("negative", "positive")
FALLBACK = [
    "a charming and often affecting journey",
    "unflinchingly bleak and desperate",
    "the acting is superb",
    "a dull, lifeless mess",
    "funny and touching",
    "too long and too loud",
]


def load_rows(n: int) -> list[TextRow]:
    if SST2.is_file():
        rows = [
            r
            for r in text_rows(SST2, label_map={"0": "negative", "1": "positive"}, labels=LABELS)
            if r.text is not None
        ]
    else:
        rows = [TextRow(i, i + 1, FALLBACK[i % len(FALLBACK)] + f" ({i})") for i in range(n)]
    return rows[:n]


def run(executor: Any, rows: list[TextRow]) -> tuple[float, list[dict[str, Any]]]:
    fn = ClassifyRow(LABELS)
    started = time.perf_counter()
    records = [
        prediction_record(o.item, o.result) for o in executor.map(fn, rows) if o.result is not None
    ]
    return time.perf_counter() - started, records


def local(rows: list[TextRow], threads: int, workers: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    engine = LlamaEngine(n_threads=threads)
    load = time.perf_counter() - t0
    try:
        run(LocalExecutor(engine, workers=workers), rows[:4])  # warm-up
        wall, records = run(LocalExecutor(engine, workers=workers), rows)
    finally:
        engine.close()
    return {
        "config": f"local, 1 engine x {threads} threads, {workers} rows in flight",
        "wall_s": wall,
        "rows_per_s": len(rows) / wall,
        "startup_s": load,
        "records": records,
    }


def on_ray(rows: list[TextRow], actors: int, workers: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    with RayExecutor(
        EngineSpec(), RayOptions(actors=actors, actor_cpus=1.0, concurrency=workers, chunk_size=4)
    ) as ex:
        startup = time.perf_counter() - t0
        run(ex, rows[: 4 * actors])  # warm-up
        before = ex.stats.actor_seconds
        wall, records = run(ex, rows)
        busy = ex.stats.actor_seconds - before
        peaks = [i["peak_rss_bytes"] for i in ex.actor_infos()]
    overhead = (wall - busy / actors) / len(rows)
    return {
        "config": f"ray, {actors} actor(s) x 1 CPU, {workers} rows in flight each",
        "wall_s": wall,
        "rows_per_s": len(rows) / wall,
        "startup_s": startup,
        "actor_busy_s": busy,
        "model_s_per_row": busy / len(rows),
        "overhead_s_per_row": overhead,
        "overhead_pct_of_model": 100 * overhead / (busy / len(rows)),
        "peak_rss_mib_per_actor": [round(p / 2**20, 1) for p in peaks],
        "records": records,
    }


def table(results: list[dict[str, Any]], base: float) -> str:
    lines = [
        "| configuration | rows/s | vs local | Ray overhead per row | peak RSS per actor |",
        "|---|---:|---:|---:|---:|",
    ]
    for r in results:
        over = (
            f"{1000 * r['overhead_s_per_row']:.1f} ms ({r['overhead_pct_of_model']:.1f}% of "
            f"{1000 * r['model_s_per_row']:.0f} ms model time)"
            if "overhead_s_per_row" in r
            else "-"
        )
        mem = ", ".join(f"{m:.0f} MiB" for m in r.get("peak_rss_mib_per_actor", [])) or "-"
        lines.append(
            f"| {r['config']} | {r['rows_per_s']:.2f} | {r['rows_per_s'] / base:.2f}x "
            f"| {over} | {mem} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=48)
    ap.add_argument("--workers", type=int, default=2, help="rows in flight per engine")
    ap.add_argument("--out", type=Path, default=None, help="append the markdown table here")
    args = ap.parse_args()
    import ray

    rows = load_rows(args.rows)
    results = [
        local(rows, threads=2, workers=args.workers),
        local(rows, threads=1, workers=args.workers),
    ]
    ray.init(
        num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.WARNING
    )
    try:
        results += [on_ray(rows, 1, args.workers), on_ray(rows, 2, args.workers)]
    finally:
        ray.shutdown()
    reference = results[0]["records"]
    same = all(r["records"] == reference for r in results)
    driver_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    md = (
        f"{len(rows)} SST-2 rows, labels {'/'.join(LABELS)}; {platform.processor() or 'cpu'}, "
        f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the end\n\n"
        f"{table(results, results[0]['rows_per_s'])}\n\n"
        f"Records identical across all configurations: {same}. Driver peak RSS "
        f"{driver_peak:.0f} MiB. Start-up (engine load, Ray actors): "
        + ", ".join(f"{r['config'].split(',')[0]} {r['startup_s']:.1f} s" for r in results)
        + "\n"
    )
    print(md)
    print(json.dumps([{k: v for k, v in r.items() if k != "records"} for r in results], indent=2))
    if args.out:
        with args.out.open("a", encoding="utf-8") as f:
            f.write(md + "\n")
    if not same:
        raise SystemExit("records differ between configurations")


if __name__ == "__main__":
    main()
