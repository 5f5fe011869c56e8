"""Store throughput: record N responses, import one huge response, page through its tokens.

    .venv/bin/python bench/bench_store.py [--db URL] [--responses 500] [--tokens 100000]

Prints one JSON object (seconds and rates). Default store: a fresh SQLite file in a temp dir.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from logprobe.store import Store, import_file
from logprobe.types import Alternative, Choice, Completion, TokenLogprob


def response(n: int, top: int = 5, seed: int = 0) -> Completion:
    toks = tuple(
        TokenLogprob(
            token=f" w{i}",
            bytes=f" w{i}".encode(),
            logprob=-((i * 7919 + seed) % 1000) / 250,
            id=i % 32000,
            top_logprobs=tuple(
                Alternative(f" a{k}", f" a{k}".encode(), -1.0 - k) for k in range(top)
            ),
        )
        for i in range(n)
    )
    return Completion(
        choices=(Choice(text="".join(t.token for t in toks), tokens=toks),), model="bench"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--db", default=None)
    ap.add_argument("--responses", type=int, default=500)
    ap.add_argument("--tokens", type=int, default=100_000)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="logprobe-bench-"))
    url = args.db or f"sqlite:///{tmp / 'bench.db'}"
    out: dict[str, object] = {"db": url.split("://")[0], "load_avg_1m": os.getloadavg()[0]}
    with Store.open(url) as store:
        small = [response(50, seed=i) for i in range(args.responses)]
        t0 = time.perf_counter()
        for i, comp in enumerate(small):
            store.record("bench-small", f"prompt {i}", comp)
        dt = time.perf_counter() - t0
        out["record_50tok_per_s"] = round(args.responses / dt, 1)

        path = tmp / "huge.json"
        path.write_text(json.dumps(response(args.tokens).to_dict()))
        t0 = time.perf_counter()
        report = import_file(store, path, "bench-huge")
        out["import_huge_s"] = round(time.perf_counter() - t0, 2)
        out["import_huge_mb"] = round(path.stat().st_size / 1e6, 1)
        out["import_tokens"] = report.n_tokens

        rid = store.responses("bench-huge")[0].id
        t0 = time.perf_counter()
        for offset in range(0, args.tokens, args.tokens // 10):
            store.tokens(rid, offset=offset, limit=1000)
        out["token_page_1000_ms"] = round((time.perf_counter() - t0) / 10 * 1000, 1)
        t0 = time.perf_counter()
        store.compare("bench-small", "bench-small", token_limit=5)
        out["compare_self_s"] = round(time.perf_counter() - t0, 2)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
